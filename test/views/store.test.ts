import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CapacityExceededError, ClosedError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import {
  EntryEvictingError,
  EventStreamError,
  Materializer,
  MaterializerStoppedError,
  UnauthorizedError,
  ViewStore,
  type FetchOptions,
  type MaterializerStats,
  type SharedMaterializer,
  type ViewRequest,
  type ViewResult,
  type ViewStoreOptions,
  type ViewUpdate,
} from '../../src/views/index.ts';
import { event, FakeSource, RecordingView, watch } from './fake-source.ts';

const MINUTE = 60_000;

/** A store on a fake clock whose requests build real materializers over fake sources. */
function setup(options: ViewStoreOptions = {}, materializerOptions: { terminalAfter?: number } = {}) {
  const clock = new FakeClock();
  const store = new ViewStore({ clock, ...options });
  /** Every source made, per key, in order: a key's newest materializer reads the last one. */
  const sources = new Map<string, FakeSource<string>[]>();
  const request = (key: string): ViewRequest<readonly string[]> => ({
    key,
    newMaterializer: () => {
      const fake = new FakeSource<string>(clock);
      sources.set(key, [...(sources.get(key) ?? []), fake]);
      return new Materializer<string, readonly string[]>({
        source: fake.source,
        request: { topic: key },
        view: new RecordingView(),
        clock,
        random: () => 0,
        ...materializerOptions,
      });
    },
  });
  const source = (key: string): FakeSource<string> => {
    const made = sources.get(key)?.at(-1);
    assert.ok(made !== undefined, `no materializer was made for ${key}`);
    return made;
  };
  return { clock, store, request, sources, source, settle: () => clock.advanceAsync(0) };
}

/** A materializer the test drives by hand: it answers fetches and stops when told. */
class ScriptedMaterializer implements SharedMaterializer<string> {
  stoppedBy: unknown = undefined;
  readonly fetches: {
    readonly options: FetchOptions;
    resolve(result: ViewResult<string>): void;
    reject(error: unknown): void;
  }[] = [];
  runSignal: AbortSignal | undefined;
  #exit: (() => void) | undefined;

  run(signal: AbortSignal): Promise<void> {
    this.runSignal = signal;
    return new Promise<void>((resolve) => {
      this.#exit = resolve;
      signal.addEventListener('abort', () => {
        resolve();
      });
    });
  }

  /** Stops by itself, as a terminal failure does, without answering the pending fetches. */
  stop(reason: unknown): void {
    this.stoppedBy = reason;
    this.#exit?.();
  }

  fetch(options: FetchOptions = {}): Promise<ViewResult<string>> {
    return new Promise((resolve, reject) => {
      this.fetches.push({ options, resolve, reject });
      const signal = options.signal;
      signal?.addEventListener('abort', () => {
        reject(signal.reason as Error);
      });
    });
  }

  stats(): MaterializerStats {
    return {
      index: 0,
      updates: 0,
      resets: 0,
      failures: 0,
      waiters: 0,
      subscriptions: 0,
      refusedSnapshots: 0,
    };
  }
}

function scripted(key: string, made: ScriptedMaterializer[]): ViewRequest<string> {
  return {
    key,
    newMaterializer: () => {
      const materializer = new ScriptedMaterializer();
      made.push(materializer);
      return materializer;
    },
  };
}

describe('ViewStore.get', () => {
  test('a get with a known index returns at once, cached', async () => {
    const s = setup();
    const first = watch(s.store.get(s.request('k')));
    s.source('k').current.snapshot(5, 'g1', [event('a')]);
    await s.settle();
    assert.deepEqual(first.value, { index: 5, value: ['a'], cached: false, generation: 'g1' });
    assert.deepEqual(await s.store.get(s.request('k'), { minIndex: 4 }), {
      index: 5,
      value: ['a'],
      cached: true,
      generation: 'g1',
    });
  });

  test('a get blocks while minIndex is not passed, even after an event at a lower or equal index', async () => {
    const s = setup();
    const k = s.request('k');
    const first = watch(s.store.get(k));
    s.source('k').current.snapshot(5, 'g1', [event('a')]);
    await s.settle();
    assert.equal(first.state, 'fulfilled');
    const waiting = watch(s.store.get(k, { minIndex: 6 }));
    s.source('k').current.batch(6, event('b'));
    await s.settle();
    assert.equal(waiting.state, 'pending');
    s.source('k').current.batch(7, event('c'));
    await s.settle();
    assert.deepEqual(waiting.value, { index: 7, value: ['a', 'b', 'c'], cached: false, generation: 'g1' });
  });

  test('minIndex 0 waits for the first snapshot and returns the latest once it is applied', async () => {
    const s = setup();
    const waiting = watch(s.store.get(s.request('k'), { minIndex: 0 }));
    await s.clock.advanceAsync(5 * MINUTE);
    assert.equal(waiting.state, 'pending');
    s.source('k')
      .current.snapshot(3, 'g1', [event('a')])
      .batch(4, event('b'));
    await s.settle();
    assert.equal(waiting.value?.index, 3);
    assert.deepEqual(await s.store.get(s.request('k')), {
      index: 4,
      value: ['a', 'b'],
      cached: true,
      generation: 'g1',
    });
  });

  test('a get that times out returns the last value with its index and no error', async () => {
    const s = setup();
    const k = s.request('k');
    const first = watch(s.store.get(k));
    s.source('k').current.snapshot(5, 'g1', [event('a')]);
    await s.settle();
    assert.equal(first.state, 'fulfilled');
    const waiting = watch(s.store.get(k, { minIndex: 5, timeoutMs: 10_000 }));
    await s.clock.advanceAsync(9_999);
    assert.equal(waiting.state, 'pending');
    await s.clock.advanceAsync(1);
    assert.deepEqual(waiting.value, { index: 5, value: ['a'], cached: false, generation: 'g1' });
    assert.equal(waiting.error, undefined);
  });

  test('many concurrent gets share one materializer and one subscription', async () => {
    const s = setup();
    const gets = Array.from({ length: 100 }, () => watch(s.store.get(s.request('k'))));
    assert.deepEqual(s.store.stats(), { entries: 1, idle: 0, started: 1, evicted: 0, refused: 0 });
    assert.equal(s.sources.get('k')?.length, 1);
    assert.equal(s.source('k').streams.length, 1);
    s.source('k').current.snapshot(2, 'g1', [event('a')]);
    await s.settle();
    const first = gets[0]?.value?.value;
    assert.deepEqual(first, ['a']);
    for (const get of gets) assert.equal(get.value?.value, first, 'one value, shared');
    assert.deepEqual(s.store.stats(), { entries: 1, idle: 1, started: 1, evicted: 0, refused: 0 });
  });

  test('a get aborted by its signal releases its hold', async () => {
    const s = setup();
    const controller = new AbortController();
    const waiting = watch(s.store.get(s.request('k'), { signal: controller.signal }));
    assert.equal(s.store.stats().idle, 0);
    controller.abort(new Error('client went away'));
    await s.settle();
    assert.equal(waiting.state, 'rejected');
    assert.equal(s.store.stats().idle, 1);
  });
});

describe('ViewStore refcounts and expiry', () => {
  test('stats count entries and idle entries while requests are held and after they let go', async () => {
    const s = setup();
    const a1 = watch(s.store.get(s.request('a')));
    const a2 = watch(s.store.get(s.request('a'), { minIndex: 2 }));
    const b = watch(s.store.get(s.request('b')));
    assert.deepEqual(s.store.stats(), { entries: 2, idle: 0, started: 2, evicted: 0, refused: 0 });
    s.source('a').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(a1.state, 'fulfilled');
    assert.equal(a2.state, 'pending');
    assert.equal(s.store.stats().idle, 0, 'a is still held by the second get');
    s.source('a').current.batch(3, event('x'));
    await s.settle();
    assert.equal(a2.state, 'fulfilled');
    assert.deepEqual(s.store.stats(), { entries: 2, idle: 1, started: 2, evicted: 0, refused: 0 });
    s.source('b').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(b.state, 'fulfilled');
    assert.equal(s.store.stats().idle, 2);
  });

  test('an idle entry expires after 20 minutes by default, and its materializer is stopped', async () => {
    const s = setup();
    const get = watch(s.store.get(s.request('k')));
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(get.state, 'fulfilled');
    await s.clock.advanceAsync(20 * MINUTE - 1);
    assert.equal(s.store.stats().entries, 1);
    assert.equal(s.source('k').current.signal.aborted, false);
    await s.clock.advanceAsync(1);
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 1, evicted: 1, refused: 0 });
    assert.equal(s.source('k').current.signal.aborted, true);
    assert.equal(s.clock.pendingTimers, 0);
  });

  test('one timer serves every idle entry, set for the one that expires first', async () => {
    const s = setup({ idleTtlMs: 10 * MINUTE });
    for (const key of ['a', 'b', 'c', 'd']) {
      const get = watch(s.store.get(s.request(key)));
      s.source(key).current.snapshot(2, 'g1');
      await s.settle();
      assert.equal(get.state, 'fulfilled');
      await s.clock.advanceAsync(MINUTE);
    }
    assert.equal(s.store.stats().idle, 4);
    assert.equal(s.clock.pendingTimers, 1);
    // a was released at 0, b at 1 min, …: they go one by one.
    assert.equal(s.clock.nextTimerInMs, 6 * MINUTE);
    await s.clock.advanceAsync(6 * MINUTE);
    assert.equal(s.store.stats().entries, 3);
    assert.equal(s.clock.pendingTimers, 1);
    await s.clock.advanceAsync(MINUTE);
    assert.equal(s.store.stats().entries, 2);
    await s.clock.advanceAsync(2 * MINUTE);
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 4, evicted: 4, refused: 0 });
    assert.equal(s.clock.pendingTimers, 0);
  });

  test('a request before expiry revives the entry and starts its idle time over', async () => {
    const s = setup();
    const k = s.request('k');
    const first = watch(s.store.get(k));
    s.source('k').current.snapshot(2, 'g1', [event('a')]);
    await s.settle();
    assert.equal(first.state, 'fulfilled');
    await s.clock.advanceAsync(19 * MINUTE);
    assert.deepEqual(await s.store.get(k), { index: 2, value: ['a'], cached: true, generation: 'g1' });
    await s.clock.advanceAsync(19 * MINUTE);
    assert.equal(s.store.stats().entries, 1, 'kept: idle for 19 minutes only');
    await s.clock.advanceAsync(MINUTE);
    assert.equal(s.store.stats().entries, 0);
    assert.equal(s.store.stats().started, 1, 'one materializer the whole time');
    assert.equal(s.source('k').streams.length, 1);
  });

  test('an entry held when its expiry time passes is not evicted', async () => {
    const s = setup();
    const k = s.request('k');
    const first = watch(s.store.get(k));
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(first.state, 'fulfilled');
    await s.clock.advanceAsync(20 * MINUTE - 1);
    const held = watch(s.store.get(k, { minIndex: 2 }));
    await s.clock.advanceAsync(MINUTE);
    assert.equal(s.store.stats().entries, 1);
    assert.equal(held.state, 'pending');
    s.source('k').current.batch(3, event('b'));
    await s.settle();
    assert.equal(held.value?.index, 3);
    await s.clock.advanceAsync(20 * MINUTE);
    assert.equal(s.store.stats().entries, 0);
  });

  test('when full, the idle entry nearest expiry makes room', async () => {
    const s = setup({ maxEntries: 2 });
    for (const key of ['a', 'b']) {
      const get = watch(s.store.get(s.request(key)));
      s.source(key).current.snapshot(2, 'g1');
      await s.settle();
      assert.equal(get.state, 'fulfilled');
      await s.clock.advanceAsync(MINUTE);
    }
    const c = watch(s.store.get(s.request('c')));
    assert.deepEqual(s.store.stats(), { entries: 2, idle: 1, started: 3, evicted: 1, refused: 0 });
    assert.equal(s.source('a').current.signal.aborted, true, 'a expired first, so it went');
    assert.equal(s.source('b').current.signal.aborted, false);
    assert.equal(c.state, 'pending');
  });

  test('when full and every entry is in use, a new key is refused with CapacityExceededError, counted', async () => {
    const s = setup({ maxEntries: 2 });
    const held = [watch(s.store.get(s.request('a'))), watch(s.store.get(s.request('b')))];
    await assert.rejects(s.store.get(s.request('c')), CapacityExceededError);
    assert.deepEqual(s.store.stats(), { entries: 2, idle: 0, started: 2, evicted: 0, refused: 1 });
    assert.equal(s.sources.has('c'), false, 'no materializer was made');
    // Requests for keys already held are still served.
    const again = watch(s.store.get(s.request('a')));
    s.source('a').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(again.state, 'fulfilled');
    assert.equal(held[0]?.state, 'fulfilled');
  });

  test('close stops every materializer; later requests fail with ClosedError', async () => {
    const s = setup();
    const held = watch(s.store.get(s.request('a')));
    s.store.close();
    await s.settle();
    assert.ok(held.error instanceof MaterializerStoppedError);
    assert.equal(s.source('a').current.signal.aborted, true);
    await assert.rejects(s.store.get(s.request('a')), ClosedError);
    assert.equal(s.store.stats().entries, 0);
    assert.equal(s.clock.pendingTimers, 0);
  });
});

describe('ViewStore eviction of stopped materializers', () => {
  test('a materializer that stops on a terminal error is evicted; the next request starts a new one', async () => {
    const s = setup({}, { terminalAfter: 1 });
    const get = watch(s.store.get(s.request('k')));
    s.source('k').current.fail(new UnauthorizedError('token deleted'));
    await s.settle();
    assert.ok(get.error instanceof UnauthorizedError);
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 1, evicted: 1, refused: 0 });
    const next = watch(s.store.get(s.request('k')));
    assert.equal(s.store.stats().started, 2);
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(next.value?.index, 2);
  });

  test('a stopped materializer still held is marked evicting: it is never served, and goes when let go', async () => {
    const s = setup();
    const made: ScriptedMaterializer[] = [];
    const holder = watch(s.store.get(scripted('k', made)));
    const first = made[0];
    assert.ok(first !== undefined);
    first.stop(new UnauthorizedError());
    await s.settle();
    assert.equal(holder.state, 'pending', 'still held');
    await assert.rejects(s.store.get(scripted('k', made)), EntryEvictingError);
    assert.equal(made.length, 1, 'no second materializer while the first is evicting');
    assert.deepEqual(s.store.stats(), { entries: 1, idle: 0, started: 1, evicted: 0, refused: 0 });
    first.fetches[0]?.reject(new UnauthorizedError());
    await s.settle();
    assert.equal(holder.state, 'rejected');
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 1, evicted: 1, refused: 0 });
    assert.equal(first.runSignal?.aborted, true);
    const next = watch(s.store.get(scripted('k', made)));
    assert.equal(made.length, 2);
    made[1]?.fetches[0]?.resolve({ index: 1, value: 'fresh', cached: false });
    await s.settle();
    assert.equal(next.value?.value, 'fresh');
  });

  test('an evicting entry is not kept as idle and does not wait for the TTL', async () => {
    const s = setup();
    const made: ScriptedMaterializer[] = [];
    const holder = watch(s.store.get(scripted('k', made)));
    made[0]?.stop(new UnauthorizedError());
    await s.settle();
    made[0]?.fetches[0]?.resolve({ index: 3, value: 'last', cached: false });
    await s.settle();
    assert.equal(holder.value?.value, 'last');
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 1, evicted: 1, refused: 0 });
    assert.equal(s.clock.pendingTimers, 0);
  });
});

describe('ViewStore.notify', () => {
  test('notify delivers each new index once', async () => {
    const s = setup();
    const updates: ViewUpdate<readonly string[]>[] = [];
    const controller = new AbortController();
    const done = s.store.notify(s.request('k'), (u) => updates.push(u), { signal: controller.signal });
    s.source('k').current.snapshot(2, 'g1', [event('a')]);
    await s.settle();
    s.source('k').current.batch(3, event('b'));
    await s.settle();
    s.source('k').current.batch(4, event('c'));
    await s.settle();
    assert.deepEqual(updates, [
      { index: 2, value: ['a'], error: undefined, generation: 'g1' },
      { index: 3, value: ['a', 'b'], error: undefined, generation: 'g1' },
      { index: 4, value: ['a', 'b', 'c'], error: undefined, generation: 'g1' },
    ]);
    controller.abort();
    await done;
    assert.equal(s.store.stats().idle, 1, 'the hold was let go');
  });

  test('notify never repeats an index and ends at the latest when several arrive together', async () => {
    const s = setup();
    const updates: ViewUpdate<readonly string[]>[] = [];
    const controller = new AbortController();
    const done = s.store.notify(s.request('k'), (u) => updates.push(u), { signal: controller.signal });
    s.source('k')
      .current.snapshot(2, 'g1', [event('a')])
      .batch(3, event('b'))
      .batch(4, event('c'))
      .batch(5, event('d'));
    await s.settle();
    const indexes = updates.map((u) => u.index);
    assert.deepEqual(
      indexes,
      [...new Set(indexes)].sort((x, y) => x - y),
      'increasing, no repeats',
    );
    assert.deepEqual(updates.at(-1), {
      index: 5,
      value: ['a', 'b', 'c', 'd'],
      error: undefined,
      generation: 'g1',
    });
    controller.abort();
    await done;
  });

  test('notify asks for values after the last index it delivered, so a burst is delivered once, as its latest', async () => {
    const s = setup();
    const made: ScriptedMaterializer[] = [];
    const updates: ViewUpdate<string>[] = [];
    const controller = new AbortController();
    const done = s.store.notify(scripted('k', made), (u) => updates.push(u), { signal: controller.signal });
    const materializer = made[0];
    assert.ok(materializer !== undefined);
    assert.equal(materializer.fetches[0]?.options.minIndex, 0);
    materializer.fetches[0].resolve({ index: 4, value: 'v4', cached: false });
    await s.settle();
    assert.equal(materializer.fetches[1]?.options.minIndex, 4);
    // The view moved on to 7 while the caller was busy: one delivery, of 7.
    materializer.fetches[1].resolve({ index: 7, value: 'v7', cached: true });
    await s.settle();
    assert.equal(materializer.fetches[2]?.options.minIndex, 7);
    assert.deepEqual(
      updates.map((u) => u.index),
      [4, 7],
    );
    controller.abort();
    await done;
  });

  test('notify delivers failures too, with the last index, and goes on after them', async () => {
    const s = setup();
    const updates: ViewUpdate<readonly string[]>[] = [];
    const controller = new AbortController();
    const done = s.store.notify(s.request('k'), (u) => updates.push(u), { signal: controller.signal });
    s.source('k').current.snapshot(2, 'g1', [event('a')]);
    await s.settle();
    s.source('k').current.fail(new EventStreamError('hidden'));
    await s.settle();
    const surfaced = new EventStreamError('surfaced');
    s.source('k').current.fail(surfaced);
    await s.settle();
    assert.deepEqual(updates.slice(1), [{ index: 2, value: undefined, error: surfaced }]);
    await s.clock.advanceAsync(200);
    s.source('k').current.batch(3, event('b'));
    await s.settle();
    assert.deepEqual(updates.at(-1), { index: 3, value: ['a', 'b'], error: undefined, generation: 'g1' });
    controller.abort();
    await done;
  });

  test('notify stops when aborted and delivers nothing after', async () => {
    const s = setup();
    const updates: ViewUpdate<readonly string[]>[] = [];
    const controller = new AbortController();
    const done = watch(s.store.notify(s.request('k'), (u) => updates.push(u), { signal: controller.signal }));
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    controller.abort();
    await s.settle();
    assert.equal(done.state, 'fulfilled');
    s.source('k').current.batch(3, event('b'));
    await s.settle();
    assert.equal(updates.length, 1);
    assert.equal(s.store.stats().idle, 1);
  });

  test('notify ends when the materializer stops for good, after delivering that failure once', async () => {
    const s = setup({}, { terminalAfter: 1 });
    const updates: ViewUpdate<readonly string[]>[] = [];
    const done = watch(
      s.store.notify(s.request('k'), (u) => updates.push(u), { signal: new AbortController().signal }),
    );
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    const denied = new UnauthorizedError('token deleted');
    s.source('k').current.fail(denied);
    await s.settle();
    assert.equal(done.state, 'fulfilled');
    assert.deepEqual(updates, [
      { index: 2, value: [], error: undefined, generation: 'g1' },
      { index: 2, value: undefined, error: denied },
    ]);
    assert.deepEqual(s.store.stats(), { entries: 0, idle: 0, started: 1, evicted: 1, refused: 0 });
  });

  test('a callback that throws ends notify with its error and lets go of the entry', async () => {
    const s = setup();
    const done = s.store.notify(
      s.request('k'),
      () => {
        throw new Error('callback broke');
      },
      { signal: new AbortController().signal },
    );
    const outcome = watch(done);
    s.source('k').current.snapshot(2, 'g1');
    await s.settle();
    assert.equal(outcome.state, 'rejected');
    assert.match((outcome.error as Error).message, /callback broke/);
    assert.equal(s.store.stats().idle, 1);
  });
});
