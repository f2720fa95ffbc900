// Why a request to the functions could not be answered; the HTTP handler maps each kind
// to its status.

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';

/** The body is not a ToFunction request the protocol allows (HTTP 400). Terminal. */
export class InvalidRequestError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.statefun.InvalidRequestError');
  static readonly code = 'WEFT_STATEFUN_INVALID_REQUEST';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidRequestError.code, message, false, options);
  }
}

/** No function of the requested type is registered here (HTTP 404). Terminal. */
export class UnknownFunctionError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.statefun.UnknownFunctionError');
  static readonly code = 'WEFT_STATEFUN_UNKNOWN_FUNCTION';

  constructor(typeName: string, options?: WeftErrorOptions) {
    super(UnknownFunctionError.code, `no function of type ${typeName} is registered`, false, options);
  }
}

/**
 * The function threw (HTTP 500). Retryable: the runtime sends the whole batch again, and
 * since no effect of a failed batch was applied, running it again is safe.
 */
export class FunctionFailedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.statefun.FunctionFailedError');
  static readonly code = 'WEFT_STATEFUN_FUNCTION_FAILED';

  constructor(message: string, options?: WeftErrorOptions) {
    super(FunctionFailedError.code, message, true, options);
  }
}
