// The SDK's failure kinds, with stable codes (see internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';

/** A type name that is not `namespace/name`. Terminal. */
export class InvalidTypeNameError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.statefun.InvalidTypeNameError');
  static readonly code = 'WEFT_STATEFUN_INVALID_TYPENAME';

  constructor(typeName: string, problem: string, options?: WeftErrorOptions) {
    super(
      InvalidTypeNameError.code,
      `invalid type name ${JSON.stringify(typeName)}: ${problem}`,
      false,
      options,
    );
  }
}

/** A value that its type cannot encode, or bytes that do not decode as that type. Terminal. */
export class ValueTypeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.statefun.ValueTypeError');
  static readonly code = 'WEFT_STATEFUN_BAD_VALUE';

  constructor(message: string, options?: WeftErrorOptions) {
    super(ValueTypeError.code, message, false, options);
  }
}
