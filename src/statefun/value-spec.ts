// A persisted value a function declares: its name, its type and how it expires. The
// runtime keeps the value per address; a function sees only the values it declared.

import { ConfigError } from '../internal/errors.ts';
import type { SimpleType } from './simple-type.ts';
import type { TypeName } from './type-name.ts';

/** How a value expires: never, a while after it was last written, or after it was last used. */
export type Expiration =
  { readonly mode: 'none' } | { readonly mode: 'after-write' | 'after-call'; readonly afterMs: number };

export interface ValueSpec<T> {
  readonly name: string;
  readonly type: SimpleType<T>;
  readonly expiration: Expiration;
}

export interface ValueSpecOptions<T> {
  /** Letters, digits and underscores, not starting with a digit (the StateFun SDKs' rule). */
  readonly name: string;
  readonly type: SimpleType<T>;
  /** Expire this long after the value was last read or written (any invocation refreshes it). */
  readonly expireAfterCall?: number;
  /** Expire this long after the value was last written. */
  readonly expireAfterWrite?: number;
}

const NAME = /^[a-zA-Z_][a-zA-Z_0-9]*$/;

export function valueSpec<T>(options: ValueSpecOptions<T>): ValueSpec<T> {
  const { name, type, expireAfterCall, expireAfterWrite } = options;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConfigError('spec.name', `${JSON.stringify(name)} does not match ${NAME.source}`);
  }
  if (
    typeof type !== 'object' ||
    typeof type.serialize !== 'function' ||
    typeof type.deserialize !== 'function' ||
    typeof (type.typeName as TypeName | undefined)?.namespace !== 'string'
  ) {
    throw new ConfigError(`spec ${name}.type`, 'is not a type (SimpleType)');
  }
  if (expireAfterCall !== undefined && expireAfterWrite !== undefined) {
    throw new ConfigError(`spec ${name}`, 'expires after a call or after a write, not both');
  }
  const afterMs = expireAfterCall ?? expireAfterWrite;
  if (afterMs === undefined) return { name, type, expiration: { mode: 'none' } };
  if (!Number.isSafeInteger(afterMs) || afterMs <= 0) {
    throw new ConfigError(
      `spec ${name}.expireAfter`,
      `must be a positive whole number of ms, got ${afterMs}`,
    );
  }
  return {
    name,
    type,
    expiration: { mode: expireAfterCall === undefined ? 'after-write' : 'after-call', afterMs },
  };
}
