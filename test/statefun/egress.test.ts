import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { fromBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import { KinesisEgressRecordSchema } from '../../src/gen/statefun/kinesis-egress_pb.ts';
import {
  egressMessage,
  kafkaEgressMessage,
  kinesisEgressMessage,
  type EgressMessage,
} from '../../src/statefun/egress.ts';
import { InvalidTypeNameError, ValueTypeError } from '../../src/statefun/errors.ts';
import { jsonType } from '../../src/statefun/json-type.ts';
import { intType, stringType } from '../../src/statefun/primitive-types.ts';
import { TypeName } from '../../src/statefun/type-name.ts';
import { hex } from './requests.ts';

const KAFKA = 'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord';
const KINESIS = 'type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord';

function kafkaRecord(message: EgressMessage) {
  assert.equal(message.typedValue.typename, KAFKA);
  assert.equal(message.typedValue.hasValue, true);
  return fromBinary(KafkaProducerRecordSchema, message.typedValue.value);
}

function kinesisRecord(message: EgressMessage) {
  assert.equal(message.typedValue.typename, KINESIS);
  assert.equal(message.typedValue.hasValue, true);
  return fromBinary(KinesisEgressRecordSchema, message.typedValue.value);
}

function kafkaValueHex(value: unknown): string {
  return hex(kafkaRecord(kafkaEgressMessage({ typeName: 'com.example/out', topic: 't', value })).valueBytes);
}

function refusedWith(pattern: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof ValueTypeError && pattern.test(e.message);
}

describe('kafkaEgressMessage', () => {
  test('wraps a KafkaProducerRecord under its googleapis typename, addressed to the egress', () => {
    const message = kafkaEgressMessage({
      typeName: 'com.example/out',
      topic: 'greetings',
      key: 'bob',
      value: 'hi',
    });
    assert.ok(message.typeName.equals(TypeName.parse('com.example/out')));
    const record = kafkaRecord(message);
    assert.equal(record.topic, 'greetings');
    assert.equal(record.key, 'bob');
    assert.equal(Buffer.from(record.valueBytes).toString('utf8'), 'hi');
    // Field 1 key, 2 value_bytes, 3 topic, byte for byte.
    assert.equal(hex(message.typedValue.value), '0a03626f62120268691a09' + hex(Buffer.from('greetings')));
  });

  test('a missing or empty key writes no key field', () => {
    for (const key of [undefined, '']) {
      const message = kafkaEgressMessage({ typeName: 'com.example/out', topic: 't', key, value: 'v' });
      assert.equal(kafkaRecord(message).key, '');
      assert.equal(hex(message.typedValue.value), '1201761a0174');
    }
  });

  test('strings are written as UTF-8', () => {
    assert.equal(kafkaValueHex('é€😀'), hex(Buffer.from('é€😀', 'utf8')));
    assert.equal(kafkaValueHex(''), '');
  });

  test('32-bit integers are written as 4 bytes big-endian', () => {
    assert.equal(kafkaValueHex(7), '00000007');
    assert.equal(kafkaValueHex(0), '00000000');
    assert.equal(kafkaValueHex(-1), 'ffffffff');
    assert.equal(kafkaValueHex(2 ** 31 - 1), '7fffffff');
    assert.equal(kafkaValueHex(-(2 ** 31)), '80000000');
    assert.equal(kafkaValueHex(0x01020304), '01020304');
  });

  test('bigints are written as 8 bytes big-endian', () => {
    assert.equal(kafkaValueHex(7n), '0000000000000007');
    assert.equal(kafkaValueHex(-1n), 'ffffffffffffffff');
    assert.equal(kafkaValueHex(0x0102030405060708n), '0102030405060708');
    assert.equal(kafkaValueHex(-(2n ** 63n)), '8000000000000000');
  });

  test('bytes are written as they are', () => {
    assert.equal(kafkaValueHex(new Uint8Array([0, 1, 255])), '0001ff');
    assert.equal(kafkaValueHex(Buffer.from('cafe', 'hex')), 'cafe');
    assert.equal(kafkaValueHex(new Uint8Array(0)), '');
  });

  test('with a valueType the value bytes are what the type serializes', () => {
    const doc = jsonType<{ n: number }>('com.example/doc');
    const message = kafkaEgressMessage({
      typeName: 'com.example/out',
      topic: 't',
      value: { n: 1 },
      valueType: doc,
    });
    assert.equal(Buffer.from(kafkaRecord(message).valueBytes).toString('utf8'), '{"n":1}');
    // The protobuf wrapper this time, not the bare 4 bytes.
    assert.equal(
      hex(
        kafkaRecord(
          kafkaEgressMessage({ typeName: 'com.example/out', topic: 't', value: 7, valueType: intType }),
        ).valueBytes,
      ),
      '0d07000000',
    );
  });

  test('numbers that are not 32-bit integers are refused, naming bigint or a valueType', () => {
    for (const value of [1.5, 2 ** 31, -(2 ** 31) - 1, Number.NaN, Number.MAX_SAFE_INTEGER]) {
      assert.throws(
        () => kafkaValueHex(value),
        refusedWith(/not a 32-bit integer: pass a bigint.*valueType/),
      );
    }
    assert.throws(() => kafkaValueHex(2n ** 63n), refusedWith(/outside 64 bits: pass a valueType/));
    assert.throws(() => kafkaValueHex(-(2n ** 63n) - 1n), refusedWith(/outside 64 bits/));
  });

  test('booleans, objects and other values are refused, asking for a valueType', () => {
    for (const value of [true, { a: 1 }, [1], Symbol('s'), new ArrayBuffer(2)]) {
      assert.throws(() => kafkaValueHex(value), refusedWith(/pass a valueType/));
    }
    assert.throws(() => kafkaValueHex(null), refusedWith(/needs a value/));
    assert.throws(() => kafkaValueHex(undefined), refusedWith(/needs a value/));
  });

  test('a string with a lone surrogate is refused instead of being written as U+FFFD', () => {
    assert.throws(() => kafkaValueHex('a\uD800b'), refusedWith(/not valid UTF-8/));
    assert.throws(() => kafkaValueHex('\uDC00'), refusedWith(/not valid UTF-8/));
  });

  test('an empty or missing topic, a bad key and a bad egress name are refused', () => {
    for (const topic of ['', undefined, 3]) {
      assert.throws(
        () => kafkaEgressMessage({ typeName: 'com.example/out', topic: topic as string, value: 'v' }),
        refusedWith(/non-empty topic/),
      );
    }
    assert.throws(
      () =>
        kafkaEgressMessage({
          typeName: 'com.example/out',
          topic: 't',
          key: 1 as unknown as string,
          value: 'v',
        }),
      refusedWith(/key is a string/),
    );
    assert.throws(
      () => kafkaEgressMessage({ typeName: 'out', topic: 't', value: 'v' }),
      InvalidTypeNameError,
    );
  });

  test('property: any string value is its UTF-8 bytes and any int32 its big-endian bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (v) => kafkaValueHex(v) === hex(Buffer.from(v, 'utf8'))),
    );
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
        const expected = Buffer.alloc(4);
        expected.writeInt32BE(v);
        return kafkaValueHex(v) === expected.toString('hex');
      }),
    );
  });
});

describe('kinesisEgressMessage', () => {
  test('wraps a KinesisEgressRecord under its googleapis typename with every field', () => {
    const message = kinesisEgressMessage({
      typeName: TypeName.of('com.example', 'stream-out'),
      stream: 's',
      partitionKey: 'p',
      explicitHashKey: 'h',
      value: 7,
    });
    assert.equal(message.typeName.toString(), 'com.example/stream-out');
    const record = kinesisRecord(message);
    assert.equal(record.stream, 's');
    assert.equal(record.partitionKey, 'p');
    assert.equal(record.explicitHashKey, 'h');
    assert.equal(hex(record.valueBytes), '00000007');
    // Field 1 partition_key, 2 value_bytes, 3 stream, 4 explicit_hash_key.
    assert.equal(hex(message.typedValue.value), '0a0170120400000007' + '1a0173' + '220168');
  });

  test('encodes values like the Kafka record does, and leaves out an absent hash key', () => {
    const base = { typeName: 'com.example/out', stream: 's', partitionKey: 'p' };
    const record = (value: unknown) => kinesisRecord(kinesisEgressMessage({ ...base, value }));
    assert.equal(hex(record('hi').valueBytes), '6869');
    assert.equal(hex(record(-2n).valueBytes), 'fffffffffffffffe');
    assert.equal(hex(record(Buffer.from([9])).valueBytes), '09');
    assert.equal(record('hi').explicitHashKey, '');
    assert.equal(
      hex(kinesisEgressMessage({ ...base, explicitHashKey: '', value: 'v' }).typedValue.value),
      '0a01701201761a0173',
    );
    const typed = kinesisEgressMessage({ ...base, value: 'x', valueType: stringType });
    assert.equal(hex(kinesisRecord(typed).valueBytes), '0a0178');
    assert.throws(() => record(true), refusedWith(/pass a valueType/));
  });

  test('an empty stream or partition key is refused', () => {
    assert.throws(
      () => kinesisEgressMessage({ typeName: 'com.example/out', stream: '', partitionKey: 'p', value: 'v' }),
      refusedWith(/non-empty stream/),
    );
    assert.throws(
      () => kinesisEgressMessage({ typeName: 'com.example/out', stream: 's', partitionKey: '', value: 'v' }),
      refusedWith(/non-empty partitionKey/),
    );
  });
});

describe('egressMessage', () => {
  test('sends the value under its type, unwrapped, to the named egress', () => {
    const doc = jsonType<{ n: number }>('com.example/doc');
    const message = egressMessage({ typeName: 'com.example/audit', value: { n: 2 }, valueType: doc });
    assert.equal(message.typeName.toString(), 'com.example/audit');
    assert.equal(message.typedValue.typename, 'com.example/doc');
    assert.equal(message.typedValue.hasValue, true);
    assert.equal(Buffer.from(message.typedValue.value).toString('utf8'), '{"n":2}');
  });

  test('a zero value is still a present value', () => {
    const message = egressMessage({ typeName: 'com.example/audit', value: 0, valueType: intType });
    assert.equal(message.typedValue.typename, 'io.statefun.types/int');
    assert.equal(message.typedValue.hasValue, true);
    assert.equal(message.typedValue.value.length, 0);
  });

  test('a missing valueType or value is refused', () => {
    assert.throws(
      () =>
        egressMessage({ typeName: 'com.example/audit', value: 1 } as unknown as Parameters<
          typeof egressMessage
        >[0]),
      refusedWith(/needs a valueType/),
    );
    assert.throws(
      () => egressMessage({ typeName: 'com.example/audit', value: undefined, valueType: intType as never }),
      refusedWith(/needs a value/),
    );
    assert.throws(
      () => egressMessage({ typeName: 'com.example/audit', value: 1.5, valueType: intType }),
      ValueTypeError,
    );
  });
});
