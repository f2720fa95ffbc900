// fan-out-10k: many callers blocked on one view, woken by one publish.
//
// Ours is a Materializer over an in-process EventPublisher with a MapView, used directly
// (not through ViewStore.get, whose per-call reference counting is not fan-out): `waiters`
// calls of `fetch({ minIndex })` wait on the view's current index, one batch is published,
// and the time runs from the publish until every fetch has returned. That covers the
// publisher's buffer waking the subscription, the subscription's async generator handing
// the batch to the materializer, the view's update, one copy of the view's value shared by
// every caller, and the wake-up of each caller. The floor is node:events: as many `on`
// listeners, each resolving its own promise, and one `emit` of a value.
//
// Setting the waiters up is not timed on either side; neither is the EventEmitter's
// `removeAllListeners` (a fetch needs no clean-up: a woken waiter is gone).

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';

import type { EventPublisher, Materializer, ViewResult } from '../../src/views/index.ts';
import { quantileSorted } from '../harness.ts';
import type { ViewsModule } from './load-views.ts';
import { makeBatches, replay, type Batch, type Change } from './workload.ts';

/** One side of the case. */
export interface FanOut {
  /** One publish to every waiter: microseconds from the publish until all have returned. */
  round(): Promise<number>;
  /** Throws unless one round hands every waiter the published value. */
  check(): Promise<void>;
  close(): void;
}

/** The `quantile` over `rounds` fan-outs, in microseconds: one self-measured sample. */
export async function fanOutQuantileUs(side: FanOut, rounds: number, quantile: number): Promise<number> {
  const times = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    times[i] = await side.round();
    // Each round starts with nothing pending, as a burst of callers would find it.
    await nextTurn();
  }
  return quantileSorted(times.sort(), quantile);
}

const topic = 'fan-out';
// A small view: its value is copied once per index, and this suite is about the wake-up.
const batches = makeBatches({ batches: 64, eventsPerBatch: 1, keys: 64, deletesPerFour: 1, seed: 0xfa40 });

export class MaterializerFanOut implements FanOut {
  readonly #publisher: EventPublisher;
  readonly #materializer: Materializer<Change, ReadonlyMap<string, Uint8Array>>;
  readonly #controller = new AbortController();
  readonly #running: Promise<void>;
  readonly #waiters: number;
  #published = 0;

  private constructor(views: ViewsModule, waiters: number) {
    this.#waiters = waiters;
    const publisher = new views.EventPublisher({ bufferBatches: 64 });
    publisher.registerTopic<Change>(topic, {
      // Only asked once, when the materializer first subscribes: the state of what was published.
      snapshot: () => ({
        index: publisher.index(topic),
        events: [...replay(batches, this.#published)].map(([subject, value]) => ({
          subject,
          payload: { op: 'put', value },
        })),
      }),
    });
    this.#publisher = publisher;
    this.#materializer = new views.Materializer({
      source: (request, signal) => publisher.subscribe<Change>(request, { signal }),
      request: { topic },
      view: new views.MapView<Uint8Array>(),
    });
    this.#running = this.#materializer.run(this.#controller.signal);
  }

  static async start(views: ViewsModule, waiters: number): Promise<MaterializerFanOut> {
    const fanOut = new MaterializerFanOut(views, waiters);
    await fanOut.#materializer.fetch();
    return fanOut;
  }

  async round(): Promise<number> {
    const all = this.#waitAll();
    const start = performance.now();
    this.#publish();
    await all;
    return (performance.now() - start) * 1000;
  }

  async check(): Promise<void> {
    const all = this.#waitAll();
    const index = this.#publish();
    const results = await all;
    assert.equal(results.length, this.#waiters);
    const expected = replay(batches, this.#published);
    for (const result of results) {
      assert.equal(result.index, index, 'weft/views: a fetch returned another index');
      assert.equal(result.value, results[0]?.value, 'weft/views: callers of one index got different values');
    }
    assert.deepEqual(new Map(results[0]?.value), expected, 'weft/views: the view is not what was published');
    const stats = this.#materializer.stats();
    assert.equal(stats.waiters, 0, 'weft/views: waiters left after the publish');
    assert.equal(stats.subscriptions, 1, 'weft/views: the materializer resubscribed');
  }

  close(): void {
    this.#controller.abort();
    this.#running.catch(() => undefined);
  }

  #waitAll(): Promise<ViewResult<ReadonlyMap<string, Uint8Array>>[]> {
    const minIndex = this.#materializer.index;
    const pending = new Array<Promise<ViewResult<ReadonlyMap<string, Uint8Array>>>>(this.#waiters);
    for (let i = 0; i < this.#waiters; i++) pending[i] = this.#materializer.fetch({ minIndex });
    return Promise.all(pending);
  }

  #publish(): number {
    const batch: Batch = batches[this.#published % batches.length] ?? [];
    this.#published += 1;
    return this.#publisher.publish(topic, batch);
  }
}

export class EventEmitterFanOut implements FanOut {
  readonly #emitter = new EventEmitter();
  readonly #waiters: number;
  #emitted = 0;

  constructor(waiters: number) {
    this.#waiters = waiters;
    this.#emitter.setMaxListeners(0);
  }

  async round(): Promise<number> {
    const all = this.#waitAll();
    const start = performance.now();
    this.#emit();
    await all;
    const us = (performance.now() - start) * 1000;
    this.#emitter.removeAllListeners('value');
    return us;
  }

  async check(): Promise<void> {
    const all = this.#waitAll();
    const value = this.#emit();
    const results = await all;
    this.#emitter.removeAllListeners('value');
    assert.equal(results.length, this.#waiters);
    assert.ok(
      results.every((result) => result === value),
      'EventEmitter: a listener got another value',
    );
  }

  close(): void {
    this.#emitter.removeAllListeners();
  }

  #waitAll(): Promise<unknown[]> {
    const pending = new Array<Promise<unknown>>(this.#waiters);
    for (let i = 0; i < this.#waiters; i++) {
      pending[i] = new Promise((resolve) => this.#emitter.on('value', resolve));
    }
    return Promise.all(pending);
  }

  #emit(): unknown {
    this.#emitted += 1;
    const value = { index: this.#emitted, value: batches[this.#emitted % batches.length] };
    this.#emitter.emit('value', value);
    return value;
  }
}
