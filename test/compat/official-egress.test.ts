// Our Kafka and Kinesis egress records against the official Apache Flink StateFun JavaScript SDK
// (apache-flink-statefun@3.3.0, CommonJS): the same options give the same TypedValue, byte for
// byte. Where the official SDK has no rule (booleans, fractions, integers outside 32 bits) both
// refuse; bigints, which it cannot encode at all, are checked in test/statefun/egress.test.ts.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';

import { toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { TypedValueSchema } from '../../src/gen/statefun/request-reply_pb.ts';
import { kafkaEgressMessage, kinesisEgressMessage, type EgressMessage } from '../../src/statefun/egress.ts';
import { jsonType } from '../../src/statefun/json-type.ts';
import { intType, stringType } from '../../src/statefun/primitive-types.ts';
import type { SimpleType } from '../../src/statefun/simple-type.ts';
import { hex } from '../statefun/requests.ts';

interface OfficialType<T> {
  readonly typename: string;
  serialize(value: T): Uint8Array;
  deserialize(bytes: Uint8Array): T;
}

// A google-protobuf message (closure style), as the official SDK builds it.
interface OfficialTypedValue {
  getTypename(): string;
  getHasValue(): boolean;
  serializeBinary(): Uint8Array;
}

interface OfficialEgressMessage {
  readonly typename: string;
  readonly typedValue: OfficialTypedValue;
}

interface OfficialSdk {
  kafkaEgressMessage(options: {
    typename: string;
    topic: string;
    key?: string;
    value: unknown;
    valueType?: OfficialType<never>;
  }): OfficialEgressMessage;
  kinesisEgressMessage(options: {
    typename: string;
    stream: string;
    partitionKey: string;
    hashKey?: string;
    value: unknown;
    valueType?: OfficialType<never>;
  }): OfficialEgressMessage;
  StateFun: {
    intType(): OfficialType<number>;
    stringType(): OfficialType<string>;
    jsonType<T>(typename: string): OfficialType<T>;
  };
}

// CommonJS, with google-protobuf's global `proto` namespace: loaded through require.
const require = createRequire(import.meta.url);
const official = require('apache-flink-statefun') as OfficialSdk;

const EGRESS = 'com.example/out';

function assertSame(ours: EgressMessage, theirs: OfficialEgressMessage): void {
  assert.equal(ours.typeName.toString(), theirs.typename);
  assert.equal(ours.typedValue.typename, theirs.typedValue.getTypename());
  assert.equal(ours.typedValue.hasValue, theirs.typedValue.getHasValue());
  assert.equal(hex(toBinary(TypedValueSchema, ours.typedValue)), hex(theirs.typedValue.serializeBinary()));
}

function sameKafka(value: unknown, key?: string, types?: [SimpleType<never>, OfficialType<never>]): void {
  assertSame(
    kafkaEgressMessage({ typeName: EGRESS, topic: 'greetings', key, value, valueType: types?.[0] }),
    official.kafkaEgressMessage({
      typename: EGRESS,
      topic: 'greetings',
      value,
      ...(key === undefined ? {} : { key }),
      ...(types === undefined ? {} : { valueType: types[1] }),
    }),
  );
}

function sameKinesis(
  value: unknown,
  hashKey?: string,
  types?: [SimpleType<never>, OfficialType<never>],
): void {
  assertSame(
    kinesisEgressMessage({
      typeName: EGRESS,
      stream: 'events',
      partitionKey: 'bob',
      explicitHashKey: hashKey,
      value,
      valueType: types?.[0],
    }),
    official.kinesisEgressMessage({
      typename: EGRESS,
      stream: 'events',
      partitionKey: 'bob',
      value,
      ...(hashKey === undefined ? {} : { hashKey }),
      ...(types === undefined ? {} : { valueType: types[1] }),
    }),
  );
}

function typesOf<T>(ours: SimpleType<T>, theirs: OfficialType<T>): [SimpleType<never>, OfficialType<never>] {
  return [ours as SimpleType<never>, theirs as OfficialType<never>];
}

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const key = fc.option(fc.string(), { nil: undefined });

describe('egress records against the official StateFun SDK', () => {
  test('Kafka: strings give the same record bytes, with and without a key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), key, (v, k) => {
        sameKafka(v, k);
      }),
    );
  });

  test('Kafka: 32-bit integers give the same record bytes', () => {
    fc.assert(
      fc.property(int32, key, (v, k) => {
        sameKafka(v, k);
      }),
    );
  });

  test('Kafka: Buffers and Uint8Arrays give the same record bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array(), key, (v, k) => {
        sameKafka(v, k);
        sameKafka(Buffer.from(v), k);
      }),
    );
  });

  test('Kafka: typed values give the same record bytes', () => {
    fc.assert(
      fc.property(int32, (v) => {
        sameKafka(v, 'k', typesOf(intType, official.StateFun.intType()));
      }),
    );
    fc.assert(
      fc.property(fc.string(), (v) => {
        sameKafka(v, 'k', typesOf(stringType, official.StateFun.stringType()));
      }),
    );
    const doc = typesOf(jsonType('com.example/doc'), official.StateFun.jsonType('com.example/doc'));
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        sameKafka(v ?? 0, undefined, doc);
      }),
    );
  });

  test('Kinesis: strings, integers, bytes and typed values give the same record bytes', () => {
    const hashKey = fc.option(fc.string(), { nil: undefined });
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), hashKey, (v, h) => {
        sameKinesis(v, h);
      }),
    );
    fc.assert(
      fc.property(int32, hashKey, (v, h) => {
        sameKinesis(v, h);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array(), hashKey, (v, h) => {
        sameKinesis(Buffer.from(v), h);
      }),
    );
    fc.assert(
      fc.property(int32, (v) => {
        sameKinesis(v, '42', typesOf(intType, official.StateFun.intType()));
      }),
    );
  });

  test('values the official SDK cannot encode on its own are refused by both', () => {
    const values: [string, unknown][] = [
      ['true', true],
      ['1.5', 1.5],
      ['2^31', 2 ** 31],
      ['-2^31 - 1', -(2 ** 31) - 1],
      ['an object', { a: 1 }],
    ];
    for (const [label, value] of values) {
      assert.throws(() => official.kafkaEgressMessage({ typename: EGRESS, topic: 't', value }), label);
      assert.throws(() => kafkaEgressMessage({ typeName: EGRESS, topic: 't', value }), label);
    }
  });
});
