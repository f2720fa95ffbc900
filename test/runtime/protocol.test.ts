// The runtime's side of the request-reply protocol: a ToFunction built by encodeToFunction (the
// same bytes as the generated schema's toBinary, for any request; our SDK reads any of them) is
// answered by a real SDK (ours, then the official Apache Flink StateFun JavaScript SDK), and the
// FromFunction it answers is decoded by decodeFromFunction into what the runtime applies. Then
// replies a hostile or buggy endpoint might send, each refused with an InvalidReplyError that
// names the function and the problem, and random bytes that never fail any other way.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import {
  AddressSchema,
  FromFunction_ExpirationSpec_ExpireMode as ExpireMode,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  ToFunctionSchema,
  type FromFunction_ExpirationSpec_ExpireMode as ExpireModeValue,
  type FromFunction_PersistedValueMutation_MutationType as MutationTypeValue,
  TypedValueSchema,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { InvalidReplyError } from '../../src/runtime/errors.ts';
import {
  decodeFromFunction,
  MAX_EFFECTS_PER_REPLY,
  type FunctionReply,
  type InvocationResult,
} from '../../src/runtime/protocol/from-function-decoder.ts';
import {
  encodeToFunction,
  type RequestInvocation,
  type RequestState,
} from '../../src/runtime/protocol/to-function-encoder.ts';
import type { StoredAddress, StoredValue } from '../../src/runtime/store/state-store.ts';
import type { ValueRegistration } from '../../src/runtime/value-registry.ts';
import {
  Address,
  egressMessage,
  intType,
  jsonType,
  kafkaEgressMessage,
  messageBuilder,
  StatefulFunctions,
  stringType,
  TypeName,
  valueSpec,
  type Context,
  type Message,
  type SimpleType,
} from '../../src/statefun/index.ts';
import { KAFKA_PRODUCER_RECORD_TYPENAME } from '../../src/statefun/egress.ts';
import {
  invokeOfficial,
  official,
  type OfficialContext,
  type OfficialMessage,
} from '../compat/official-sdk.ts';

const INT = 'io.statefun.types/int';
const STRING = 'io.statefun.types/string';
const NOTE = 'shop/Note';
const LOG_LINE = 'shop/LogLine';
const FUNCTION_TYPE = 'shop/cart';
const cart: StoredAddress = ['shop', 'cart', 'cart-7'];
const checkout: StoredAddress = ['shop', 'checkout', 'c1'];

const int = (n: number): StoredValue => ({ typename: INT, value: intType.serialize(n) });
const str = (s: string): StoredValue => ({ typename: STRING, value: stringType.serialize(s) });
const json = (typename: string, value: unknown): StoredValue => ({
  typename,
  value: new TextEncoder().encode(JSON.stringify(value)),
});

/** The values the cart declares, as the runtime registers them from an incomplete context. */
const registrations: readonly ValueRegistration[] = [
  { name: 'count', typename: INT, expiration: { mode: 'after-write', afterMs: 60_000 } },
  { name: 'seen', typename: STRING, expiration: { mode: 'after-call', afterMs: 5_000 } },
  { name: 'note', typename: NOTE, expiration: { mode: 'none' } },
];

/** count holds 41; seen and note are registered but unset (sent as name + typename only). */
const registeredState: readonly RequestState[] = [
  { name: 'count', typename: INT, value: intType.serialize(41) },
  { name: 'seen', typename: STRING },
  { name: 'note', typename: NOTE },
];

/** Two messages: one from another function, one from an ingress; each adds 1 to count. */
const twoInvocations: readonly RequestInvocation[] = [
  { caller: checkout, argument: int(1) },
  { argument: int(1) },
];

// ---------------------------------------------------------------------------------------------
// The cart, written once with each SDK. Per message: count += the argument; seen = the caller;
// note deleted; a message to shop/audit naming caller and count; a reminder in 1 s, cancellable
// by `reminder-<count>`, and the previous reminder cancelled; an uncancellable delayed message
// for the first message only; a Kafka record and a JSON log line to egresses.
// ---------------------------------------------------------------------------------------------

const countSpec = valueSpec({ name: 'count', type: intType, expireAfterWrite: 60_000 });
const seenSpec = valueSpec({ name: 'seen', type: stringType, expireAfterCall: 5_000 });
const noteSpec = valueSpec({ name: 'note', type: jsonType<{ text: string }>(NOTE) });
const logLineType = jsonType<{ n: number }>(LOG_LINE);

function ourCart(): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: FUNCTION_TYPE,
    specs: [countSpec, seenSpec, noteSpec],
    fn(context: Context, message: Message) {
      const n = (context.storage.get(countSpec) ?? 0) + message.asInt();
      const caller = context.caller?.toString() ?? 'ingress';
      context.storage.set(countSpec, n);
      context.storage.set(seenSpec, caller);
      context.storage.remove(noteSpec);
      context.send(
        messageBuilder({ target: Address.of('shop/audit', context.self.id), value: `${caller}:${n}` }),
      );
      context.sendAfter(
        1_000,
        messageBuilder({ target: Address.of('shop/reminder', `r-${n}`), value: n }),
        `reminder-${n}`,
      );
      context.cancelDelayedMessage(`reminder-${n - 1}`);
      if (n === 42)
        context.sendAfter(250, messageBuilder({ target: Address.of('shop/audit', 'late'), value: n }));
      context.sendEgress(
        kafkaEgressMessage({ typeName: 'shop/orders', topic: 'orders', key: context.self.id, value: n }),
      );
      context.sendEgress(egressMessage({ typeName: 'shop/log', value: { n }, valueType: logLineType }));
    },
  });
}

interface CartStorage {
  count: number | null;
  seen: string | null;
  note: { text: string } | null;
}

function officialCart() {
  const { StateFun } = official;
  const statefun = new StateFun();
  const logLine = StateFun.jsonType<{ n: number }>(LOG_LINE);
  statefun.bind<CartStorage>({
    typename: FUNCTION_TYPE,
    specs: [
      { name: 'count', type: StateFun.intType(), expireAfterWrite: 60_000 },
      { name: 'seen', type: StateFun.stringType(), expireAfterCall: 5_000 },
      { name: 'note', type: StateFun.jsonType(NOTE) },
    ],
    fn(context: OfficialContext<CartStorage>, message: OfficialMessage) {
      const n = (context.storage.count ?? 0) + (message.asInt() ?? 0);
      const caller = context.caller === null ? 'ingress' : `${context.caller.typename}/${context.caller.id}`;
      context.storage.count = n;
      context.storage.seen = caller;
      context.storage.note = null;
      context.send(
        official.messageBuilder({ typename: 'shop/audit', id: context.self.id, value: `${caller}:${n}` }),
      );
      context.sendAfter(
        1_000,
        official.messageBuilder({ typename: 'shop/reminder', id: `r-${n}`, value: n }),
        `reminder-${n}`,
      );
      context.cancelDelayedMessage(`reminder-${n - 1}`);
      if (n === 42)
        context.sendAfter(250, official.messageBuilder({ typename: 'shop/audit', id: 'late', value: n }));
      context.send(
        official.kafkaEgressMessage({
          typename: 'shop/orders',
          topic: 'orders',
          key: context.self.id,
          value: n,
        }),
      );
      context.send(official.egressMessageBuilder({ typename: 'shop/log', value: { n }, valueType: logLine }));
    },
  });
  return statefun;
}

/** What both carts answer to `registeredState` + `twoInvocations`, as the runtime applies it. */
function expectedCartResult(): InvocationResult {
  const kafka = (n: number): StoredValue => ({
    typename: KAFKA_PRODUCER_RECORD_TYPENAME,
    value: toBinary(
      KafkaProducerRecordSchema,
      create(KafkaProducerRecordSchema, { key: 'cart-7', topic: 'orders', valueBytes: int32BigEndian(n) }),
    ),
  });
  return {
    kind: 'result',
    mutations: [{ name: 'count', value: int(43) }, { name: 'seen', value: str('ingress') }, { name: 'note' }],
    messages: [
      { target: ['shop', 'audit', 'cart-7'], argument: str('shop/checkout/c1:42') },
      { target: ['shop', 'audit', 'cart-7'], argument: str('ingress:43') },
    ],
    timers: [
      {
        send: {
          delayMs: 1_000,
          target: ['shop', 'reminder', 'r-42'],
          argument: int(42),
          token: 'reminder-42',
        },
      },
      { cancel: 'reminder-41' },
      { send: { delayMs: 250, target: ['shop', 'audit', 'late'], argument: int(42) } },
      {
        send: {
          delayMs: 1_000,
          target: ['shop', 'reminder', 'r-43'],
          argument: int(43),
          token: 'reminder-43',
        },
      },
      { cancel: 'reminder-42' },
    ],
    egress: [
      { egress: ['shop', 'orders'], value: kafka(42) },
      { egress: ['shop', 'log'], value: json(LOG_LINE, { n: 42 }) },
      { egress: ['shop', 'orders'], value: kafka(43) },
      { egress: ['shop', 'log'], value: json(LOG_LINE, { n: 43 }) },
    ],
  };
}

function int32BigEndian(n: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, n);
  return bytes;
}

/** Mutations sorted by name: the two SDKs list touched values in different orders. */
function byName(reply: FunctionReply): FunctionReply {
  if (reply.kind !== 'result') return reply;
  return { ...reply, mutations: [...reply.mutations].sort((a, b) => a.name.localeCompare(b.name)) };
}

describe('encoding a ToFunction request', () => {
  test('carries the target, every registered value (an unset one as name + typename) and the messages in order', () => {
    const bytes = encodeToFunction(cart, registeredState, twoInvocations);
    const request = fromBinary(ToFunctionSchema, bytes);
    assert.equal(request.request.case, 'invocation');
    const batch = request.request.value;
    assert.deepEqual(
      [batch.target?.namespace, batch.target?.type, batch.target?.id],
      ['shop', 'cart', 'cart-7'],
    );
    assert.deepEqual(
      batch.state.map((s) => [
        s.stateName,
        s.stateValue?.typename,
        s.stateValue?.hasValue,
        [...(s.stateValue?.value ?? [])],
      ]),
      [
        ['count', INT, true, [...intType.serialize(41)]],
        ['seen', STRING, false, []],
        ['note', NOTE, false, []],
      ],
    );
    assert.deepEqual(
      batch.invocations.map((i) => [i.caller?.id, i.argument?.typename, i.argument?.hasValue]),
      [
        ['c1', INT, true],
        [undefined, INT, true],
      ],
      'an ingress message has no caller',
    );
  });

  test('a zero-length value is still a value (has_value true), not an unset one', () => {
    const bytes = encodeToFunction(
      cart,
      [{ name: 'count', typename: INT, value: new Uint8Array(0) }],
      [{ argument: { typename: INT, value: new Uint8Array(0) } }],
    );
    const request = fromBinary(ToFunctionSchema, bytes).request;
    assert.equal(request.case, 'invocation');
    assert.equal(request.value.state[0]?.stateValue?.hasValue, true);
    assert.equal(request.value.invocations[0]?.argument?.hasValue, true);
  });

  test('an empty batch is a runtime bug and is refused', () => {
    assert.throws(() => encodeToFunction(cart, [], []), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// The encoder against the generated schema's reflective toBinary, which it replaced: the same
// bytes for any request, and any request one our SDK reads back as the runtime meant it.
// ---------------------------------------------------------------------------------------------

/** The request as the generated code encodes it: the reference the hand-written encoder matches. */
function referenceEncoding(
  target: StoredAddress,
  state: readonly RequestState[],
  invocations: readonly RequestInvocation[],
): Uint8Array {
  const address = ([namespace, type, id]: StoredAddress) => create(AddressSchema, { namespace, type, id });
  const batch = {
    target: address(target),
    state: state.map((value) => ({
      stateName: value.name,
      stateValue: create(TypedValueSchema, {
        typename: value.typename,
        hasValue: value.value !== undefined,
        ...(value.value === undefined ? {} : { value: value.value }),
      }),
    })),
    invocations: invocations.map((invocation) => ({
      ...(invocation.caller === undefined ? {} : { caller: address(invocation.caller) }),
      argument: create(TypedValueSchema, {
        typename: invocation.argument.typename,
        hasValue: true,
        value: invocation.argument.value,
      }),
    })),
  };
  return toBinary(
    ToFunctionSchema,
    create(ToFunctionSchema, { request: { case: 'invocation', value: batch } }),
  );
}

/** Strings of every kind: empty, ASCII, lone surrogates, astral characters, long enough for a two-byte length. */
const anyString = fc.oneof(
  fc.constant(''),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', minLength: 100, maxLength: 300 }),
);
const anyBytes = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 300 }));
const anyAddress = fc.tuple(anyString, anyString, anyString);
const anyState = fc.array(
  fc.record({ name: anyString, typename: anyString, value: fc.option(anyBytes, { nil: undefined }) }),
  { maxLength: 5 },
);
const anyInvocations = fc.array(
  fc.record({
    caller: fc.option(anyAddress, { nil: undefined }),
    argument: fc.record({ typename: anyString, value: anyBytes }),
  }),
  { minLength: 1, maxLength: 5 },
);

describe('the request encoder against the generated schema', () => {
  test('writes the bytes toBinary writes, for any target, values and messages', () => {
    fc.assert(
      fc.property(anyAddress, anyState, anyInvocations, (target, state, invocations) => {
        assert.deepEqual(
          encodeToFunction(target, state, invocations),
          referenceEncoding(target, state, invocations),
        );
      }),
      { seed: 0x7f0c, numRuns: 1_000 },
    );
  });

  test('a value and names too long for a one- or two-byte length are written as toBinary writes them', () => {
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    const longName = 'ü'.repeat(10_000);
    const state: RequestState[] = [
      { name: longName, typename: NOTE, value: big },
      { name: 'seen', typename: longName },
    ];
    const invocations: RequestInvocation[] = [
      { caller: [longName, 'x', ''], argument: { typename: NOTE, value: big } },
    ];
    const bytes = encodeToFunction(cart, state, invocations);
    assert.deepEqual(bytes, referenceEncoding(cart, state, invocations));
    const request = fromBinary(ToFunctionSchema, bytes).request;
    assert.equal(request.case, 'invocation');
    assert.deepEqual(request.value.state[0]?.stateValue?.value, big);
  });
});

describe('our SDK reads any request the encoder writes', () => {
  const RAW = 'test/raw';
  const raw: SimpleType<Uint8Array> = {
    typeName: TypeName.of('test', 'raw'),
    serialize: (bytes) => bytes,
    deserialize: (bytes) => bytes.slice(),
  };
  const specA = valueSpec({ name: 'a', type: raw });
  const specB = valueSpec({ name: 'b', type: raw });

  interface Seen {
    self: string;
    caller: readonly string[] | null;
    typename: string;
    hasValue: boolean;
    value: number[];
    a: number[] | undefined;
    b: number[] | undefined;
  }
  let seen: Seen[] = [];
  const functions = new StatefulFunctions().withSpec({
    typeName: 'test/recorder',
    specs: [specA, specB],
    fn(context: Context, message: Message) {
      const read = (spec: typeof specA) => {
        const value = context.storage.get(spec);
        return value === undefined ? undefined : [...value];
      };
      seen.push({
        self: context.self.id,
        caller:
          context.caller === null
            ? null
            : [context.caller.type.namespace, context.caller.type.name, context.caller.id],
        typename: message.valueTypeName,
        hasValue: message.typedValue.hasValue,
        value: [...message.rawValue],
        a: read(specA),
        b: read(specB),
      });
    },
  });

  /** A string as it arrives: a lone surrogate becomes U+FFFD, and a leading BOM is dropped (as fromBinary drops it). */
  const arrived = (value: string) => new TextDecoder().decode(new TextEncoder().encode(value));
  const typeName = anyString.filter((s) => s !== '' && !s.includes('/'));
  const sdkState = fc.array(
    fc.oneof(
      fc.record({
        name: fc.constantFrom('a', 'b'),
        typename: fc.constant(RAW),
        value: fc.option(anyBytes, { nil: undefined }),
      }),
      fc.record({ name: anyString, typename: anyString, value: fc.option(anyBytes, { nil: undefined }) }),
    ),
    { maxLength: 5 },
  );
  const sdkInvocations = fc.array(
    fc.record({
      caller: fc.option(fc.tuple(typeName, typeName, anyString), { nil: undefined }),
      argument: fc.record({ typename: anyString, value: anyBytes }),
    }),
    { minLength: 1, maxLength: 4 },
  );

  test('with the target, callers, arguments and values the runtime sent, or the declared values it lacked', async () => {
    await fc.assert(
      fc.asyncProperty(anyString, sdkState, sdkInvocations, async (id, state, invocations) => {
        seen = [];
        const reply = await functions.invoke(encodeToFunction(['test', 'recorder', id], state, invocations));
        // Of a value sent twice the last counts; an undeclared value is ignored.
        const last = (name: string) => state.findLast((value) => value.name === name);
        const lacking = ['a', 'b'].filter((name) => last(name) === undefined);
        const decoded = decodeFromFunction(reply, 'test/recorder');
        if (lacking.length > 0) {
          assert.equal(decoded.kind, 'incomplete');
          assert.deepEqual(
            decoded.missing.map((value) => value.name),
            lacking,
          );
          assert.deepEqual(seen, [], 'no function runs without its values');
          return;
        }
        assert.equal(decoded.kind, 'result');
        const valueOf = (name: string) => {
          const value = last(name)?.value;
          return value === undefined ? undefined : [...value];
        };
        assert.deepEqual(
          seen,
          invocations.map(({ caller, argument }) => ({
            self: arrived(id),
            caller: caller === undefined ? null : caller.map(arrived),
            typename: arrived(argument.typename),
            hasValue: true,
            value: [...argument.value],
            a: valueOf('a'),
            b: valueOf('b'),
          })),
        );
      }),
      { seed: 0x5d4, numRuns: 500 },
    );
  });
});

describe('a round trip through our SDK', () => {
  test('a request without the declared values gets an incomplete context listing all of them', async () => {
    const reply = await ourCart().invoke(encodeToFunction(cart, [], twoInvocations));
    assert.deepEqual(decodeFromFunction(reply, FUNCTION_TYPE), {
      kind: 'incomplete',
      missing: registrations,
    });
  });

  test('a request lacking some declared values gets only those back', async () => {
    const reply = await ourCart().invoke(
      encodeToFunction(cart, [registeredState[0] as RequestState], twoInvocations),
    );
    assert.deepEqual(decodeFromFunction(reply, FUNCTION_TYPE), {
      kind: 'incomplete',
      missing: registrations.slice(1),
    });
  });

  test('with every value attached, the result has the final state, messages, timers in call order and egress', async () => {
    const reply = await ourCart().invoke(encodeToFunction(cart, registeredState, twoInvocations));
    assert.deepEqual(byName(decodeFromFunction(reply, FUNCTION_TYPE)), byName(expectedCartResult()));
  });

  test('a Kafka egress record decodes as the KafkaProducerRecord the function built', async () => {
    const reply = await ourCart().invoke(encodeToFunction(cart, registeredState, twoInvocations.slice(0, 1)));
    const decoded = decodeFromFunction(reply, FUNCTION_TYPE);
    assert.equal(decoded.kind, 'result');
    const record = decoded.egress[0];
    assert.equal(record?.value.typename, KAFKA_PRODUCER_RECORD_TYPENAME);
    const kafka = fromBinary(KafkaProducerRecordSchema, new Uint8Array(record.value.value));
    assert.deepEqual([kafka.topic, kafka.key, [...kafka.valueBytes]], ['orders', 'cart-7', [0, 0, 0, 42]]);
  });

  test('decoded values are copies: reusing the reply buffer changes nothing', async () => {
    const reply = await ourCart().invoke(encodeToFunction(cart, registeredState, twoInvocations));
    const decoded = decodeFromFunction(reply, FUNCTION_TYPE);
    reply.fill(0);
    assert.deepEqual(byName(decoded), byName(expectedCartResult()));
  });
});

describe('a round trip through the official Apache Flink StateFun SDK', () => {
  test('a request without the declared values gets an incomplete context listing all of them', async () => {
    const reply = await invokeOfficial(officialCart(), encodeToFunction(cart, [], twoInvocations));
    assert.equal(reply.status, 200, 'the official SDK answers 500 on any error');
    assert.deepEqual(decodeFromFunction(reply.body, FUNCTION_TYPE), {
      kind: 'incomplete',
      missing: registrations,
    });
  });

  test('with every value attached (unset ones as name + typename), the result is the same as ours', async () => {
    const reply = await invokeOfficial(
      officialCart(),
      encodeToFunction(cart, registeredState, twoInvocations),
    );
    assert.equal(reply.status, 200, 'the official SDK answers 500 on any error');
    assert.deepEqual(byName(decodeFromFunction(reply.body, FUNCTION_TYPE)), byName(expectedCartResult()));
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile replies, built with the generated schema.
// ---------------------------------------------------------------------------------------------

type ResultInit = MessageInitShape<typeof FromFunctionSchema>['response'] & { case: 'invocationResult' };
type ResultFields = NonNullable<ResultInit['value']>;
type IncompleteInit = MessageInitShape<typeof FromFunctionSchema>['response'] & {
  case: 'incompleteInvocationContext';
};
type MissingValue = NonNullable<NonNullable<IncompleteInit['value']>['missingValues']>[number];

const wireAddress = (namespace: string, type: string, id: string) =>
  create(AddressSchema, { namespace, type, id });
const present = (typename: string, value: Uint8Array = new Uint8Array([1])) =>
  create(TypedValueSchema, { typename, hasValue: true, value });

function resultReply(value: ResultFields): Uint8Array {
  return toBinary(
    FromFunctionSchema,
    create(FromFunctionSchema, { response: { case: 'invocationResult', value } }),
  );
}

function incompleteReply(missingValues: MissingValue[]): Uint8Array {
  return toBinary(
    FromFunctionSchema,
    create(FromFunctionSchema, {
      response: { case: 'incompleteInvocationContext', value: { missingValues } },
    }),
  );
}

const message = (target = wireAddress('shop', 'audit', 'a1'), argument = present(STRING)) => ({
  target,
  argument,
});

function assertRefused(bytes: Uint8Array, problem: RegExp): void {
  assert.throws(
    () => decodeFromFunction(bytes, FUNCTION_TYPE),
    (error: unknown) => {
      assert.ok(error instanceof InvalidReplyError, `an InvalidReplyError, got ${String(error)}`);
      assert.equal(error.code, 'WEFT_INVALID_REPLY');
      assert.equal(error.retryable, true, 'the batch is retried as a whole');
      assert.match(error.message, /function shop\/cart /, 'the message names the function');
      assert.match(error.message, problem);
      return true;
    },
  );
}

describe('decoding a FromFunction reply', () => {
  test('a reply with neither a result nor an incomplete context is an empty result', () => {
    assert.deepEqual(decodeFromFunction(new Uint8Array(0), FUNCTION_TYPE), {
      kind: 'result',
      mutations: [],
      messages: [],
      timers: [],
      egress: [],
    });
  });

  test('of a value mutated twice the last mutation counts, as StateFun applies them in order', () => {
    const reply = resultReply({
      stateMutations: [
        {
          mutationType: MutationType.MODIFY,
          stateName: 'count',
          stateValue: present(INT, intType.serialize(1)),
        },
        { mutationType: MutationType.MODIFY, stateName: 'seen', stateValue: present(STRING) },
        { mutationType: MutationType.DELETE, stateName: 'count' },
      ],
    });
    const decoded = decodeFromFunction(reply, FUNCTION_TYPE);
    assert.equal(decoded.kind, 'result');
    assert.deepEqual(decoded.mutations, [
      { name: 'count' },
      { name: 'seen', value: { typename: STRING, value: new Uint8Array([1]) } },
    ]);
  });

  test('an expiration spec with mode NONE means the value never expires, whatever its millis', () => {
    const reply = incompleteReply([
      { stateName: 'a', typeTypename: INT, expirationSpec: { mode: ExpireMode.NONE, expireAfterMillis: 7n } },
    ]);
    assert.deepEqual(decodeFromFunction(reply, FUNCTION_TYPE), {
      kind: 'incomplete',
      missing: [{ name: 'a', typename: INT, expiration: { mode: 'none' } }],
    });
  });

  test('a send with an empty token is a delayed message that cannot be cancelled', () => {
    const reply = resultReply({
      delayedInvocations: [{ delayInMs: 5n, cancellationToken: '', ...message() }],
    });
    const decoded = decodeFromFunction(reply, FUNCTION_TYPE);
    assert.equal(decoded.kind, 'result');
    assert.deepEqual(decoded.timers, [
      {
        send: {
          delayMs: 5,
          target: ['shop', 'audit', 'a1'],
          argument: { typename: STRING, value: new Uint8Array([1]) },
        },
      },
    ]);
  });

  test(`up to ${MAX_EFFECTS_PER_REPLY} messages, delays and egress records in one reply are accepted`, () => {
    const half = MAX_EFFECTS_PER_REPLY / 2;
    const reply = resultReply({
      outgoingMessages: Array.from({ length: half }, () => message()),
      outgoingEgresses: Array.from({ length: half }, () => ({
        egressNamespace: 'shop',
        egressType: 'log',
        argument: present(STRING),
      })),
    });
    const decoded = decodeFromFunction(reply, FUNCTION_TYPE);
    assert.equal(decoded.kind, 'result');
    assert.equal(decoded.messages.length + decoded.egress.length, MAX_EFFECTS_PER_REPLY);
  });
});

describe('a hostile reply is refused', () => {
  test('bytes that are not a FromFunction message', () => {
    // Field 100 (the result) announcing 16 bytes that are not there.
    assertRefused(new Uint8Array([0xa2, 0x06, 0x10, 0x01]), /not a FromFunction message/);
  });

  test('an outgoing message without a target address', () => {
    assertRefused(
      resultReply({ outgoingMessages: [{ argument: present(STRING) }] }),
      /outgoing message 0's target is missing/,
    );
  });

  test('an outgoing message to an address with an empty namespace', () => {
    assertRefused(
      resultReply({ outgoingMessages: [message(wireAddress('', 'audit', 'a1'))] }),
      /outgoing message 0's target is not a valid address: .*namespace is empty/,
    );
  });

  test('an outgoing message to an address with an empty function type', () => {
    assertRefused(
      resultReply({ outgoingMessages: [message(), message(wireAddress('shop', '', 'a1'))] }),
      /outgoing message 1's target is not a valid address: .*name is empty/,
    );
  });

  test('a delayed message to an address whose type holds a slash', () => {
    assertRefused(
      resultReply({ delayedInvocations: [{ delayInMs: 1n, ...message(wireAddress('shop', 'a/b', 'x')) }] }),
      /delayed invocation 0's target is not a valid address/,
    );
  });

  test('an outgoing message whose argument has no typename', () => {
    assertRefused(
      resultReply({ outgoingMessages: [message(undefined, present(''))] }),
      /outgoing message 0's argument has no typename/,
    );
  });

  test('an outgoing message without an argument', () => {
    assertRefused(
      resultReply({ outgoingMessages: [{ target: wireAddress('shop', 'audit', 'a1') }] }),
      /outgoing message 0's argument is missing/,
    );
  });

  test('an argument that says it has no value (has_value false)', () => {
    assertRefused(
      resultReply({ outgoingMessages: [message(undefined, create(TypedValueSchema, { typename: STRING }))] }),
      /outgoing message 0's argument \(io.statefun.types\/string\) has no value/,
    );
  });

  test('an egress record whose value has no typename', () => {
    assertRefused(
      resultReply({
        outgoingEgresses: [{ egressNamespace: 'shop', egressType: 'log', argument: present('') }],
      }),
      /egress message 0's argument has no typename/,
    );
  });

  test('an egress record for an egress with an empty namespace', () => {
    assertRefused(
      resultReply({
        outgoingEgresses: [{ egressNamespace: '', egressType: 'log', argument: present(STRING) }],
      }),
      /egress message 0 names no valid egress/,
    );
  });

  test('a MODIFY without a value', () => {
    assertRefused(
      resultReply({ stateMutations: [{ mutationType: MutationType.MODIFY, stateName: 'count' }] }),
      /state mutation 0 modifies "count" but carries no value/,
    );
  });

  test('a MODIFY whose value has no typename', () => {
    assertRefused(
      resultReply({
        stateMutations: [{ mutationType: MutationType.MODIFY, stateName: 'count', stateValue: present('') }],
      }),
      /state mutation 0's value of "count" has no typename/,
    );
  });

  test('a mutation with an empty name', () => {
    assertRefused(
      resultReply({ stateMutations: [{ mutationType: MutationType.DELETE, stateName: '' }] }),
      /state mutation 0 names no value/,
    );
  });

  test('a mutation of an unknown type', () => {
    assertRefused(
      resultReply({
        stateMutations: [
          { mutationType: 7 as MutationTypeValue, stateName: 'count', stateValue: present(INT) },
        ],
      }),
      /state mutation 0 of "count" has the unknown mutation type 7/,
    );
  });

  test('a delayed message with a negative delay', () => {
    assertRefused(
      resultReply({ delayedInvocations: [{ delayInMs: -1n, ...message() }] }),
      /delayed invocation 0 has the negative delay -1 ms/,
    );
  });

  test('a delayed message with a delay past the safe integers', () => {
    assertRefused(
      resultReply({
        delayedInvocations: [{ delayInMs: BigInt(Number.MAX_SAFE_INTEGER) + 1n, ...message() }],
      }),
      /delayed invocation 0 has the delay 9007199254740992 ms, too long/,
    );
  });

  test('a cancellation with an empty token', () => {
    assertRefused(
      resultReply({ delayedInvocations: [{ isCancellationRequest: true, cancellationToken: '' }] }),
      /delayed invocation 0 is a cancellation without a token/,
    );
  });

  test(`more than ${MAX_EFFECTS_PER_REPLY} messages, delays and egress records in one reply`, () => {
    const half = MAX_EFFECTS_PER_REPLY / 2;
    assertRefused(
      resultReply({
        outgoingMessages: Array.from({ length: half }, () => message()),
        delayedInvocations: [{ isCancellationRequest: true, cancellationToken: 't' }],
        outgoingEgresses: Array.from({ length: half }, () => ({
          egressNamespace: 'shop',
          egressType: 'log',
          argument: present(STRING),
        })),
      }),
      /carries 100001 outgoing messages, delayed messages and egress records, more than the 100000/,
    );
  });

  test('an incomplete context whose missing value has no name', () => {
    assertRefused(incompleteReply([{ stateName: '', typeTypename: INT }]), /missing value 0 has no name/);
  });

  test('an incomplete context whose missing value has no typename', () => {
    assertRefused(
      incompleteReply([
        { stateName: 'count', typeTypename: INT },
        { stateName: 'seen', typeTypename: '' },
      ]),
      /missing value 1 "seen" has no typename/,
    );
  });

  test('an incomplete context with an unknown expiration mode', () => {
    assertRefused(
      incompleteReply([
        {
          stateName: 'count',
          typeTypename: INT,
          expirationSpec: { mode: 3 as ExpireModeValue, expireAfterMillis: 10n },
        },
      ]),
      /missing value 0 "count" has the unknown expiration mode 3/,
    );
  });

  test('an incomplete context with a timed expiration of no time', () => {
    assertRefused(
      incompleteReply([
        { stateName: 'count', typeTypename: INT, expirationSpec: { mode: ExpireMode.AFTER_WRITE } },
      ]),
      /missing value 0 "count" expires after-write 0 ms/,
    );
    assertRefused(
      incompleteReply([
        {
          stateName: 'count',
          typeTypename: INT,
          expirationSpec: { mode: ExpireMode.AFTER_INVOKE, expireAfterMillis: -5n },
        },
      ]),
      /missing value 0 "count" expires after-call -5 ms/,
    );
  });

  test('an incomplete context that names no missing value (resending would loop forever)', () => {
    assertRefused(incompleteReply([]), /names no missing value/);
  });
});

describe('random bytes', () => {
  /** mulberry32: a small seeded generator, so a failure reproduces. */
  function seeded(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function decodesOrRefuses(bytes: Uint8Array, label: string): void {
    try {
      decodeFromFunction(bytes, FUNCTION_TYPE);
    } catch (error) {
      if (!(error instanceof InvalidReplyError)) {
        assert.fail(`${label}: ${Buffer.from(bytes).toString('hex')} threw ${String(error)}`);
      }
    }
  }

  test('never fail with anything but an InvalidReplyError, whether pure noise or a real reply with bytes flipped', async () => {
    const random = seeded(0x5eed);
    const byte = () => Math.floor(random() * 256);
    for (let i = 0; i < 3_000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 64) }, byte);
      decodesOrRefuses(bytes, `noise ${i}`);
    }
    // Noise rarely gets past the first tag; a real reply with a few bytes changed reaches every check.
    const real = [
      await ourCart().invoke(encodeToFunction(cart, registeredState, twoInvocations)),
      await ourCart().invoke(encodeToFunction(cart, [], twoInvocations)),
    ];
    for (let i = 0; i < 3_000; i++) {
      const bytes = (real[i % real.length] as Uint8Array).slice();
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
        bytes[Math.floor(random() * bytes.length)] = byte();
      }
      decodesOrRefuses(bytes, `flipped ${i}`);
    }
  });
});
