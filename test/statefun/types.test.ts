import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import { InvalidTypeNameError, ValueTypeError } from '../../src/statefun/errors.ts';
import { jsonType } from '../../src/statefun/json-type.ts';
import {
  boolType,
  doubleType,
  floatType,
  intType,
  longType,
  stringType,
} from '../../src/statefun/primitive-types.ts';
import { protobufType } from '../../src/statefun/protobuf-type.ts';
import { TypeName } from '../../src/statefun/type-name.ts';
import { hex } from './requests.ts';

describe('TypeName', () => {
  test('splits at the last slash, so namespaces may contain slashes', () => {
    const name = TypeName.parse('type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord');
    assert.equal(name.namespace, 'type.googleapis.com');
    assert.equal(name.name, 'io.statefun.sdk.egress.KafkaProducerRecord');
    assert.equal(TypeName.parse('a/b/c').namespace, 'a/b');
    assert.equal(TypeName.parse('com.example/greeter').toString(), 'com.example/greeter');
    assert.ok(TypeName.parse('x/y').equals(TypeName.of('x', 'y')));
  });

  test('a name without a slash, or with an empty part, is refused with a clear error', () => {
    for (const bad of ['greeter', '/greeter', 'com.example/', '', '/']) {
      assert.throws(
        () => TypeName.parse(bad),
        (e) => e instanceof InvalidTypeNameError && e.message.includes(JSON.stringify(bad)),
      );
    }
    assert.throws(() => TypeName.of('ns', 'a/b'), InvalidTypeNameError);
  });
});

describe('primitive types', () => {
  test('use the io.statefun.types type names', () => {
    assert.deepEqual(
      [boolType, intType, longType, floatType, doubleType, stringType].map((t) => t.typeName.toString()),
      [
        'io.statefun.types/bool',
        'io.statefun.types/int',
        'io.statefun.types/long',
        'io.statefun.types/float',
        'io.statefun.types/double',
        'io.statefun.types/string',
      ],
    );
  });

  test('encode as the protobuf wrappers every StateFun SDK writes, int and long as sfixed', () => {
    assert.equal(hex(boolType.serialize(true)), '0801');
    assert.equal(hex(intType.serialize(43)), '0d2b000000');
    assert.equal(hex(intType.serialize(-1)), '0dffffffff');
    assert.equal(hex(longType.serialize(43n)), '092b00000000000000');
    assert.equal(hex(floatType.serialize(1.5)), '0d0000c03f');
    assert.equal(hex(doubleType.serialize(1.5)), '09000000000000f83f');
    assert.equal(hex(stringType.serialize('Bob')), '0a03426f62');
  });

  test('zero values encode to no bytes and decode back to zero', () => {
    for (const [type, zero] of [
      [boolType, false],
      [intType, 0],
      [longType, 0n],
      [floatType, 0],
      [doubleType, 0],
      [stringType, ''],
    ] as const) {
      const bytes = (type.serialize as (v: unknown) => Uint8Array)(zero);
      assert.equal(bytes.length, 0, type.typeName.toString());
      assert.equal(type.deserialize(bytes), zero);
    }
  });

  test('values the type cannot hold are refused, not truncated', () => {
    const refused: (() => Uint8Array)[] = [
      () => intType.serialize(2 ** 31),
      () => intType.serialize(1.5),
      () => intType.serialize('1' as unknown as number),
      () => longType.serialize(1 as unknown as bigint),
      () => longType.serialize(2n ** 63n),
      () => boolType.serialize(1 as unknown as boolean),
      () => stringType.serialize(42 as unknown as string),
      () => doubleType.serialize(1n as unknown as number),
    ];
    for (const serialize of refused) assert.throws(serialize, ValueTypeError);
  });

  test('bytes that are not the wrapper are refused with a clear error', () => {
    assert.throws(
      () => intType.deserialize(Buffer.from([0x0d, 0x2b])),
      (e) => e instanceof ValueTypeError && /io.statefun.types\/int/.test(e.message),
    );
    assert.throws(() => stringType.deserialize(Buffer.from([0x0a, 0x05, 0x41])), ValueTypeError);
  });

  test('property: every value round-trips', () => {
    fc.assert(fc.property(fc.boolean(), (v) => boolType.deserialize(boolType.serialize(v)) === v));
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (v) => intType.deserialize(intType.serialize(v)) === v,
      ),
    );
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (v) => longType.deserialize(longType.serialize(v)) === v,
      ),
    );
    fc.assert(fc.property(fc.double(), (v) => Object.is(doubleType.deserialize(doubleType.serialize(v)), v)));
    fc.assert(fc.property(fc.float(), (v) => Object.is(floatType.deserialize(floatType.serialize(v)), v)));
    fc.assert(fc.property(fc.string(), (v) => stringType.deserialize(stringType.serialize(v)) === v));
  });
});

describe('JSON types', () => {
  test('carry UTF-8 JSON under the given type name, and accept a trailing newline', () => {
    const point = jsonType<{ x: number; label: string }>('com.example/point');
    assert.equal(point.typeName.toString(), 'com.example/point');
    assert.equal(Buffer.from(point.serialize({ x: 1, label: 'é' })).toString('utf8'), '{"x":1,"label":"é"}');
    assert.deepEqual(point.deserialize(Buffer.from('{"x":2,"label":"b"}\n')), { x: 2, label: 'b' });
  });

  test('what is not JSON, either way, is a ValueTypeError', () => {
    const any = jsonType<unknown>('com.example/any');
    assert.throws(() => any.deserialize(Buffer.from('{nope')), ValueTypeError);
    assert.throws(() => any.deserialize(Buffer.from([0xff, 0xfe])), ValueTypeError);
    assert.throws(() => any.serialize(undefined), ValueTypeError);
    assert.throws(() => any.serialize(1n), ValueTypeError);
  });
});

describe('protobuf types', () => {
  test('are named type.googleapis.com/<full name> and round-trip', () => {
    const record = protobufType(KafkaProducerRecordSchema);
    assert.equal(
      record.typeName.toString(),
      'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord',
    );
    const value = create(KafkaProducerRecordSchema, {
      key: 'k',
      topic: 'orders',
      valueBytes: Buffer.from('v'),
    });
    const back = record.deserialize(record.serialize(value));
    assert.equal(back.key, 'k');
    assert.equal(back.topic, 'orders');
    assert.equal(Buffer.from(back.valueBytes).toString(), 'v');
    assert.throws(() => record.deserialize(Buffer.from([0x0a, 0x09])), ValueTypeError);
  });
});
