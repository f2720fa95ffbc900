// Failure cases a view must survive without crashing, leaking or going quiet: a View whose
// result throws, sources and snapshots that ignore their AbortSignal, subscribers that give
// up on an idle topic, and a topic reset or a publisher restart seen by notify.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { linkSignals } from '../../src/internal/abort.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import {
  deleteEvent,
  EventPublisher,
  ListView,
  MapView,
  Materializer,
  MaterializerStoppedError,
  putEvent,
  ViewStore,
  type EventSource,
  type MapChange,
  type Snapshot,
  type ViewRequest,
  type ViewUpdate,
} from '../../src/views/index.ts';
import { turn } from '../grid/reliability-harness.ts';
import { FakeSource, RecordingView, watch } from './fake-source.ts';

function mapTopic(publisher: EventPublisher, topic: string, state: Map<string, string>): void {
  publisher.registerTopic<MapChange<string>>(topic, {
    snapshot: () => ({
      index: publisher.index(topic),
      events: [...state].map(([key, value]) => putEvent(key, value)),
    }),
  });
}

/** The store request the notify tests share: a MapView over topic `kv`, retried without jitter. */
function kvRequest(
  source: EventSource<MapChange<string>>,
  clock: FakeClock,
): ViewRequest<ReadonlyMap<string, string>> {
  return {
    key: 'kv',
    newMaterializer: () =>
      new Materializer({
        source,
        request: { topic: 'kv' },
        view: new MapView<string>(),
        clock,
        random: () => 0,
      }),
  };
}

/**
 * Notifies on the kv view from `store`, recording each update as `index value-of-k`, and each
 * failure as `error` unless `failures` is false; `stop` aborts the notify and waits for it.
 */
function recordKv(
  store: ViewStore,
  request: ViewRequest<ReadonlyMap<string, string>>,
  failures = true,
): { updates: string[]; stop: () => Promise<void> } {
  const updates: string[] = [];
  const controller = new AbortController();
  const notifying = store.notify(
    request,
    (update: ViewUpdate<ReadonlyMap<string, string>>) => {
      if (update.error === undefined) updates.push(`${update.index} ${update.value?.get('k')}`);
      else if (failures) updates.push('error');
    },
    { signal: controller.signal },
  );
  return {
    updates,
    stop: async () => {
      controller.abort();
      await notifying;
    },
  };
}

describe('views: robustness', () => {
  test('a View whose result throws fails the callers that read it, never the process', async () => {
    const clock = new FakeClock();
    const fake = new FakeSource<MapChange<string>>(clock);
    let sortable = true;
    const materializer = new Materializer({
      source: fake.source,
      request: { topic: 't' },
      view: new ListView<string>({
        compare: (a, b) => {
          if (!sortable) throw new Error('cannot compare');
          return a.localeCompare(b);
        },
      }),
      clock,
      random: () => 0,
    });
    const controller = new AbortController();
    const running = materializer.run(controller.signal);
    await clock.advanceAsync(0);
    fake.current.snapshot(2, 'g', [putEvent('a', 'x'), putEvent('b', 'y')]);
    await clock.advanceAsync(0);
    assert.deepEqual((await materializer.fetch()).value, ['x', 'y']);

    sortable = false;
    // A timeout that reads the value: it rejects this caller (the timer must not throw).
    fake.current.push({ kind: 'events', index: 3, events: [putEvent('c', 'z')] });
    await clock.advanceAsync(0);
    const timedOut = watch(materializer.fetch({ minIndex: 3, timeoutMs: 50 }));
    await clock.advanceAsync(50);
    assert.equal((timedOut.error as Error).message, 'cannot compare');
    // A cached read rejects rather than throwing at the caller.
    const cached = materializer.fetch({ minIndex: 0 });
    assert.ok(cached instanceof Promise);
    await assert.rejects(cached, /cannot compare/);

    // An update that cannot produce its value resets the view: waiters keep waiting for the rebuild.
    const waiting = watch(materializer.fetch({ minIndex: 3 }));
    fake.current.push({ kind: 'events', index: 4, events: [deleteEvent('a')] });
    await clock.advanceAsync(0);
    assert.equal(waiting.state, 'pending', 'nobody got a value that could not be read');
    assert.equal(materializer.index, 0, 'the view was reset');
    sortable = true;
    await clock.advanceAsync(0);
    assert.equal(fake.current.request.index, 0, 'resubscribed for a snapshot');
    fake.current.snapshot(4, 'g', [putEvent('b', 'y'), putEvent('c', 'z')]);
    await clock.advanceAsync(0);
    assert.deepEqual(waiting.value?.value, ['y', 'z']);
    controller.abort();
    await running;
  });

  test('an update that satisfies no waiter does not build the value (it may copy the whole view)', async () => {
    const clock = new FakeClock();
    const fake = new FakeSource<string>(clock);
    const view = new RecordingView();
    const materializer = new Materializer({ source: fake.source, request: { topic: 't' }, view, clock });
    const controller = new AbortController();
    const running = materializer.run(controller.signal);
    await clock.advanceAsync(0);
    fake.current.snapshot(1, 'g', []);
    await clock.advanceAsync(0);
    const later = watch(materializer.fetch({ minIndex: 50 }));
    for (let index = 2; index <= 50; index++)
      fake.current.batch(index, { subject: 's', payload: `${index}` });
    await clock.advanceAsync(0);
    assert.deepEqual(view.resultIndexes, [], 'no value was built for the 49 updates nobody waited for');
    fake.current.batch(51, { subject: 's', payload: '51' });
    await clock.advanceAsync(0);
    assert.equal(later.value?.index, 51);
    assert.deepEqual(view.resultIndexes, [51]);
    controller.abort();
    await running;
  });

  test('a source that ignores its signal does not keep an evicted or closed materializer alive', async () => {
    const clock = new FakeClock();
    // Never yields, never looks at its signal.
    const deaf: EventSource<string> = () => ({
      [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<never>>(() => undefined) }),
    });
    const store = new ViewStore({ clock });
    const request = {
      key: 'deaf',
      newMaterializer: () =>
        new Materializer({ source: deaf, request: { topic: 't' }, view: new RecordingView(), clock }),
    };
    const pending = watch(store.get(request));
    await clock.advanceAsync(0);
    store.close();
    await clock.advanceAsync(0);
    await turn();
    assert.ok(pending.error instanceof MaterializerStoppedError, `got ${String(pending.error)}`);
  });

  test('a snapshot function that hangs does not hold its subscriber past the signal', async () => {
    const publisher = new EventPublisher();
    publisher.registerTopic('slow', { snapshot: () => new Promise<Snapshot<string>>(() => undefined) });
    const controller = new AbortController();
    const subscription = publisher.subscribe({ topic: 'slow' }, { signal: controller.signal });
    const reader = subscription[Symbol.asyncIterator]();
    const first = watch(reader.next());
    await turn();
    assert.equal(publisher.stats().subscriptions, 1);
    controller.abort(new Error('bye'));
    await turn();
    assert.equal((first.error as Error).message, 'bye');
    assert.equal(publisher.stats().subscriptions, 0, 'the subscription ended');
  });

  test('subscribers that give up on an idle topic are released at once, not at its next publish', async () => {
    const publisher = new EventPublisher();
    const state = new Map([['a', '1']]);
    mapTopic(publisher, 'idle', state);
    for (let i = 0; i < 1_000; i++) {
      const controller = new AbortController();
      const subscription = publisher.subscribe({ topic: 'idle' }, { signal: controller.signal });
      const reader = subscription[Symbol.asyncIterator]();
      await reader.next(); // the snapshot
      await reader.next(); // end-of-snapshot
      const live = reader.next();
      controller.abort(new Error('gone'));
      await live.catch(() => undefined);
    }
    assert.equal(publisher.stats().subscriptions, 0);
    assert.equal(publisher.stats().subscriptionsStarted, 1_000);
  });

  test('notify delivers the state a topic reset restores, after failures that were shown', async () => {
    const clock = new FakeClock();
    const publisher = new EventPublisher();
    const state = new Map([['k', 'old']]);
    mapTopic(publisher, 'kv', state);
    let failNext = 0;
    const source: EventSource<MapChange<string>> = (request, signal) => {
      if (failNext > 0) {
        failNext -= 1;
        throw new Error('link down');
      }
      return publisher.subscribe(request, { signal });
    };
    const store = new ViewStore({ clock });
    const request = kvRequest(source, clock);
    const { updates, stop } = recordKv(store, request);
    await clock.advanceAsync(0);
    state.set('k', 'v2');
    publisher.publish('kv', [putEvent('k', 'v2')]);
    await clock.advanceAsync(0);
    // The link drops (hidden), the resubscription fails too (shown), then the topic is restored.
    failNext = 1;
    state.set('k', 'RESTORED');
    publisher.resetTopic('kv', 'restored from a backup');
    await clock.advanceAsync(0);
    await clock.advanceAsync(1_000);
    assert.deepEqual(updates, ['1 old', '2 v2', 'error', '3 RESTORED']);
    await stop();
    store.close();
  });

  test('notify delivers a rebuilt view at a lower index even when a failure was shown between the reset and the snapshot', async () => {
    const clock = new FakeClock();
    const fake = new FakeSource<MapChange<string>>(clock);
    const store = new ViewStore({ clock });
    const request = kvRequest(fake.source, clock);
    const { updates, stop } = recordKv(store, request);
    await clock.advanceAsync(0);
    fake.current.snapshot(6, 'first', [putEvent('k', 'first life')]);
    await clock.advanceAsync(0);
    fake.current.fail(new Error('publisher gone')); // hidden
    await clock.advanceAsync(0);
    assert.equal(fake.current.request.index, 6);
    // The restarted publisher cannot resume index 6: the view is reset, then the stream fails (shown).
    fake.current.push({ kind: 'new-snapshot-to-follow' });
    await clock.advanceAsync(0);
    fake.current.fail(new Error('publisher still starting'));
    await clock.advanceAsync(0);
    await clock.advanceAsync(1_000);
    fake.current.snapshot(1, 'second', [putEvent('k', 'second life')]);
    await clock.advanceAsync(0);
    assert.deepEqual(updates, ['6 first life', 'error', '1 second life']);
    await stop();
    store.close();
  });

  test('notify delivers a view rebuilt from a restarted publisher, though its index is lower', async () => {
    const clock = new FakeClock();
    let publisher = new EventPublisher();
    const firstLife = new Map([['k', 'first life']]);
    mapTopic(publisher, 'kv', firstLife);
    for (let i = 0; i < 5; i++) {
      firstLife.set('k', `first life ${i}`);
      publisher.publish('kv', [putEvent('k', `first life ${i}`)]);
    }
    let breakStream: (() => void) | undefined;
    const source: EventSource<MapChange<string>> = (request, signal) => {
      const inner = linkSignals(signal);
      breakStream = () => {
        inner.abort(new Error('publisher restarted'));
      };
      return publisher.subscribe(request, { signal: inner.signal });
    };
    const store = new ViewStore({ clock });
    const request = kvRequest(source, clock);
    const { updates, stop } = recordKv(store, request, false);
    await clock.advanceAsync(0);
    assert.deepEqual(updates, ['6 first life 4']);
    // A new publisher process: new generation, indexes start over.
    publisher = new EventPublisher();
    mapTopic(publisher, 'kv', new Map([['k', 'second life']]));
    breakStream?.();
    await clock.advanceAsync(0);
    await clock.advanceAsync(1_000);
    assert.deepEqual(updates, ['6 first life 4', '1 second life']);
    await stop();
    store.close();
  });
});
