// The buffer's failures, each with a stable code (see src/internal/errors.ts for the base).
// Bad configuration is reported with the shared ConfigError, which names the field.

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * A call handed the buffer something it cannot account for: an entry whose size is not a
 * non-negative safe integer or whose lane is unknown, or a deadline that is not a finite time.
 * Nothing changed. Terminal: the same input is refused every time.
 */
export class InvalidBufferInputError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidBufferInputError');
  static readonly code = 'WEFT_HUB_INVALID_BUFFER_INPUT';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidBufferInputError.code, message, false, options);
  }
}
