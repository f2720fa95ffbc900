// Regressions: races and leaks in the runtime found by review, each pinned by a test.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { FakeClock } from '../../src/internal/fake-clock.ts';
import { DelayedMessages } from '../../src/runtime/delayed-messages.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type {
  BatchEffects,
  InboxMessage,
  StateStore,
  SweepResult,
} from '../../src/runtime/store/state-store.ts';
import {
  Address,
  StatefulFunctions,
  intType,
  messageBuilder,
  valueSpec,
  type Context,
  type Message,
} from '../../src/statefun/index.ts';
import { RuntimeHarness } from '../../src/testing/runtime-harness.ts';

const count = valueSpec({ name: 'count', type: intType });
const counter = (id: string): Address => Address.of('test/counter', id);
const quiet = { warn: () => undefined, error: () => undefined };
const turns = async (n = 50): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

function counterSpec() {
  return {
    typeName: 'test/counter',
    specs: [count],
    fn: (context: Context, message: Message) => {
      context.storage.set(count, (context.storage.get(count) ?? 0) + message.asInt());
    },
  };
}

describe('runtime regressions', () => {
  test('two addresses of a new type running at once both succeed (no spurious incomplete-context failure)', async () => {
    const errors: string[] = [];
    const harness = await RuntimeHarness.start({
      functions: new StatefulFunctions().withSpec(counterSpec()),
      logger: { warn: () => undefined, error: (message: string) => errors.push(message) },
    });
    // Both durable before either runs: their first requests go out together, before the registry knows `count`.
    await harness.runtime.send(
      ['a', 'b'].map((id) => ({
        target: ['test', 'counter', id] as const,
        argument: { typename: 'io.statefun.types/int', value: intType.serialize(1) },
      })),
    );
    await harness.settle();
    assert.deepEqual(errors, []);
    assert.equal(harness.runtime.stats().batchFailures, 0);
    assert.equal(await harness.state(counter('b'), count), 1);
    await harness.close();
  });

  test('a commit that landed but reported failure still wakes the targets of the messages it sent', async () => {
    class LandsThenFails extends MemoryStateStore {
      failAfterNext = 0;
      override async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
        await super.commit(batches, now);
        if (this.failAfterNext > 0) {
          this.failAfterNext -= 1;
          throw new Error('connection lost after COMMIT');
        }
      }
    }
    const functions = new StatefulFunctions().withSpec(counterSpec()).withSpec({
      typeName: 'test/forwarder',
      fn: (context, message) => {
        context.send(messageBuilder({ target: counter(message.asString()), value: 5 }));
      },
    });
    const store = new LandsThenFails();
    const clock = new FakeClock();
    const runtime = await Runtime.open({ store, functions, clock, logger: quiet });
    // Warm up the registry so the next commit is the forwarder's.
    await runtime.sendMessage(messageBuilder({ target: counter('x'), value: 0 }));
    await turns();
    store.failAfterNext = 1;
    await runtime.sendMessage(messageBuilder({ target: Address.of('test/forwarder', 'f'), value: 'x' }));
    await turns();
    await clock.advanceAsync(10 * 60_000);
    await turns();
    // The forwarder's message to counter x landed in x's inbox, but nothing wakes x to run it.
    const waiting = await store.inbox(['test', 'counter', 'x'], 10);
    assert.equal(waiting.length, 0, 'the message waits in the inbox, unrun, until a restart');
    const state = await store.readState(['test', 'counter', 'x'], clock.wallTimeMs());
    assert.equal(intType.deserialize(state.get('count')?.value ?? new Uint8Array()), 5);
    await runtime.close();
  });

  test('delayed messages: a timer that fires while a firing round runs is not lost', async () => {
    const clock = new FakeClock();
    const t0 = clock.wallTimeMs();
    let pending: number | undefined = t0 + 10;
    const fired: number[] = [];
    let holdNextDue: ((value: number | undefined) => void) | undefined;
    const store = {
      fireDue(now: number): Promise<InboxMessage[]> {
        if (pending !== undefined && pending <= now) {
          fired.push(pending);
          pending = undefined;
        }
        return Promise.resolve([]);
      },
      nextDueAt(): Promise<number | undefined> {
        // The first read is slow: a snapshot taken now, answered later (a slow round trip).
        if (holdNextDue !== undefined) return Promise.resolve(pending);
        const snapshot = pending;
        return new Promise((resolve) => {
          holdNextDue = () => {
            resolve(snapshot);
          };
        });
      },
    } as unknown as StateStore;
    const delayed = new DelayedMessages({
      store,
      clock,
      sliceSize: 100,
      retryMs: 1000,
      onFired: () => undefined,
      onError: () => undefined,
      held: () => false,
    });
    delayed.noteDue(t0 + 10);
    await clock.advanceAsync(10); // fires; the round is now waiting for nextDueAt
    assert.deepEqual(fired, [t0 + 10]);
    assert.ok(holdNextDue !== undefined);
    // Meanwhile a batch commits a delayed message due at once, and its timer fires.
    pending = clock.wallTimeMs();
    delayed.noteDue(pending);
    await clock.advanceAsync(0);
    holdNextDue(undefined); // the snapshot predates that commit
    await turns(5);
    await clock.advanceAsync(60 * 60_000);
    assert.equal(pending, undefined, 'the delayed message due at once never fired');
    await delayed.close();
  });
});

describe('runtime regressions: close', () => {
  test('close() finishes within the drain timeout even when a function never answers', async () => {
    const clock = new FakeClock();
    const functions = new StatefulFunctions().withSpec({
      typeName: 'test/stuck',
      fn: () => new Promise<void>(() => undefined),
    });
    const runtime = await Runtime.open({
      store: new MemoryStateStore(),
      functions,
      clock,
      logger: quiet,
      limits: { drainTimeoutMs: 1_000 },
    });
    await runtime.sendMessage(messageBuilder({ target: Address.of('test/stuck', 's'), value: 1 }));
    await turns();
    let closed = false;
    void runtime.close().then(() => (closed = true));
    await clock.advanceAsync(60 * 60_000);
    await turns();
    assert.ok(closed, 'close() still waits for the stuck batch after an hour');
  });
});

describe('runtime regressions: sweeping', () => {
  test('ingress ids past the dedup window are all forgotten, not 1000 per sweep interval', async () => {
    // Counts what sweepExpired is asked to forget: each call forgets at most `limit` ingress ids.
    class CountingStore extends MemoryStateStore {
      forgettable = 0;
      override async sweepExpired(now: number, limit: number): Promise<SweepResult> {
        this.forgettable += limit;
        return super.sweepExpired(now, limit);
      }
    }
    const store = new CountingStore({ dedupWindowMs: 1_000 });
    const clock = new FakeClock();
    const runtime = await Runtime.open({
      store,
      functions: new StatefulFunctions().withSpec(counterSpec()),
      clock,
      logger: quiet,
      limits: { sweepIntervalMs: 10_000 },
    });
    // 5,000 ingress messages in one 10 s interval: JetStream ingress at 500 msg/s.
    await runtime.send(
      Array.from({ length: 5_000 }, (_, i) => ({
        target: ['test', 'counter', `c${i % 100}`] as const,
        argument: { typename: 'io.statefun.types/int', value: intType.serialize(1) },
        ingressId: `nats:orders:${i}`,
      })),
    );
    await turns(200);
    await clock.advanceAsync(10_000); // one sweep, all 5,000 ids past their window
    await turns(50);
    assert.ok(
      store.forgettable >= 5_000,
      `one sweep could forget only ${store.forgettable} of 5000 ingress ids`,
    );
    await runtime.close();
  });
});
