// A gRPC status across the grid. A grid stream ends with an error carrying a code and a message;
// the hub's status travels as the code `WEFT_HUB_STATUS_<NAME>` (the gRPC status name) with the
// details as the message, so a connector in any language can read it back.

import { status } from '@grpc/grpc-js';

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';
import { TERMINAL_STATUSES, type CallEnd } from '../connector/transport.ts';

const STATUS_CODE_PREFIX = 'WEFT_HUB_STATUS_';

/**
 * The hub ended a grid connector stream with a gRPC status. Its `code` is `WEFT_HUB_STATUS_`
 * and the status name (`WEFT_HUB_STATUS_NOT_FOUND`); retryable unless the status is terminal
 * for a connector (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, …).
 */
export class HubStatusError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.HubStatusError');
  /** Every code of this class starts with this. */
  static readonly codePrefix = STATUS_CODE_PREFIX;
  readonly grpcCode: status;
  readonly details: string;

  constructor(code: status, details: string, options?: WeftErrorOptions) {
    super(`${STATUS_CODE_PREFIX}${status[code]}`, details, !TERMINAL_STATUSES.has(code), options);
    this.grpcCode = code;
    this.details = details;
  }
}

const STATUS_BY_NAME: ReadonlyMap<string, status> = new Map(
  [
    status.OK,
    status.CANCELLED,
    status.UNKNOWN,
    status.INVALID_ARGUMENT,
    status.DEADLINE_EXCEEDED,
    status.NOT_FOUND,
    status.ALREADY_EXISTS,
    status.PERMISSION_DENIED,
    status.RESOURCE_EXHAUSTED,
    status.FAILED_PRECONDITION,
    status.ABORTED,
    status.OUT_OF_RANGE,
    status.UNIMPLEMENTED,
    status.INTERNAL,
    status.UNAVAILABLE,
    status.DATA_LOSS,
    status.UNAUTHENTICATED,
  ].map((code) => [status[code], code]),
);

/** The gRPC status an error code names, when it is one of `HubStatusError`'s. */
export function statusOfCode(code: string): status | undefined {
  if (!code.startsWith(STATUS_CODE_PREFIX)) return undefined;
  return STATUS_BY_NAME.get(code.slice(STATUS_CODE_PREFIX.length));
}

/** How a grid stream's end reads as a gRPC call's end, for the connector. */
export function callEndOf(error: unknown): CallEnd {
  if (error === undefined) return { code: status.OK, details: '' };
  const { code, message } = fields(error);
  const named = statusOfCode(code);
  if (named !== undefined) return { code: named, details: message };
  switch (code) {
    case 'WEFT_GRID_UNKNOWN_HANDLER':
      return { code: status.UNIMPLEMENTED, details: `the node serves no hub: ${message}` };
    case 'WEFT_CAPACITY_EXCEEDED':
      return { code: status.RESOURCE_EXHAUSTED, details: message };
    case 'WEFT_CANCELLED':
      return { code: status.CANCELLED, details: message };
    case 'WEFT_DEADLINE_EXCEEDED':
      return { code: status.DEADLINE_EXCEEDED, details: message };
    default:
      // A dropped link, a closed manager, a broken stream: another attempt may get through.
      return { code: status.UNAVAILABLE, details: message };
  }
}

function fields(error: unknown): { code: string; message: string } {
  if (typeof error !== 'object' || error === null) return { code: '', message: String(error) };
  const { code, message } = error as { code?: unknown; message?: unknown };
  return {
    code: typeof code === 'string' ? code : '',
    message: typeof message === 'string' ? message : 'grid stream failed',
  };
}
