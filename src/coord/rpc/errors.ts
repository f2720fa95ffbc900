// The coord RPCs' failure kinds, each with a stable code. A node that refuses a call throws one
// of these; the caller receives it as a grid `RemoteError` carrying the same `code` and
// `retryable`, so callers match on `code` whichever side refused.

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * The node is already serving its maximum of coord calls; this one was refused at once rather
 * than queued (a queue would only make every caller late). Retryable: ask again, or ask another
 * node.
 */
export class CoordBusyError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.CoordBusyError');
  static readonly code = 'WEFT_COORD_BUSY';
  /** The concurrent-call limit that was hit. */
  readonly limit: number;

  constructor(node: string, limit: number, options?: WeftErrorOptions) {
    super(CoordBusyError.code, `${node} is serving its limit of ${limit} coord calls`, true, options);
    this.limit = limit;
  }
}

/**
 * A coord request that is not well formed: not MessagePack, a field missing or of the wrong
 * type, an unknown kind, a bad digest where one key is asked about, too many keys. The message
 * names the problem. Terminal: the same request is refused every time.
 */
export class MalformedCoordRequestError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.MalformedCoordRequestError');
  static readonly code = 'WEFT_COORD_MALFORMED_REQUEST';

  constructor(message: string, options?: WeftErrorOptions) {
    super(MalformedCoordRequestError.code, message, false, options);
  }
}

/** A coord message larger than the coord limit (1 MiB). Terminal. */
export class CoordMessageTooLargeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.CoordMessageTooLargeError');
  static readonly code = 'WEFT_COORD_MESSAGE_TOO_LARGE';
  readonly limitBytes: number;

  constructor(sizeBytes: number, limitBytes: number, options?: WeftErrorOptions) {
    super(
      CoordMessageTooLargeError.code,
      `coord message of ${sizeBytes} bytes exceeds the ${limitBytes}-byte limit`,
      false,
      options,
    );
    this.limitBytes = limitBytes;
  }
}
