import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError, WeftError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import {
  EventStreamError,
  isTerminalViewError,
  Materializer,
  MaterializerStoppedError,
  SubscriberTooSlowError,
  UnauthorizedError,
  UnknownTopicError,
  ViewStaleError,
  type MaterializerOptions,
  type StreamItem,
} from '../../src/views/index.ts';
import { event, FakeSource, RecordingView, watch } from './fake-source.ts';

type Options = Partial<MaterializerOptions<string, readonly string[]>>;

/** A running materializer over a fake source, on a fake clock, with no jitter unless asked. */
function start(options: Options = {}) {
  const clock = new FakeClock();
  const fake = new FakeSource<string>(clock);
  const view = new RecordingView();
  const materializer = new Materializer<string, readonly string[]>({
    source: fake.source,
    request: { topic: 't', subject: 's', token: 'secret' },
    view,
    clock,
    random: () => 0,
    ...options,
  });
  const controller = new AbortController();
  const running = materializer.run(controller.signal);
  return {
    clock,
    fake,
    view,
    materializer,
    controller,
    running,
    /** Lets every queued item and promise continuation run, without moving time. */
    settle: () => clock.advanceAsync(0),
    async stop(): Promise<void> {
      controller.abort();
      await running;
    },
  };
}

/** Runs the clock timer by timer (settling in between) until `done()` holds. */
async function driveUntil(clock: FakeClock, done: () => boolean): Promise<void> {
  for (let step = 0; step < 1_000; step++) {
    await clock.advanceAsync(0);
    if (done()) return;
    assert.ok(await clock.runNext(), 'nothing left to run');
  }
  assert.fail('did not get there in 1000 timers');
}

describe('Materializer.fetch', () => {
  test('a fetch below the view index returns at once, marked cached', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const result = await m.materializer.fetch({ minIndex: 4 });
    assert.deepEqual(result, { index: 5, value: ['a'], cached: true, generation: 'g1' });
    await m.stop();
  });

  test('a fetch blocks while minIndex is not passed, even after batches at lower and equal indexes', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 7 }));
    m.fake.current.batch(6, event('b'));
    await m.settle();
    assert.equal(waiting.state, 'pending', 'index 6 is below 7');
    m.fake.current.batch(7, event('c'));
    await m.settle();
    assert.equal(waiting.state, 'pending', 'index 7 is not above 7');
    m.fake.current.batch(8, event('d'));
    await m.settle();
    assert.deepEqual(waiting.value, {
      index: 8,
      value: ['a', 'b', 'c', 'd'],
      cached: false,
      generation: 'g1',
    });
    await m.stop();
  });

  test('returnIfBehind: a minIndex ahead of the view gets the lower index at once, or with the first snapshot', async () => {
    const m = start();
    const early = watch(m.materializer.fetch({ minIndex: 50, returnIfBehind: true }));
    const consul = watch(m.materializer.fetch({ minIndex: 50 }));
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    assert.deepEqual(early.value, { index: 5, value: ['a'], cached: false, generation: 'g1' });
    assert.equal(consul.state, 'pending', 'without it, a minIndex ahead is waited for, as in Consul');
    assert.deepEqual(await m.materializer.fetch({ minIndex: 50, returnIfBehind: true }), {
      index: 5,
      value: ['a'],
      cached: true,
      generation: 'g1',
    });
    const atIndex = watch(m.materializer.fetch({ minIndex: 5, returnIfBehind: true }));
    await m.settle();
    assert.equal(atIndex.state, 'pending', 'at the index the caller holds, it waits for the next');
    m.fake.current.batch(6, event('b'));
    await m.settle();
    assert.equal(atIndex.value?.index, 6);
    assert.equal(consul.state, 'pending');
    await m.stop();
    assert.equal(consul.state, 'rejected');
  });

  test('minIndex 0 always waits for the first snapshot, then returns the latest at once', async () => {
    const m = start();
    const first = watch(m.materializer.fetch({ minIndex: 0 }));
    m.fake.current.push({ kind: 'events', index: 3, events: [event('a')] });
    await m.settle();
    assert.equal(first.state, 'pending', 'the snapshot is not complete');
    m.fake.current.push({ kind: 'end-of-snapshot', index: 3, generation: 'g1' });
    await m.settle();
    assert.deepEqual(first.value, { index: 3, value: ['a'], cached: false, generation: 'g1' });
    m.fake.current.batch(4, event('b'));
    await m.settle();
    assert.deepEqual(await m.materializer.fetch(), {
      index: 4,
      value: ['a', 'b'],
      cached: true,
      generation: 'g1',
    });
    await m.stop();
  });

  test('a timeout returns the last value with its index, not an error', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 5, timeoutMs: 30_000 }));
    await m.clock.advanceAsync(29_999);
    assert.equal(waiting.state, 'pending');
    await m.clock.advanceAsync(1);
    assert.deepEqual(waiting.value, { index: 5, value: ['a'], cached: false, generation: 'g1' });
    assert.equal(m.materializer.stats().waiters, 0);
    await m.stop();
  });

  test('a timeout before the first snapshot returns index 0 and the empty view', async () => {
    const m = start();
    const waiting = watch(m.materializer.fetch({ timeoutMs: 1_000 }));
    await m.clock.advanceAsync(1_000);
    assert.equal(waiting.state, 'fulfilled');
    assert.equal(waiting.value?.index, 0);
    assert.deepEqual(waiting.value.value, []);
    await m.stop();
  });

  test('a fetch answered before its timeout leaves no timer behind', async () => {
    const m = start();
    const waiting = watch(m.materializer.fetch({ timeoutMs: 60_000 }));
    assert.equal(m.clock.pendingTimers, 1);
    m.fake.current.snapshot(2, 'g1');
    await m.settle();
    assert.equal(waiting.state, 'fulfilled');
    assert.equal(m.clock.pendingTimers, 0);
    await m.stop();
  });

  test('aborting a fetch rejects it with the reason and forgets the waiter', async () => {
    const m = start();
    const controller = new AbortController();
    const waiting = watch(m.materializer.fetch({ signal: controller.signal }));
    assert.equal(m.materializer.stats().waiters, 1);
    controller.abort(new Error('caller left'));
    await m.settle();
    assert.equal(waiting.state, 'rejected');
    assert.match((waiting.error as Error).message, /caller left/);
    assert.equal(m.materializer.stats().waiters, 0);
    await m.stop();
  });

  test('one value per index is shared by every caller: result() is asked once', async () => {
    const m = start();
    const waiters = [watch(m.materializer.fetch()), watch(m.materializer.fetch())];
    m.fake.current.snapshot(2, 'g1', [event('a')]);
    await m.settle();
    await m.materializer.fetch();
    assert.equal(waiters[0]?.value?.value, waiters[1]?.value?.value);
    assert.deepEqual(m.view.resultIndexes, [2]);
    await m.stop();
  });

  test('a bad minIndex or timeout is refused', async () => {
    const m = start();
    await assert.rejects(m.materializer.fetch({ minIndex: -1 }), TypeError);
    await assert.rejects(m.materializer.fetch({ timeoutMs: Number.NaN }), TypeError);
    assert.throws(
      () =>
        new Materializer({ source: m.fake.source, request: { topic: 't' }, view: m.view, terminalAfter: 0 }),
      ConfigError,
    );
    await m.stop();
  });
});

describe('Materializer state machine', () => {
  test('the first subscription asks for a snapshot; a resubscription resumes at the index and generation it holds', async () => {
    const m = start();
    assert.deepEqual(m.fake.requests[0], {
      topic: 't',
      subject: 's',
      token: 'secret',
      index: 0,
      generation: undefined,
    });
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    m.fake.current.fail(new EventStreamError('link down'));
    await m.settle();
    assert.deepEqual(m.fake.requests[1], {
      topic: 't',
      subject: 's',
      token: 'secret',
      index: 5,
      generation: 'g1',
    });
    await m.stop();
  });

  test('new-snapshot-to-follow resets the view and the following snapshot is applied whole', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a'), event('b')]);
    await m.settle();
    m.fake.current.fail(new EventStreamError('link down'));
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 5 }));
    m.fake.current.push({ kind: 'new-snapshot-to-follow' });
    await m.settle();
    assert.equal(m.view.resets, 1);
    assert.equal(m.materializer.index, 0);
    m.fake.current.push({ kind: 'events', index: 9, events: [event('c')] });
    m.fake.current.push({ kind: 'events', index: 9, events: [event('d')] });
    await m.settle();
    assert.equal(m.view.updates.length, 1, 'nothing applied before end-of-snapshot');
    m.fake.current.push({ kind: 'end-of-snapshot', index: 9, generation: 'g2' });
    await m.settle();
    assert.deepEqual(m.view.updates.at(-1), [event('c'), event('d')]);
    assert.deepEqual(waiting.value, { index: 9, value: ['c', 'd'], cached: false, generation: 'g2' });
    // The next resumption uses the new generation.
    m.fake.current.fail(new EventStreamError('link down'));
    await m.settle();
    assert.equal(m.fake.current.request.generation, 'g2');
    assert.equal(m.fake.current.request.index, 9);
    await m.stop();
  });

  test('a failure in the middle of a new snapshot resubscribes at index 0', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    m.fake.current.fail(new EventStreamError('link down'));
    await m.settle();
    m.fake.current.push(
      { kind: 'new-snapshot-to-follow' },
      { kind: 'events', index: 8, events: [event('x')] },
    );
    m.fake.current.fail(new EventStreamError('link down again'));
    await m.clock.advanceAsync(200);
    assert.equal(m.fake.streams.length, 3);
    assert.equal(m.fake.current.request.index, 0);
    assert.equal(m.fake.current.request.generation, undefined);
    await m.stop();
  });

  test('an empty snapshot still yields its index', async () => {
    const m = start();
    const waiting = watch(m.materializer.fetch());
    m.fake.current.snapshot(4, 'g1');
    await m.settle();
    assert.deepEqual(waiting.value, { index: 4, value: [], cached: false, generation: 'g1' });
    assert.deepEqual(m.view.updates, [[]]);
    await m.stop();
  });

  test('framing items never reach View.update', async () => {
    const m = start();
    m.fake.current.snapshot(3, 'g1', [event('a')], [event('b')]).batch(4, event('c'));
    await m.settle();
    m.fake.current.fail(new EventStreamError('link down'));
    await m.settle();
    m.fake.current.push({ kind: 'new-snapshot-to-follow' });
    m.fake.current.snapshot(6, 'g2', [event('d')]).batch(7, event('e'), event('f'));
    await m.settle();
    assert.deepEqual(m.view.updates, [
      [event('a'), event('b')],
      [event('c')],
      [event('d')],
      [event('e'), event('f')],
    ]);
    for (const update of m.view.updates) {
      for (const e of update) assert.deepEqual(Object.keys(e).sort(), ['payload', 'subject']);
    }
    await m.stop();
  });

  test('a snapshot in several chunks is applied as one update at end-of-snapshot', async () => {
    const m = start();
    const waiting = watch(m.materializer.fetch());
    for (const p of ['a', 'b', 'c']) m.fake.current.push({ kind: 'events', index: 10, events: [event(p)] });
    await m.settle();
    assert.deepEqual(m.view.updates, []);
    assert.equal(waiting.state, 'pending');
    m.fake.current.push({ kind: 'end-of-snapshot', index: 10, generation: 'g1' });
    await m.settle();
    assert.deepEqual(m.view.updates, [[event('a'), event('b'), event('c')]]);
    assert.equal(waiting.value?.index, 10);
    await m.stop();
  });

  test('a snapshot above maxSnapshotEvents is refused and counted', async () => {
    const m = start({ maxSnapshotEvents: 2 });
    m.fake.current.push({ kind: 'events', index: 10, events: [event('a'), event('b')] });
    m.fake.current.push({ kind: 'events', index: 10, events: [event('c')] });
    await m.settle();
    assert.equal(m.materializer.stats().refusedSnapshots, 1);
    assert.deepEqual(m.view.updates, []);
    assert.equal(m.fake.streams.length, 2, 'it resubscribed');
    await m.stop();
  });

  test('each batch is applied atomically, as one update', async () => {
    const m = start();
    m.fake.current.snapshot(1, 'g1');
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 1 }));
    m.fake.current.batch(2, event('a'), event('b'), event('c'));
    m.fake.current.batch(3, event('d'));
    await m.settle();
    assert.deepEqual(m.view.updates, [[], [event('a'), event('b'), event('c')], [event('d')]]);
    assert.deepEqual(waiting.value?.value, ['a', 'b', 'c']);
    await m.stop();
  });

  test('a View.update that throws resets the view and the materializer resubscribes at index 0', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 5 }));
    m.view.failOn = (events) => events.some((e) => e.payload === 'poison');
    m.fake.current.batch(6, event('b'), event('poison'));
    await m.settle();
    assert.equal(m.view.resets, 1);
    assert.equal(m.materializer.stats().resets, 1);
    assert.equal(m.materializer.index, 0);
    assert.equal(m.fake.streams.length, 2);
    assert.equal(m.fake.current.request.index, 0);
    assert.equal(m.fake.current.request.generation, undefined);
    assert.equal(waiting.state, 'pending', 'the first failure is not shown');
    // A caller arriving now waits for the rebuilt view rather than reading the half-applied one.
    const fresh = watch(m.materializer.fetch());
    m.view.failOn = undefined;
    m.fake.current.snapshot(6, 'g1', [event('a'), event('b'), event('poison')]);
    await m.settle();
    assert.deepEqual(waiting.value, {
      index: 6,
      value: ['a', 'b', 'poison'],
      cached: false,
      generation: 'g1',
    });
    assert.equal(fresh.value?.index, 6);
    await m.stop();
  });

  test('a ViewStaleError from the source resets the view and resubscribes for a snapshot', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    m.fake.current.fail(new ViewStaleError('acl changed'));
    await m.settle();
    assert.equal(m.view.resets, 1);
    assert.equal(m.materializer.index, 0);
    assert.equal(m.fake.current.request.index, 0);
    // The same over the grid, where only the code survives.
    m.fake.current.snapshot(6, 'g2', [event('b')]);
    await m.settle();
    m.fake.current.fail(new WeftError(ViewStaleError.code, 'stale, from a peer', true));
    await m.clock.advanceAsync(0);
    assert.equal(m.view.resets, 2);
    assert.equal(m.fake.current.request.index, 0);
    await m.stop();
  });

  test('a rebuilt view wakes a waiter even at an index it had already seen', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 5 }));
    m.fake.current.fail(new ViewStaleError('restore'));
    await m.settle();
    m.fake.current.snapshot(3, 'g2', [event('z')]);
    await m.settle();
    assert.deepEqual(waiting.value, { index: 3, value: ['z'], cached: false, generation: 'g2' });
    await m.stop();
  });

  for (const [name, items] of [
    ['end-of-snapshot while resuming', [{ kind: 'end-of-snapshot', index: 6, generation: 'g1' }]],
    ['a batch at an index the view already holds', [{ kind: 'events', index: 5, events: [event('b')] }]],
    ['an unknown item kind', [{ kind: 'heartbeat' }]],
  ] as const) {
    test(`out-of-order framing is an EventStreamError: ${name}`, async () => {
      const m = start();
      m.fake.current.snapshot(5, 'g1', [event('a')]);
      await m.settle();
      // The first failure is hidden; the framing error is the second, so waiters see it.
      m.fake.current.fail(new EventStreamError('link down'));
      await m.settle();
      const waiting = watch(m.materializer.fetch({ minIndex: 5 }));
      m.fake.current.push(...(items as unknown as StreamItem<string>[]));
      await m.settle();
      assert.equal(waiting.state, 'rejected');
      assert.ok(waiting.error instanceof EventStreamError);
      assert.notEqual(waiting.error.message, 'link down');
      assert.equal(m.materializer.index, 5, 'nothing was applied');
      assert.equal(m.view.resets, 0);
      await m.stop();
    });
  }

  for (const [name, framing] of [
    ['new-snapshot-to-follow while streaming', { kind: 'new-snapshot-to-follow' }],
    ['end-of-snapshot while streaming', { kind: 'end-of-snapshot', index: 7, generation: 'g2' }],
  ] as const) {
    test(`out-of-order framing is an EventStreamError: ${name}`, async () => {
      const m = start();
      m.fake.current.snapshot(5, 'g1', [event('a')]).batch(6, event('b'));
      m.fake.current.push(framing);
      await m.settle();
      // Just after a good update the failure is hidden; it shows as a resumption that ignored the item.
      assert.equal(m.materializer.stats().failures, 1);
      assert.equal(m.view.resets, 0, 'the view was not reset');
      assert.equal(m.materializer.index, 6);
      assert.deepEqual(m.view.updates, [[event('a')], [event('b')]]);
      assert.equal(m.fake.streams.length, 2);
      assert.equal(m.fake.current.request.index, 6);
      assert.equal(m.fake.current.request.generation, 'g1');
      // The same again, now the second failure in a row, reaches a waiter as an EventStreamError.
      const waiting = watch(m.materializer.fetch({ minIndex: 6 }));
      m.fake.current.push(
        framing.kind === 'end-of-snapshot'
          ? framing
          : { kind: 'end-of-snapshot', index: 7, generation: 'g2' },
      );
      await m.settle();
      assert.ok(waiting.error instanceof EventStreamError);
      await m.stop();
    });
  }

  test('new-snapshot-to-follow in answer to a fresh subscription is an EventStreamError', async () => {
    const m = start();
    m.fake.current.push({ kind: 'new-snapshot-to-follow' });
    await m.settle();
    assert.equal(m.materializer.stats().failures, 1);
    assert.equal(m.fake.streams.length, 2);
    m.fake.current.push({ kind: 'new-snapshot-to-follow' });
    const waiting = watch(m.materializer.fetch());
    await m.settle();
    assert.ok(waiting.error instanceof EventStreamError);
    await m.stop();
  });

  test('a stream that ends without an error is a failure: the materializer resubscribes', async () => {
    const m = start();
    m.fake.current.snapshot(2, 'g1');
    await m.settle();
    m.fake.current.end();
    await m.settle();
    assert.equal(m.fake.streams.length, 2);
    assert.equal(m.fake.current.request.index, 2);
    await m.stop();
  });
});

describe('Materializer errors and retries', () => {
  test('the first temporary error is hidden from waiters, the second surfaced, and a good update clears it', async () => {
    const m = start();
    m.fake.current.snapshot(5, 'g1', [event('a')]);
    await m.settle();
    const waiting = watch(m.materializer.fetch({ minIndex: 5 }));
    const first = new SubscriberTooSlowError('t');
    m.fake.current.fail(first);
    await m.settle();
    assert.equal(waiting.state, 'pending', 'the first failure is hidden');
    assert.equal(m.fake.streams.length, 2, 'and retried at once');
    const second = new EventStreamError('still broken');
    m.fake.current.fail(second);
    await m.settle();
    assert.equal(waiting.state, 'rejected');
    assert.equal(waiting.error, second);
    // Retried after 200 ms; a good update clears the error and answers the next waiter.
    const next = watch(m.materializer.fetch({ minIndex: 5 }));
    await m.clock.advanceAsync(199);
    assert.equal(m.fake.streams.length, 2);
    await m.clock.advanceAsync(1);
    assert.equal(m.fake.streams.length, 3);
    m.fake.current.batch(6, event('b'));
    await m.settle();
    assert.deepEqual(next.value, { index: 6, value: ['a', 'b'], cached: false, generation: 'g1' });
    // After the good update the next failure is the first again: hidden, and retried at once.
    const after = watch(m.materializer.fetch({ minIndex: 6 }));
    m.fake.current.fail(new EventStreamError('blip'));
    await m.settle();
    assert.equal(after.state, 'pending');
    assert.equal(m.fake.streams.length, 4);
    await m.stop();
  });

  /** When each of the first `count` subscriptions happened, every one failing at once. */
  async function resubscriptionTimes(random: () => number, count: number): Promise<number[]> {
    const m = start({ random });
    m.fake.onSubscribe = (stream) => {
      stream.fail(new EventStreamError('down'));
    };
    m.fake.current.fail(new EventStreamError('down'));
    await driveUntil(m.clock, () => m.fake.streams.length === count);
    await m.stop();
    return m.fake.streams.map((stream) => stream.atMs);
  }

  function gaps(times: readonly number[]): number[] {
    return times.slice(1).map((at, i) => at - (times[i] as number));
  }

  test('retry delays: none after the first failure, then 200 ms doubling, capped at 60 s', async () => {
    const times = await resubscriptionTimes(() => 0, 14);
    assert.deepEqual(
      gaps(times),
      [0, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000, 60_000, 60_000],
    );
  });

  test('retry jitter adds 0-100 % after the cap', async () => {
    assert.deepEqual(
      gaps(await resubscriptionTimes(() => 0.5, 13)),
      [0, 300, 600, 1_200, 2_400, 4_800, 9_600, 19_200, 38_400, 76_800, 90_000, 90_000],
    );
    const highest = gaps(await resubscriptionTimes(() => 0.999_999, 13));
    assert.equal(highest[0], 0);
    assert.equal(highest[1], 399);
    assert.equal(highest.at(-1), 119_999);
  });

  test('a good update starts the retry delays over', async () => {
    const m = start();
    m.fake.onSubscribe = (stream) => {
      stream.fail(new EventStreamError('down'));
    };
    m.fake.current.fail(new EventStreamError('down'));
    await driveUntil(m.clock, () => m.fake.streams.length === 5);
    m.fake.onSubscribe = (stream) => {
      stream.snapshot(2, 'g1');
    };
    await m.clock.runNext();
    await m.settle();
    assert.equal(m.materializer.index, 2);
    const before = m.fake.streams.length;
    const at = m.clock.now();
    m.fake.onSubscribe = undefined;
    m.fake.current.fail(new EventStreamError('down'));
    await m.settle();
    assert.equal(m.fake.streams.length, before + 1);
    assert.equal(m.fake.current.atMs, at, 'retried without waiting');
    await m.stop();
  });

  test('a terminal error stops the materializer after terminalAfter in a row; every waiter hears it once', async () => {
    const m = start();
    const early = watch(m.materializer.fetch());
    m.fake.current.fail(new UnknownTopicError('t'));
    await m.settle();
    assert.equal(early.state, 'pending', 'the first is hidden');
    assert.equal(m.fake.streams.length, 2);
    m.fake.current.fail(new UnknownTopicError('t'));
    await m.settle();
    assert.ok(early.error instanceof UnknownTopicError, 'the second is surfaced');
    const late = watch(m.materializer.fetch());
    await m.clock.advanceAsync(200);
    assert.equal(m.fake.streams.length, 3);
    assert.equal(late.state, 'pending');
    m.fake.current.fail(new UnknownTopicError('t'));
    await m.running;
    await m.settle();
    assert.ok(late.error instanceof UnknownTopicError);
    assert.ok(m.materializer.stoppedBy instanceof UnknownTopicError);
    assert.equal(m.materializer.stats().waiters, 0);
    // Later fetches fail at once; nothing resubscribes.
    const after = watch(m.materializer.fetch({ minIndex: 0, timeoutMs: 1_000 }));
    await m.settle();
    assert.ok(after.error instanceof UnknownTopicError);
    await m.clock.advanceAsync(600_000);
    assert.equal(m.fake.streams.length, 3);
    assert.equal(m.clock.pendingTimers, 0);
  });

  test('with terminalAfter 1 the first terminal error stops it and reaches the waiters, though first errors are hidden', async () => {
    const m = start({ terminalAfter: 1 });
    const waiting = watch(m.materializer.fetch());
    m.fake.current.fail(new UnauthorizedError('token deleted'));
    await m.running;
    await m.settle();
    assert.ok(waiting.error instanceof UnauthorizedError);
    assert.equal(m.fake.streams.length, 1);
  });

  test('a grid-style error carrying only a terminal code is terminal too', async () => {
    const fromPeer = new WeftError(UnauthorizedError.code, 'not authorized (from a peer)', false);
    assert.equal(isTerminalViewError(fromPeer), true);
    assert.equal(isTerminalViewError(new WeftError(UnknownTopicError.code, 'gone', false)), true);
    assert.equal(isTerminalViewError(new UnknownTopicError('t')), true);
    assert.equal(isTerminalViewError(new UnauthorizedError()), true);
    assert.equal(isTerminalViewError(new ViewStaleError()), false);
    assert.equal(isTerminalViewError(new SubscriberTooSlowError('t')), false);
    assert.equal(isTerminalViewError(new Error(UnauthorizedError.code)), false);
    assert.equal(isTerminalViewError({ code: UnauthorizedError.code }), false);

    const m = start({ terminalAfter: 2 });
    const waiting = watch(m.materializer.fetch());
    m.fake.onSubscribe = (stream) => {
      stream.fail(fromPeer);
    };
    m.fake.current.fail(fromPeer);
    await driveUntil(m.clock, () => m.materializer.stoppedBy !== undefined);
    await m.running;
    assert.equal(m.materializer.stoppedBy, fromPeer);
    assert.equal(waiting.error, fromPeer);
    await assert.rejects(m.materializer.fetch(), (error: unknown) => error === fromPeer);
  });

  test('a non-terminal failure between terminal ones starts the count over', async () => {
    const m = start();
    const script = [
      new UnknownTopicError('t'),
      new UnknownTopicError('t'),
      new EventStreamError('peer restarting'),
      new UnknownTopicError('t'),
      new UnknownTopicError('t'),
      new UnknownTopicError('t'),
    ];
    m.fake.onSubscribe = (stream) => {
      stream.fail(script[m.fake.streams.length - 1]);
    };
    m.fake.current.fail(script[0]);
    await driveUntil(m.clock, () => m.materializer.stoppedBy !== undefined);
    await m.running;
    assert.equal(m.fake.streams.length, 6);
    assert.ok(m.materializer.stoppedBy instanceof UnknownTopicError);
  });

  test('a good update between terminal failures starts the count over', async () => {
    const m = start();
    // Not found, found (a snapshot), not found, found, not found: never three in a row.
    const script: ((stream: (typeof m.fake.streams)[number]) => void)[] = [
      (s) => {
        s.fail(new UnknownTopicError('t'));
      },
      (s) => {
        s.snapshot(2, 'g1');
        s.fail(new UnknownTopicError('t'));
      },
      (s) => {
        s.fail(new UnknownTopicError('t'));
      },
      (s) => {
        s.push({ kind: 'new-snapshot-to-follow' });
        s.snapshot(3, 'g2');
        s.fail(new UnknownTopicError('t'));
      },
      (s) => {
        s.fail(new UnknownTopicError('t'));
      },
    ];
    m.fake.onSubscribe = (stream) => {
      script[m.fake.streams.length - 1]?.(stream);
    };
    script[0]?.(m.fake.current);
    await driveUntil(m.clock, () => m.fake.streams.length === 6);
    assert.equal(m.materializer.stoppedBy, undefined);
    assert.equal(m.materializer.index, 3);
    await m.stop();
  });

  test('aborting run stops the materializer: waiters and later fetches get MaterializerStoppedError', async () => {
    const m = start();
    const waiting = watch(m.materializer.fetch());
    m.controller.abort();
    await m.running;
    await m.settle();
    assert.ok(waiting.error instanceof MaterializerStoppedError);
    await assert.rejects(m.materializer.fetch(), MaterializerStoppedError);
    assert.ok(m.fake.current.signal.aborted, 'the subscription was told to stop');
    await assert.rejects(m.materializer.run(new AbortController().signal), /runs once/);
  });

  test('aborting run while it waits to retry stops it at once', async () => {
    const m = start();
    m.fake.onSubscribe = (stream) => {
      stream.fail(new EventStreamError('down'));
    };
    m.fake.current.fail(new EventStreamError('down'));
    await m.settle();
    await m.settle();
    assert.equal(m.clock.pendingTimers, 1, 'waiting 200 ms to retry');
    m.controller.abort();
    await m.running;
    assert.equal(m.clock.pendingTimers, 0);
    assert.equal(m.fake.streams.length, 2);
  });
});
