// The six cross-language primitive types of StateFun, `io.statefun.types/{bool,int,long,float,
// double,string}`: each value travels as a protobuf wrapper message with one field 1, as every
// StateFun SDK encodes it. int and long are sfixed32 and sfixed64 (not varints); a zero value
// encodes to no bytes at all, and is still a present value (TypedValue.has_value says so).

import { fromBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';

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
import { ProtoReader, rememberString } from './wire/proto-reader.ts';
import { ProtoWriter, utf8Length, varintSize } from './wire/proto-writer.ts';
import { NO_BYTES } from './wire/typed-value.ts';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// The largest finite float32; @bufbuild/protobuf refuses a finite number beyond it, and so do we.
const FLOAT32_MAX = 3.4028234663852886e38;
// The one field of every wrapper, as its tag byte: field 1 with the wire type of its scalar.
const TAG_VARINT = 0x08;
const TAG_FIXED64 = 0x09;
const TAG_LENGTH_DELIMITED = 0x0a;
const TAG_FIXED32 = 0x0d;

/**
 * A wrapper type. Values are encoded by hand, to the bytes @bufbuild/protobuf's `toBinary`
 * writes (a zero value is no bytes). Decoding takes the one form every SDK writes (nothing, or
 * the tag and the value) directly and hands anything else to `fromBinary`, so unusual but
 * valid encodings (unknown fields, a repeated field) read exactly as they always did.
 */
function wrapperType<S extends DescMessage, T>(
  name: string,
  schema: S,
  encode: (value: unknown) => Uint8Array,
  decodeCanonical: (bytes: Uint8Array) => T | undefined,
  read: (message: MessageShape<S>) => T,
): SimpleType<T> {
  const typeName = TypeName.parse(`io.statefun.types/${name}`);
  // Requests then decode this typename to this very string, which `Message.as` compares at once.
  rememberString(typeName.toString());
  return {
    typeName,
    serialize: encode,
    deserialize(bytes) {
      const fast = decodeCanonical(bytes);
      if (fast !== undefined) return fast;
      try {
        return read(fromBinary(schema, bytes));
      } catch (error) {
        throw new ValueTypeError(`bytes are not a ${typeName.toString()} value`, { cause: error });
      }
    },
  };
}

/** True for a number `intType` can hold: an integer within 32 bits. */
export function isInt32(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= INT32_MIN && (value as number) <= INT32_MAX;
}

/** True for a bigint `longType` can hold: within 64 bits. */
export function isInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fixedWidth(tag: number, width: number, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(1 + width);
  bytes[0] = tag;
  write(viewOf(bytes));
  return bytes;
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
    return v === true ? Uint8Array.of(TAG_VARINT, 1) : NO_BYTES;
  },
  (bytes) => {
    if (bytes.length === 0) return false;
    if (bytes.length === 2 && bytes[0] === TAG_VARINT && (bytes[1] as number) < 0x80) return bytes[1] !== 0;
    return undefined;
  },
  (m) => m.value,
);

export const intType: SimpleType<number> = wrapperType(
  'int',
  IntWrapperSchema,
  (v) => {
    expect('an integer within 32 bits', isInt32(v), v);
    const value = v as number;
    if (value === 0) return NO_BYTES;
    const bytes = new Uint8Array(5);
    bytes[0] = TAG_FIXED32;
    bytes[1] = value;
    bytes[2] = value >>> 8;
    bytes[3] = value >>> 16;
    bytes[4] = value >>> 24;
    return bytes;
  },
  (bytes) => {
    if (bytes.length === 0) return 0;
    if (bytes.length === 5 && bytes[0] === TAG_FIXED32) {
      return (
        (bytes[1] as number) |
        ((bytes[2] as number) << 8) |
        ((bytes[3] as number) << 16) |
        ((bytes[4] as number) << 24)
      );
    }
    return undefined;
  },
  (m) => m.value,
);

export const longType: SimpleType<bigint> = wrapperType(
  'long',
  LongWrapperSchema,
  (v) => {
    expect('a bigint within 64 bits', typeof v === 'bigint' && isInt64(v), v);
    const value = v as bigint;
    return value === 0n
      ? NO_BYTES
      : fixedWidth(TAG_FIXED64, 8, (view) => {
          view.setBigInt64(1, value, true);
        });
  },
  (bytes) => {
    if (bytes.length === 0) return 0n;
    return bytes.length === 9 && bytes[0] === TAG_FIXED64 ? viewOf(bytes).getBigInt64(1, true) : undefined;
  },
  (m) => m.value,
);

export const floatType: SimpleType<number> = wrapperType(
  'float',
  FloatWrapperSchema,
  (v) => {
    // A float is 32 bits: the value is rounded to the nearest float, as every SDK does.
    expect('a number', typeof v === 'number', v);
    const value = v as number;
    if (Number.isFinite(value) && Math.abs(value) > FLOAT32_MAX) {
      throw new ValueTypeError(`expected a number within the float range, got ${value}`);
    }
    // -0 is not zero here: it is written, as @bufbuild/protobuf writes it.
    return Object.is(value, 0)
      ? NO_BYTES
      : fixedWidth(TAG_FIXED32, 4, (view) => {
          view.setFloat32(1, value, true);
        });
  },
  (bytes) => {
    if (bytes.length === 0) return 0;
    return bytes.length === 5 && bytes[0] === TAG_FIXED32 ? viewOf(bytes).getFloat32(1, true) : undefined;
  },
  (m) => m.value,
);

export const doubleType: SimpleType<number> = wrapperType(
  'double',
  DoubleWrapperSchema,
  (v) => {
    expect('a number', typeof v === 'number', v);
    const value = v as number;
    return Object.is(value, 0)
      ? NO_BYTES
      : fixedWidth(TAG_FIXED64, 8, (view) => {
          view.setFloat64(1, value, true);
        });
  },
  (bytes) => {
    if (bytes.length === 0) return 0;
    return bytes.length === 9 && bytes[0] === TAG_FIXED64 ? viewOf(bytes).getFloat64(1, true) : undefined;
  },
  (m) => m.value,
);

export const stringType: SimpleType<string> = wrapperType(
  'string',
  StringWrapperSchema,
  (v) => {
    expect('a string', typeof v === 'string', v);
    const value = v as string;
    if (value === '') return NO_BYTES;
    // Of its exact size, so a short string's buffer is returned as it is.
    const length = utf8Length(value);
    const writer = new ProtoWriter(1 + varintSize(length) + length);
    writer.byte(TAG_LENGTH_DELIMITED);
    writer.string(value);
    return writer.finish();
  },
  (bytes) => {
    if (bytes.length === 0) return '';
    if (bytes[0] !== TAG_LENGTH_DELIMITED) return undefined;
    // The tag, then the string and nothing after it. Anything else, invalid UTF-8 included,
    // is left to fromBinary, which reads it or refuses it.
    const reader = new ProtoReader(bytes);
    reader.pos = 1;
    try {
      const value = reader.string(bytes.length);
      return reader.pos === bytes.length ? value : undefined;
    } catch {
      return undefined;
    }
  },
  (m) => m.value,
);
