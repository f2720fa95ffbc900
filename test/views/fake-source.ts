// Test doubles for the views tests: an event source the test feeds by hand, and a View that
// records every call a materializer makes on it.

import { BoundedQueue } from '../../src/internal/bounded-queue.ts';
import type { Clock } from '../../src/internal/clock.ts';
import type { Event, EventSource, StreamItem, SubscribeRequest, View } from '../../src/views/index.ts';

/** One subscription the fake source was asked for: the test pushes items into it or fails it. */
export class FakeStream<P> {
  readonly request: SubscribeRequest;
  readonly signal: AbortSignal;
  /** `clock.now()` when the subscription was made. */
  readonly atMs: number;
  readonly #queue = new BoundedQueue<StreamItem<P>>({ capacity: 100_000 });

  constructor(request: SubscribeRequest, signal: AbortSignal, atMs: number) {
    this.request = request;
    this.signal = signal;
    this.atMs = atMs;
  }

  push(...items: StreamItem<P>[]): this {
    for (const item of items) {
      if (!this.#queue.offer(item)) throw new Error('the fake stream is closed or full');
    }
    return this;
  }

  /** A snapshot at `index` (in one chunk per array given), then end-of-snapshot. */
  snapshot(index: number, generation: string, ...chunks: Event<P>[][]): this {
    for (const events of chunks) this.push({ kind: 'events', index, events });
    return this.push({ kind: 'end-of-snapshot', index, generation });
  }

  batch(index: number, ...events: Event<P>[]): this {
    return this.push({ kind: 'events', index, events });
  }

  /** Ends the stream with `error` once the items pushed before it are read. */
  fail(error: unknown): void {
    this.#queue.error(error);
  }

  /** Ends the stream without an error once the items pushed before it are read. */
  end(): void {
    this.#queue.close();
  }

  /** True once the reader stopped reading (it left its loop, or the stream ended). */
  get closed(): boolean {
    return this.#queue.closed;
  }

  iterable(): AsyncIterable<StreamItem<P>> {
    const queue = this.#queue;
    const signal = this.signal;
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => queue.next({ signal }),
        return: () => {
          queue.discard();
          return Promise.resolve({ done: true, value: undefined });
        },
      }),
    };
  }
}

/**
 * An EventSource that records each request and hands out a FakeStream per subscription.
 * `onSubscribe` may feed or fail a new stream before the subscriber reads it.
 */
export class FakeSource<P> {
  readonly streams: FakeStream<P>[] = [];
  onSubscribe: ((stream: FakeStream<P>) => void) | undefined;
  readonly #clock: Clock | undefined;

  constructor(clock?: Clock) {
    this.#clock = clock;
  }

  readonly source: EventSource<P> = (request, signal) => {
    const stream = new FakeStream<P>(request, signal, this.#clock?.now() ?? 0);
    this.streams.push(stream);
    this.onSubscribe?.(stream);
    return stream.iterable();
  };

  get requests(): SubscribeRequest[] {
    return this.streams.map((stream) => stream.request);
  }

  /** The newest subscription. */
  get current(): FakeStream<P> {
    const stream = this.streams.at(-1);
    if (stream === undefined) throw new Error('nobody has subscribed yet');
    return stream;
  }
}

/** A View over string payloads that keeps them in order and records every call made on it. */
export class RecordingView implements View<string, readonly string[]> {
  /** Every `update` call, with the events it was given. */
  readonly updates: (readonly Event<string>[])[] = [];
  resets = 0;
  /** The indexes `result` was asked for. */
  readonly resultIndexes: number[] = [];
  /** Throws from `update` when this returns true for the batch. */
  failOn: ((events: readonly Event<string>[]) => boolean) | undefined;
  #values: string[] = [];

  update(events: readonly Event<string>[]): void {
    this.updates.push(events);
    if (this.failOn?.(events) === true) throw new Error('the view refused the batch');
    for (const event of events) this.#values.push(event.payload);
  }

  result(index: number): readonly string[] {
    this.resultIndexes.push(index);
    return Object.freeze([...this.#values]);
  }

  reset(): void {
    this.resets += 1;
    this.#values = [];
  }
}

export function event(subject: string, payload = subject): Event<string> {
  return { subject, payload };
}

/** A promise's outcome, recorded as it settles, so a test can look without waiting. */
export interface Watched<T> {
  readonly state: 'pending' | 'fulfilled' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
}

/** Watches `promise` from now on (which also handles its rejection). */
export function watch<T>(promise: Promise<T>): Watched<T> {
  const watched: { state: Watched<T>['state']; value: T | undefined; error: unknown } = {
    state: 'pending',
    value: undefined,
    error: undefined,
  };
  promise.then(
    (value) => {
      watched.state = 'fulfilled';
      watched.value = value;
    },
    (error: unknown) => {
      watched.state = 'rejected';
      watched.error = error;
    },
  );
  return watched;
}
