// How a value of some type becomes bytes and back, under a type name both ends agree on.

import type { TypeName } from './type-name.ts';

export interface SimpleType<T> {
  readonly typeName: TypeName;
  /** Throws `ValueTypeError` for a value the type cannot encode. */
  serialize(value: T): Uint8Array;
  /** Throws `ValueTypeError` for bytes that are not a value of the type. */
  deserialize(bytes: Uint8Array): T;
}
