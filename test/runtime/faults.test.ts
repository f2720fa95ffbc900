// What a user relies on when something fails under the runtime: the failure is retried, then
// surfaced (logged with what the endpoint said, counted in stats(), published on the runtime's
// diagnostics channels); nothing is lost (once the fault clears, every message is applied exactly
// once: a counter ends equal to the number of messages sent, and stays there); and other addresses
// keep running meanwhile. Remote endpoints are real loopback HTTP servers switched between a fault
// and the SDK's handler; time is a FakeClock moved by the driver in fault-endpoint.ts.

import { create } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import util from 'node:util';
import { describe, test, type TestContext } from 'node:test';

import {
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunction_PersistedValueMutationSchema,
  TypedValueSchema,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { CapacityExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { InProcessSink } from '../../src/runtime/egress/in-process-sink.ts';
import { EndpointError, InvalidReplyError, InvocationFailedError } from '../../src/runtime/errors.ts';
import { httpIngressHandler } from '../../src/runtime/ingress/http-ingress.ts';
import type { RemoteRetryEvent } from '../../src/runtime/remote/remote-invoker.ts';
import { Runtime, type FailureEvent } from '../../src/runtime/runtime.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type {
  BatchEffects,
  Envelope,
  OutboxRecord,
  StoredAddress,
} from '../../src/runtime/store/state-store.ts';
import {
  Address,
  StatefulFunctions,
  egressMessage,
  intType,
  messageBuilder,
  valueSpec,
  type Context,
  type Message,
} from '../../src/statefun/index.ts';
import { RuntimeHarness } from '../../src/testing/runtime-harness.ts';
import {
  ERROR_BODY,
  FaultEndpoint,
  HTML_BODY,
  RecordingLogger,
  idle,
  runFor,
  runUntil,
  type Driven,
  type EndpointFault,
} from './fault-endpoint.ts';

const count = valueSpec({ name: 'count', type: intType });
const INT = 'io.statefun.types/int';
/** Long enough for any parked address (at most 60 s) to have run again. */
const AFTERWARDS_MS = 3 * 60_000;

const at = (type: string, id: string): Address => Address.of(type, id);
const stored = (address: Address): StoredAddress => [address.type.namespace, address.type.name, address.id];
const add = (target: Address, n = 1): Message => messageBuilder({ target, value: n });
const envelope = (target: Address, n = 1): Envelope => ({
  target: stored(target),
  argument: { typename: INT, value: intType.serialize(n) },
});

/** A function that adds each message's int to its `count`, after `before` (which may throw or block). */
function counter(typeName: string, before?: (context: Context) => void | Promise<void>): StatefulFunctions {
  return new StatefulFunctions().withSpec(counterSpec(typeName, before));
}

function counterSpec(typeName: string, before?: (context: Context) => void | Promise<void>) {
  return {
    typeName,
    specs: [count],
    fn: async (context: Context, message: Message) => {
      await before?.(context);
      context.storage.set(count, (context.storage.get(count) ?? 0) + message.asInt());
    },
  };
}

async function countOf(
  store: MemoryStateStore,
  address: Address,
  clock: FakeClock,
): Promise<number | undefined> {
  const entry = (await store.readState(stored(address), clock.wallTimeMs())).get(count.name);
  return entry === undefined ? undefined : intType.deserialize(entry.value);
}

/** The events published on a diagnostics channel while the test runs. */
function recordChannel<T>(t: TestContext, name: string): T[] {
  const events: T[] = [];
  t.after(subscribeDiagnostics(name, (message) => events.push(message as T)));
  return events;
}

const recordFailures = (t: TestContext): FailureEvent[] => recordChannel(t, 'weft:runtime:batch-failure');
const recordRetries = (t: TestContext): RemoteRetryEvent[] => recordChannel(t, 'weft:runtime:remote-retry');

/** The failures of one address, as published. */
const failuresOf = (events: readonly FailureEvent[], address: Address): FailureEvent[] =>
  events.filter((event) => util.isDeepStrictEqual(event.address, stored(address)));

/** After the fault cleared: the count is `expected` now, and stays so once every retry has had its turn. */
async function assertAppliedOnce(
  driven: Driven,
  store: MemoryStateStore,
  address: Address,
  expected: number,
): Promise<void> {
  await runUntil(
    driven,
    async () => (await countOf(store, address, driven.clock)) === expected && idle(driven.runtime),
    `${expected} messages applied to ${address.toString()}`,
  );
  await runFor(driven, AFTERWARDS_MS);
  assert.equal(await countOf(store, address, driven.clock), expected, 'applied exactly once');
  assert.deepEqual(await store.inbox(stored(address), 10), [], 'nothing left in the inbox');
  assert.equal(driven.runtime.stats().parkedAddresses, 0);
}

describe('faults: a remote endpoint', () => {
  const remote = at('remote/counter', 'r');
  const local = at('local/counter', 'l');

  interface Expected {
    /** What the endpoint's error says. */
    readonly cause: RegExp;
    readonly status?: number;
    readonly body?: string;
    /** Whether the invoker retried within the call budget (a hung request uses it all up). */
    readonly retried: boolean;
  }

  /**
   * The endpoint fails with `fault` while messages arrive for one of its addresses and for an
   * in-process one; then it heals.
   */
  async function survives(t: TestContext, fault: EndpointFault, expected: Expected): Promise<void> {
    const failures = recordFailures(t);
    const retries = recordRetries(t);
    const logger = new RecordingLogger();
    const endpoint = await FaultEndpoint.start(counter('remote/counter'));
    t.after(() => endpoint.close());
    await endpoint.fail(fault);
    const harness = await RuntimeHarness.start({
      functions: counter('local/counter'),
      endpoints: [{ functions: 'remote/*', urlPathTemplate: endpoint.urlPathTemplate, callTimeoutMs: 2_000 }],
      logger,
    });
    t.after(() => harness.close());
    const { runtime, store } = harness;

    for (let i = 0; i < 3; i++) await runtime.sendMessage(add(remote));
    await runUntil(harness, () => runtime.stats().batchFailures >= 1, 'the first failed batch');

    // Retried within the call budget, each retry published with what the endpoint answered.
    const retried = retries.filter((event) => event.functionType === 'remote/counter');
    if (expected.retried) {
      assert.ok(retried.length >= 2, `retried within the budget (${retried.length} retries)`);
      for (const event of retried) {
        assert.match(event.error.message, expected.cause);
        assert.equal(event.error.status, expected.status);
        assert.equal(event.error.body, expected.body);
      }
    } else {
      assert.equal(retried.length, 0);
    }

    // Then surfaced: published, counted, logged with the endpoint's status and body.
    const [failure] = failuresOf(failures, remote);
    assert.ok(failure, 'the failure is published on weft:runtime:batch-failure');
    assert.ok(failure.error instanceof InvocationFailedError, String(failure.error));
    const cause = failure.error.cause;
    assert.ok(cause instanceof EndpointError, `caused by an EndpointError, got ${String(cause)}`);
    assert.match(cause.message, expected.cause);
    assert.equal(cause.status, expected.status);
    assert.equal(cause.body, expected.body);
    assert.ok(failure.parkedForMs > 0);
    let stats = runtime.stats();
    assert.equal(stats.parkedAddresses, 1);
    assert.ok(stats.batchFailures >= 1);
    const [logged] = logger.find('error', /remote\/counter\/r/);
    assert.ok(logged, 'the failure is logged');
    assert.match(logged.message, expected.cause);
    const printed = util.format(logged.message, logged.details);
    if (expected.status !== undefined) assert.match(printed, new RegExp(`status: ${expected.status}`));
    if (expected.body !== undefined)
      assert.ok(printed.includes(expected.body), `the log shows the body: ${printed}`);

    // Other addresses keep running, and the failing one keeps its messages and is tried again.
    for (let i = 0; i < 2; i++) await runtime.sendMessage(add(local));
    for (let i = 0; i < 2; i++) await runtime.sendMessage(add(remote));
    await runUntil(
      harness,
      async () => (await harness.state(local, count)) === 2,
      'the in-process address to run',
    );
    await runUntil(harness, () => runtime.stats().batchFailures >= 2, 'the failing address to be retried');
    assert.equal(await harness.state(remote, count), undefined, 'nothing applied during the fault');
    assert.equal((await store.inbox(stored(remote), 10)).length, 5, 'nothing lost');

    await endpoint.heal();
    await assertAppliedOnce(harness, store, remote, 5);
    assert.equal(await harness.state(local, count), 2);
    stats = runtime.stats();
    assert.ok(stats.batchFailures >= 2, 'the failures stay counted');
    assert.equal(stats.ingress.accepted, 7);
  }

  test('that refuses connections is retried, surfaced, and loses nothing once it is back', async (t) => {
    await survives(t, 'refuse-connections', { cause: /ECONNREFUSED/, retried: true });
  });

  test('that never answers is given up on at the call budget, and loses nothing once it answers', async (t) => {
    await survives(t, 'hang', { cause: /no reply before the call budget ran out/, retried: false });
  });

  test('that answers 500 is retried, and the failure is logged with its status and body', async (t) => {
    await survives(t, 'status-500', { cause: /status 500/, status: 500, body: ERROR_BODY, retried: true });
  });

  test('that answers with the wrong content type is retried and surfaced', async (t) => {
    await survives(t, 'wrong-content-type', {
      cause: /content type "text\/html", expected application\/octet-stream/,
      status: 200,
      body: HTML_BODY,
      retried: true,
    });
  });

  test('that answers garbage bytes is retried and surfaced', async (t) => {
    await survives(t, 'garbage', {
      cause: /reply refused: .*not a FromFunction/,
      status: 200,
      body: 'not a protobuf at all',
      retried: true,
    });
  });

  /** The endpoint's replies are altered by `tamper` until it heals: the batch must be refused whole. */
  async function refusesReply(t: TestContext, fault: EndpointFault, problem: RegExp): Promise<void> {
    const failures = recordFailures(t);
    const logger = new RecordingLogger();
    const endpoint = await FaultEndpoint.start(counter('remote/counter'));
    t.after(() => endpoint.close());
    await endpoint.fail(fault);
    const harness = await RuntimeHarness.start({
      functions: counter('local/counter'),
      endpoints: [{ functions: 'remote/*', urlPathTemplate: endpoint.urlPathTemplate, callTimeoutMs: 2_000 }],
      logger,
    });
    t.after(() => harness.close());
    const { runtime, store } = harness;

    for (let i = 0; i < 2; i++) await runtime.sendMessage(add(remote));
    await runUntil(harness, () => runtime.stats().batchFailures >= 2, 'the batch to be refused twice');
    const [failure] = failuresOf(failures, remote);
    assert.ok(failure);
    assert.ok(failure.error instanceof InvalidReplyError, String(failure.error));
    assert.match(failure.error.message, problem);
    assert.equal(logger.find('error', problem).length >= 1, true, 'logged');
    assert.equal(runtime.stats().parkedAddresses, 1);
    // Nothing of a refused reply is applied, not even its valid part.
    assert.equal(await harness.state(remote, count), undefined);

    await runtime.sendMessage(add(local));
    await runUntil(
      harness,
      async () => (await harness.state(local, count)) === 1,
      'the in-process address to run',
    );

    await endpoint.heal();
    await assertAppliedOnce(harness, store, remote, 2);
  }

  test('whose reply writes a value with the wrong type name has the batch refused, then applied once', async (t) => {
    await refusesReply(
      t,
      {
        tamper: (result) => {
          for (const mutation of result.stateMutations) {
            if (mutation.stateValue !== undefined) mutation.stateValue.typename = 'io.statefun.types/long';
          }
        },
      },
      /writes value "count" as io\.statefun\.types\/long, but it is registered as io\.statefun\.types\/int/,
    );
  });

  test('whose reply changes a value it never declared has the batch refused, then applied once', async (t) => {
    await refusesReply(
      t,
      {
        tamper: (result) => {
          result.stateMutations.push(
            create(FromFunction_PersistedValueMutationSchema, {
              mutationType: MutationType.MODIFY,
              stateName: 'ghost',
              stateValue: create(TypedValueSchema, {
                typename: INT,
                hasValue: true,
                value: intType.serialize(1),
              }),
            }),
          );
        },
      },
      /changes value "ghost", which it never declared/,
    );
  });
});

describe('faults: functions and their effects', () => {
  test('a function that throws is retried later and surfaced; others go on; nothing is lost', async (t) => {
    const failures = recordFailures(t);
    const logger = new RecordingLogger();
    let broken = true;
    const bad = at('local/counter', 'bad');
    const good = at('local/counter', 'good');
    const harness = await RuntimeHarness.start({
      functions: counter('local/counter', (context) => {
        if (broken && context.self.id === 'bad') throw new Error('the function broke');
      }),
      logger,
    });
    t.after(() => harness.close());

    await harness.send(add(bad));
    await harness.send(add(good));
    await harness.send(add(bad));
    assert.equal(await harness.state(good, count), 1);
    await runUntil(harness, () => harness.runtime.stats().batchFailures >= 3, 'the retries to fail too');
    await harness.send(add(good));
    assert.equal(await harness.state(good, count), 2);

    const [failure] = failuresOf(failures, bad);
    assert.ok(failure?.error instanceof InvocationFailedError, String(failure?.error));
    assert.match(failure.error.message, /the function broke/);
    assert.ok(logger.find('error', /local\/counter\/bad.*the function broke/).length >= 3);
    assert.equal(harness.runtime.stats().parkedAddresses, 1);
    assert.equal(await harness.state(bad, count), undefined);

    broken = false;
    await assertAppliedOnce(harness, harness.store, bad, 2);
    assert.equal(await harness.state(good, count), 2);
  });

  test('a delayed message reusing a token still pending is refused until the first has fired', async (t) => {
    const failures = recordFailures(t);
    const logger = new RecordingLogger();
    const functions = counter('local/counter').withSpec({
      typeName: 'local/scheduler',
      fn: (context) => {
        context.sendAfter(60_000, add(at('local/counter', `from-${context.self.id}`)), 'reminder');
      },
    });
    const harness = await RuntimeHarness.start({ functions, logger });
    t.after(() => harness.close());
    const scheduler = at('local/scheduler', 's');
    const other = at('local/scheduler', 'o');
    const fromScheduler = at('local/counter', 'from-s');

    await harness.send(add(scheduler));
    await harness.send(add(scheduler));
    const [failure] = failuresOf(failures, scheduler);
    assert.ok(failure?.error instanceof InvocationFailedError, String(failure?.error));
    assert.match(failure.error.message, /cancellation token "reminder", which is still pending/);
    assert.equal(logger.find('error', /local\/scheduler\/s.*still pending/).length, 1);
    assert.equal(harness.runtime.stats().parkedAddresses, 1);
    // Tokens belong to their sender: another address may use the same one.
    await harness.send(add(other));
    assert.equal(harness.runtime.stats().delayed.pending, 2);

    await runFor(harness, 59_000);
    assert.ok(failuresOf(failures, scheduler).length >= 2, 'retried, and refused while the token is pending');
    assert.equal(await harness.state(fromScheduler, count), undefined);
    await runFor(harness, 1_000);
    assert.equal(await harness.state(fromScheduler, count), 1);

    // The retry after the first fired schedules the second; it fires a minute later.
    await assertAppliedOnce(harness, harness.store, fromScheduler, 2);
    assert.equal(await harness.state(at('local/counter', 'from-o'), count), 1);
    assert.equal(harness.runtime.stats().delayed.fired, 3);
  });

  test('a message to a function type nobody serves fails its batch and waits until one does', async (t) => {
    const failures = recordFailures(t);
    const logger = new RecordingLogger();
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const forwarder = at('local/forwarder', 'f');
    const later = at('later/counter', 'x');
    const local = at('local/counter', 'l');
    const forwarding = (): StatefulFunctions =>
      counter('local/counter').withSpec({
        typeName: 'local/forwarder',
        fn: (context, message) => {
          context.send(add(later, message.asInt()));
        },
      });
    const first = await Runtime.open({ store, functions: forwarding(), clock, logger });
    const driven = { clock, runtime: first };

    await first.sendMessage(add(forwarder, 3));
    await first.sendMessage(add(local));
    await runUntil(driven, () => first.stats().batchFailures >= 3, 'the batch to fail and be retried');
    const [failure] = failuresOf(failures, forwarder);
    assert.ok(failure?.error instanceof InvocationFailedError, String(failure?.error));
    assert.match(failure.error.message, /sends a message to later\/counter, which no function serves/);
    assert.ok(logger.find('error', /local\/forwarder\/f.*no function serves/).length >= 3);
    assert.equal(await countOf(store, local, clock), 1, 'other addresses run');
    assert.equal((await store.inbox(stored(forwarder), 10)).length, 1, 'the message waits in its inbox');
    await first.close();

    // Deployed with the missing function, the runtime runs the message that waited.
    const second = await Runtime.open({
      store,
      functions: forwarding().withSpec(counterSpec('later/counter')),
      clock,
      logger,
    });
    t.after(() => second.close());
    await assertAppliedOnce({ clock, runtime: second }, store, later, 3);
    assert.deepEqual(await store.inbox(stored(forwarder), 10), []);
  });
});

describe('faults: backpressure', () => {
  test('a backlog at its cap refuses more for that address only, and counts what it refused', async (t) => {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const busy = at('local/counter', 'busy');
    const other = at('local/counter', 'other');
    const harness = await RuntimeHarness.start({
      functions: counter('local/counter', async (context) => {
        if (context.self.id === 'busy') await blocked;
      }),
      limits: { maxNumBatchRequests: 3 },
      logger: new RecordingLogger(),
    });
    t.after(() => harness.close());
    const { runtime, store, clock } = harness;

    for (let i = 0; i < 3; i++) await runtime.sendMessage(add(busy));
    await assert.rejects(runtime.sendMessage(add(busy)), CapacityExceededError);
    // A call with one envelope over the cap appends none of them.
    await assert.rejects(runtime.send([envelope(other, 100), envelope(busy)]), CapacityExceededError);
    assert.equal(runtime.stats().ingress.refused, 3);
    await runtime.sendMessage(add(other));
    await runUntil(
      harness,
      async () => (await countOf(store, other, clock)) === 1,
      'the other address to run',
    );

    release();
    await assertAppliedOnce(harness, store, busy, 3);
    // Its backlog drained, the address takes messages again.
    for (let i = 0; i < 3; i++) await runtime.sendMessage(add(busy));
    await assertAppliedOnce(harness, store, busy, 6);
    assert.equal(await countOf(store, other, clock), 1, 'nothing of the refused call was appended');
    const { accepted, duplicates, refused } = runtime.stats().ingress;
    assert.deepEqual({ accepted, duplicates, refused }, { accepted: 7, duplicates: 0, refused: 3 });
  });

  test('a full outbox refuses ingress and holds new batches until its sink recovers', async (t) => {
    const logger = new RecordingLogger();
    const clock = new FakeClock();
    const store = new MemoryStateStore();
    let sinkDown = true;
    const delivered = new Map<number, number>();
    const sink = new InProcessSink((record: OutboxRecord) => {
      if (sinkDown) throw new Error('the broker is unreachable');
      delivered.set(record.seq, intType.deserialize(record.value.value));
    });
    const functions = new StatefulFunctions().withSpec({
      typeName: 'local/echo',
      fn: (context, message) => {
        context.sendEgress(
          egressMessage({ typeName: 'local/out', value: message.asInt(), valueType: intType }),
        );
      },
    });
    const runtime = await Runtime.open({
      store,
      functions,
      egress: { 'local/out': sink },
      clock,
      logger,
      limits: { maxOutboxRecords: 2, maxConcurrentBatches: 1 },
    });
    t.after(() => runtime.close());
    const driven = { clock, runtime };
    const echo = (id: number): Address => at('local/echo', String(id));

    await runtime.send([1, 2, 3, 4].map((n) => envelope(echo(n), n)));
    await runUntil(
      driven,
      () => runtime.stats().outbox.records === 2 && runtime.stats().outbox.failures >= 1,
      'the outbox to fill while its sink fails',
    );
    await assert.rejects(runtime.sendMessage(add(echo(5), 5)), (error: unknown) => {
      assert.ok(error instanceof CapacityExceededError, String(error));
      assert.match(error.message, /egress outbox/);
      return true;
    });
    let released = false;
    void runtime.released().then(() => {
      released = true;
    });
    await runFor(driven, 30_000);
    let stats = runtime.stats();
    assert.equal(stats.waitingAddresses, 2, 'new batches wait');
    assert.equal(stats.batches, 2);
    assert.equal(stats.ingress.refused, 1);
    assert.equal(released, false);
    assert.equal(delivered.size, 0);
    assert.ok(
      logger.find('warn', /egress delivery to local\/out failed/).length >= 1,
      'the sink failure is logged',
    );

    sinkDown = false;
    await runUntil(driven, () => delivered.size === 4 && idle(runtime), 'the outbox to drain');
    assert.equal(released, true, 'the held batches ran, so ingress was taken again meanwhile');
    // The runtime learns of deliveries when it next reads the store's counts.
    let takesInput = false;
    void runtime.released().then(() => {
      takesInput = true;
    });
    await runUntil(driven, () => takesInput, 'ingress to be taken again');
    await runtime.sendMessage(add(echo(5), 5));
    await runUntil(driven, () => delivered.size === 5 && idle(runtime), 'the new message to flow');
    assert.deepEqual([...delivered.values()].sort(), [1, 2, 3, 4, 5]);
    stats = runtime.stats();
    assert.equal(stats.ingress.refused, 1, 'the refusal stays counted');
    assert.equal(stats.batches, 5);
    assert.equal(stats.outbox.delivered, 5);
  });
});

describe('faults: the store', () => {
  test('a store that fails commits loses nothing: the batches run again and apply once', async (t) => {
    class FailingCommits extends MemoryStateStore {
      failures = 3;
      override async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
        if (this.failures > 0) {
          this.failures -= 1;
          throw new Error('disk on fire');
        }
        await super.commit(batches, now);
      }
    }
    const failures = recordFailures(t);
    const logger = new RecordingLogger();
    const store = new FailingCommits();
    const clock = new FakeClock();
    const runtime = await Runtime.open({ store, functions: counter('local/counter'), clock, logger });
    t.after(() => runtime.close());
    const driven = { clock, runtime };
    const a = at('local/counter', 'a');
    const b = at('local/counter', 'b');

    for (let i = 0; i < 3; i++) await runtime.sendMessage(add(a));
    for (let i = 0; i < 2; i++) await runtime.sendMessage(add(b));
    await runUntil(driven, () => store.failures === 0, 'the failing commits');
    assert.ok(failures.length >= 1);
    assert.match(String(failures[0]?.error), /disk on fire/);
    assert.ok(logger.find('error', /disk on fire/).length >= 1);
    assert.ok(runtime.stats().commits.failedBatches >= 1);

    await assertAppliedOnce(driven, store, a, 3);
    await assertAppliedOnce(driven, store, b, 2);
  });

  test('a commit that landed but reported failure is applied once and leaves the backlog cap intact', async (t) => {
    class LandsThenFails extends MemoryStateStore {
      failAfterNext = 1;
      override async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
        await super.commit(batches, now);
        if (this.failAfterNext > 0) {
          this.failAfterNext -= 1;
          throw new Error('connection lost after COMMIT');
        }
      }
    }
    let blocking = false;
    let open = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const store = new LandsThenFails();
    const clock = new FakeClock();
    const runtime = await Runtime.open({
      store,
      functions: counter('local/counter', () => (blocking ? gate : undefined)),
      clock,
      logger: new RecordingLogger(),
      limits: { maxNumBatchRequests: 3 },
    });
    t.after(async () => {
      open();
      await runtime.close();
    });
    const driven = { clock, runtime };
    const a = at('local/counter', 'a');

    await runtime.sendMessage(add(a));
    await runUntil(driven, () => runtime.stats().batchFailures === 1, 'the ambiguous commit');
    await assertAppliedOnce(driven, store, a, 1);

    // With its function blocked, the address takes as many messages as its cap allows.
    blocking = true;
    let accepted = 0;
    for (let i = 0; i < 3; i++) {
      await runtime.sendMessage(add(a)).then(
        () => (accepted += 1),
        (error: unknown) => {
          assert.fail(`message ${i + 1} of a backlog of 3 was refused: ${String(error)}`);
        },
      );
    }
    assert.equal(accepted, 3);
    await assert.rejects(runtime.sendMessage(add(a)), CapacityExceededError);
  });

  test('a store that fails appends acknowledges nothing; the same message sent again is applied once', async (t) => {
    class FailingAppends extends MemoryStateStore {
      down = true;
      override async append(envelopes: readonly Envelope[], now: number) {
        if (this.down) throw new Error('disk full');
        return super.append(envelopes, now);
      }
    }
    const store = new FailingAppends();
    const clock = new FakeClock();
    const logger = new RecordingLogger();
    const runtime = await Runtime.open({ store, functions: counter('local/counter'), clock, logger });
    t.after(() => runtime.close());
    const ingress = http.createServer(httpIngressHandler(runtime, { logger }));
    await new Promise<void>((resolve) => ingress.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => ingress.close(resolve)));
    const { port } = ingress.address() as AddressInfo;
    const a = at('local/counter', 'a');

    await assert.rejects(runtime.sendMessage(add(a)), /disk full/);
    const refused = await post(port, '/ingress/local/counter/a', intType.serialize(1));
    assert.equal(refused.status, 500, `not acknowledged: ${refused.body}`);
    assert.equal(runtime.stats().ingress.accepted, 0);
    assert.equal((await store.counts()).inboxMessages, 0);
    assert.equal(runtime.stats().requests, 0, 'nothing ran');

    store.down = false;
    const accepted = await post(port, '/ingress/local/counter/a', intType.serialize(1));
    assert.equal(accepted.status, 202, accepted.body);
    await runtime.sendMessage(add(a));
    await assertAppliedOnce({ clock, runtime }, store, a, 2);
  });
});

/** One POST to the ingress, on a connection of its own. */
function post(port: number, path: string, body: Uint8Array): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'Weft-Message-Type': INT, 'Content-Length': body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
