import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { TypedValueSchema } from '../../src/gen/statefun/request-reply_pb.ts';
import { Address } from '../../src/statefun/address.ts';
import { ValueTypeError } from '../../src/statefun/errors.ts';
import { jsonType } from '../../src/statefun/json-type.ts';
import { Message, messageBuilder } from '../../src/statefun/message.ts';
import {
  boolType,
  doubleType,
  floatType,
  intType,
  longType,
  stringType,
} from '../../src/statefun/primitive-types.ts';
import { hex } from './requests.ts';

const target = Address.of('com.example/greeter', 'bob');

function refusedWith(pattern: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof ValueTypeError && pattern.test(e.message);
}

describe('messageBuilder', () => {
  test('infers the primitive type from strings, booleans, bigints and 32-bit integers', () => {
    const cases = [
      ['Bob', 'io.statefun.types/string', '0a03426f62'],
      [true, 'io.statefun.types/bool', '0801'],
      [43n, 'io.statefun.types/long', '092b00000000000000'],
      [43, 'io.statefun.types/int', '0d2b000000'],
      [-(2 ** 31), 'io.statefun.types/int', '0d00000080'],
      [2 ** 31 - 1, 'io.statefun.types/int', '0dffffff7f'],
    ] as const;
    for (const [value, typename, bytes] of cases) {
      const message = messageBuilder<unknown>({ target, value });
      assert.equal(message.valueTypeName, typename, String(value));
      assert.equal(message.typedValue.hasValue, true);
      assert.equal(hex(message.rawValue), bytes, String(value));
      assert.ok(message.targetAddress.equals(target));
    }
  });

  test('zero values are present values with no bytes', () => {
    for (const [value, typename] of [
      ['', 'io.statefun.types/string'],
      [false, 'io.statefun.types/bool'],
      [0n, 'io.statefun.types/long'],
      [0, 'io.statefun.types/int'],
    ] as const) {
      const message = messageBuilder<unknown>({ target, value });
      assert.equal(message.valueTypeName, typename);
      assert.equal(message.typedValue.hasValue, true, typename);
      assert.equal(message.rawValue.length, 0, typename);
    }
    assert.equal(messageBuilder({ target, value: 0 }).asInt(), 0);
    assert.equal(messageBuilder({ target, value: '' }).asString(), '');
    assert.equal(messageBuilder({ target, value: false }).asBool(), false);
    assert.equal(messageBuilder({ target, value: 0n }).asLong(), 0n);
    assert.equal(messageBuilder({ target, value: 0, valueType: doubleType }).asDouble(), 0);
  });

  test('a fractional number is refused, naming floatType or doubleType', () => {
    for (const value of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => messageBuilder({ target, value }),
        refusedWith(/pass valueType: floatType or doubleType/),
      );
    }
  });

  test('an integer outside 32 bits is refused rather than truncated, naming bigint or doubleType', () => {
    for (const value of [2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, 2 ** 60]) {
      assert.throws(
        () => messageBuilder({ target, value }),
        refusedWith(/outside 32 bits.*bigint.*doubleType/),
      );
    }
  });

  test('objects and arrays are refused, naming jsonType or protobufType', () => {
    for (const value of [{ a: 1 }, [1, 2], new Date(0)]) {
      assert.throws(
        () => messageBuilder<unknown>({ target, value }),
        refusedWith(/pass valueType: jsonType/),
      );
    }
  });

  test('bytes, null, undefined, symbols and functions are refused with advice', () => {
    assert.throws(
      () => messageBuilder<unknown>({ target, value: new Uint8Array([1]) }),
      refusedWith(/Uint8Array: pass a valueType/),
    );
    assert.throws(() => messageBuilder<unknown>({ target, value: null }), refusedWith(/null: pass/));
    assert.throws(() => messageBuilder<unknown>({ target, value: undefined }), refusedWith(/needs a value/));
    assert.throws(() => messageBuilder<unknown>({ target, value: Symbol('x') }), refusedWith(/symbol: pass/));
    assert.throws(() => messageBuilder<unknown>({ target, value: () => 1 }), refusedWith(/function: pass/));
  });

  test('a given valueType is used as is, also for values inference would refuse', () => {
    const doc = jsonType<{ n: number } | null>('com.example/doc');
    const message = messageBuilder({ target, value: { n: 1 }, valueType: doc });
    assert.equal(message.valueTypeName, 'com.example/doc');
    assert.deepEqual(message.as(doc), { n: 1 });
    assert.equal(messageBuilder({ target, value: null, valueType: doc }).as(doc), null);
    assert.equal(messageBuilder({ target, value: 1.5, valueType: floatType }).asFloat(), 1.5);
    assert.equal(messageBuilder({ target, value: 2 ** 40, valueType: doubleType }).asDouble(), 2 ** 40);
  });

  test('a value the given type cannot hold is refused by the type', () => {
    assert.throws(() => messageBuilder({ target, value: 2 ** 31, valueType: intType }), ValueTypeError);
    assert.throws(
      () => messageBuilder({ target, value: 1 as unknown as string, valueType: stringType }),
      ValueTypeError,
    );
    assert.throws(
      () => messageBuilder({ target, value: 7 as unknown as bigint, valueType: longType }),
      ValueTypeError,
    );
  });

  test('a target that is not an Address is refused', () => {
    for (const bad of [undefined, 'com.example/greeter/bob', { type: target.type, id: 'bob' }]) {
      assert.throws(
        () => messageBuilder({ target: bad as unknown as Address, value: 1 }),
        refusedWith(/target is an Address/),
      );
    }
  });

  test('property: inferred messages read back as what was sent', () => {
    fc.assert(fc.property(fc.string(), (v) => messageBuilder({ target, value: v }).asString() === v));
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (v) => messageBuilder({ target, value: v }).asInt() === v,
      ),
    );
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (v) => messageBuilder({ target, value: v }).asLong() === v,
      ),
    );
  });
});

describe('Message', () => {
  test('is compares typenames and as decodes only a matching type', () => {
    const message = messageBuilder({ target, value: 43 });
    assert.equal(message.is(intType), true);
    assert.equal(message.is(longType), false);
    assert.equal(message.is(jsonType('io.statefun.types/other')), false);
    assert.equal(message.as(intType), 43);
    assert.throws(
      () => message.as(stringType),
      refusedWith(/is a io\.statefun\.types\/int, not a io\.statefun\.types\/string/),
    );
    // Same bytes would decode as a float; the typename check stops that.
    assert.throws(() => message.as(floatType), ValueTypeError);
  });

  test('each primitive helper pair recognises and reads its own type only', () => {
    const helpers = [
      ['isString', 'asString', stringType, 'hi'],
      ['isInt', 'asInt', intType, -5],
      ['isBool', 'asBool', boolType, true],
      ['isLong', 'asLong', longType, -5n],
      ['isFloat', 'asFloat', floatType, 0.5],
      ['isDouble', 'asDouble', doubleType, 0.1],
    ] as const;
    for (const [is, , type, value] of helpers) {
      const message = messageBuilder<unknown>({ target, value, valueType: type });
      for (const [otherIs, otherAs] of helpers) {
        const same = otherIs === is;
        assert.equal(message[otherIs](), same, `${is} message, ${otherIs}()`);
        if (same) assert.equal(message[otherAs](), value);
        else assert.throws(() => message[otherAs](), ValueTypeError, `${is} message, ${otherAs}()`);
      }
    }
  });

  test('an incoming message without a value has empty raw bytes and refuses to decode', () => {
    const incoming = Message.fromTypedValue(
      target,
      create(TypedValueSchema, { typename: 'io.statefun.types/int', hasValue: false }),
    );
    assert.equal(incoming.valueTypeName, 'io.statefun.types/int');
    assert.equal(incoming.rawValue.length, 0);
    assert.equal(incoming.isInt(), true);
    assert.throws(() => incoming.asInt(), refusedWith(/has no value/));
    // Stray bytes with has_value=false are still no value.
    const stray = Message.fromTypedValue(
      target,
      create(TypedValueSchema, {
        typename: 'io.statefun.types/int',
        hasValue: false,
        value: Buffer.from('0d2b000000', 'hex'),
      }),
    );
    assert.equal(stray.rawValue.length, 0);
    assert.throws(() => stray.asInt(), refusedWith(/has no value/));
  });

  test('an incoming message keeps its TypedValue and decodes it', () => {
    const typedValue = create(TypedValueSchema, {
      typename: 'io.statefun.types/string',
      hasValue: true,
      value: Buffer.from('0a03426f62', 'hex'),
    });
    const incoming = Message.fromTypedValue(target, typedValue);
    assert.equal(incoming.typedValue, typedValue);
    assert.equal(incoming.targetAddress, target);
    assert.equal(incoming.asString(), 'Bob');
    assert.equal(hex(incoming.rawValue), '0a03426f62');
  });

  test('bytes that are not a value of the named type are refused', () => {
    const broken = Message.fromTypedValue(
      target,
      create(TypedValueSchema, {
        typename: 'io.statefun.types/int',
        hasValue: true,
        value: Buffer.from([0x0d, 0x2b]),
      }),
    );
    assert.throws(() => broken.asInt(), ValueTypeError);
  });

  test('fromTypedValue refuses a target that is not an Address', () => {
    assert.throws(
      () => Message.fromTypedValue(null as unknown as Address, create(TypedValueSchema)),
      ValueTypeError,
    );
  });
});
