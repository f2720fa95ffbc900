// invoke() fuzzed with damaged requests that still mostly decode: valid ToFunction batches
// (made with the generated reference code) for a few functions that use storage, messages,
// delays and egresses, then damaged by flipping, setting, cutting, repeating, removing and
// splicing bytes. Uniformly random bytes almost never decode, so they would test only the
// first refusal; these reach the functions, their storage and the reply encoder, and the
// test counts how often they do, so the fuzz cannot quietly decay to "everything refused".

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create, fromBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';

import {
  FromFunctionSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import {
  Address,
  FunctionFailedError,
  intType,
  InvalidRequestError,
  kafkaEgressMessage,
  kinesisEgressMessage,
  longType,
  Message,
  messageBuilder,
  StatefulFunctions,
  stringType,
  UnknownFunctionError,
  ValueTypeError,
  valueSpec,
  type ValueSpec,
} from '../../src/statefun/index.ts';
import { toFunction, typed, type RequestInvocation } from './requests.ts';

const seen = valueSpec({ name: 'seen', type: intType, expireAfterWrite: 60_000 });
const lastName = valueSpec({ name: 'last_name', type: stringType });
const total = valueSpec({ name: 'total', type: longType, expireAfterCall: 5_000 });

/** The functions under test, by type, with the values each declares; one type nobody serves. */
const declared: Readonly<Record<string, readonly ValueSpec<unknown>[]>> = {
  'fuzz/greeter': [seen, lastName] as ValueSpec<unknown>[],
  'fuzz/counter': [total] as ValueSpec<unknown>[],
  'fuzz/echo': [],
  'fuzz/nobody': [],
};

/** The functions, and a count of the invocations that reached them. */
function fuzzedFunctions(): { functions: StatefulFunctions; calls: { count: number } } {
  const calls = { count: 0 };
  const functions = new StatefulFunctions()
    .withSpec({
      typeName: 'fuzz/greeter',
      specs: [seen, lastName],
      fn(context, message) {
        calls.count += 1;
        const count = (context.storage.get(seen) ?? 0) + 1;
        context.storage.set(seen, count);
        if (message.isString()) context.storage.set(lastName, message.asString());
        else context.storage.remove(lastName);
        const reply = messageBuilder({ target: Address.of('fuzz/printer', context.self.id), value: count });
        context.send(reply);
        context.sendAfter(count * 1_000, reply, `reminder-${count}`);
        if (count % 3 === 0) context.cancelDelayedMessage(`reminder-${count - 1}`);
        context.sendEgress(
          kafkaEgressMessage({
            typeName: 'fuzz/out',
            topic: 'greetings',
            key: context.self.id,
            value: message.rawValue,
          }),
        );
      },
    })
    .withSpec({
      typeName: 'fuzz/counter',
      specs: [total],
      async fn(context, message) {
        calls.count += 1;
        await Promise.resolve();
        context.storage.set(total, (context.storage.get(total) ?? 0n) + BigInt(message.rawValue.length));
        context.sendEgress(
          kinesisEgressMessage({
            typeName: 'fuzz/stream',
            stream: 'counts',
            partitionKey: context.self.id === '' ? 'none' : context.self.id,
            value: message.rawValue,
          }),
        );
      },
    })
    .withSpec({
      typeName: 'fuzz/echo',
      fn(context, message) {
        calls.count += 1;
        // The argument goes back as it came, under its own typename, to whoever sent it.
        const back = Message.fromTypedValue(context.caller ?? context.self, message.typedValue);
        if (context.caller === null) context.sendAfter(1, back);
        else context.send(back);
      },
    });
  return { functions, calls };
}

// ---------------------------------------------------------------------------------------
// Valid requests

const ids = fc.oneof(
  fc.constantFrom('alice', 'bob', ''),
  fc.string({ unit: 'grapheme', maxLength: 12 }).filter((id) => !id.includes('/')),
);
const someBytes = fc.uint8Array({ maxLength: 24 });
/** A TypedValue of a typename and bytes that need not agree. */
const rawValues = fc
  .record({
    typename: fc.constantFrom('io.statefun.types/string', 'io.statefun.types/int', 'com.example/blob', ''),
    hasValue: fc.boolean(),
    value: someBytes,
  })
  .map((v) => create(TypedValueSchema, v));

function goodValue(spec: ValueSpec<unknown>): fc.Arbitrary<TypedValue> {
  if (spec === (seen as ValueSpec<unknown>)) return fc.integer().map((v) => typed(intType, v));
  if (spec === (lastName as ValueSpec<unknown>)) {
    return fc.string({ unit: 'grapheme', maxLength: 16 }).map((v) => typed(stringType, v));
  }
  return fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }).map((v) => typed(longType, v));
}

/** What a request carries for `spec`: usually a good value, sometimes none or a bad one, sometimes nothing. */
function carried(spec: ValueSpec<unknown>): fc.Arbitrary<[string, TypedValue | undefined][]> {
  const value = fc.oneof(
    { weight: 8, arbitrary: goodValue(spec) },
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: rawValues },
  );
  return fc.oneof(
    { weight: 12, arbitrary: value.map((v): [string, TypedValue | undefined][] => [[spec.name, v]]) },
    { weight: 1, arbitrary: fc.constant<[string, TypedValue | undefined][]>([]) },
  );
}

const invocations: fc.Arbitrary<RequestInvocation[]> = fc.array(
  fc.record({
    caller: fc.option(fc.constantFrom('fuzz/caller/c1', 'fuzz/greeter/bob', 'other.ns/x/y'), {
      nil: undefined,
    }),
    argument: fc.oneof(
      {
        weight: 4,
        arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => typed(stringType, s)),
      },
      { weight: 1, arbitrary: fc.integer().map((n) => typed(intType, n)) },
      { weight: 1, arbitrary: rawValues },
    ),
  }),
  { minLength: 1, maxLength: 4 },
);

const validRequests: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: fc.constant('fuzz/greeter') },
      { weight: 3, arbitrary: fc.constant('fuzz/counter') },
      { weight: 2, arbitrary: fc.constant('fuzz/echo') },
      { weight: 1, arbitrary: fc.constant('fuzz/nobody') },
    ),
    ids,
  )
  .chain(([type, id]) =>
    fc
      .tuple(
        fc.tuple(...(declared[type] ?? []).map(carried), fc.constant([])),
        // Values no function declared, which are passed over, and declared ones again (of a
        // repeated name the last counts).
        fc.array(
          fc.tuple(
            fc.constantFrom('other', 'seen_too', '', 'seen', 'total'),
            fc.option(rawValues, { nil: undefined }),
          ),
          {
            maxLength: 2,
          },
        ),
        invocations,
      )
      .chain(([perSpec, extra, batch]) =>
        fc
          .shuffledSubarray([...perSpec.flat(), ...extra], {
            minLength: perSpec.flat().length + extra.length,
          })
          .map((state) => toFunction(`${type}/${id}`, state, batch)),
      ),
  );

// ---------------------------------------------------------------------------------------
// Damage

type Damage =
  | { readonly kind: 'none' }
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly byte: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'repeat'; readonly from: number; readonly length: number; readonly to: number }
  | { readonly kind: 'remove'; readonly from: number; readonly length: number }
  | { readonly kind: 'splice'; readonly at: number; readonly other: Uint8Array; readonly otherAt: number }
  | { readonly kind: 'append'; readonly other: Uint8Array };

const damages: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('repeat' as const),
      from: fc.nat(),
      length: fc.integer({ min: 1, max: 16 }),
      to: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      from: fc.nat(),
      length: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      at: fc.nat(),
      other: validRequests,
      otherAt: fc.nat(),
    }),
  },
  // Protobuf merges concatenated messages: one batch, the other's state and invocations added.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('append' as const), other: validRequests }) },
);

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function damaged(bytes: Uint8Array, damage: Damage): Uint8Array {
  const n = bytes.length;
  switch (damage.kind) {
    case 'none':
      return bytes;
    case 'flip': {
      const out = Uint8Array.from(bytes);
      out[damage.at % n] = (out[damage.at % n] as number) ^ (1 << damage.bit);
      return out;
    }
    case 'set': {
      const out = Uint8Array.from(bytes);
      out[damage.at % n] = damage.byte;
      return out;
    }
    case 'truncate':
      return bytes.subarray(0, damage.at % n);
    case 'repeat': {
      const from = damage.from % n;
      const to = damage.to % (n + 1);
      return concat(bytes.subarray(0, to), bytes.subarray(from, from + damage.length), bytes.subarray(to));
    }
    case 'remove': {
      const from = damage.from % n;
      return concat(bytes.subarray(0, from), bytes.subarray(from + damage.length));
    }
    case 'splice':
      return concat(
        bytes.subarray(0, damage.at % (n + 1)),
        damage.other.subarray(damage.otherAt % (damage.other.length + 1)),
      );
    case 'append':
      return concat(bytes, damage.other);
  }
}

// ---------------------------------------------------------------------------------------

/** The number of invocations fromBinary (the reference) reads in `bytes`, or undefined if it reads none. */
function invocationsIn(bytes: Uint8Array): number | undefined {
  try {
    const request = fromBinary(ToFunctionSchema, bytes).request;
    return request.case === 'invocation' ? request.value.invocations.length : undefined;
  } catch {
    return undefined;
  }
}

/** Settles `promise` within one turn of the event loop, or reports that it hung. */
async function settled<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  let outcome: { value: T } | { error: unknown } | undefined;
  void promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  // The functions only ever wait on promises, never on timers or I/O: whatever they do is
  // done before the next macrotask.
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.ok(outcome !== undefined, 'invoke neither answered nor rejected: it hangs');
  return outcome;
}

describe('invoke, fuzzed with damaged valid requests', () => {
  test('fuzz: invoke answers with a FromFunction or rejects with a request error, and most requests reach a function', async (t) => {
    const { functions, calls } = fuzzedFunctions();
    const runs = 1_000;
    const seed = (Date.now() ^ (Math.random() * 2 ** 31)) | 0;
    const seenOutcomes = { reached: 0, answered: 0, results: 0, incomplete: 0, refused: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(validRequests, damages, async (request, damage) => {
        const bytes = damaged(request, damage);
        const before = calls.count;
        const outcome = await settled(functions.invoke(bytes));
        const ran = calls.count - before;
        if (ran > 0) seenOutcomes.reached += 1;
        if ('error' in outcome) {
          const { error } = outcome;
          if (error instanceof FunctionFailedError) {
            // The functions fail only where the library refuses a value: bytes that are not
            // of their typename, read from storage or a message.
            assert.ok(error.cause instanceof ValueTypeError, `failed with ${String(error.cause)}`);
            assert.ok(ran > 0);
            seenOutcomes.failed += 1;
          } else if (error instanceof UnknownFunctionError) {
            assert.equal(ran, 0);
            seenOutcomes.refused += 1;
          } else if (error instanceof InvalidRequestError) {
            // A request is read and checked whole before any function runs.
            assert.equal(ran, 0, `a function ran for a request that was then refused: ${error.message}`);
            seenOutcomes.refused += 1;
          } else {
            throw error;
          }
          return;
        }
        const reply = fromBinary(FromFunctionSchema, outcome.value).response;
        seenOutcomes.answered += 1;
        if (reply.case === 'incompleteInvocationContext') {
          assert.equal(ran, 0, 'no function runs while values are missing');
          assert.ok(reply.value.missingValues.length > 0);
          seenOutcomes.incomplete += 1;
        } else {
          assert.equal(reply.case, 'invocationResult');
          // Every invocation the request carries ran, once: no fewer, no more.
          assert.equal(ran, invocationsIn(bytes));
          seenOutcomes.results += 1;
        }
      }),
      { numRuns: runs, seed },
    );
    const { reached, answered, results } = seenOutcomes;
    t.diagnostic(`seed ${seed}: ${JSON.stringify(seenOutcomes)}`);
    const why = `of ${runs} runs (seed ${seed}): ${JSON.stringify(seenOutcomes)}`;
    assert.ok(reached >= runs / 3, `too few reached a function ${why}`);
    assert.ok(answered >= runs / 4, `too few were answered ${why}`);
    assert.ok(results >= runs / 4, `too few were answered with an invocation result ${why}`);
    assert.ok(seenOutcomes.refused >= runs / 10, `too few were refused ${why}`);
  });
});
