// The outbox drainer on the memory store and a FakeClock, with in-process sinks: what reaches a
// sink, when, and what stays in the outbox.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { FakeClock } from '../../src/internal/fake-clock.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import type { EgressFailureEvent } from '../../src/runtime/egress/egress-diagnostics.ts';
import type { EgressSink } from '../../src/runtime/egress/egress-sink.ts';
import { InProcessSink } from '../../src/runtime/egress/in-process-sink.ts';
import { OutboxDrainer, type OutboxDrainerOptions } from '../../src/runtime/egress/outbox-drainer.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { OutboxRecord } from '../../src/runtime/store/state-store.ts';
import { RecordingLogger } from '../grid/recording-logger.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Commits one batch whose egress records go to `route` (`namespace/type`), one per body. */
async function emit(store: MemoryStateStore, route: string, ...bodies: string[]): Promise<void> {
  const slash = route.lastIndexOf('/');
  const egress = [route.slice(0, slash), route.slice(slash + 1)] as const;
  await store.commit(
    [
      {
        address: ['shop', 'cart', 'c1'],
        egress: bodies.map((body) => ({
          egress,
          value: { typename: 'test/text', value: encoder.encode(body) },
        })),
      },
    ],
    0,
  );
}

/** A sink that records what it was given and fails while `failing` is set. */
class ScriptedSink implements EgressSink {
  readonly attempts: string[][] = [];
  /** Bodies of the attempts that succeeded, in order. */
  readonly delivered: string[] = [];
  failing = false;
  closed = false;

  deliver(records: readonly OutboxRecord[]): Promise<void> {
    const bodies = records.map((record) => decoder.decode(record.value.value));
    this.attempts.push(bodies);
    if (this.failing) return Promise.reject(new Error('destination down'));
    this.delivered.push(...bodies);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Lets every promise chain that waits on nothing but promises run to its end. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function drainer(
  store: MemoryStateStore,
  clock: FakeClock,
  routes: Record<string, EgressSink>,
  options: Partial<OutboxDrainerOptions> = {},
): OutboxDrainer {
  return new OutboxDrainer({
    store,
    clock,
    routes: new Map(Object.entries(routes)),
    logger: new RecordingLogger(),
    // No jitter: backoff delays are exactly 100, 200, 400 ms…
    random: () => 0.5,
    ...options,
  });
}

async function outboxBodies(store: MemoryStateStore): Promise<string[]> {
  return (await store.outbox(1_000)).map((record) => decoder.decode(record.value.value));
}

describe('outbox drainer', () => {
  test('delivers each route’s records in commit order and acknowledges them', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const seen: string[] = [];
    const sink = new InProcessSink((record) => {
      seen.push(decoder.decode(record.value.value));
    });
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1', 'o2');
    await emit(store, 'shop/orders', 'o3');
    egress.wake();
    await egress.drained();
    assert.deepEqual(seen, ['o1', 'o2', 'o3']);
    assert.deepEqual(await outboxBodies(store), []);
    assert.equal(egress.stats().delivered, 3);
    await egress.close();
  });

  test('a failing sink is retried with backoff, and nothing is acknowledged until it succeeds', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    sink.failing = true;
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1', 'o2');
    egress.wake();
    await settle();
    assert.equal(sink.attempts.length, 1);
    assert.deepEqual(await outboxBodies(store), ['o1', 'o2']);
    assert.equal(clock.nextTimerInMs, 100);

    await clock.advanceAsync(99);
    assert.equal(sink.attempts.length, 1, 'no retry before the backoff delay');
    await clock.advanceAsync(1);
    assert.equal(sink.attempts.length, 2);
    assert.deepEqual(await outboxBodies(store), ['o1', 'o2']);
    assert.equal(egress.stats().backingOff, 1);

    sink.failing = false;
    await clock.advanceAsync(199);
    assert.equal(sink.attempts.length, 2, 'the second delay doubles');
    await clock.advanceAsync(1);
    assert.deepEqual(sink.attempts, [
      ['o1', 'o2'],
      ['o1', 'o2'],
      ['o1', 'o2'],
    ]);
    assert.deepEqual(await outboxBodies(store), []);
    const stats = egress.stats();
    assert.equal(stats.failures, 2);
    assert.equal(stats.retries, 2);
    assert.equal(stats.delivered, 2);
    assert.equal(stats.backingOff, 0);
    await egress.close();
  });

  test('a delivery failure is published on weft:runtime:egress-failure and logged', async () => {
    const events: EgressFailureEvent[] = [];
    const unsubscribe = subscribeDiagnostics('weft:runtime:egress-failure', (event) => {
      events.push(event as EgressFailureEvent);
    });
    try {
      const store = new MemoryStateStore();
      const clock = new FakeClock();
      const logger = new RecordingLogger();
      const sink = new ScriptedSink();
      sink.failing = true;
      const egress = drainer(store, clock, { 'shop/orders': sink }, { logger });
      await emit(store, 'shop/orders', 'o1');
      egress.wake();
      await settle();
      const failure = events.find((event) => event.route === 'shop/orders');
      assert.ok(failure);
      assert.equal(failure.kind, 'delivery-failed');
      assert.equal(failure.attempt, 1);
      assert.equal(failure.retryInMs, 100);
      assert.match((failure.error as Error).message, /destination down/);
      assert.match(
        logger.lines[0]?.message ?? '',
        /egress delivery to shop\/orders failed; retrying in 100 ms/,
      );
      await egress.close();
    } finally {
      unsubscribe();
    }
  });

  test('a failing route does not hold up the others, even behind a backlog wider than a batch', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const broken = new ScriptedSink();
    broken.failing = true;
    const healthy = new ScriptedSink();
    const egress = drainer(store, clock, { 'shop/orders': broken, 'shop/mails': healthy }, { batchSize: 4 });
    await emit(store, 'shop/orders', ...Array.from({ length: 10 }, (_, i) => `o${i}`));
    await emit(store, 'shop/mails', 'm1');
    egress.wake();
    await settle();
    assert.deepEqual(healthy.delivered, ['m1']);

    // Later records of the healthy route go out while the broken one still backs off.
    await emit(store, 'shop/mails', 'm2');
    egress.wake();
    await clock.advanceAsync(100);
    assert.deepEqual(healthy.delivered, ['m1', 'm2']);
    assert.equal((await outboxBodies(store)).length, 10, 'the broken route’s records all stay');
    assert.equal(egress.stats().delivered, 2);
    await egress.close();
  });

  test('records for an egress with no route are counted, logged once and kept', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const logger = new RecordingLogger();
    const sink = new ScriptedSink();
    const egress = drainer(store, clock, { 'shop/orders': sink }, { logger });
    await emit(store, 'shop/unknown', 'u1', 'u2');
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    await emit(store, 'shop/unknown', 'u3');
    egress.wake();
    await clock.advanceAsync(100);

    assert.deepEqual(sink.delivered, ['o1']);
    assert.deepEqual(await outboxBodies(store), ['u1', 'u2', 'u3']);
    assert.equal(egress.stats().unroutable, 3);
    const unroutableLines = logger.lines.filter((line) => line.message.includes('shop/unknown'));
    assert.equal(unroutableLines.length, 1);
    assert.match(unroutableLines[0]?.message ?? '', /have no route.*kept in the outbox/);
    await egress.close();
  });

  test('a head window of only unroutable records stalls the drainer on a backoff, without spinning', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const logger = new RecordingLogger();
    let reads = 0;
    const outbox = store.outbox.bind(store);
    store.outbox = (limit) => {
      reads += 1;
      return outbox(limit);
    };
    const sink = new ScriptedSink();
    const egress = drainer(store, clock, { 'shop/orders': sink }, { logger, batchSize: 2, maxReadWindow: 4 });
    await emit(store, 'shop/unknown', 'u1', 'u2', 'u3', 'u4');
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    assert.deepEqual(sink.attempts, [], 'the routable record is behind the widest window');
    assert.ok(logger.lines.some((line) => /outbox is stalled/.test(line.message)));

    const readsWhenStalled = reads;
    for (let i = 0; i < 10; i++) egress.wake();
    await settle();
    assert.equal(reads, readsWhenStalled, 'commits do not make a stalled drainer read');
    assert.equal(clock.nextTimerInMs, 100);
    await clock.advanceAsync(100);
    assert.equal(reads, readsWhenStalled + 1);
    assert.equal(clock.nextTimerInMs, 200, 'and it waits longer each time');

    // Once the head moves (here, acknowledged by hand), the records behind it go out.
    await store.acknowledgeOutbox((await store.outbox(4)).map((record) => record.seq));
    await clock.advanceAsync(200);
    assert.deepEqual(sink.delivered, ['o1']);
    await egress.close();
  });

  test('reads are coalesced: wakes during a read make one more read, not one each', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const held = deferred();
    const counted = { reads: 0 };
    const readsSoFar = (): number => counted.reads;
    const outbox = store.outbox.bind(store);
    store.outbox = async (limit) => {
      counted.reads += 1;
      await held.promise;
      return outbox(limit);
    };
    const sink = new ScriptedSink();
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    for (let i = 0; i < 10; i++) egress.wake();
    await settle();
    assert.equal(readsSoFar(), 1);
    held.resolve();
    await egress.drained();
    await settle();
    // The held read, the one the nine wakes asked for, and at most one after the delivery.
    assert.ok(readsSoFar() <= 3, `${readsSoFar()} reads`);
    assert.deepEqual(sink.attempts, [['o1']]);
    await egress.close();
  });

  test('drained() waits for records committed before it was called', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    sink.failing = true;
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    let drained = false;
    const waiting = egress.drained().then(() => {
      drained = true;
    });
    await settle();
    assert.equal(drained, false);
    sink.failing = false;
    await clock.advanceAsync(100);
    await waiting;
    assert.deepEqual(sink.delivered, ['o1']);
    await egress.close();
  });

  test('drained() gives up when its signal aborts, and rejects when the drainer closes', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const egress = drainer(store, clock, {});
    await emit(store, 'shop/unknown', 'u1');
    const controller = new AbortController();
    const aborted = egress.drained({ signal: controller.signal });
    controller.abort(new Error('flush took too long'));
    await assert.rejects(aborted, /flush took too long/);
    const pending = egress.drained();
    await egress.close();
    await assert.rejects(pending, { code: 'WEFT_CLOSED' });
  });

  test('close waits for the delivery in flight, acknowledges it, and then closes the sinks', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const release = deferred();
    const seen: string[] = [];
    const sink = new InProcessSink(async (record) => {
      await release.promise;
      seen.push(decoder.decode(record.value.value));
    });
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    assert.equal(egress.stats().inFlight, 1);

    let closed = false;
    const closing = egress.close().then(() => {
      closed = true;
    });
    await settle();
    assert.equal(closed, false);
    release.resolve();
    await closing;
    assert.deepEqual(seen, ['o1']);
    assert.deepEqual(await outboxBodies(store), []);
    await assert.rejects(sink.deliver([]), { code: 'WEFT_CLOSED' });
  });

  test('close neither retries a failed route nor waits for its backoff', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    sink.failing = true;
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    await egress.close();
    assert.equal(clock.pendingTimers, 0);
    assert.equal(sink.closed, true);
    assert.deepEqual(await outboxBodies(store), ['o1'], 'the record stays for the next start');
  });

  test('close with an aborted signal stops waiting for a delivery that does not end', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const sink = new InProcessSink(() => new Promise<void>(() => undefined));
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    await egress.close({ signal: AbortSignal.abort() });
    assert.deepEqual(await outboxBodies(store), ['o1']);
  });

  test('a store that fails a read is read again after a backoff', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const outbox = store.outbox.bind(store);
    let failNext = true;
    store.outbox = (limit) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('connection reset'));
      }
      return outbox(limit);
    };
    const sink = new ScriptedSink();
    const egress = drainer(store, clock, { 'shop/orders': sink });
    await emit(store, 'shop/orders', 'o1');
    egress.wake();
    await settle();
    assert.equal(egress.stats().storeFailures, 1);
    assert.deepEqual(sink.attempts, []);
    await clock.advanceAsync(100);
    assert.deepEqual(sink.delivered, ['o1']);
    await egress.close();
  });

  test('a route that is not namespace/type is refused at construction', () => {
    const store = new MemoryStateStore();
    assert.throws(() => drainer(store, new FakeClock(), { orders: new ScriptedSink() }), {
      code: 'WEFT_INVALID_CONFIG',
    });
  });
});
