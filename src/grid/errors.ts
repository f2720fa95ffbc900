// The grid's failure kinds. Codes are stable and also travel over the wire: an error
// thrown by a remote handler arrives as a `RemoteError` carrying the original `code`
// and `retryable`, with the caller's own stack.

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';

/** The connection to the peer is down (or went down while the call was in flight). Retryable. */
export class DisconnectedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.DisconnectedError');
  static readonly code = 'WEFT_GRID_DISCONNECTED';

  constructor(message = 'remote disconnected', options?: WeftErrorOptions) {
    super(DisconnectedError.code, message, true, options);
  }
}

/** A remote handler failed; `code` and `retryable` are the ones the remote error had. */
export class RemoteError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.RemoteError');
  /** Code used when the remote error had none of its own. */
  static readonly code = 'WEFT_GRID_REMOTE';
}

/** A frame arrived out of sequence on a mux: a peer bug, or frames lost or repeated. Terminal. */
export class IncorrectSequenceError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.IncorrectSequenceError');
  static readonly code = 'WEFT_GRID_INCORRECT_SEQUENCE';

  constructor(expected: number, received: number, options?: WeftErrorOptions) {
    super(
      IncorrectSequenceError.code,
      `out-of-sequence frame: expected seq ${expected}, received ${received}`,
      false,
      options,
    );
  }
}

/** Bytes that are not a valid grid frame, or a frame that breaks the protocol. Terminal. */
export class ProtocolError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.ProtocolError');
  static readonly code = 'WEFT_GRID_PROTOCOL';

  constructor(message: string, options?: WeftErrorOptions) {
    super(ProtocolError.code, message, false, options);
  }
}

/** A frame or payload larger than the configured maximum. Terminal for that message. */
export class FrameTooLargeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.FrameTooLargeError');
  static readonly code = 'WEFT_GRID_FRAME_TOO_LARGE';
  readonly limitBytes: number;

  constructor(sizeBytes: number, limitBytes: number, options?: WeftErrorOptions) {
    super(
      FrameTooLargeError.code,
      `frame of ${sizeBytes} bytes exceeds the ${limitBytes}-byte limit`,
      false,
      options,
    );
    this.limitBytes = limitBytes;
  }
}

/** Why a handshake was refused: said in the ConnectResponse and counted in `stats().refused`. */
export const REFUSAL_REASONS = [
  'bad-token',
  'clock-skew',
  'unknown-host',
  'wrong-direction',
  'version-mismatch',
  'handshake-timeout',
  'bad-handshake',
  'shutting-down',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The peer (or we) refused the connection at the handshake. */
export class HandshakeRefusedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.HandshakeRefusedError');
  static readonly code = 'WEFT_GRID_REFUSED';
  readonly reason: RefusalReason;
  /** The refusal's detail, without the reason. */
  readonly detail: string;

  constructor(reason: RefusalReason, detail: string, options?: WeftErrorOptions) {
    // A refusal for skew or a restart in progress may clear up; the others need an operator.
    const retryable = reason === 'clock-skew' || reason === 'shutting-down' || reason === 'handshake-timeout';
    super(HandshakeRefusedError.code, `connection refused (${reason}): ${detail}`, retryable, options);
    this.reason = reason;
    this.detail = detail;
  }
}

/** No handler is registered for the id (and subroute) a call named. Terminal. */
export class UnknownHandlerError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.grid.UnknownHandlerError');
  static readonly code = 'WEFT_GRID_UNKNOWN_HANDLER';

  constructor(handler: number, options?: WeftErrorOptions) {
    super(UnknownHandlerError.code, `no handler ${handler} on the remote node`, false, options);
  }
}
