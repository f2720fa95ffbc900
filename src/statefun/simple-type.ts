// How a value of some type becomes bytes and back, under a type name both ends agree on.

import { ValueTypeError } from './errors.ts';
import type { TypeName } from './type-name.ts';

export interface SimpleType<T> {
  readonly typeName: TypeName;
  /** Throws `ValueTypeError` for a value the type cannot encode. */
  serialize(value: T): Uint8Array;
  /** Throws `ValueTypeError` for bytes that are not a value of the type. */
  deserialize(bytes: Uint8Array): T;
}

/**
 * `type.serialize(value)`, refusing a result that is not bytes: a custom type written in
 * JavaScript could return a string, which the wire encoder would otherwise write as zeros.
 */
export function serializeValue<T>(type: SimpleType<T>, value: T): Uint8Array {
  const bytes: unknown = type.serialize(value);
  if (!(bytes instanceof Uint8Array)) {
    throw new ValueTypeError(
      `type ${type.typeName.toString()} serialized a value to something other than bytes`,
    );
  }
  return bytes;
}
