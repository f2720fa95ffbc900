// The coord module's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';
import type { FailureClass } from './failure-class.ts';

// --- Content store -------------------------------------------------------------------------------

/**
 * A content key is not an OCI digest this store accepts (`sha256:` + 64 lowercase hex, or
 * `sha512:` + 128). Terminal: the same string is refused every time.
 */
export class InvalidDigestError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidDigestError');
  static readonly code = 'WEFT_COORD_INVALID_DIGEST';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidDigestError.code, message, false, options);
  }
}

/**
 * The bytes written under a digest do not hash to it, or their count is not the size announced.
 * Nothing was stored. Retryable: another fetch (another peer, the origin again) may deliver the
 * right bytes.
 */
export class DigestMismatchError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.DigestMismatchError');
  static readonly code = 'WEFT_COORD_DIGEST_MISMATCH';
  /** The digest the bytes were written under. */
  readonly expectedDigest: string;
  /** The digest of the bytes received; undefined when the write stopped early on size. */
  readonly actualDigest: string | undefined;
  /** The size announced by the writer, when it announced one. */
  readonly expectedSize: number | undefined;
  /** Bytes received (when the write stopped early: at least this many). */
  readonly actualSize: number;

  constructor(
    message: string,
    details: {
      expectedDigest: string;
      actualDigest?: string;
      expectedSize?: number;
      actualSize: number;
    },
    options?: WeftErrorOptions,
  ) {
    super(DigestMismatchError.code, message, true, options);
    this.expectedDigest = details.expectedDigest;
    this.actualDigest = details.actualDigest;
    this.expectedSize = details.expectedSize;
    this.actualSize = details.actualSize;
  }
}

/**
 * A byte range does not lie inside the blob (`0 ≤ start ≤ end < size`, integers). Terminal. An
 * HTTP layer answers 416 and names `size` in its `Content-Range` header.
 */
export class InvalidRangeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidRangeError');
  static readonly code = 'WEFT_COORD_INVALID_RANGE';
  /** Size of the blob the range was asked of. */
  readonly size: number;

  constructor(message: string, size: number, options?: WeftErrorOptions) {
    super(InvalidRangeError.code, message, false, options);
    this.size = size;
  }
}

/** A blob is larger than the whole content store (`maxBytes`). Terminal: it can never fit. */
export class BlobTooLargeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.BlobTooLargeError');
  static readonly code = 'WEFT_COORD_BLOB_TOO_LARGE';
  readonly size: number;
  readonly maxBytes: number;

  constructor(digest: string, size: number, maxBytes: number, options?: WeftErrorOptions) {
    super(
      BlobTooLargeError.code,
      `blob ${digest} of at least ${size} bytes exceeds the content store limit of ${maxBytes} bytes`,
      false,
      options,
    );
    this.size = size;
    this.maxBytes = maxBytes;
  }
}

// --- Origin client -------------------------------------------------------------------------------

/**
 * A fetch from an origin registry failed. `failureClass` is what peers and the negative cache act
 * on (401/403 auth, 404 not-found, 429 rate-limited, anything else, network errors and timeouts
 * included, transient). Retryable for transient and rate-limited failures.
 */
export class OriginFetchError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.OriginFetchError');
  static readonly code = 'WEFT_COORD_ORIGIN_FAILED';
  readonly failureClass: FailureClass;
  /** The HTTP status that failed the fetch; undefined for network errors, timeouts and bad answers. */
  readonly status: number | undefined;
  /** The URL that failed, without credentials or query string (a signed storage URL's query is one). */
  readonly url: string;

  constructor(
    message: string,
    details: { failureClass: FailureClass; status?: number; url: string },
    options?: WeftErrorOptions,
  ) {
    const retryable = details.failureClass === 'transient' || details.failureClass === 'rate-limited';
    super(OriginFetchError.code, message, retryable, options);
    this.failureClass = details.failureClass;
    this.status = details.status;
    this.url = details.url;
  }
}

/**
 * An origin URL, repository name or tag the origin client refuses before sending anything (a
 * digest is checked by `parseDigest`, which throws `InvalidDigestError`). Terminal.
 */
export class InvalidOriginRequestError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.InvalidOriginRequestError');
  static readonly code = 'WEFT_COORD_INVALID_ORIGIN_REQUEST';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidOriginRequestError.code, message, false, options);
  }
}

// --- Mirror ------------------------------------------------------------------------------------

/**
 * A blob or manifest could not be had from a peer's mirror: the peer does not hold it any more
 * (`status` 404), failed, went quiet for the stall time, or was unreachable. The mirror tries the
 * next provider. Retryable.
 */
export class PeerFetchError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.PeerFetchError');
  static readonly code = 'WEFT_COORD_PEER_FAILED';
  /** The peer's node id. */
  readonly peer: string;
  /** The peer's HTTP status; undefined for network errors and stalls. */
  readonly status: number | undefined;

  constructor(message: string, details: { peer: string; status?: number }, options?: WeftErrorOptions) {
    super(PeerFetchError.code, message, true, options);
    this.peer = details.peer;
    this.status = details.status;
  }
}

/**
 * A tag was asked of a mirror with no origin for its namespace, so it cannot be resolved (a tag
 * is only ever resolved at its origin). Answered 503, so a client tries the registry itself.
 */
export class NoOriginError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.NoOriginError');
  static readonly code = 'WEFT_COORD_NO_ORIGIN';

  constructor(message: string, options?: WeftErrorOptions) {
    super(NoOriginError.code, message, false, options);
  }
}
