// A bounded FIFO between a producer and an async consumer.
//
// The queue never grows past `capacity` items, and the callers waiting on it (for room
// or for an item) are bounded by `maxWaiters`. What it refuses is counted. It is the
// receive buffer of credit-based flow control: the sender holds one credit per free
// slot, and `onTake` fires each time an item leaves, which is when the receiver gives a
// credit back. Because the sender never holds more credits than there are free slots,
// the receiver can always `offer` without blocking; a refused offer then means the
// peer broke the protocol.
//
// `close()` ends the queue after the buffered items are consumed; `error(e)` does the
// same but the consumer then gets `e`. Items already accepted are never dropped by
// either; only a consumer that stops iterating (`break`) discards what is left, and
// that is counted too.

import { onAbort } from './abort.ts';
import { CapacityExceededError, ClosedError, ConfigError } from './errors.ts';

export interface BoundedQueueOptions<T> {
  /** Most items buffered at once; at least 1. */
  readonly capacity: number;
  /** Most callers waiting in `push` or in `next` at once, each. Default 1024. */
  readonly maxWaiters?: number;
  /** Called as each item leaves the queue: one slot, hence one credit, is free again. */
  readonly onTake?: (item: T) => void;
  /** Used in error messages, e.g. "stream 7 input". */
  readonly name?: string;
}

export interface BoundedQueueStats {
  /** Items refused by `offer`/`push` because the queue was full, closed, or had too many waiters. */
  readonly refused: number;
  /** Items dropped unconsumed because the consumer stopped iterating. */
  readonly discarded: number;
  /** Highest depth seen. */
  readonly peakDepth: number;
}

interface Taker<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
  stopListening(): void;
}

interface Pusher<T> {
  readonly item: T;
  resolve(): void;
  reject(error: unknown): void;
  stopListening(): void;
}

type Ending =
  | { readonly kind: 'open' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'errored'; readonly error: unknown };

export class BoundedQueue<T> implements AsyncIterable<T> {
  readonly #capacity: number;
  readonly #maxWaiters: number;
  readonly #onTake: ((item: T) => void) | undefined;
  readonly #name: string;
  // A ring would avoid shift()'s copying, but V8 keeps small arrays' shift cheap and
  // capacities here are credit windows (tens to thousands of items).
  readonly #items: T[] = [];
  readonly #takers: Taker<T>[] = [];
  readonly #pushers: Pusher<T>[] = [];
  #ending: Ending = { kind: 'open' };
  #refused = 0;
  #discarded = 0;
  #peakDepth = 0;

  constructor(options: BoundedQueueOptions<T>) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new ConfigError('capacity', `must be an integer >= 1, got ${String(options.capacity)}`);
    }
    const maxWaiters = options.maxWaiters ?? 1024;
    if (!Number.isInteger(maxWaiters) || maxWaiters < 0) {
      throw new ConfigError('maxWaiters', `must be an integer >= 0, got ${String(maxWaiters)}`);
    }
    this.#capacity = options.capacity;
    this.#maxWaiters = maxWaiters;
    this.#onTake = options.onTake;
    this.#name = options.name ?? 'queue';
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Items buffered now. */
  get depth(): number {
    return this.#items.length;
  }

  /** Free slots: how many more items `offer` would accept right now. */
  get free(): number {
    return this.#ending.kind === 'open' ? this.#capacity - this.#items.length : 0;
  }

  /** True once `close` or `error` was called: nothing more is accepted. */
  get closed(): boolean {
    return this.#ending.kind !== 'open';
  }

  get stats(): BoundedQueueStats {
    return { refused: this.#refused, discarded: this.#discarded, peakDepth: this.#peakDepth };
  }

  /** Adds `item` if there is room, without waiting. False (and counted) if full or closed. */
  offer(item: T): boolean {
    if (!this.#hasRoom()) {
      this.#refused += 1;
      return false;
    }
    this.#accept(item);
    return true;
  }

  /**
   * Adds `item`, waiting for room if the queue is full. Rejects with `ClosedError` if the
   * queue closes first, `CapacityExceededError` if `maxWaiters` producers already wait,
   * or the signal's reason on abort; in each case the item was not added.
   */
  push(item: T, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.#hasRoom()) {
      this.#accept(item);
      return Promise.resolve();
    }
    if (this.#ending.kind !== 'open') return this.#refuse(new ClosedError(`${this.#name} is closed`));
    if (options.signal?.aborted === true) return this.#refuse(options.signal.reason);
    if (this.#pushers.length >= this.#maxWaiters) {
      return this.#refuse(new CapacityExceededError(`${this.#name} producers waiting`, this.#maxWaiters));
    }
    return new Promise<void>((resolve, reject) => {
      const pusher: Pusher<T> = {
        item,
        resolve,
        reject,
        stopListening: onAbort(options.signal, (reason) => {
          removeFrom(this.#pushers, pusher);
          this.#refused += 1;
          reject(reason);
        }),
      };
      this.#pushers.push(pusher);
    });
  }

  /** Takes the head item if there is one, without waiting. */
  tryTake(): T | undefined {
    return this.#items.length > 0 ? this.#takeHead() : undefined;
  }

  /**
   * The next item; `{ done: true }` once the queue is closed and empty; rejects with the
   * error given to `error()` once errored and empty, or with the signal's reason on abort.
   */
  next(options: { signal?: AbortSignal | undefined } = {}): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#takeHead() });
    if (this.#ending.kind === 'closed') return Promise.resolve({ done: true, value: undefined });
    if (this.#ending.kind === 'errored') return Promise.reject(this.#ending.error);
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason as Error);
    if (this.#takers.length >= this.#maxWaiters) {
      return Promise.reject(new CapacityExceededError(`${this.#name} consumers waiting`, this.#maxWaiters));
    }
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      const taker: Taker<T> = {
        resolve,
        reject,
        stopListening: onAbort(options.signal, (reason) => {
          removeFrom(this.#takers, taker);
          reject(reason);
        }),
      };
      this.#takers.push(taker);
    });
  }

  /** No more items are accepted; the consumer gets what is buffered, then the end. Idempotent. */
  close(): void {
    this.#end({ kind: 'closed' });
  }

  /** Like `close`, but after the buffered items the consumer gets `error`. */
  error(error: unknown): void {
    this.#end({ kind: 'errored', error });
  }

  /** Closes the queue and drops what is buffered (counted). Returns how many were dropped. */
  discard(): number {
    this.close();
    const dropped = this.#items.length;
    this.#items.length = 0;
    this.#discarded += dropped;
    return dropped;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      // The consumer left the loop: nobody will read what is left.
      return: () => {
        this.discard();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Room for one more, and no earlier producer waiting to go first. */
  #hasRoom(): boolean {
    return this.#ending.kind === 'open' && this.#pushers.length === 0 && this.#items.length < this.#capacity;
  }

  #accept(item: T): void {
    const taker = this.#takers.shift();
    if (taker !== undefined) {
      taker.stopListening();
      this.#onTake?.(item);
      taker.resolve({ done: false, value: item });
      return;
    }
    this.#items.push(item);
    if (this.#items.length > this.#peakDepth) this.#peakDepth = this.#items.length;
  }

  #takeHead(): T {
    const item = this.#items.shift() as T;
    const pusher = this.#pushers.shift();
    if (pusher !== undefined) {
      pusher.stopListening();
      this.#items.push(pusher.item);
      pusher.resolve();
    }
    this.#onTake?.(item);
    return item;
  }

  #refuse(reason: unknown): Promise<never> {
    this.#refused += 1;
    return Promise.reject(reason);
  }

  #end(ending: Ending): void {
    if (this.#ending.kind !== 'open') return;
    this.#ending = ending;
    for (const pusher of this.#pushers.splice(0)) {
      pusher.stopListening();
      this.#refused += 1;
      pusher.reject(new ClosedError(`${this.#name} closed before the item was accepted`));
    }
    // Takers wait only while the queue is empty, so they get the end now.
    for (const taker of this.#takers.splice(0)) {
      taker.stopListening();
      if (ending.kind === 'errored') taker.reject(ending.error);
      else taker.resolve({ done: true, value: undefined });
    }
  }
}

function removeFrom<E>(list: E[], entry: E): void {
  const index = list.indexOf(entry);
  if (index !== -1) list.splice(index, 1);
}
