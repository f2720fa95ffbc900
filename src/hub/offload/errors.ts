// The offload area's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * A blob reference is not one this hub issues (`weft-blob://sha256/<64 lowercase hex>`). Refs
 * arrive in packets, so this is hostile or damaged input. Terminal.
 */
export class InvalidBlobRefError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidBlobRefError');
  static readonly code = 'WEFT_HUB_OFFLOAD_INVALID_REF';

  constructor(problem: string, options?: WeftErrorOptions) {
    super(InvalidBlobRefError.code, `invalid blob reference: ${problem}`, false, options);
  }
}

/** The blob store holds nothing under a valid reference (deleted, or never written). Terminal. */
export class OffloadBlobNotFoundError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OffloadBlobNotFoundError');
  static readonly code = 'WEFT_HUB_OFFLOAD_BLOB_NOT_FOUND';
  readonly ref: string;

  constructor(ref: string, options?: WeftErrorOptions) {
    super(OffloadBlobNotFoundError.code, `no blob stored under ${ref}`, false, options);
    this.ref = ref;
  }
}

/**
 * Bytes read back do not match their reference: wrong sha256 or wrong size. The bytes are never
 * delivered. Terminal.
 */
export class OffloadBlobCorruptError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OffloadBlobCorruptError');
  static readonly code = 'WEFT_HUB_OFFLOAD_BLOB_CORRUPT';
  readonly ref: string;

  constructor(ref: string, problem: string, options?: WeftErrorOptions) {
    super(OffloadBlobCorruptError.code, `blob ${ref} is corrupt: ${problem}`, false, options);
    this.ref = ref;
  }
}

/** A blob is larger than a limit (the store's `maxBytes`, or a materialize budget). Terminal. */
export class OffloadBlobTooLargeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OffloadBlobTooLargeError');
  static readonly code = 'WEFT_HUB_OFFLOAD_BLOB_TOO_LARGE';
  readonly bytes: number;
  readonly limitBytes: number;

  constructor(what: string, bytes: number, limitBytes: number, options?: WeftErrorOptions) {
    super(
      OffloadBlobTooLargeError.code,
      `${what} is ${bytes} bytes, over the limit of ${limitBytes}`,
      false,
      options,
    );
    this.bytes = bytes;
    this.limitBytes = limitBytes;
  }
}

/**
 * The blob store is full (bytes or blob count). Retryable: space returns as delivered packets'
 * blobs are deleted. The store never evicts a blob to make room, since a packet may still need it.
 */
export class OffloadStoreFullError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OffloadStoreFullError');
  static readonly code = 'WEFT_HUB_OFFLOAD_STORE_FULL';

  constructor(message: string, options?: WeftErrorOptions) {
    super(OffloadStoreFullError.code, message, true, options);
  }
}

/** The blob store was closed before the call. Terminal. */
export class OffloadStoreClosedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OffloadStoreClosedError');
  static readonly code = 'WEFT_HUB_OFFLOAD_STORE_CLOSED';

  constructor(message = 'the blob store is closed', options?: WeftErrorOptions) {
    super(OffloadStoreClosedError.code, message, false, options);
  }
}

/**
 * A packet's offload markers (`weft-offloaded-*` metadata) are malformed or contradict the packet
 * (size not a number, field naming another frame, frame bytes not empty). Terminal.
 */
export class InvalidOffloadMarkerError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidOffloadMarkerError');
  static readonly code = 'WEFT_HUB_OFFLOAD_INVALID_MARKER';

  constructor(problem: string, options?: WeftErrorOptions) {
    super(InvalidOffloadMarkerError.code, `invalid offload marker: ${problem}`, false, options);
  }
}

/** A materializer's reply or a materialize request cannot be used (no inputs, `result` not an object). Terminal. */
export class InvalidMaterializeMessageError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidMaterializeMessageError');
  static readonly code = 'WEFT_HUB_MATERIALIZE_INVALID_MESSAGE';

  constructor(problem: string, options?: WeftErrorOptions) {
    super(InvalidMaterializeMessageError.code, `invalid materialize message: ${problem}`, false, options);
  }
}

/**
 * A materialize run with the wanted name exists but belongs to another story run or targets
 * another step, or has no owner at all. Reusing it would leak one run's data into another. Terminal.
 */
export class MaterializeRunNotOwnedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.MaterializeRunNotOwnedError');
  static readonly code = 'WEFT_HUB_MATERIALIZE_NOT_OWNED';
  readonly runName: string;

  constructor(runName: string, problem: string, options?: WeftErrorOptions) {
    super(
      MaterializeRunNotOwnedError.code,
      `materialize run ${runName} cannot be reused: ${problem}`,
      false,
      options,
    );
    this.runName = runName;
  }
}

/** The materialize run registry holds its limit of runs. Retryable: runs are released when story runs end. */
export class MaterializeRunLimitError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.MaterializeRunLimitError');
  static readonly code = 'WEFT_HUB_MATERIALIZE_RUN_LIMIT';
  readonly maxRuns: number;

  constructor(maxRuns: number, options?: WeftErrorOptions) {
    super(
      MaterializeRunLimitError.code,
      `the materialize registry holds its limit of ${maxRuns} runs`,
      true,
      options,
    );
    this.maxRuns = maxRuns;
  }
}
