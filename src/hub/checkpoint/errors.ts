// The checkpoint area's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * A checkpoint cannot be written as given: an empty or over-long stream key or partition, a
 * sequence outside uint64, a time that is not finite. Terminal: the same checkpoint fails again.
 */
export class InvalidCheckpointError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidCheckpointError');
  static readonly code = 'WEFT_HUB_INVALID_CHECKPOINT';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidCheckpointError.code, message, false, options);
  }
}

/**
 * A stored checkpoint is unreadable as a whole (damaged header, unknown format version). Terminal
 * for that checkpoint: the checkpointer skips it, counts it and deletes it.
 */
export class CheckpointCorruptError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.CheckpointCorruptError');
  static readonly code = 'WEFT_HUB_CHECKPOINT_CORRUPT';

  constructor(message: string, options?: WeftErrorOptions) {
    super(CheckpointCorruptError.code, message, false, options);
  }
}

/** The checkpoint store was closed before the call. Terminal. */
export class CheckpointStoreClosedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.CheckpointStoreClosedError');
  static readonly code = 'WEFT_HUB_CHECKPOINT_STORE_CLOSED';

  constructor(message = 'the checkpoint store is closed', options?: WeftErrorOptions) {
    super(CheckpointStoreClosedError.code, message, false, options);
  }
}

/**
 * A new stream key would exceed the store's key limit (`maxKeys`). Retryable: keys are freed when
 * their streams finish.
 */
export class CheckpointStoreFullError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.CheckpointStoreFullError');
  static readonly code = 'WEFT_HUB_CHECKPOINT_STORE_FULL';
  readonly maxKeys: number;

  constructor(maxKeys: number, options?: WeftErrorOptions) {
    super(
      CheckpointStoreFullError.code,
      `the checkpoint store holds its limit of ${maxKeys} stream keys`,
      true,
      options,
    );
    this.maxKeys = maxKeys;
  }
}
