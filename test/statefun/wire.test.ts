// The hand-written protobuf codec against the generated @bufbuild/protobuf schemas, which stay
// the reference: every reply the encoder writes is byte for byte what `toBinary` writes for the
// same content, the decoder reads every valid ToFunction as `fromBinary` does, and no input
// makes it throw anything but a ProtoDecodeError.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import { KinesisEgressRecordSchema } from '../../src/gen/statefun/kinesis-egress_pb.ts';
import {
  AddressSchema,
  FromFunction_DelayedInvocationSchema,
  FromFunction_EgressMessageSchema,
  FromFunction_ExpirationSpec_ExpireMode as ExpireMode,
  FromFunction_ExpirationSpecSchema,
  FromFunction_IncompleteInvocationContextSchema,
  FromFunction_InvocationResponseSchema,
  FromFunction_InvocationSchema,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunction_PersistedValueMutationSchema,
  FromFunction_PersistedValueSpecSchema,
  FromFunctionSchema,
  ToFunction_InvocationBatchRequestSchema,
  ToFunction_InvocationSchema,
  ToFunction_PersistedValueSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type Address as GeneratedAddress,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import {
  BooleanWrapperSchema,
  DoubleWrapperSchema,
  FloatWrapperSchema,
  IntWrapperSchema,
  LongWrapperSchema,
  StringWrapperSchema,
} from '../../src/gen/statefun/types_pb.ts';
import { Address } from '../../src/statefun/address.ts';
import { kafkaEgressMessage, kinesisEgressMessage } from '../../src/statefun/egress.ts';
import { ValueTypeError } from '../../src/statefun/errors.ts';
import { jsonType } from '../../src/statefun/json-type.ts';
import { messageBuilder } from '../../src/statefun/message.ts';
import {
  boolType,
  doubleType,
  floatType,
  intType,
  longType,
  stringType,
} from '../../src/statefun/primitive-types.ts';
import { TypeName } from '../../src/statefun/type-name.ts';
import { valueSpec, type ValueSpec } from '../../src/statefun/value-spec.ts';
import {
  encodeIncompleteContext,
  encodeInvocationResult,
  type InvocationResult,
} from '../../src/statefun/wire/from-function-encoder.ts';
import { EncodingCache } from '../../src/statefun/wire/encoding-cache.ts';
import { ProtoDecodeError, rememberString } from '../../src/statefun/wire/proto-reader.ts';
import { ProtoWriter } from '../../src/statefun/wire/proto-writer.ts';
import { decodeToFunction, type WireAddress } from '../../src/statefun/wire/to-function-decoder.ts';
import { typedValue } from '../../src/statefun/wire/typed-value.ts';
import { hex, toFunction } from './requests.ts';

// Strings of every kind: ASCII, any code point, lone surrogates, and long enough (>= 128 bytes)
// for two-byte lengths.
const anyString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('a', 'é', '\uD800', '\uDC00', '😀'), maxLength: 8 }),
  fc.string({ minLength: 120, maxLength: 300 }),
);
const nonEmptyName = fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !s.includes('/'));
const typeNames = fc
  .tuple(nonEmptyName, nonEmptyName)
  .map(([namespace, name]) => TypeName.of(namespace, name));
const addresses = fc.tuple(typeNames, anyString).map(([type, id]) => Address.of(type, id));
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 12 }),
  fc.uint8Array({ minLength: 100, maxLength: 20_000 }),
);
const typedValues = fc
  .record({ typename: anyString, hasValue: fc.boolean(), value: anyBytes })
  .map(({ typename, hasValue, value }) => typedValue(typename, hasValue, value));

const invocationResults: fc.Arbitrary<InvocationResult> = fc.record({
  mutations: fc.array(
    fc.record({
      name: fc.string({ maxLength: 10 }),
      typename: anyString,
      bytes: fc.option(anyBytes, { nil: undefined }),
    }),
    { maxLength: 3 },
  ),
  outgoingMessages: fc.array(fc.record({ target: addresses, argument: typedValues }), { maxLength: 4 }),
  delayedInvocations: fc.array(
    fc.oneof(
      fc.record({
        isCancellationRequest: fc.constant(false),
        cancellationToken: anyString,
        delayMs: fc.oneof(fc.nat(), fc.maxSafeNat()),
        target: addresses,
        argument: typedValues,
      }),
      fc.record({
        isCancellationRequest: fc.constant(true),
        cancellationToken: anyString,
        delayMs: fc.constant(0),
        target: fc.constant(undefined),
        argument: fc.constant(undefined),
      }),
    ),
    { maxLength: 3 },
  ),
  outgoingEgresses: fc.array(fc.record({ typeName: typeNames, argument: typedValues }), { maxLength: 3 }),
});

function wireAddress(address: Address): GeneratedAddress {
  return create(AddressSchema, {
    namespace: address.type.namespace,
    type: address.type.name,
    id: address.id,
  });
}

// The SDK's TypedValues went into the reflective reply as they were, unknown fields and all.
function generatedTypedValue(value: TypedValue): TypedValue {
  return create(TypedValueSchema, value);
}

/** The reply as the SDK built it before the hand encoder: create() and the reflective toBinary. */
function referenceInvocationResult(result: InvocationResult): Uint8Array {
  return toBinary(
    FromFunctionSchema,
    create(FromFunctionSchema, {
      response: {
        case: 'invocationResult',
        value: create(FromFunction_InvocationResponseSchema, {
          stateMutations: result.mutations.map((m) =>
            m.bytes === undefined
              ? create(FromFunction_PersistedValueMutationSchema, {
                  mutationType: MutationType.DELETE,
                  stateName: m.name,
                })
              : create(FromFunction_PersistedValueMutationSchema, {
                  mutationType: MutationType.MODIFY,
                  stateName: m.name,
                  stateValue: create(TypedValueSchema, {
                    typename: m.typename,
                    hasValue: true,
                    value: m.bytes,
                  }),
                }),
          ),
          outgoingMessages: result.outgoingMessages.map((m) =>
            create(FromFunction_InvocationSchema, {
              target: wireAddress(m.target),
              argument: generatedTypedValue(m.argument),
            }),
          ),
          delayedInvocations: result.delayedInvocations.map((d) =>
            d.isCancellationRequest
              ? create(FromFunction_DelayedInvocationSchema, {
                  isCancellationRequest: true,
                  cancellationToken: d.cancellationToken,
                })
              : create(FromFunction_DelayedInvocationSchema, {
                  delayInMs: BigInt(d.delayMs),
                  target: d.target === undefined ? undefined : wireAddress(d.target),
                  argument: d.argument === undefined ? undefined : generatedTypedValue(d.argument),
                  cancellationToken: d.cancellationToken,
                }),
          ),
          outgoingEgresses: result.outgoingEgresses.map((e) =>
            create(FromFunction_EgressMessageSchema, {
              egressNamespace: e.typeName.namespace,
              egressType: e.typeName.name,
              argument: e.argument === undefined ? undefined : generatedTypedValue(e.argument),
            }),
          ),
        }),
      },
    }),
  );
}

function referenceIncompleteContext(missing: readonly ValueSpec<unknown>[]): Uint8Array {
  return toBinary(
    FromFunctionSchema,
    create(FromFunctionSchema, {
      response: {
        case: 'incompleteInvocationContext',
        value: create(FromFunction_IncompleteInvocationContextSchema, {
          missingValues: missing.map((spec) =>
            create(FromFunction_PersistedValueSpecSchema, {
              stateName: spec.name,
              typeTypename: spec.type.typeName.toString(),
              expirationSpec:
                spec.expiration.mode === 'none'
                  ? undefined
                  : create(FromFunction_ExpirationSpecSchema, {
                      mode:
                        spec.expiration.mode === 'after-write'
                          ? ExpireMode.AFTER_WRITE
                          : ExpireMode.AFTER_INVOKE,
                      expireAfterMillis: BigInt(spec.expiration.afterMs),
                    }),
            }),
          ),
        }),
      },
    }),
  );
}

describe('the FromFunction encoder', () => {
  test('property: a reply is byte for byte what the reflective toBinary writes for it', () => {
    fc.assert(
      fc.property(invocationResults, (result) => {
        const expected = hex(referenceInvocationResult(result));
        assert.equal(hex(encodeInvocationResult(result)), expected);
        assert.equal(hex(encodeInvocationResult(result, true)), expected, 'the view for a socket write');
      }),
      { numRuns: 300 },
    );
  });

  test('an empty result, and a result over 16 KiB (three-byte lengths), match too', () => {
    const empty = { mutations: [], outgoingMessages: [], delayedInvocations: [], outgoingEgresses: [] };
    assert.equal(hex(encodeInvocationResult(empty)), hex(referenceInvocationResult(empty)));
    assert.equal(hex(encodeInvocationResult(empty)), 'a20600');
    const target = Address.of('example/sink', 'id');
    const big: InvocationResult = {
      ...empty,
      outgoingMessages: Array.from({ length: 300 }, (_, i) => ({
        target,
        argument: typedValue('io.statefun.types/string', true, stringType.serialize('x'.repeat(i))),
      })),
    };
    const bytes = encodeInvocationResult(big);
    assert.ok(bytes.length > 16_384);
    assert.equal(hex(bytes), hex(referenceInvocationResult(big)));
  });

  test('a reply body just under and over one- and two-byte lengths matches, its length written in front', () => {
    // The body's length decides how many bytes the length takes (1 up to 127, 2 up to 16,383,
    // then 3): sizes across both steps, one byte apart.
    const target = Address.of('example/sink', 'id');
    const sizes = [
      ...Array.from({ length: 80 }, (_, i) => 60 + i),
      ...Array.from({ length: 40 }, (_, i) => 16_300 + i),
    ];
    for (const size of sizes) {
      const result: InvocationResult = {
        mutations: [],
        outgoingMessages: [{ target, argument: typedValue('a/b', true, new Uint8Array(size)) }],
        delayedInvocations: [],
        outgoingEgresses: [],
      };
      const expected = hex(referenceInvocationResult(result));
      assert.equal(hex(encodeInvocationResult(result)), expected, `value of ${size} bytes`);
      assert.equal(
        hex(encodeInvocationResult(result, true)),
        expected,
        `value of ${size} bytes, for a write`,
      );
    }
  });

  test('property: egress records are encoded in place, the same as from their bytes, read or not', () => {
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 });
    const recordValues = fc.oneof(
      text,
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    );
    const records = fc.oneof(
      fc.record({
        kind: fc.constant('kafka' as const),
        topic: text,
        key: fc.option(text, { nil: undefined }),
        value: recordValues,
      }),
      fc.record({ kind: fc.constant('kinesis' as const), topic: text, key: text, value: recordValues }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(records, fc.boolean()), { minLength: 1, maxLength: 4 }),
        typeNames,
        (specs, egressType) => {
          const made = specs.map(([record, readFirst]) => {
            const message =
              record.kind === 'kafka'
                ? kafkaEgressMessage({
                    typeName: egressType,
                    topic: record.topic,
                    key: record.key,
                    value: record.value,
                  })
                : kinesisEgressMessage({
                    typeName: egressType,
                    stream: record.topic,
                    partitionKey: record.key,
                    value: record.value,
                  });
            // Its bytes asked for before the reply is written, or not.
            if (readFirst) assert.ok(message.typedValue.value.length > 0);
            return message;
          });
          const target = Address.of('example/sink', 'id');
          const result: InvocationResult = {
            mutations: [],
            outgoingMessages: made.map((m) => ({ target, argument: m.typedValue })),
            delayedInvocations: [],
            outgoingEgresses: made.map((m) => ({ typeName: m.typeName, argument: m.typedValue })),
          };
          // Ours first: the reference reads every record's bytes.
          const ours = hex(encodeInvocationResult(result, true));
          assert.equal(ours, hex(referenceInvocationResult(result)));
          assert.equal(hex(encodeInvocationResult(result)), ours, 'once every record was read');
        },
      ),
      { numRuns: 200 },
    );
  });

  test('strings that grow most in UTF-8 are encoded whole, in every string field at once', () => {
    // Three bytes for each UTF-16 unit (a lone surrogate becomes U+FFFD): the writer's first
    // guess is short of every one of them, and sub-messages pass 128 bytes.
    for (const wide of ['€'.repeat(300), '\uD800'.repeat(300), '\uDC00€'.repeat(70)]) {
      const type = TypeName.of(wide, wide);
      const target = Address.of(type, wide);
      const argument = typedValue(wide, true, new Uint8Array(200));
      const result: InvocationResult = {
        mutations: [{ name: wide, typename: wide, bytes: new Uint8Array(3) }],
        outgoingMessages: [{ target, argument }],
        delayedInvocations: [
          { isCancellationRequest: false, cancellationToken: wide, delayMs: 2 ** 53 - 1, target, argument },
        ],
        outgoingEgresses: [{ typeName: type, argument }],
      };
      const expected = hex(referenceInvocationResult(result));
      assert.equal(hex(encodeInvocationResult(result)), expected);
      assert.equal(hex(encodeInvocationResult(result, true)), expected);
    }
  });

  test('a decoded value keeps its unknown fields on the way out, as toBinary does', () => {
    const withUnknown = fromBinary(TypedValueSchema, Buffer.from('0a01741001' + '2003', 'hex'));
    const result: InvocationResult = {
      mutations: [],
      outgoingMessages: [{ target: Address.of('a/b', 'c'), argument: withUnknown }],
      delayedInvocations: [],
      outgoingEgresses: [],
    };
    assert.equal(hex(encodeInvocationResult(result)), hex(referenceInvocationResult(result)));
    assert.match(hex(encodeInvocationResult(result)), /2003/);
  });

  test('property: an incomplete-context reply is byte for byte what toBinary writes', () => {
    const specs = fc.array(
      fc.record({
        name: fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/),
        type: fc.constantFrom(intType, stringType, longType),
        expiration: fc.oneof(
          fc.constant({}),
          fc.record({ expireAfterCall: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
          fc.record({ expireAfterWrite: fc.integer({ min: 1, max: 2 ** 40 }) }),
        ),
      }),
      { maxLength: 5 },
    );
    fc.assert(
      fc.property(specs, (options) => {
        const missing = options.map((o) =>
          valueSpec<unknown>({ name: o.name, type: o.type, ...o.expiration }),
        );
        assert.equal(hex(encodeIncompleteContext(missing)), hex(referenceIncompleteContext(missing)));
      }),
    );
  });
});

describe('the writer', () => {
  test('writes strings as TextEncoder does, lone surrogates as U+FFFD', () => {
    fc.assert(
      fc.property(
        anyString.filter((s) => s !== ''),
        (value) => {
          const writer = new ProtoWriter(1);
          writer.string(value);
          const encoded = new TextEncoder().encode(value);
          const expected = toBinary(StringWrapperSchema, create(StringWrapperSchema, { value })).subarray(1);
          assert.equal(hex(writer.finish()), hex(expected));
          assert.equal(expected.length - encoded.length <= 2, true);
        },
      ),
    );
  });

  test('cached encodings that share a slot, or are of equal copies, are each written for their own key', () => {
    const field = (writer: ProtoWriter, key: string): void => {
      writer.byte(0x0a);
      writer.string(key);
    };
    const cache = new EncodingCache(field);
    // Same length, so the same slot: each evicts the other in turn.
    const a = `io.statefun.types/${'a'.repeat(8)}`;
    const b = `io.statefun.types/${'b'.repeat(8)}`;
    const aCopy = a.slice(0, 9) + a.slice(9);
    // Too long for the cache: written directly, every time.
    const long = 'x'.repeat(300);
    const keys = [a, b, a, aCopy, b, 'é'.repeat(20), '', long, long, ''];
    const writer = new ProtoWriter(1);
    for (const key of keys) cache.write(writer, key);
    const reference = new ProtoWriter(1);
    for (const key of keys) field(reference, key);
    assert.equal(hex(writer.finish()), hex(reference.finish()));
  });
});

// ---------------------------------------------------------------------------------------
// Decoding

const generatedAddresses = fc
  .record({ namespace: anyString, type: anyString, id: anyString })
  .map((a) => create(AddressSchema, a));
const generatedTypedValues = fc
  .record({ typename: anyString, hasValue: fc.boolean(), value: anyBytes })
  .map((v) => create(TypedValueSchema, v));
const toFunctions = fc
  .record({
    target: fc.option(generatedAddresses, { nil: undefined }),
    state: fc.array(
      fc.record({
        stateName: anyString,
        stateValue: fc.option(generatedTypedValues, { nil: undefined }),
      }),
      { maxLength: 3 },
    ),
    invocations: fc.array(
      fc.record({
        caller: fc.option(generatedAddresses, { nil: undefined }),
        argument: fc.option(generatedTypedValues, { nil: undefined }),
      }),
      { maxLength: 4 },
    ),
  })
  .map((batch) =>
    toBinary(
      ToFunctionSchema,
      create(ToFunctionSchema, {
        request: {
          case: 'invocation',
          value: create(ToFunction_InvocationBatchRequestSchema, {
            target: batch.target,
            state: batch.state.map((s) => create(ToFunction_PersistedValueSchema, s)),
            invocations: batch.invocations.map((i) => create(ToFunction_InvocationSchema, i)),
          }),
        },
      }),
    ),
  );

function plainAddress(address: WireAddress | GeneratedAddress | undefined): unknown {
  return address === undefined ? undefined : [address.namespace, address.type, address.id];
}

function plainValue(value: TypedValue | undefined): unknown {
  return value === undefined ? undefined : [value.typename, value.hasValue, hex(value.value)];
}

/** What the reflective fromBinary reads, in the decoder's shape. */
function referenceDecode(bytes: Uint8Array): unknown {
  const request = fromBinary(ToFunctionSchema, bytes).request;
  if (request.case !== 'invocation') return undefined;
  const batch = request.value;
  return {
    target: plainAddress(batch.target),
    state: batch.state.map((s) => [s.stateName, plainValue(s.stateValue)]),
    invocations: batch.invocations.map((i) => [plainAddress(i.caller), plainValue(i.argument)]),
  };
}

function decode(bytes: Uint8Array): unknown {
  const batch = decodeToFunction(bytes);
  if (batch === undefined) return undefined;
  return {
    target: plainAddress(batch.target),
    state: batch.state.map((s) => [s.name, plainValue(s.value)]),
    invocations: batch.invocations.map((i) => [plainAddress(i.caller), plainValue(i.argument)]),
  };
}

/**
 * Decodes `bytes` or sees them refused with a ProtoDecodeError (anything else is rethrown, and
 * fails the test); what it decodes, fromBinary must read the same. True when it decoded.
 */
function decodesOrRefuses(bytes: Uint8Array): boolean {
  let decoded: unknown;
  try {
    decoded = decode(bytes);
  } catch (error) {
    if (error instanceof ProtoDecodeError) return false;
    throw error;
  }
  // Stricter than fromBinary in places (wire types, groups), never more lenient.
  assert.deepEqual(decoded, referenceDecode(bytes), hex(bytes));
  return true;
}

describe('the ToFunction decoder', () => {
  test('property: reads every valid request as fromBinary does', () => {
    fc.assert(
      fc.property(toFunctions, (bytes) => {
        assert.deepEqual(decode(bytes), referenceDecode(bytes));
      }),
      { numRuns: 300 },
    );
  });

  test('short strings read back as written however many there are (the string cache is bounded)', () => {
    // Far more distinct ids than the cache has slots, ASCII and not, each read twice in
    // different orders: a slot that changed hands must never return its old string.
    const ids = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? `ü-${i}` : `user-${i}`));
    const requests = ids.map((id) => ({ id, bytes: toFunction(`example/fn/${id}`, [], []) }));
    for (const { id, bytes } of [...requests, ...[...requests].reverse()]) {
      assert.equal(decodeToFunction(bytes)?.target?.id, id);
    }
  });

  test('a string read against a remembered one of its length that differs in any one byte is read as itself', () => {
    // Same length and, unless the byte is one the slot is picked by, the same slot: the
    // comparison (4 bytes at a time, the last 4 overlapping) must see a difference anywhere.
    const idOf = (id: string): string | undefined =>
      decodeToFunction(toFunction(`example/fn/${id}`, [], []))?.target?.id;
    for (let length = 1; length <= 64; length++) {
      const remembered = 'a'.repeat(length);
      for (let at = 0; at < length; at++) {
        const other = `${'a'.repeat(at)}b${'a'.repeat(length - at - 1)}`;
        assert.equal(idOf(remembered), remembered);
        assert.equal(idOf(other), other, `${length} bytes, differing at ${at}`);
      }
    }
  });

  test('a string that would not read back as itself is not remembered for the bytes it goes out as', () => {
    const idOf = (id: string): string | undefined =>
      decodeToFunction(toFunction(`example/fn/${id}`, [], []))?.target?.id;
    // A lone surrogate goes out as U+FFFD, and a leading BOM is dropped on the way in (as
    // fromBinary drops it): neither string may be handed back for the bytes that stand for it.
    rememberString('\uD800x');
    assert.equal(idOf('\uFFFDx'), '\uFFFDx');
    rememberString('\uFEFFab');
    assert.equal(idOf('\uFEFFab'), 'ab');
    assert.equal(
      fromBinary(ToFunctionSchema, toFunction('example/fn/\uFEFFab', [], [])).request.value?.target?.id,
      'ab',
    );
  });

  test('invalid UTF-8 in a string is refused, as fromBinary refuses it', () => {
    // batch { target { namespace: ff } }
    const bytes = Buffer.from('a206050a030a01ff', 'hex');
    assert.throws(() => fromBinary(ToFunctionSchema, bytes));
    assert.throws(() => decodeToFunction(bytes), ProtoDecodeError);
  });

  test('decoded values are TypedValues, and their bytes are views of the request', () => {
    const bytes = toBinary(
      ToFunctionSchema,
      create(ToFunctionSchema, {
        request: {
          case: 'invocation',
          value: create(ToFunction_InvocationBatchRequestSchema, {
            invocations: [
              create(ToFunction_InvocationSchema, {
                argument: create(TypedValueSchema, {
                  typename: 't/x',
                  hasValue: true,
                  value: Uint8Array.of(7),
                }),
              }),
            ],
          }),
        },
      }),
    );
    const argument = decodeToFunction(bytes)?.invocations[0]?.argument;
    assert.ok(argument !== undefined);
    assert.equal(hex(toBinary(TypedValueSchema, argument)), '0a03742f7810011a0107');
    assert.equal(argument.value.buffer, bytes.buffer);
  });

  test('skips unknown fields of every wire type, and merges a repeated message field as protobuf does', () => {
    // target {namespace "a"} + unknown varint, fixed64, length-delimited and fixed32 fields + target {id "c"}
    const batch = '0a030a0161' + '2005' + '290102030405060708' + '32026869' + '3d01020304' + '0a031a0163';
    const bytes = Buffer.from(
      'f8ff0301' + 'a206' + (batch.length / 2).toString(16).padStart(2, '0') + batch,
      'hex',
    );
    assert.deepEqual(decode(bytes), referenceDecode(bytes));
    assert.deepEqual(decodeToFunction(bytes)?.target, { namespace: 'a', type: '', id: 'c' });
    assert.equal(decodeToFunction(Buffer.from('0801', 'hex')), undefined, 'no batch');
  });

  test('wrong wire types, truncation, over-long varints, groups and bad tags are refused', () => {
    const refused = [
      'a20601', // batch length past the end
      'a206020a', // target truncated
      'a0067b', // batch as a varint
      'a206020801', // target as a varint
      'a206030a0112', // a field truncated inside its parent's length
      'a206040a03120000', // a sub-message whose length runs past its parent (not past the body)
      'ffffffffffffffffffff01', // an 11-byte varint tag
      'ffffffffff7f', // a tag beyond 32 bits
      '0001', // field number 0
      '0b0c', // a group
      '0e', // wire type 6
      '0f', // wire type 7
      '09010203', // fixed64 truncated
      '0d01', // fixed32 truncated
      '08ffffffffffffffffffff01', // an 11-byte varint value
      'a206041a021001', // an invocation's argument as a varint
    ];
    for (const bad of refused) {
      assert.throws(() => decodeToFunction(Buffer.from(bad, 'hex')), ProtoDecodeError, bad);
    }
  });

  test('fuzz: random bytes and damaged valid requests decode as fromBinary reads them or are refused, never crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        decodesOrRefuses(bytes);
      }),
      { numRuns: 3_000 },
    );
    // Random bytes hardly ever decode, so the damaged requests must: count both outcomes, so
    // that a decoder refusing everything (or nothing) cannot pass as robust.
    const outcomes = { decoded: 0, refused: 0 };
    const count = (decoded: boolean): void => {
      outcomes[decoded ? 'decoded' : 'refused'] += 1;
    };
    fc.assert(
      fc.property(
        toFunctions,
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (bytes, at, cut, byte) => {
          const damaged = Uint8Array.from(bytes);
          if (damaged.length > 0) damaged[at % damaged.length] = byte;
          count(decodesOrRefuses(damaged));
          count(decodesOrRefuses(bytes.subarray(0, cut % (bytes.length + 1))));
        },
      ),
      { numRuns: 1_000 },
    );
    const tried = outcomes.decoded + outcomes.refused;
    assert.ok(outcomes.decoded >= tried / 8, `only ${outcomes.decoded} of ${tried} damaged requests decoded`);
    assert.ok(outcomes.refused >= tried / 8, `only ${outcomes.refused} of ${tried} damaged requests refused`);
  });
});

// ---------------------------------------------------------------------------------------
// The primitive wrappers and egress records, against their generated schemas

describe('primitive wrappers by hand', () => {
  test('property: serialize writes what toBinary of the wrapper writes', () => {
    const same = (ours: Uint8Array, reference: Uint8Array): void => {
      assert.equal(hex(ours), hex(reference));
    };
    fc.assert(
      fc.property(fc.boolean(), (v) => {
        same(
          boolType.serialize(v),
          toBinary(BooleanWrapperSchema, create(BooleanWrapperSchema, { value: v })),
        );
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
        same(intType.serialize(v), toBinary(IntWrapperSchema, create(IntWrapperSchema, { value: v })));
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        same(longType.serialize(v), toBinary(LongWrapperSchema, create(LongWrapperSchema, { value: v })));
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.float(), fc.constantFrom(-0, 0, Number.NaN)), (v) => {
        same(floatType.serialize(v), toBinary(FloatWrapperSchema, create(FloatWrapperSchema, { value: v })));
      }),
    );
    fc.assert(
      fc.property(fc.double(), (v) => {
        same(
          doubleType.serialize(v),
          toBinary(DoubleWrapperSchema, create(DoubleWrapperSchema, { value: v })),
        );
      }),
    );
    fc.assert(
      fc.property(anyString, (v) => {
        same(
          stringType.serialize(v),
          toBinary(StringWrapperSchema, create(StringWrapperSchema, { value: v })),
        );
      }),
    );
  });

  test('a float beyond the float range is refused with a ValueTypeError, as toBinary refuses it', () => {
    assert.throws(() => toBinary(FloatWrapperSchema, create(FloatWrapperSchema, { value: 1e39 })));
    assert.throws(() => floatType.serialize(1e39), /float range/);
    assert.equal(hex(floatType.serialize(Number.POSITIVE_INFINITY)), '0d0000807f');
  });

  test('property: deserialize reads any bytes as fromBinary does, or refuses them when it does', () => {
    const wrappers = [
      [boolType, BooleanWrapperSchema],
      [intType, IntWrapperSchema],
      [longType, LongWrapperSchema],
      [floatType, FloatWrapperSchema],
      [doubleType, DoubleWrapperSchema],
      [stringType, StringWrapperSchema],
    ] as const;
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 16 }),
      // Canonical encodings with a random payload, and their prefixes.
      fc
        .tuple(fc.constantFrom(0x08, 0x09, 0x0a, 0x0d), fc.uint8Array({ maxLength: 12 }))
        .map(([tag, rest]) => Uint8Array.of(tag, ...rest)),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        for (const [type, schema] of wrappers) {
          let expected: unknown;
          try {
            expected = (fromBinary(schema, bytes) as { value: unknown }).value;
          } catch {
            assert.throws(() => type.deserialize(bytes), type.typeName.toString());
            continue;
          }
          assert.ok(
            Object.is(type.deserialize(bytes), expected),
            `${type.typeName.toString()} ${hex(bytes)}`,
          );
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('egress records by hand', () => {
  // A record value that is a string with a lone surrogate has no UTF-8 form: the builders
  // refuse it (rather than write U+FFFD), and that is the only input here they may refuse.
  // Decided from the input, not from the builder: a string that does not survive UTF-8.
  const hasLoneSurrogate = (value: unknown): boolean =>
    typeof value === 'string' && Buffer.from(value, 'utf8').toString('utf8') !== value;
  const refusedForItsSurrogate = (error: unknown): boolean =>
    error instanceof ValueTypeError && /lone surrogate/.test(error.message);
  /** The record's value bytes, as the official SDK writes a value given without a valueType. */
  const expectedValueBytes = (value: string | Uint8Array | number): string => {
    if (typeof value === 'string') return hex(Buffer.from(value, 'utf8'));
    if (value instanceof Uint8Array) return hex(value);
    const bytes = Buffer.alloc(4);
    bytes.writeInt32BE(value);
    return hex(bytes);
  };

  test('property: Kafka and Kinesis records are what toBinary of the record writes', () => {
    const values = fc.oneof(
      anyString,
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    );
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 150 });
    let refused = 0;
    fc.assert(
      fc.property(text, fc.option(text, { nil: undefined }), values, (topic, key, value) => {
        const build = () => kafkaEgressMessage({ typeName: 'a/b', topic, key, value });
        if (hasLoneSurrogate(value)) {
          assert.throws(build, refusedForItsSurrogate);
          refused += 1;
          return;
        }
        const message = build();
        const record = fromBinary(KafkaProducerRecordSchema, message.typedValue.value);
        assert.equal(hex(message.typedValue.value), hex(toBinary(KafkaProducerRecordSchema, record)));
        assert.deepEqual([record.topic, record.key], [topic, key ?? '']);
        assert.equal(hex(record.valueBytes), expectedValueBytes(value));
      }),
    );
    fc.assert(
      fc.property(
        text,
        text,
        fc.option(text, { nil: undefined }),
        values,
        (stream, partitionKey, explicitHashKey, value) => {
          const build = () =>
            kinesisEgressMessage({ typeName: 'a/b', stream, partitionKey, explicitHashKey, value });
          if (hasLoneSurrogate(value)) {
            assert.throws(build, refusedForItsSurrogate);
            refused += 1;
            return;
          }
          const message = build();
          const record = fromBinary(KinesisEgressRecordSchema, message.typedValue.value);
          assert.equal(hex(message.typedValue.value), hex(toBinary(KinesisEgressRecordSchema, record)));
          assert.deepEqual(
            [record.stream, record.partitionKey, record.explicitHashKey],
            [stream, partitionKey, explicitHashKey ?? ''],
          );
          assert.equal(hex(record.valueBytes), expectedValueBytes(value));
        },
      ),
    );
    assert.ok(refused > 0, 'no record value with a lone surrogate was tried');
  });

  test('a lone surrogate in a record value is refused, at either end of the string; a pair is not', () => {
    for (const value of ['\uD800', 'a\uDC00', '\uDBFFz', '\uDC00\uD800']) {
      assert.throws(() => kafkaEgressMessage({ typeName: 'a/b', topic: 't', value }), refusedForItsSurrogate);
      assert.throws(
        () => kinesisEgressMessage({ typeName: 'a/b', stream: 's', partitionKey: 'p', value }),
        refusedForItsSurrogate,
      );
    }
    const pair = kafkaEgressMessage({ typeName: 'a/b', topic: 't', value: '\uD83D\uDE00' });
    assert.equal(
      hex(fromBinary(KafkaProducerRecordSchema, pair.typedValue.value).valueBytes),
      hex(Buffer.from('😀')),
    );
  });
});

describe('bytes handed to users', () => {
  const ownsItsBuffer = (bytes: Uint8Array, what: string): void => {
    // A host may pass `.buffer` on: it must hold these bytes and nothing else of the process.
    assert.equal(bytes.byteOffset, 0, what);
    assert.equal(bytes.buffer.byteLength, bytes.byteLength, what);
  };

  test('replies, records and serialized strings sit in an ArrayBuffer of their own', () => {
    const kafka = kafkaEgressMessage({ typeName: 'a/b', topic: 'counts', key: 'k', value: 'v'.repeat(100) });
    const kinesis = kinesisEgressMessage({ typeName: 'a/b', stream: 's', partitionKey: 'p', value: 7 });
    ownsItsBuffer(kafka.typedValue.value, 'kafka record');
    ownsItsBuffer(kinesis.typedValue.value, 'kinesis record');
    ownsItsBuffer(stringType.serialize('hello'), 'short string');
    ownsItsBuffer(stringType.serialize('x'.repeat(10_000)), 'long string');
    ownsItsBuffer(jsonType('a/json').serialize({ short: 'json' }), 'short JSON');
    const target = Address.of(TypeName.parse('a/sink'), 'id');
    const big = encodeInvocationResult({
      mutations: [],
      outgoingMessages: Array.from({ length: 200 }, () => ({ target, argument: kafka.typedValue })),
      delayedInvocations: [],
      outgoingEgresses: [],
    });
    ownsItsBuffer(big, 'a reply that outgrew its first buffer');
  });

  test('a varint beyond 64 bits keeps only its low 64, as fromBinary does (has_value of 2^64 is false)', () => {
    const typed = '0a03742f78' + '10' + '80808080808080808002'; // typename "t/x", has_value = 2^64
    const invocation = '12' + (typed.length / 2).toString(16).padStart(2, '0') + typed;
    const batch = '1a' + (invocation.length / 2).toString(16).padStart(2, '0') + invocation;
    const bytes = Buffer.from('a206' + (batch.length / 2).toString(16).padStart(2, '0') + batch, 'hex');
    assert.deepEqual(decode(bytes), referenceDecode(bytes));
    assert.equal(decodeToFunction(bytes)?.invocations[0]?.argument?.hasValue, false);
  });

  test('a custom type whose serialize returns something other than bytes is refused, not written as zeros', () => {
    const sloppy = {
      typeName: TypeName.parse('com.example/sloppy'),
      serialize: (value: string) => value as unknown as Uint8Array,
      deserialize: (bytes: Uint8Array) => Buffer.from(bytes).toString(),
    };
    const target = Address.of(TypeName.parse('a/b'), 'id');
    assert.throws(() => messageBuilder({ target, value: 'hello', valueType: sloppy }), ValueTypeError);
    assert.throws(
      () => kafkaEgressMessage({ typeName: 'a/b', topic: 't', value: 'hello', valueType: sloppy }),
      ValueTypeError,
    );
  });
});
