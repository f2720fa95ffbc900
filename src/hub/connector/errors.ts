// The connector SDK's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * The hub refused the connector with a status that another attempt cannot change (bad
 * registration, unknown story or step, a newer generation took over). Terminal.
 */
export class ConnectorRefusedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.ConnectorRefusedError');
  static readonly code = 'WEFT_HUB_CONNECTOR_REFUSED';
  /** The gRPC status name, e.g. `FAILED_PRECONDITION`. */
  readonly status: string;
  readonly details: string;

  constructor(statusName: string, details: string, options?: WeftErrorOptions) {
    super(ConnectorRefusedError.code, `hub refused the connector: ${statusName}: ${details}`, false, options);
    this.status = statusName;
    this.details = details;
  }
}

/** The connector was closed (by `close()` or a terminal failure) before the operation finished. Terminal. */
export class ConnectorClosedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.ConnectorClosedError');
  static readonly code = 'WEFT_HUB_CONNECTOR_CLOSED';

  constructor(message = 'the connector is closed', options?: WeftErrorOptions) {
    super(ConnectorClosedError.code, message, false, options);
  }
}

/** More `send` calls are waiting for room than the connector queues. Retryable once sends drain. */
export class ConnectorSendQueueFullError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.ConnectorSendQueueFullError');
  static readonly code = 'WEFT_HUB_CONNECTOR_SEND_QUEUE_FULL';
  readonly limit: number;

  constructor(limit: number, options?: WeftErrorOptions) {
    super(ConnectorSendQueueFullError.code, `${limit} sends are already waiting for room`, true, options);
    this.limit = limit;
  }
}
