// A message to or from a function: the address it goes to and its value as a TypedValue
// (typename, has_value, bytes), exactly as the request-reply protocol carries it. Reading
// checks the typename first, so a value is never decoded as a type it was not written as.

import type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
import { Address } from './address.ts';
import { ValueTypeError } from './errors.ts';
import {
  boolType,
  doubleType,
  floatType,
  intType,
  isInt32,
  longType,
  stringType,
} from './primitive-types.ts';
import type { SimpleType } from './simple-type.ts';
import { NO_BYTES, typedValueOf } from './wire/typed-value.ts';

export class Message {
  readonly targetAddress: Address;
  readonly typedValue: TypedValue;

  private constructor(targetAddress: Address, typedValue: TypedValue) {
    this.targetAddress = targetAddress;
    this.typedValue = typedValue;
  }

  /** Wraps a value as it arrived (or is to be sent) to `target`; the TypedValue is kept, not copied. */
  static fromTypedValue(target: Address, value: TypedValue): Message {
    checkAddress(target);
    return new Message(target, value);
  }

  /** The typename the value was written under, e.g. `io.statefun.types/int`. */
  get valueTypeName(): string {
    return this.typedValue.typename;
  }

  /** The encoded value; empty when the message carries no value. */
  get rawValue(): Uint8Array {
    return this.typedValue.hasValue ? this.typedValue.value : NO_BYTES;
  }

  /** True when the value was written under `type`'s typename. */
  is(type: SimpleType<unknown>): boolean {
    return this.typedValue.typename === type.typeName.toString();
  }

  /** Decodes the value as `type`; a `ValueTypeError` when the typename differs or there is no value. */
  as<T>(type: SimpleType<T>): T {
    const expected = type.typeName.toString();
    if (this.typedValue.typename !== expected) {
      throw new ValueTypeError(
        `the message value is a ${describeTypename(this.typedValue.typename)}, not a ${expected}`,
      );
    }
    // has_value=false is "absent", which no type's zero value stands for (zero values are present).
    if (!this.typedValue.hasValue) throw new ValueTypeError(`the message has no value (${expected})`);
    return type.deserialize(this.typedValue.value);
  }

  isString(): boolean {
    return this.is(stringType);
  }
  asString(): string {
    return this.as(stringType);
  }
  isInt(): boolean {
    return this.is(intType);
  }
  asInt(): number {
    return this.as(intType);
  }
  isBool(): boolean {
    return this.is(boolType);
  }
  asBool(): boolean {
    return this.as(boolType);
  }
  isLong(): boolean {
    return this.is(longType);
  }
  asLong(): bigint {
    return this.as(longType);
  }
  isFloat(): boolean {
    return this.is(floatType);
  }
  asFloat(): number {
    return this.as(floatType);
  }
  isDouble(): boolean {
    return this.is(doubleType);
  }
  asDouble(): number {
    return this.as(doubleType);
  }
}

export interface MessageOptions<T> {
  readonly target: Address;
  readonly value: T;
  /** Needed unless the value is a string, boolean, bigint (long) or 32-bit integer (int). */
  readonly valueType?: SimpleType<T> | undefined;
}

/** A message to `target`, its value encoded with `valueType` or a primitive type inferred from it. */
export function messageBuilder<T>(options: MessageOptions<T>): Message {
  checkAddress(options.target);
  const { value } = options;
  // Both official SDKs refuse a missing value; null stays possible for a type that encodes it (JSON).
  if (value === undefined) throw new ValueTypeError('a message needs a value, got undefined');
  const type = options.valueType ?? inferType(value);
  return Message.fromTypedValue(options.target, typedValueOf(type, value));
}

function inferType<T>(value: T): SimpleType<T> {
  // Each branch has narrowed `value`, so the type does hold a T.
  switch (typeof value) {
    case 'string':
      return stringType as SimpleType<T>;
    case 'boolean':
      return boolType as SimpleType<T>;
    case 'bigint':
      return longType as SimpleType<T>;
    case 'number':
      if (isInt32(value)) return intType as SimpleType<T>;
      throw new ValueTypeError(
        Number.isInteger(value)
          ? `cannot infer a type for ${value}, which is outside 32 bits: pass a bigint (long) or valueType: doubleType`
          : `cannot infer a type for ${value}: pass valueType: floatType or doubleType`,
      );
    default:
      throw new ValueTypeError(`cannot infer a type for ${noun(value)}: ${advice(value)}`);
  }
}

function advice(value: unknown): string {
  if (value instanceof Uint8Array) return 'pass a valueType (a custom SimpleType) that writes the bytes';
  if (typeof value === 'object' && value !== null)
    return 'pass valueType: jsonType(...) or protobufType(...)';
  return 'pass a valueType';
}

function noun(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (Array.isArray(value)) return 'an array';
  return `a value of type ${typeof value}`;
}

function describeTypename(typename: string): string {
  return typename === '' ? 'value with no typename' : typename;
}

function checkAddress(target: unknown): void {
  if (!(target instanceof Address)) {
    throw new ValueTypeError('a message target is an Address, e.g. Address.of("com.example/fn", "id")');
  }
}
