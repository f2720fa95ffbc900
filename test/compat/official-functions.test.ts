// Our stateful functions against the official Apache Flink StateFun JavaScript SDK
// (apache-flink-statefun@3.3.0, CommonJS): the same function logic is written once with each SDK,
// both get the same hand-built ToFunction bytes, and the two FromFunction replies are decoded with
// our generated protocol code and compared field by field (state mutations, outgoing messages,
// delayed invocations and cancellations, egress records, missing specs), then byte for byte.
//
// The official SDK has no long and no double type; those are checked on our side only. Its state
// names must match ^[_a-z]+$ (ours also allow digits and capitals), so every name here fits both.
// Where the two SDKs legitimately differ, the last group of tests pins the difference down.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';

import {
  FromFunctionSchema,
  TypedValueSchema,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { Address } from '../../src/statefun/address.ts';
import { egressMessage, kafkaEgressMessage, kinesisEgressMessage } from '../../src/statefun/egress.ts';
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
import {
  FunctionFailedError,
  InvalidRequestError,
  UnknownFunctionError,
} from '../../src/statefun/request-errors.ts';
import type { SimpleType } from '../../src/statefun/simple-type.ts';
import { StatefulFunctions } from '../../src/statefun/stateful-functions.ts';
import { valueSpec } from '../../src/statefun/value-spec.ts';
import {
  describeReply,
  hex,
  invokeOfficial,
  official,
  resultOf,
  toFunction,
  typed,
  type Described,
  type DescribedValue,
  type OfficialStateFun,
} from './official-sdk.ts';

const { StateFun } = official;
const OCTET_STREAM = 'application/octet-stream';

/** Runs `request` through both SDKs; both must answer, with the same reply. Returns ours, decoded. */
async function bothReply(
  ours: StatefulFunctions,
  theirs: OfficialStateFun,
  request: Uint8Array,
): Promise<Described> {
  const theirReply = await invokeOfficial(theirs, request);
  assert.equal(theirReply.status, 200, 'the official SDK answered (it gives 500 on any error)');
  assert.equal(theirReply.headers['Content-Type'], OCTET_STREAM);
  const ourBytes = await ours.invoke(request);
  const described = describeReply(ourBytes);
  assert.deepEqual(described, describeReply(theirReply.body), 'the same reply, field by field');
  // Byte for byte once the fields are in number order (unknown fields would survive and differ).
  assert.equal(hex(ourBytes), hex(canonical(theirReply.body)), 'the same reply, byte for byte');
  // As sent, too, except that google-protobuf writes DelayedInvocation's fields in the .proto's
  // declaration order (10, 11, 1, 2, 3) where ours writes them in number order: both are valid
  // protobuf, which parsers must accept in any order (see the last group of tests).
  if (described.kind !== 'result' || described.delayed.length === 0) {
    assert.equal(hex(ourBytes), hex(theirReply.body), 'the same reply, byte for byte as sent');
  }
  return described;
}

/** Decoded and encoded again by our generated code: fields in number order. */
function canonical(bytes: Uint8Array): Uint8Array {
  return toBinary(FromFunctionSchema, fromBinary(FromFunctionSchema, bytes));
}

const valueOf = (v: DescribedValue | null): unknown => v?.value ?? null;

const profileTypename = 'com.example/Profile';
interface Profile {
  name: string;
  tags: string[];
  seen?: number;
  nested?: { n: number; ok: boolean | null };
}
const profileType = jsonType<Profile>(profileTypename);
const officialProfileType = StateFun.jsonType<Profile>(profileTypename);

// ---------------------------------------------------------------------------------------------
// The greeter: a counter with a TTL, a last name, and one effect of every kind per message.
// ---------------------------------------------------------------------------------------------

const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const seen = valueSpec({ name: 'seen', type: intType, expireAfterWrite: 60_000 });
const lastName = valueSpec({ name: 'last_name', type: stringType });

function ourGreeter(callers: (string | null)[] = []): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: 'com.example/greeter',
    specs: [seen, lastName],
    // Async, with a pause between reading and writing: a batch still runs one invocation at a time.
    async fn(context, message) {
      callers.push(context.caller?.toString() ?? null);
      const count = (context.storage.get(seen) ?? 0) + 1;
      await pause();
      context.storage.set(seen, count);
      context.storage.set(lastName, message.asString());
      const greeting = messageBuilder({
        target: Address.of('com.example/printer', context.self.id),
        value: `#${count}`,
      });
      context.send(greeting);
      context.sendAfter(1_000, greeting, `reminder-${count}`);
      if (count > 42) context.cancelDelayedMessage('reminder-42');
      context.sendEgress(
        kafkaEgressMessage({
          typeName: 'com.example/out',
          topic: 'greetings',
          key: context.self.id,
          value: message.asString(),
        }),
      );
    },
  });
}

interface GreeterState {
  seen: number | null;
  last_name: string | null;
}

function officialGreeter(callers: (string | null)[] = []): OfficialStateFun {
  const statefun = new StateFun();
  statefun.bind<GreeterState>({
    typename: 'com.example/greeter',
    specs: [
      { name: 'seen', type: StateFun.intType(), expireAfterWrite: 60_000 },
      { name: 'last_name', type: StateFun.stringType() },
    ],
    async fn(context, message) {
      callers.push(context.caller === null ? null : `${context.caller.typename}/${context.caller.id}`);
      const count = (context.storage.seen ?? 0) + 1;
      await pause();
      context.storage.seen = count;
      context.storage.last_name = message.asString();
      const greeting = official.messageBuilder({
        typename: 'com.example/printer',
        id: context.self.id,
        value: `#${count}`,
      });
      context.send(greeting);
      context.sendAfter(1_000, greeting, `reminder-${count}`);
      if (count > 42) context.cancelDelayedMessage('reminder-42');
      context.send(
        official.kafkaEgressMessage({
          typename: 'com.example/out',
          topic: 'greetings',
          key: context.self.id,
          value: message.asString() ?? '',
        }),
      );
    },
  });
  return statefun;
}

const GREETER = 'com.example/greeter/alice';

describe('the same functions on both SDKs give the same replies', { timeout: 20_000 }, () => {
  test('missing state: an incomplete context lists every missing spec, with typename and expiration, and no user code runs', async () => {
    const visits = valueSpec({ name: 'visits', type: intType, expireAfterCall: 5_000 });
    const profile = valueSpec({ name: 'profile', type: profileType });
    const runs = { ours: 0, theirs: 0 };
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/visitor',
      specs: [seen, lastName, visits, profile],
      fn() {
        runs.ours++;
      },
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/visitor',
      specs: [
        { name: 'seen', type: StateFun.intType(), expireAfterWrite: 60_000 },
        { name: 'last_name', type: StateFun.stringType() },
        { name: 'visits', type: StateFun.intType(), expireAfterCall: 5_000 },
        { name: 'profile', type: officialProfileType },
      ],
      fn() {
        runs.theirs++;
      },
    });
    const visitor = 'com.example/visitor/v1';
    const invocations = [{ argument: typed(stringType, 'hi') }];

    const none = await bothReply(ours, theirs, toFunction(visitor, [], invocations));
    assert.deepEqual(none, {
      kind: 'incomplete',
      missing: [
        {
          name: 'seen',
          typename: 'io.statefun.types/int',
          expiration: { mode: 'AFTER_WRITE', afterMs: 60_000n },
        },
        // No TTL: the expiration spec is left out (the Go SDK would send mode NONE).
        { name: 'last_name', typename: 'io.statefun.types/string', expiration: null },
        {
          name: 'visits',
          typename: 'io.statefun.types/int',
          expiration: { mode: 'AFTER_INVOKE', afterMs: 5_000n },
        },
        { name: 'profile', typename: profileTypename, expiration: null },
      ],
    });

    // Some present (one with a value, one with none), plus one the function never declared.
    const some = await bothReply(
      ours,
      theirs,
      toFunction(
        visitor,
        [
          ['seen', typed(intType, 3)],
          ['other', typed(stringType, 'x')],
          ['visits', undefined],
        ],
        invocations,
      ),
    );
    assert.equal(some.kind, 'incomplete');
    assert.deepEqual(
      some.missing.map((m) => m.name),
      ['last_name', 'profile'],
    );
    assert.deepEqual(runs, { ours: 0, theirs: 0 }, 'no user code ran');

    // Every spec attached, none with a value: the function runs and touches nothing.
    const all = await bothReply(
      ours,
      theirs,
      toFunction(
        visitor,
        [
          ['profile', undefined],
          ['last_name', undefined],
          ['visits', undefined],
          ['seen', undefined],
        ],
        invocations,
      ),
    );
    assert.deepEqual(all, { kind: 'result', mutations: [], messages: [], delayed: [], egress: [] });
    assert.deepEqual(runs, { ours: 1, theirs: 1 });

    // A batch of no invocations (the runtime never sends one): an empty result from both.
    const empty = await bothReply(
      ours,
      theirs,
      toFunction(
        visitor,
        ['seen', 'last_name', 'visits', 'profile'].map((name) => [name, undefined] as const),
        [],
      ),
    );
    assert.deepEqual(empty, all);
    assert.deepEqual(runs, { ours: 1, theirs: 1 });
  });

  test('present state, a batch on one shared storage: 41 + two invocations give one MODIFY to 43, and every effect in call order', async () => {
    const callers = { ours: [] as (string | null)[], theirs: [] as (string | null)[] };
    const request = toFunction(
      GREETER,
      [
        ['seen', typed(intType, 41)],
        ['last_name', undefined],
        // Registered by the runtime for an older version of the function; both ignore it.
        ['retired', typed(boolType, true)],
      ],
      [
        { argument: typed(stringType, 'Ann') },
        { caller: 'com.example/caller/c1', argument: typed(stringType, 'Bob') },
      ],
    );
    const result = resultOf(
      await bothReply(ourGreeter(callers.ours), officialGreeter(callers.theirs), request),
    );

    assert.deepEqual(callers.ours, [null, 'com.example/caller/c1']);
    assert.deepEqual(callers.theirs, callers.ours, 'both saw the same callers');
    assert.deepEqual(result.mutations, [
      {
        type: 'MODIFY',
        name: 'seen',
        value: { typename: 'io.statefun.types/int', hasValue: true, hex: '0d2b000000', value: 43 },
      },
      {
        type: 'MODIFY',
        name: 'last_name',
        value: { typename: 'io.statefun.types/string', hasValue: true, hex: '0a03426f62', value: 'Bob' },
      },
    ]);
    assert.deepEqual(
      result.messages.map((m) => [m.target, valueOf(m.argument)]),
      [
        ['com.example/printer/alice', '#42'],
        ['com.example/printer/alice', '#43'],
      ],
    );
    assert.deepEqual(
      result.delayed.map((d) => [d.cancellation, d.token, d.delayMs, d.target, valueOf(d.argument)]),
      [
        [false, 'reminder-42', 1_000n, 'com.example/printer/alice', '#42'],
        [false, 'reminder-43', 1_000n, 'com.example/printer/alice', '#43'],
        // A cancellation carries its token only.
        [true, 'reminder-42', 0n, null, null],
      ],
    );
    assert.deepEqual(
      result.egress.map((e) => [e.egress, valueOf(e.argument)]),
      [
        ['com.example/out', { topic: 'greetings', key: 'alice', valueHex: hex(Buffer.from('Ann')) }],
        ['com.example/out', { topic: 'greetings', key: 'alice', valueHex: hex(Buffer.from('Bob')) }],
      ],
    );
  });

  test('zero values are present values, a removed value is a DELETE, an untouched one is not reported', async () => {
    const count = valueSpec({ name: 'count', type: intType });
    const label = valueSpec({ name: 'label', type: stringType });
    const flag = valueSpec({ name: 'flag', type: boolType });
    const ratio = valueSpec({ name: 'ratio', type: floatType });
    const read = { ours: [] as unknown[], theirs: [] as unknown[] };
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/zeros',
      specs: [count, label, flag, ratio],
      fn(context) {
        const { storage } = context;
        read.ours.push(
          ...[storage.get(count), storage.get(label), storage.get(flag), storage.get(ratio)].map(
            (v) => v ?? null,
          ),
        );
        storage.set(count, (storage.get(count) ?? 0) + 0);
        storage.remove(label);
        storage.set(ratio, 0);
      },
    });
    const theirs = new StateFun();
    theirs.bind<{ count: number | null; label: string | null; flag: boolean | null; ratio: number | null }>({
      typename: 'com.example/zeros',
      specs: [
        { name: 'count', type: StateFun.intType() },
        { name: 'label', type: StateFun.stringType() },
        { name: 'flag', type: StateFun.booleanType() },
        { name: 'ratio', type: StateFun.floatType() },
      ],
      fn(context) {
        const { storage } = context;
        read.theirs.push(storage.count, storage.label, storage.flag, storage.ratio);
        storage.count = (storage.count ?? 0) + 0;
        storage.label = null;
        storage.ratio = 0;
      },
    });
    const request = toFunction(
      'com.example/zeros/z',
      [
        ['count', typed(intType, 0)],
        ['label', typed(stringType, 'x')],
        ['flag', typed(boolType, false)],
        // A typename without a value is no value, as a name alone is.
        ['ratio', create(TypedValueSchema, { typename: 'io.statefun.types/float', hasValue: false })],
      ],
      [{ argument: typed(stringType, '') }],
    );
    const result = resultOf(await bothReply(ours, theirs, request));
    assert.deepEqual(read.ours, [0, 'x', false, null]);
    assert.deepEqual(read.theirs, read.ours);
    assert.deepEqual(result.mutations, [
      {
        type: 'MODIFY',
        name: 'count',
        value: { typename: 'io.statefun.types/int', hasValue: true, hex: '', value: 0 },
      },
      { type: 'DELETE', name: 'label', value: null },
      {
        type: 'MODIFY',
        name: 'ratio',
        value: { typename: 'io.statefun.types/float', hasValue: true, hex: '', value: 0 },
      },
    ]);
  });

  test('ints, strings, booleans, floats and JSON values, in state and in messages', async () => {
    const count = valueSpec({ name: 'count', type: intType, expireAfterWrite: 1_000 });
    const label = valueSpec({ name: 'label', type: stringType });
    const flag = valueSpec({ name: 'flag', type: boolType });
    const ratio = valueSpec({ name: 'ratio', type: floatType, expireAfterCall: 2_000 });
    const profile = valueSpec({ name: 'profile', type: profileType });
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/mixer',
      specs: [count, label, flag, ratio, profile],
      fn(context, message) {
        const { storage } = context;
        const echo = <T>(value: T, valueType: SimpleType<T>): void => {
          context.send(
            messageBuilder({ target: Address.of('com.example/echo', context.self.id), value, valueType }),
          );
        };
        if (message.isInt()) {
          const n = (storage.get(count) ?? 0) + message.asInt();
          storage.set(count, n);
          echo(n, intType);
        } else if (message.isString()) {
          const s = (storage.get(label) ?? '') + message.asString();
          storage.set(label, s);
          echo(s, stringType);
        } else if (message.isBool()) {
          const b = (storage.get(flag) ?? true) && message.asBool();
          storage.set(flag, b);
          echo(b, boolType);
        } else if (message.isFloat()) {
          const r = (storage.get(ratio) ?? 1) * message.asFloat();
          storage.set(ratio, r);
          echo(r, floatType);
        } else if (message.is(profileType)) {
          const p = {
            ...(storage.get(profile) ?? { name: '', tags: [] }),
            ...message.as(profileType),
            seen: storage.get(count) ?? 0,
          };
          storage.set(profile, p);
          echo(p, profileType);
        }
      },
    });
    const theirs = new StateFun();
    theirs.bind<{
      count: number | null;
      label: string | null;
      flag: boolean | null;
      ratio: number | null;
      profile: Profile | null;
    }>({
      typename: 'com.example/mixer',
      specs: [
        { name: 'count', type: StateFun.intType(), expireAfterWrite: 1_000 },
        { name: 'label', type: StateFun.stringType() },
        { name: 'flag', type: StateFun.booleanType() },
        { name: 'ratio', type: StateFun.floatType(), expireAfterCall: 2_000 },
        { name: 'profile', type: officialProfileType },
      ],
      fn(context, message) {
        const { storage } = context;
        const echo = <T>(value: T, valueType: { typename: string; serialize(v: T): Uint8Array }): void => {
          context.send(
            official.messageBuilder({
              typename: 'com.example/echo',
              id: context.self.id,
              value,
              valueType: valueType as never,
            }),
          );
        };
        if (message.isInt()) {
          const n = (storage.count ?? 0) + (message.asInt() ?? 0);
          storage.count = n;
          echo(n, StateFun.intType());
        } else if (message.isString()) {
          const s = (storage.label ?? '') + (message.asString() ?? '');
          storage.label = s;
          echo(s, StateFun.stringType());
        } else if (message.isBoolean()) {
          const b = (storage.flag ?? true) && (message.asBoolean() ?? false);
          storage.flag = b;
          // The official messageBuilder infers strings and ints only.
          echo(b, StateFun.booleanType());
        } else if (message.isFloat()) {
          const r = (storage.ratio ?? 1) * (message.asFloat() ?? 1);
          storage.ratio = r;
          echo(r, StateFun.floatType());
        } else if (message.is(officialProfileType)) {
          const p = {
            ...(storage.profile ?? { name: '', tags: [] }),
            ...message.as(officialProfileType),
            seen: storage.count ?? 0,
          };
          storage.profile = p;
          echo(p, officialProfileType);
        }
      },
    });
    const request = toFunction(
      'com.example/mixer/m',
      [
        // Not in the specs' order: mutations come back in the specs' order in both.
        ['profile', typed(profileType, { name: 'Ann', tags: ['a'] })],
        ['ratio', typed(floatType, 1.5)],
        ['flag', typed(boolType, true)],
        ['label', typed(stringType, 'x')],
        ['count', typed(intType, 7)],
      ],
      [
        { argument: typed(intType, 5) },
        { argument: typed(stringType, ' wörld 🌍') },
        { caller: 'com.example/mixer/other', argument: typed(boolType, false) },
        { argument: typed(floatType, 0.1) },
        { argument: typed(profileType, { name: 'Bob', tags: ['b', 'c'], nested: { n: 1, ok: null } }) },
        { argument: typed(intType, -(2 ** 31) + 20) },
        { argument: typed(stringType, '') },
      ],
    );
    const result = resultOf(await bothReply(ours, theirs, request));
    const finalCount = 7 + 5 - 2 ** 31 + 20;
    const finalRatio = Math.fround(1.5 * Math.fround(0.1));
    const finalProfile = { name: 'Bob', tags: ['b', 'c'], seen: 12, nested: { n: 1, ok: null } };
    assert.deepEqual(
      result.mutations.map((m) => [m.type, m.name, m.value?.typename, valueOf(m.value)]),
      [
        ['MODIFY', 'count', 'io.statefun.types/int', finalCount],
        ['MODIFY', 'label', 'io.statefun.types/string', 'x wörld 🌍'],
        ['MODIFY', 'flag', 'io.statefun.types/bool', false],
        ['MODIFY', 'ratio', 'io.statefun.types/float', finalRatio],
        ['MODIFY', 'profile', profileTypename, finalProfile],
      ],
    );
    assert.deepEqual(
      result.messages.map((m) => [m.target, m.argument?.typename, valueOf(m.argument)]),
      [
        ['com.example/echo/m', 'io.statefun.types/int', 12],
        ['com.example/echo/m', 'io.statefun.types/string', 'x wörld 🌍'],
        ['com.example/echo/m', 'io.statefun.types/bool', false],
        ['com.example/echo/m', 'io.statefun.types/float', finalRatio],
        ['com.example/echo/m', profileTypename, finalProfile],
        ['com.example/echo/m', 'io.statefun.types/int', finalCount],
        ['com.example/echo/m', 'io.statefun.types/string', 'x wörld 🌍'],
      ],
    );
    // false is a present value that encodes to no bytes.
    assert.deepEqual(result.messages[2]?.argument, {
      typename: 'io.statefun.types/bool',
      hasValue: true,
      hex: '',
      value: false,
    });
  });

  test('expiration specs: after write, after call, long TTLs, and none (left out by both)', async () => {
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/ttl',
      specs: [
        valueSpec({ name: 'written', type: intType, expireAfterWrite: 1 }),
        valueSpec({ name: 'called', type: stringType, expireAfterCall: 86_400_000 }),
        valueSpec({ name: 'long_lived', type: boolType, expireAfterWrite: 2 ** 40 }),
        valueSpec({ name: 'forever', type: floatType }),
      ],
      fn: () => undefined,
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/ttl',
      specs: [
        { name: 'written', type: StateFun.intType(), expireAfterWrite: 1 },
        { name: 'called', type: StateFun.stringType(), expireAfterCall: 86_400_000 },
        { name: 'long_lived', type: StateFun.booleanType(), expireAfterWrite: 2 ** 40 },
        { name: 'forever', type: StateFun.floatType() },
      ],
      fn: () => undefined,
    });
    const reply = await bothReply(
      ours,
      theirs,
      toFunction('com.example/ttl/t', [['forever', undefined]], [{ argument: typed(intType, 1) }]),
    );
    assert.deepEqual(reply, {
      kind: 'incomplete',
      missing: [
        {
          name: 'written',
          typename: 'io.statefun.types/int',
          expiration: { mode: 'AFTER_WRITE', afterMs: 1n },
        },
        {
          name: 'called',
          typename: 'io.statefun.types/string',
          expiration: { mode: 'AFTER_INVOKE', afterMs: 86_400_000n },
        },
        {
          name: 'long_lived',
          typename: 'io.statefun.types/bool',
          expiration: { mode: 'AFTER_WRITE', afterMs: 2n ** 40n },
        },
      ],
    });
  });

  test('delayed sends with and without tokens, long delays, and cancellations, in call order (namespaces with slashes)', async () => {
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/timers/timer',
      fn(context) {
        const to = Address.of('com.example/alarms/alarm', context.self.id);
        const text = (value: string) => messageBuilder({ target: to, value });
        context.sendAfter(0, text('at once'));
        context.sendAfter(1_500, text('with a token'), 'tok-a');
        context.send(text('now'));
        context.sendAfter(60_000, text('empty token'), '');
        context.cancelDelayedMessage('tok-a');
        context.cancelDelayedMessage('never-sent');
        context.sendAfter(2 ** 31 + 5, text('far away'), 'tok-far');
        context.sendAfter(
          250,
          messageBuilder({ target: to, value: { name: 'Ann', tags: [] }, valueType: profileType }),
          'tok-json',
        );
        context.sendAfter(7, messageBuilder({ target: to, value: 9 }), 'tok-int');
      },
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/timers/timer',
      fn(context) {
        const text = (value: string) =>
          official.messageBuilder({ typename: 'com.example/alarms/alarm', id: context.self.id, value });
        context.sendAfter(0, text('at once'));
        context.sendAfter(1_500, text('with a token'), 'tok-a');
        context.send(text('now'));
        context.sendAfter(60_000, text('empty token'), '');
        context.cancelDelayedMessage('tok-a');
        context.cancelDelayedMessage('never-sent');
        context.sendAfter(2 ** 31 + 5, text('far away'), 'tok-far');
        context.sendAfter(
          250,
          official.messageBuilder({
            typename: 'com.example/alarms/alarm',
            id: context.self.id,
            value: { name: 'Ann', tags: [] },
            valueType: officialProfileType,
          }),
          'tok-json',
        );
        context.sendAfter(
          7,
          official.messageBuilder({ typename: 'com.example/alarms/alarm', id: context.self.id, value: 9 }),
          'tok-int',
        );
      },
    });
    const result = resultOf(
      await bothReply(
        ours,
        theirs,
        toFunction('com.example/timers/timer/t1', [], [{ argument: typed(stringType, 'go') }]),
      ),
    );
    const alarm = 'com.example/alarms/alarm/t1'; // a namespace may hold slashes
    assert.deepEqual(
      result.messages.map((m) => [m.target, valueOf(m.argument)]),
      [[alarm, 'now']],
    );
    assert.deepEqual(
      result.delayed.map((d) => [d.cancellation, d.token, d.delayMs, d.target, valueOf(d.argument)]),
      [
        [false, '', 0n, alarm, 'at once'],
        [false, 'tok-a', 1_500n, alarm, 'with a token'],
        [false, '', 60_000n, alarm, 'empty token'],
        [true, 'tok-a', 0n, null, null],
        [true, 'never-sent', 0n, null, null],
        [false, 'tok-far', 2n ** 31n + 5n, alarm, 'far away'],
        [false, 'tok-json', 250n, alarm, { name: 'Ann', tags: [] }],
        [false, 'tok-int', 7n, alarm, 9],
      ],
    );
  });

  test('Kafka, Kinesis and generic (JSON and string) egress', async () => {
    interface Audit {
      who: string;
      what: string[];
      at: number;
    }
    const auditTypename = 'com.example/Audit';
    const audit: Audit = { who: 'alice', what: ['login', 'ünïcode'], at: 1_700_000_000_000 };
    const hashKey = '170141183460469231731687303715884105728';
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/emitter',
      fn(context) {
        const kafka = 'com.example/kafka';
        const kinesis = 'com.example/kinesis';
        context.sendEgress(
          kafkaEgressMessage({ typeName: kafka, topic: 'greetings', key: 'alice', value: 'hello' }),
        );
        context.sendEgress(kafkaEgressMessage({ typeName: kafka, topic: 'greetings', value: 'no key' }));
        context.sendEgress(kafkaEgressMessage({ typeName: kafka, topic: 'numbers', key: 'k', value: 258 }));
        context.sendEgress(
          kafkaEgressMessage({ typeName: kafka, topic: 'raw', value: Buffer.from([0, 1, 255]) }),
        );
        context.sendEgress(
          kafkaEgressMessage({
            typeName: kafka,
            topic: 'json',
            value: { name: 'Ann', tags: ['x'] },
            valueType: profileType,
          }),
        );
        context.sendEgress(
          kinesisEgressMessage({
            typeName: kinesis,
            stream: 'events',
            partitionKey: 'alice',
            explicitHashKey: hashKey,
            value: 'hello',
          }),
        );
        context.sendEgress(
          kinesisEgressMessage({
            typeName: kinesis,
            stream: 'events',
            partitionKey: 'bob',
            value: 7,
            valueType: intType,
          }),
        );
        context.sendEgress(
          egressMessage({
            typeName: 'com.example/audit',
            value: audit,
            valueType: jsonType<Audit>(auditTypename),
          }),
        );
        context.sendEgress(
          egressMessage({ typeName: 'com.example/log', value: 'plain', valueType: stringType }),
        );
      },
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/emitter',
      fn(context) {
        const kafka = 'com.example/kafka';
        const kinesis = 'com.example/kinesis';
        context.send(
          official.kafkaEgressMessage({ typename: kafka, topic: 'greetings', key: 'alice', value: 'hello' }),
        );
        context.send(official.kafkaEgressMessage({ typename: kafka, topic: 'greetings', value: 'no key' }));
        context.send(
          official.kafkaEgressMessage({ typename: kafka, topic: 'numbers', key: 'k', value: 258 }),
        );
        context.send(
          official.kafkaEgressMessage({ typename: kafka, topic: 'raw', value: Buffer.from([0, 1, 255]) }),
        );
        context.send(
          official.kafkaEgressMessage({
            typename: kafka,
            topic: 'json',
            value: { name: 'Ann', tags: ['x'] },
            valueType: officialProfileType,
          }),
        );
        context.send(
          official.kinesisEgressMessage({
            typename: kinesis,
            stream: 'events',
            partitionKey: 'alice',
            hashKey,
            value: 'hello',
          }),
        );
        context.send(
          official.kinesisEgressMessage({
            typename: kinesis,
            stream: 'events',
            partitionKey: 'bob',
            value: 7,
            valueType: StateFun.intType(),
          }),
        );
        context.send(
          official.egressMessageBuilder({
            typename: 'com.example/audit',
            value: audit,
            valueType: StateFun.jsonType<Audit>(auditTypename),
          }),
        );
        context.send(
          official.egressMessageBuilder({
            typename: 'com.example/log',
            value: 'plain',
            valueType: StateFun.stringType(),
          }),
        );
      },
    });
    const result = resultOf(
      await bothReply(
        ours,
        theirs,
        toFunction('com.example/emitter/e', [], [{ argument: typed(stringType, 'go') }]),
      ),
    );
    const kafkaRecord = 'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord';
    const kinesisRecord = 'type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord';
    const utf8 = (s: string) => hex(Buffer.from(s, 'utf8'));
    assert.deepEqual(
      result.egress.map((e) => [e.egress, e.argument?.typename, valueOf(e.argument)]),
      [
        ['com.example/kafka', kafkaRecord, { topic: 'greetings', key: 'alice', valueHex: utf8('hello') }],
        ['com.example/kafka', kafkaRecord, { topic: 'greetings', key: '', valueHex: utf8('no key') }],
        // Integers without a type: 4 bytes, big-endian.
        ['com.example/kafka', kafkaRecord, { topic: 'numbers', key: 'k', valueHex: '00000102' }],
        ['com.example/kafka', kafkaRecord, { topic: 'raw', key: '', valueHex: '0001ff' }],
        [
          'com.example/kafka',
          kafkaRecord,
          { topic: 'json', key: '', valueHex: utf8('{"name":"Ann","tags":["x"]}') },
        ],
        [
          'com.example/kinesis',
          kinesisRecord,
          { stream: 'events', partitionKey: 'alice', explicitHashKey: hashKey, valueHex: utf8('hello') },
        ],
        [
          'com.example/kinesis',
          kinesisRecord,
          { stream: 'events', partitionKey: 'bob', explicitHashKey: '', valueHex: '0d07000000' },
        ],
        ['com.example/audit', auditTypename, audit],
        ['com.example/log', 'io.statefun.types/string', 'plain'],
      ],
    );
  });

  test('fast-check: random invocation sequences of a counter give the same replies from both SDKs', async () => {
    const count = valueSpec({ name: 'count', type: intType });
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/counter',
      specs: [count],
      fn(context, message) {
        const text = message.asString();
        if (text === 'reset') {
          context.storage.remove(count);
          return;
        }
        const n = (context.storage.get(count) ?? 0) + 1;
        context.storage.set(count, n);
        const sink = Address.of('com.example/sink', context.self.id);
        for (let i = 0; i < text.length % 4; i++) {
          context.send(messageBuilder({ target: sink, value: `${n}:${i}:${text}` }));
        }
        if (text.length % 3 === 0)
          context.sendAfter(text.length * 10, messageBuilder({ target: sink, value: n }), `t${n}`);
        if (text.length % 5 === 1 && n > 1) context.cancelDelayedMessage(`t${n - 1}`);
        if (text.length % 2 === 1) {
          context.sendEgress(
            kafkaEgressMessage({
              typeName: 'com.example/out',
              topic: 'counts',
              key: context.self.id,
              value: n,
            }),
          );
        }
      },
    });
    const theirs = new StateFun();
    theirs.bind<{ count: number | null }>({
      typename: 'com.example/counter',
      specs: [{ name: 'count', type: StateFun.intType() }],
      fn(context, message) {
        const text = message.asString() ?? '';
        if (text === 'reset') {
          context.storage.count = null;
          return;
        }
        const n = (context.storage.count ?? 0) + 1;
        context.storage.count = n;
        const sink = (value: string | number) =>
          official.messageBuilder({ typename: 'com.example/sink', id: context.self.id, value });
        for (let i = 0; i < text.length % 4; i++) context.send(sink(`${n}:${i}:${text}`));
        if (text.length % 3 === 0) context.sendAfter(text.length * 10, sink(n), `t${n}`);
        if (text.length % 5 === 1 && n > 1) context.cancelDelayedMessage(`t${n - 1}`);
        if (text.length % 2 === 1) {
          context.send(
            official.kafkaEgressMessage({
              typename: 'com.example/out',
              topic: 'counts',
              key: context.self.id,
              value: n,
            }),
          );
        }
      },
    });
    const invocation = fc.record({
      caller: fc.option(fc.constantFrom('com.example/caller/a', 'com.example/other/b'), { nil: undefined }),
      text: fc.oneof(
        { arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }), weight: 4 },
        { arbitrary: fc.constant('reset'), weight: 1 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).filter((id) => !id.includes('/')),
        fc.option(fc.integer({ min: -1_000_000, max: 1_000_000 }), { nil: undefined }),
        fc.array(fc.array(invocation, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 }),
        async (id, initial, batches) => {
          const target = `com.example/counter/${id}`;
          // With no initial value the runtime starts from scratch: the first request carries no
          // state and must come back incomplete, and is sent again once `count` is registered.
          let registered = initial !== undefined;
          let state: TypedValue | undefined = initial === undefined ? undefined : typed(intType, initial);
          let model: number | null = initial ?? null;
          for (const batch of batches) {
            const invocations = batch.map(({ caller, text }) => ({
              caller,
              argument: typed(stringType, text),
            }));
            if (!registered) {
              assert.deepEqual(await bothReply(ours, theirs, toFunction(target, [], invocations)), {
                kind: 'incomplete',
                missing: [{ name: 'count', typename: 'io.statefun.types/int', expiration: null }],
              });
              registered = true;
            }
            const result = resultOf(
              await bothReply(ours, theirs, toFunction(target, [['count', state]], invocations)),
            );
            for (const { text } of batch) model = text === 'reset' ? null : (model ?? 0) + 1;
            // Apply the reply as the runtime would, and check it against the model.
            for (const m of result.mutations) {
              state =
                m.value === null
                  ? undefined
                  : create(TypedValueSchema, {
                      typename: m.value.typename,
                      hasValue: m.value.hasValue,
                      value: Buffer.from(m.value.hex, 'hex'),
                    });
            }
            assert.equal(state === undefined ? null : intType.deserialize(state.value), model);
            const sends = batch
              .filter(({ text }) => text !== 'reset')
              .reduce((sum, { text }) => sum + (text.length % 4), 0);
            assert.equal(result.messages.length, sends);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('ours only: the official SDK has no long and no double type', () => {
  // The official SDK's sources leave LONG_TYPENAME and DOUBLE_TYPENAME commented out, so there
  // is nothing to compare with; the replies are checked against the wire format instead
  // (LongWrapper: field 1 sfixed64, DoubleWrapper: field 1 double, both little-endian).
  test('long and double values in state and in messages', async () => {
    const total = valueSpec({ name: 'total', type: longType });
    const mean = valueSpec({ name: 'mean', type: doubleType, expireAfterCall: 10 });
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/stats',
      specs: [total, mean],
      fn(context, message) {
        const sum = (context.storage.get(total) ?? 0n) + message.asLong();
        context.storage.set(total, sum);
        context.storage.set(mean, Number(sum) / 3);
        context.send(messageBuilder({ target: Address.of('com.example/echo', 'x'), value: sum }));
        context.send(
          messageBuilder({ target: Address.of('com.example/echo', 'x'), value: 0.1, valueType: doubleType }),
        );
      },
    });
    const stats = 'com.example/stats/s';
    const incomplete = describeReply(
      await ours.invoke(toFunction(stats, [], [{ argument: typed(longType, 1n) }])),
    );
    assert.deepEqual(incomplete, {
      kind: 'incomplete',
      missing: [
        { name: 'total', typename: 'io.statefun.types/long', expiration: null },
        {
          name: 'mean',
          typename: 'io.statefun.types/double',
          expiration: { mode: 'AFTER_INVOKE', afterMs: 10n },
        },
      ],
    });
    const result = resultOf(
      describeReply(
        await ours.invoke(
          toFunction(
            stats,
            [
              ['total', typed(longType, 2n ** 40n)],
              ['mean', undefined],
            ],
            [{ argument: typed(longType, 2n ** 40n + 1n) }],
          ),
        ),
      ),
    );
    const le64 = (v: bigint): string => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(v);
      return hex(b);
    };
    const leDouble = (v: number): string => {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v);
      return hex(b);
    };
    const sum = 2n ** 41n + 1n;
    assert.deepEqual(
      result.mutations.map((m) => [m.name, m.value?.typename, m.value?.hex]),
      [
        ['total', 'io.statefun.types/long', `09${le64(sum)}`],
        ['mean', 'io.statefun.types/double', `09${leDouble(Number(sum) / 3)}`],
      ],
    );
    assert.deepEqual(
      result.messages.map((m) => [m.argument?.typename, m.argument?.hex]),
      [
        ['io.statefun.types/long', `09${le64(sum)}`],
        ['io.statefun.types/double', `09${leDouble(0.1)}`],
      ],
    );
  });
});

describe('over loopback HTTP', { timeout: 20_000 }, () => {
  async function listen(
    t: TestContext,
    listener: (request: http.IncomingMessage, response: http.ServerResponse) => void,
  ): Promise<string> {
    const server = http.createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/statefun`;
  }

  async function post(url: string, body: Uint8Array | undefined, method = 'POST') {
    const response = await fetch(url, {
      method,
      ...(body === undefined ? {} : { body }),
      headers: { 'content-type': OCTET_STREAM },
      signal: AbortSignal.timeout(5_000),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: new Uint8Array(await response.arrayBuffer()),
    };
  }

  test('both serve the same status, content type and body; only their refusals differ', async (t) => {
    const logged: string[] = [];
    const ours = ourGreeter().withSpec({
      typeName: 'com.example/failing',
      fn() {
        throw new Error('boom');
      },
    });
    const theirs = officialGreeter();
    theirs.bind({
      typename: 'com.example/failing',
      fn() {
        throw new Error('boom');
      },
    });
    const theirHandler = theirs.handler();
    const ourUrl = await listen(t, ours.handler({ logger: { error: (message) => logged.push(message) } }));
    const theirUrl = await listen(t, (request, response) => {
      // It catches everything itself (and answers 500).
      void theirHandler(request, response);
    });

    const request = toFunction(
      GREETER,
      [
        ['seen', typed(intType, 41)],
        ['last_name', undefined],
      ],
      [
        { argument: typed(stringType, 'Ann') },
        { caller: 'com.example/caller/c1', argument: typed(stringType, 'Bob') },
      ],
    );
    const [ourReply, theirReply] = await Promise.all([post(ourUrl, request), post(theirUrl, request)]);
    assert.deepEqual([ourReply.status, ourReply.contentType], [200, OCTET_STREAM]);
    assert.deepEqual([theirReply.status, theirReply.contentType], [ourReply.status, ourReply.contentType]);
    assert.deepEqual(describeReply(ourReply.body), describeReply(theirReply.body));
    assert.equal(hex(ourReply.body), hex(canonical(theirReply.body)));

    const incomplete = toFunction(GREETER, [], [{ argument: typed(stringType, 'Ann') }]);
    const [ourMissing, theirMissing] = await Promise.all([
      post(ourUrl, incomplete),
      post(theirUrl, incomplete),
    ]);
    assert.equal(ourMissing.status, 200);
    assert.equal(theirMissing.status, 200);
    assert.equal(hex(ourMissing.body), hex(theirMissing.body));

    // Legitimate differences: the official SDK answers every failure with 500 and an empty body
    // (and logs nothing); ours tells a bad request (400), an unknown function (404), a wrong
    // method (405) and a failing function (500, logged, with its message) apart.
    const unknown = toFunction('com.example/nobody/x', [], [{ argument: typed(stringType, 'x') }]);
    const failing = toFunction('com.example/failing/x', [], [{ argument: typed(stringType, 'x') }]);
    const cases: [string, Uint8Array | undefined, string, number][] = [
      ['unknown function', unknown, 'POST', 404],
      ['garbage body', Buffer.from([0xff, 0xff, 0xff]), 'POST', 400],
      ['empty body', new Uint8Array(0), 'POST', 400],
      ['GET', undefined, 'GET', 405],
      ['failing function', failing, 'POST', 500],
    ];
    for (const [what, body, method, ourStatus] of cases) {
      const [mine, official500] = await Promise.all([
        post(ourUrl, body, method),
        post(theirUrl, body, method),
      ]);
      assert.equal(mine.status, ourStatus, `ours: ${what}`);
      assert.equal(official500.status, 500, `theirs: ${what}`);
      assert.equal(official500.body.length, 0, `theirs: ${what} has no body`);
    }
    assert.deepEqual(logged, ['stateful function request failed'], 'ours logged the failing function');
  });
});

describe('where the two SDKs differ', { timeout: 20_000 }, () => {
  test('a state whose typename is not its spec’s: the official SDK fails only if it is read; ours refuses the request', async () => {
    const counter = valueSpec({ name: 'counter', type: intType });
    const reads = new StatefulFunctions().withSpec({
      typeName: 'com.example/reads',
      specs: [counter],
      fn(context) {
        context.storage.get(counter);
      },
    });
    const ignores = new StatefulFunctions().withSpec({
      typeName: 'com.example/ignores',
      specs: [counter],
      fn: () => undefined,
    });
    const theirs = new StateFun();
    const theirReads: unknown[] = [];
    const specs = [{ name: 'counter', type: StateFun.intType() }];
    theirs.bind<{ counter: number | null }>({
      typename: 'com.example/reads',
      specs,
      fn(context) {
        theirReads.push(context.storage.counter);
      },
    });
    theirs.bind({ typename: 'com.example/ignores', specs, fn: () => undefined });
    const request = (fn: string) =>
      toFunction(
        `com.example/${fn}/x`,
        [['counter', typed(stringType, 'not an int')]],
        [{ argument: typed(stringType, 'x') }],
      );

    assert.equal((await invokeOfficial(theirs, request('reads'))).status, 500);
    assert.deepEqual(theirReads, [], 'the read threw');
    await assert.rejects(reads.invoke(request('reads')), InvalidRequestError);

    const theirReply = await invokeOfficial(theirs, request('ignores'));
    assert.equal(theirReply.status, 200);
    assert.deepEqual(describeReply(theirReply.body), {
      kind: 'result',
      mutations: [],
      messages: [],
      delayed: [],
      egress: [],
    });
    await assert.rejects(ignores.invoke(request('ignores')), /holds a io.statefun.types\/string value/);
  });

  test('a negative delay: the official SDK sends it (the runtime then rejects it); ours refuses it in sendAfter', async () => {
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/late',
      fn(context) {
        context.sendAfter(-1, messageBuilder({ target: context.self, value: 'x' }));
      },
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/late',
      fn(context) {
        context.sendAfter(
          -1,
          official.messageBuilder({ typename: 'com.example/late', id: context.self.id, value: 'x' }),
        );
      },
    });
    const request = toFunction('com.example/late/x', [], [{ argument: typed(stringType, 'x') }]);
    const theirReply = await invokeOfficial(theirs, request);
    assert.equal(theirReply.status, 200);
    assert.deepEqual(
      resultOf(describeReply(theirReply.body)).delayed.map((d) => d.delayMs),
      [-1n],
    );
    await assert.rejects(ours.invoke(request), FunctionFailedError);
  });

  test('a message without a value (has_value=false): the official SDK reads null; ours throws', async () => {
    const read = { ours: 'unset' as unknown, theirs: 'unset' as unknown };
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/empty',
      fn(_context, message) {
        read.ours = message.asString();
      },
    });
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/empty',
      fn(_context, message) {
        read.theirs = message.asString();
      },
    });
    const request = toFunction(
      'com.example/empty/x',
      [],
      [{ argument: create(TypedValueSchema, { typename: 'io.statefun.types/string', hasValue: false }) }],
    );
    assert.equal((await invokeOfficial(theirs, request)).status, 200);
    assert.equal(read.theirs, null);
    await assert.rejects(ours.invoke(request), FunctionFailedError);
    assert.equal(read.ours, 'unset');
  });

  test('a float -0: google-protobuf drops it as if it were the default +0; ours writes it, as protobuf says', async () => {
    // proto3: "-0 is considered distinct [from the default +0] and will be serialized". A bug in
    // google-protobuf (under the official SDK), which compares with !== 0; a reader gets +0.
    const ratio = valueSpec({ name: 'ratio', type: floatType });
    const ours = new StatefulFunctions().withSpec({
      typeName: 'com.example/sign',
      specs: [ratio],
      fn(context) {
        context.storage.set(ratio, -0);
      },
    });
    const theirs = new StateFun();
    theirs.bind<{ ratio: number | null }>({
      typename: 'com.example/sign',
      specs: [{ name: 'ratio', type: StateFun.floatType() }],
      fn(context) {
        context.storage.ratio = -0;
      },
    });
    const request = toFunction(
      'com.example/sign/x',
      [['ratio', undefined]],
      [{ argument: typed(stringType, 'x') }],
    );
    const theirReply = await invokeOfficial(theirs, request);
    const [theirMutation] = resultOf(describeReply(theirReply.body)).mutations;
    const [ourMutation] = resultOf(describeReply(await ours.invoke(request))).mutations;
    assert.deepEqual([theirMutation?.value?.hex, Object.is(theirMutation?.value?.value, 0)], ['', true]);
    assert.deepEqual(
      [ourMutation?.value?.hex, Object.is(ourMutation?.value?.value, -0)],
      ['0d00000080', true],
    );
  });

  test('an invocation without an argument: the official SDK reads null; ours refuses the request', async () => {
    // The runtime always sends an argument; this is a malformed request.
    let theirRead: unknown = 'unset';
    const theirs = new StateFun();
    theirs.bind({
      typename: 'com.example/empty',
      fn(_context, message) {
        theirRead = message.asString();
      },
    });
    const ours = new StatefulFunctions().withSpec({ typeName: 'com.example/empty', fn: () => undefined });
    const request = toFunction('com.example/empty/x', [], [{ argument: undefined }]);
    assert.equal((await invokeOfficial(theirs, request)).status, 200);
    assert.equal(theirRead, null);
    await assert.rejects(ours.invoke(request), InvalidRequestError);
  });

  test('field order: google-protobuf writes DelayedInvocation fields in declaration order (10, 11, 1, 2, 3), ours in number order', async () => {
    // Both are valid protobuf (parsers accept fields in any order), and the runtime's Java parser
    // reads either; it is the only byte difference between the two SDKs' replies we found.
    const request = toFunction(
      GREETER,
      [
        ['seen', typed(intType, 42)],
        ['last_name', undefined],
      ],
      [{ argument: typed(stringType, 'Ann') }],
    );
    const theirs = (await invokeOfficial(officialGreeter(), request)).body;
    const ours = await ourGreeter().invoke(request);
    assert.notEqual(hex(ours), hex(theirs));
    assert.equal(hex(ours), hex(canonical(theirs)));
    // A delayed message with a token, then a cancellation (which has fields 10 and 11 only).
    assert.deepEqual(delayedFieldOrder(theirs), [
      [11, 1, 2, 3],
      [10, 11],
    ]);
    assert.deepEqual(delayedFieldOrder(ours), [
      [1, 2, 3, 11],
      [10, 11],
    ]);
  });

  test('an unknown function: the official SDK fails (500); ours throws UnknownFunctionError (404)', async () => {
    const request = toFunction('com.example/nobody/x', [], [{ argument: typed(stringType, 'x') }]);
    assert.equal((await invokeOfficial(officialGreeter(), request)).status, 500);
    await assert.rejects(ourGreeter().invoke(request), UnknownFunctionError);
  });
});

/** The fields of a message as they appear on the wire: number, and bytes for length-delimited ones. */
function wireFields(bytes: Uint8Array): [number, Uint8Array | null][] {
  const reader = new BinaryReader(bytes);
  const fields: [number, Uint8Array | null][] = [];
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited) fields.push([fieldNo, reader.bytes()]);
    else {
      reader.skip(wireType, fieldNo);
      fields.push([fieldNo, null]);
    }
  }
  return fields;
}

/** The field numbers of each DelayedInvocation of a FromFunction reply, in wire order. */
function delayedFieldOrder(reply: Uint8Array): number[][] {
  const response = wireFields(reply).find(([fieldNo]) => fieldNo === 100)?.[1];
  assert.ok(response, 'an invocation result');
  return wireFields(response)
    .filter(([fieldNo]) => fieldNo === 3)
    .map(([, delayed]) => wireFields(delayed ?? new Uint8Array()).map(([fieldNo]) => fieldNo));
}
