// The error base every Weft failure derives from.
//
// Each failure kind is one class with a stable `code` (safe to match on, logged,
// sent over the wire) and a `retryable` verdict that is part of the type: callers
// decide whether to try again from the error alone. Classes are branded with
// `Symbol.for` keys, so `instanceof` still works when an application ends up with
// two copies of this package (a dependency pinned to another version): the check
// looks for the brand, not for a prototype that exists once per copy.

const brandsKey = Symbol.for('weft.error.brands');

export interface WeftErrorOptions {
  readonly cause?: unknown;
}

export class WeftError extends Error {
  /** Brand of this class; every subclass declares its own with `Symbol.for('weft.error.<Name>')`. */
  static readonly brand: symbol = Symbol.for('weft.error.WeftError');

  /** Stable machine-readable code, e.g. `WEFT_DEADLINE_EXCEEDED`. */
  readonly code: string;
  /** True when the same call may succeed if tried again later. */
  readonly retryable: boolean;

  constructor(code: string, message: string, retryable: boolean, options?: WeftErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = retryable;
    // The class name as written, also for subclasses, so stacks and logs say which kind it is.
    this.name = new.target.name;
    Object.defineProperty(this, brandsKey, { value: collectBrands(new.target), enumerable: false });
  }

  static override [Symbol.hasInstance](this: { brand?: symbol }, value: unknown): boolean {
    // A user subclass that declares no brand of its own falls back to the prototype check.
    if (!Object.hasOwn(this, 'brand') || this.brand === undefined) {
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }
    if (typeof value !== 'object' || value === null) return false;
    const brands = (value as Record<symbol, unknown>)[brandsKey];
    return Array.isArray(brands) && brands.includes(this.brand);
  }
}

function collectBrands(target: unknown): symbol[] {
  const brands: symbol[] = [];
  for (let c = target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    if (Object.hasOwn(c, 'brand')) brands.push((c as unknown as { brand: symbol }).brand);
  }
  return brands;
}

/** What went wrong, for a message: an Error's message, or anything else as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for a Weft error marked retryable; anything else (foreign errors included) is terminal. */
export function isRetryable(error: unknown): boolean {
  return error instanceof WeftError && error.retryable;
}

/** The deadline of a call passed before it finished. Retryable: a later attempt may be faster. */
export class DeadlineExceededError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.DeadlineExceededError');
  static readonly code = 'WEFT_DEADLINE_EXCEEDED';
  /** How long the call was allowed, when known. */
  readonly timeoutMs: number | undefined;

  constructor(message = 'deadline exceeded', options?: WeftErrorOptions & { timeoutMs?: number }) {
    super(DeadlineExceededError.code, message, true, options);
    this.timeoutMs = options?.timeoutMs;
  }
}

/** The caller gave up (its AbortSignal fired without a reason of its own). Terminal. */
export class CancelledError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.CancelledError');
  static readonly code = 'WEFT_CANCELLED';

  constructor(message = 'operation cancelled', options?: WeftErrorOptions) {
    super(CancelledError.code, message, false, options);
  }
}

/** A bounded queue or table refused an entry because it was full. Retryable once there is room. */
export class CapacityExceededError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.CapacityExceededError');
  static readonly code = 'WEFT_CAPACITY_EXCEEDED';
  /** The limit that was hit. */
  readonly limit: number;

  constructor(what: string, limit: number, options?: WeftErrorOptions) {
    super(CapacityExceededError.code, `${what} is full (limit ${limit})`, true, options);
    this.limit = limit;
  }
}

/** The thing written to or read from was closed. Terminal. */
export class ClosedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.ClosedError');
  static readonly code = 'WEFT_CLOSED';

  constructor(message = 'closed', options?: WeftErrorOptions) {
    super(ClosedError.code, message, false, options);
  }
}

/** A configuration value is out of range or of the wrong type; the message names the field. */
export class ConfigError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.ConfigError');
  static readonly code = 'WEFT_INVALID_CONFIG';
  /** Dotted path of the offending field, e.g. `grid.pingIntervalMs`. */
  readonly field: string;

  constructor(field: string, problem: string, options?: WeftErrorOptions) {
    super(ConfigError.code, `invalid config ${field}: ${problem}`, false, options);
    this.field = field;
  }
}
