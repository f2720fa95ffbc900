// The six cross-language primitive types of StateFun, `io.statefun.types/{bool,int,long,float,
// double,string}`: each value travels as a protobuf wrapper message with one field 1, as every
// StateFun SDK encodes it. int and long are sfixed32 and sfixed64 (not varints); a zero value
// encodes to no bytes at all, and is still a present value (TypedValue.has_value says so).

import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';

import {
  BooleanWrapperSchema,
  DoubleWrapperSchema,
  FloatWrapperSchema,
  IntWrapperSchema,
  LongWrapperSchema,
  StringWrapperSchema,
} from '../gen/statefun/types_pb.ts';
import { ValueTypeError } from './errors.ts';
import type { SimpleType } from './simple-type.ts';
import { TypeName } from './type-name.ts';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function wrapperType<S extends DescMessage, T>(
  name: string,
  schema: S,
  check: (value: unknown) => T,
  read: (message: MessageShape<S>) => T,
): SimpleType<T> {
  const typeName = TypeName.parse(`io.statefun.types/${name}`);
  return {
    typeName,
    serialize(value) {
      const checked = check(value);
      return toBinary(schema, create(schema, { value: checked } as never));
    },
    deserialize(bytes) {
      try {
        return read(fromBinary(schema, bytes));
      } catch (error) {
        throw new ValueTypeError(`bytes are not a ${typeName.toString()} value`, { cause: error });
      }
    },
  };
}

function expect(kind: string, ok: boolean, value: unknown): void {
  if (!ok) throw new ValueTypeError(`expected ${kind}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

export const boolType: SimpleType<boolean> = wrapperType(
  'bool',
  BooleanWrapperSchema,
  (v) => {
    expect('a boolean', typeof v === 'boolean', v);
    return v as boolean;
  },
  (m) => m.value,
);

export const intType: SimpleType<number> = wrapperType(
  'int',
  IntWrapperSchema,
  (v) => {
    expect(
      'an integer within 32 bits',
      Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX,
      v,
    );
    return v as number;
  },
  (m) => m.value,
);

export const longType: SimpleType<bigint> = wrapperType(
  'long',
  LongWrapperSchema,
  (v) => {
    expect('a bigint within 64 bits', typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX, v);
    return v as bigint;
  },
  (m) => m.value,
);

export const floatType: SimpleType<number> = wrapperType(
  'float',
  FloatWrapperSchema,
  (v) => {
    // A float is 32 bits: the value is rounded to the nearest float, as every SDK does.
    expect('a number', typeof v === 'number', v);
    return v as number;
  },
  (m) => m.value,
);

export const doubleType: SimpleType<number> = wrapperType(
  'double',
  DoubleWrapperSchema,
  (v) => {
    expect('a number', typeof v === 'number', v);
    return v as number;
  },
  (m) => m.value,
);

export const stringType: SimpleType<string> = wrapperType(
  'string',
  StringWrapperSchema,
  (v) => {
    expect('a string', typeof v === 'string', v);
    return v as string;
  },
  (m) => m.value,
);
