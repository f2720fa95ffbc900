// Shares materializers between callers, as Consul's submatview Store does.
//
// One materializer per request key, started by the first caller and shared by every caller
// after it. Each `get` or `notify` holds a reference while it runs; when the last one lets
// go, the entry is idle and expires after `idleTtlMs` unless someone asks again. Expiry runs
// off one timer for the entry that expires first. A materializer that stops by itself (a
// terminal failure) is evicted at once, or, while callers still hold it, marked evicting:
// it is never handed to a new caller, and goes when the last holder lets go.

import { isAborted } from '../internal/abort.ts';
import { systemClock, type Clock, type Timer } from '../internal/clock.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../internal/errors.ts';
import { wholeNumberOption } from './config.ts';
import { EntryEvictingError } from './errors.ts';
import { ExpiryHeap } from './expiry-heap.ts';
import type { FetchOptions, Materializer } from './materializer.ts';
import type { ViewResult } from './view.ts';

/** What the store needs of a materializer: any event payload type will do. */
export type SharedMaterializer<T> = Pick<Materializer<unknown, T>, 'run' | 'fetch' | 'stoppedBy' | 'stats'>;

/** A request for a view: requests with the same `key` share one materializer. */
export interface ViewRequest<T> {
  readonly key: string;
  /** Called when no materializer for `key` exists; the store runs it. */
  newMaterializer(): SharedMaterializer<T>;
}

/** One delivery of `notify`: a new value, or a failure (then `value` is undefined). */
export interface ViewUpdate<T> {
  readonly index: number;
  readonly value: T | undefined;
  readonly error: unknown;
  /** The generation `index` belongs to (see `ViewResult.generation`); undefined with an error. */
  readonly generation?: string | undefined;
}

export interface ViewStoreOptions {
  readonly clock?: Clock | undefined;
  /** How long an entry nobody holds is kept. Default 20 minutes (Consul's). */
  readonly idleTtlMs?: number | undefined;
  /** Entries held at most; when full, the idle entry closest to expiry makes room. Default 10 000. */
  readonly maxEntries?: number | undefined;
}

export interface ViewStoreStats {
  readonly entries: number;
  readonly idle: number;
  readonly started: number;
  readonly evicted: number;
  /** Requests refused because every entry was in use and the store was full. */
  readonly refused: number;
}

interface Entry {
  readonly key: string;
  readonly materializer: SharedMaterializer<unknown>;
  readonly controller: AbortController;
  requests: number;
  evicting: boolean;
}

export class ViewStore {
  readonly #clock: Clock;
  readonly #idleTtlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  readonly #idle = new ExpiryHeap();
  #timer: Timer | undefined;
  #timerDue = Infinity;
  #closed = false;
  readonly #counters = { started: 0, evicted: 0, refused: 0 };

  constructor(options: ViewStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#idleTtlMs = options.idleTtlMs ?? 20 * 60_000;
    if (!Number.isFinite(this.#idleTtlMs) || this.#idleTtlMs < 0) {
      throw new ConfigError('idleTtlMs', `must be a number >= 0, got ${this.#idleTtlMs}`);
    }
    this.#maxEntries = wholeNumberOption(options.maxEntries ?? 10_000, 'maxEntries', 1);
  }

  /**
   * The view's value once its index is above `minIndex`; on timeout the latest value (no
   * error). Throws `EntryEvictingError` while the entry is being evicted.
   */
  async get<T>(request: ViewRequest<T>, options: FetchOptions = {}): Promise<ViewResult<T>> {
    const entry = this.#acquire(request);
    try {
      return (await entry.materializer.fetch(options)) as ViewResult<T>;
    } finally {
      this.#release(entry);
    }
  }

  /**
   * Calls `callback` with every new value of the view (each index once, the latest when
   * several arrive together) and with every failure it reports, until `signal` aborts or the
   * materializer stops for good (its last failure is delivered first). A callback that
   * throws ends the loop with that error.
   */
  async notify<T>(
    request: ViewRequest<T>,
    callback: (update: ViewUpdate<T>) => void,
    options: { readonly signal: AbortSignal },
  ): Promise<void> {
    const { signal } = options;
    if (!(signal instanceof AbortSignal)) throw new TypeError('notify needs an AbortSignal to stop it');
    const entry = this.#acquire(request);
    let index = 0;
    let resetsSeen = entry.materializer.stats().resets;
    try {
      while (!signal.aborted) {
        let update: ViewUpdate<T>;
        try {
          // A view rebuilt since the last delivery is news whatever its index (a restarted
          // publisher starts its indexes over).
          const minIndex = entry.materializer.stats().resets === resetsSeen ? index : 0;
          const result = (await entry.materializer.fetch({ minIndex, signal })) as ViewResult<T>;
          index = result.index;
          // Read after the wait: a reset during it was answered by this very value.
          resetsSeen = entry.materializer.stats().resets;
          update = { index, value: result.value, error: undefined, generation: result.generation };
        } catch (error) {
          if (isAborted(signal)) break;
          update = { index, value: undefined, error };
        }
        callback(update);
        if (update.error === undefined) continue;
        if (entry.materializer.stoppedBy !== undefined) break;
        // A materializer that kept failing at once would otherwise never let the event loop
        // run, and not even the abort that ends this loop could arrive.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#release(entry);
    }
  }

  stats(): ViewStoreStats {
    return { entries: this.#entries.size, idle: this.#idle.size, ...this.#counters };
  }

  /** Stops every materializer; later requests fail with `ClosedError`. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const entry of [...this.#entries.values()]) this.#evict(entry);
  }

  #acquire(request: ViewRequest<unknown>): Entry {
    if (this.#closed) throw new ClosedError('the view store is closed');
    if (typeof request.key !== 'string') throw new TypeError('a view request needs a string key');
    const existing = this.#entries.get(request.key);
    if (existing !== undefined) {
      if (existing.evicting) throw new EntryEvictingError(request.key);
      existing.requests += 1;
      this.#idle.remove(existing.key);
      return existing;
    }
    if (this.#entries.size >= this.#maxEntries && this.#idle.size === 0) {
      this.#counters.refused += 1;
      throw new CapacityExceededError('the view store', this.#maxEntries);
    }
    // Made before room is made: if it throws, no idle entry was evicted for nothing.
    const materializer = request.newMaterializer();
    if (this.#entries.size >= this.#maxEntries) this.#makeRoom();
    const entry: Entry = {
      key: request.key,
      materializer,
      controller: new AbortController(),
      requests: 1,
      evicting: false,
    };
    this.#entries.set(entry.key, entry);
    this.#counters.started += 1;
    const exited = (): void => {
      // Stopped by itself, not by us: it will never update again.
      if (!entry.controller.signal.aborted) this.#evictNow(entry);
    };
    entry.materializer.run(entry.controller.signal).then(exited, exited);
    return entry;
  }

  #release(entry: Entry): void {
    entry.requests -= 1;
    if (entry.requests > 0) return;
    if (entry.evicting) {
      this.#evict(entry);
      return;
    }
    if (this.#entries.get(entry.key) !== entry) return;
    this.#idle.set(entry.key, this.#clock.now() + this.#idleTtlMs);
    this.#schedule();
  }

  #evictNow(entry: Entry): void {
    if (this.#entries.get(entry.key) !== entry) return;
    if (entry.requests > 0) entry.evicting = true;
    else this.#evict(entry);
  }

  #evict(entry: Entry): void {
    if (this.#entries.get(entry.key) === entry) {
      this.#entries.delete(entry.key);
      this.#counters.evicted += 1;
    }
    this.#idle.remove(entry.key);
    entry.controller.abort(new ClosedError(`view ${entry.key} evicted`));
  }

  #makeRoom(): void {
    const oldest = this.#idle.peek();
    const entry = oldest === undefined ? undefined : this.#entries.get(oldest.key);
    if (entry === undefined) {
      this.#counters.refused += 1;
      throw new CapacityExceededError('the view store', this.#maxEntries);
    }
    this.#evict(entry);
  }

  /** Keeps the one timer set for the entry that expires first. */
  #schedule(): void {
    const head = this.#idle.peek();
    const due = head?.expiresAt ?? Infinity;
    if (due === this.#timerDue) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerDue = due;
    if (head === undefined) return;
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerDue = Infinity;
        this.#expire();
      },
      Math.max(0, due - this.#clock.now()),
    );
  }

  #expire(): void {
    const now = this.#clock.now();
    for (
      let head = this.#idle.peek();
      head !== undefined && head.expiresAt <= now;
      head = this.#idle.peek()
    ) {
      const entry = this.#entries.get(head.key);
      this.#idle.remove(head.key);
      if (entry !== undefined && entry.requests === 0) this.#evict(entry);
    }
    this.#schedule();
  }
}
