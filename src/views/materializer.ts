// Keeps one View up to date from an event source and answers blocking fetches against it,
// as Consul's submatview materializer does.
//
// `run` subscribes and applies items through a small state machine: after subscribing at
// index 0 it collects the snapshot and applies it whole at `end-of-snapshot`; after
// resuming at index N it takes either live batches or `new-snapshot-to-follow` (reset the
// view, collect a snapshot); once streaming, every batch is applied as one update. When the
// subscription fails it resubscribes after the retry waiter's delay (none for the first
// failure, then 200 ms·2^(n-2) capped at 60 s, plus jitter). The first failure after a
// good update is not shown to waiters; later ones are, until an update succeeds. Terminal
// failures (unknown topic, unauthorized), `terminalAfter` of them in a row, stop the
// materializer and are delivered to every waiter once.

import { systemClock, type Clock, type Timer } from '../internal/clock.ts';
import { RetryWaiter, type RetryWaiterConfig } from '../internal/backoff.ts';
import { isAborted, onAbort, raceSignal } from '../internal/abort.ts';
import { wholeNumberOption } from './config.ts';
import { checkIndex, type Event, type EventSource, type StreamItem, type SubscribeRequest } from './event.ts';
import {
  EventStreamError,
  hasErrorCode,
  isTerminalViewError,
  MaterializerStoppedError,
  ViewStaleError,
} from './errors.ts';
import type { View, ViewResult } from './view.ts';

export interface MaterializerOptions<P, T> {
  readonly source: EventSource<P>;
  /** What to subscribe to; the materializer fills in the index and generation. */
  readonly request: Omit<SubscribeRequest, 'index' | 'generation'>;
  readonly view: View<P, T>;
  readonly clock?: Clock | undefined;
  readonly retry?: Partial<RetryWaiterConfig> | undefined;
  readonly random?: (() => number) | undefined;
  /** Terminal failures in a row that stop the materializer. Default 3 (a lagging peer may not know a topic yet). */
  readonly terminalAfter?: number | undefined;
  /** Events a snapshot may hold before the materializer refuses it. Default 1 000 000. */
  readonly maxSnapshotEvents?: number | undefined;
}

export interface FetchOptions {
  /** Return once the view's index is above this; 0 returns the first materialized value. */
  readonly minIndex?: number | undefined;
  /** Give up waiting after this long and return the latest value (not an error). */
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * When the view has a value but is behind `minIndex`, return that value at once (its
   * lower index tells the caller to start again from it) instead of waiting for the view
   * to pass `minIndex`. For callers whose index may come from before a restart, as
   * Consul's HTTP clients' may: they reset when the index goes backwards. Default false,
   * as in Consul's store: a `minIndex` ahead of the view is waited for.
   */
  readonly returnIfBehind?: boolean | undefined;
}

export interface MaterializerStats {
  readonly index: number;
  readonly updates: number;
  readonly resets: number;
  readonly failures: number;
  readonly waiters: number;
  readonly subscriptions: number;
  /** Snapshots refused for exceeding `maxSnapshotEvents`. */
  readonly refusedSnapshots: number;
}

/**
 * A blocked fetch. A plain record rather than closures: thousands may wait on one view, and
 * what each holds is what a publish must wake and the heap must keep.
 */
interface Waiter<T> {
  readonly minIndex: number;
  readonly returnIfBehind: boolean;
  /** Resets seen when it started waiting: after a reset, the next value is news whatever its index. */
  readonly resets: number;
  readonly resolve: (result: ViewResult<T>) => void;
  readonly reject: (error: unknown) => void;
  timer: Timer | undefined;
  stopListening: (() => void) | undefined;
}

function settle<T>(waiter: Waiter<T>, result: ViewResult<T>): void {
  waiter.timer?.cancel();
  waiter.stopListening?.();
  waiter.resolve(result);
}

function fail<T>(waiter: Waiter<T>, error: unknown): void {
  waiter.timer?.cancel();
  waiter.stopListening?.();
  waiter.reject(error);
}

const SNAPSHOT = 0;
const RESUME = 1;
const STREAM = 2;

export class Materializer<P, T> {
  readonly #source: EventSource<P>;
  readonly #request: Omit<SubscribeRequest, 'index' | 'generation'>;
  readonly #view: View<P, T>;
  readonly #clock: Clock;
  readonly #retry: RetryWaiter;
  readonly #terminalAfter: number;
  readonly #maxSnapshotEvents: number;
  #index = 0;
  #generation: string | undefined;
  #stopped: unknown;
  #running = false;
  readonly #waiters = new Set<Waiter<T>>();
  #result: ViewResult<T> | undefined;
  readonly #stats = { updates: 0, resets: 0, failures: 0, subscriptions: 0, refusedSnapshots: 0 };

  constructor(options: MaterializerOptions<P, T>) {
    this.#source = options.source;
    this.#request = options.request;
    this.#view = options.view;
    this.#clock = options.clock ?? systemClock;
    this.#retry = new RetryWaiter(this.#clock, options.retry, options.random);
    this.#terminalAfter = wholeNumberOption(options.terminalAfter ?? 3, 'terminalAfter', 1);
    this.#maxSnapshotEvents = options.maxSnapshotEvents ?? 1_000_000;
  }

  /** The index of the value the view holds; 0 until the first snapshot is applied. */
  get index(): number {
    return this.#index;
  }

  /** Why the materializer stopped for good, or undefined while it may still update. */
  get stoppedBy(): unknown {
    return this.#stopped;
  }

  stats(): MaterializerStats {
    return { index: this.#index, waiters: this.#waiters.size, ...this.#stats };
  }

  /**
   * Subscribes, applies, resubscribes on failure, until `signal` aborts (resolves) or a
   * terminal failure stops it (resolves too; `stoppedBy` says why). Call once.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running || this.#stopped !== undefined) throw new Error('a materializer runs once');
    this.#running = true;
    let terminalInARow = 0;
    while (!signal.aborted) {
      let failure: unknown;
      try {
        await this.#subscribeOnce(signal);
        failure = new EventStreamError('the event stream ended');
      } catch (error) {
        failure = error;
      }
      if (isAborted(signal)) break;
      this.#stats.failures += 1;
      // A view at index 0 holds nothing to forget; `#apply` resets before it throws.
      if (hasErrorCode(failure, ViewStaleError) && this.#index > 0) this.#reset();
      // No failure since the last good update: the failures before it were not in a row with this one.
      if (this.#retry.failures === 0) terminalInARow = 0;
      if (isTerminalViewError(failure)) {
        terminalInARow += 1;
        if (terminalInARow >= this.#terminalAfter) {
          this.#stop(failure);
          return;
        }
      } else {
        terminalInARow = 0;
      }
      // The first failure since the last good update is hidden: a resubscription usually fixes it.
      if (this.#retry.failures > 0) this.#rejectWaiters(failure);
      try {
        await this.#retry.wait(signal);
      } catch {
        break;
      }
    }
    this.#stop(new MaterializerStoppedError('the materializer was stopped', { cause: signal.reason }));
  }

  /**
   * The view's value once its index is above `minIndex` (at once if it already is, or, with
   * `returnIfBehind`, if it is below; index 0 always waits for the first snapshot). On timeout, the latest value and its index,
   * without an error. Rejects with a surfaced subscription failure, with the terminal
   * failure once stopped, or with the signal's reason.
   */
  fetch(options: FetchOptions = {}): Promise<ViewResult<T>> {
    const minIndex = options.minIndex ?? 0;
    try {
      checkIndex(minIndex, 'minIndex');
    } catch (error) {
      return Promise.reject(error);
    }
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      return Promise.reject(new TypeError(`timeoutMs must be a number >= 0, got ${timeoutMs}`));
    }
    if (this.#stopped !== undefined) return Promise.reject(stoppedError(this.#stopped));
    const returnIfBehind = options.returnIfBehind === true;
    if (this.#index > 0 && (this.#index > minIndex || (returnIfBehind && this.#index < minIndex))) {
      try {
        return Promise.resolve({
          index: this.#index,
          value: this.#currentValue(),
          cached: true,
          generation: this.#generation,
        });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<ViewResult<T>>((resolve, reject) => {
      const waiter: Waiter<T> = {
        minIndex,
        returnIfBehind,
        resets: this.#stats.resets,
        resolve,
        reject,
        timer: undefined,
        stopListening: undefined,
      };
      this.#waiters.add(waiter);
      if (timeoutMs !== undefined) {
        waiter.timer = this.#clock.setTimeout(() => {
          this.#waiters.delete(waiter);
          let value: T;
          try {
            value = this.#currentValue();
          } catch (error) {
            // A View whose result throws fails this caller, never the process (this is a timer).
            fail(waiter, error);
            return;
          }
          settle(waiter, { index: this.#index, value, cached: false, generation: this.#generation });
        }, timeoutMs);
      }
      if (signal !== undefined) {
        waiter.stopListening = onAbort(signal, (reason) => {
          this.#waiters.delete(waiter);
          fail(waiter, reason);
        });
      }
    });
  }

  async #subscribeOnce(signal: AbortSignal): Promise<void> {
    const request: SubscribeRequest = { ...this.#request, index: this.#index, generation: this.#generation };
    let phase = this.#index === 0 ? SNAPSHOT : RESUME;
    let snapshot: Event<P>[] = [];
    this.#stats.subscriptions += 1;
    const items = this.#source(request, signal)[Symbol.asyncIterator]();
    try {
      for (;;) {
        // Raced with the signal: a source that ignores it must not keep the materializer alive
        // after it was stopped or evicted.
        const next = await raceSignal(items.next(), signal);
        if (next.done === true) return;
        phase = this.#handle(next.value, phase, snapshot);
        if (phase !== SNAPSHOT && snapshot.length > 0) snapshot = [];
      }
    } finally {
      // Not awaited, for the same reason; a failure to close is of no interest here.
      items.return?.().catch(ignore);
    }
  }

  /** One stream item through the state machine; returns the phase after it. */
  #handle(item: StreamItem<P>, phase: number, snapshot: Event<P>[]): number {
    switch (item.kind) {
      case 'events':
        if (phase === SNAPSHOT) {
          if (snapshot.length + item.events.length > this.#maxSnapshotEvents) {
            this.#stats.refusedSnapshots += 1;
            throw new EventStreamError(
              `a snapshot of more than ${this.#maxSnapshotEvents} events was refused`,
            );
          }
          for (const event of item.events) snapshot.push(event);
          return SNAPSHOT;
        }
        this.#apply(item.events, item.index);
        return STREAM;
      case 'end-of-snapshot':
        if (phase !== SNAPSHOT) throw new EventStreamError('end-of-snapshot outside a snapshot');
        this.#generation = item.generation;
        this.#apply(snapshot, item.index);
        return STREAM;
      case 'new-snapshot-to-follow':
        if (phase !== RESUME) throw new EventStreamError('new-snapshot-to-follow after the stream started');
        this.#reset();
        return SNAPSHOT;
      default:
        throw new EventStreamError(`unknown stream item ${JSON.stringify((item as { kind: unknown }).kind)}`);
    }
  }

  /** Applies one update and wakes the waiters it satisfies. */
  #apply(events: readonly Event<P>[], index: number): void {
    if (index <= this.#index || index === 0) {
      throw new EventStreamError(`index ${index} is not above the view's index ${this.#index}`);
    }
    try {
      this.#view.update(events);
    } catch (error) {
      this.#reset();
      throw new ViewStaleError('the view failed to apply a batch and was reset', { cause: error });
    }
    this.#index = index;
    this.#result = undefined;
    this.#retry.reset();
    this.#stats.updates += 1;
    if (this.#waiters.size === 0) return;
    // Built when the first waiter is satisfied, not before: most updates satisfy nobody (a
    // caller waits for an index further on), and a value may be a copy of the whole view.
    let result: ViewResult<T> | undefined;
    // Usually every waiter is woken: the set is cleared once after the loop (deleting entry by
    // entry while iterating costs twice the whole wake-up), and the few that keep waiting go back.
    let still: Waiter<T>[] | undefined;
    for (const waiter of this.#waiters) {
      // A rebuilt view (a restarted publisher) may be at a lower index than the caller had seen.
      if (
        (index === waiter.minIndex || (index < waiter.minIndex && !waiter.returnIfBehind)) &&
        waiter.resets === this.#stats.resets
      ) {
        (still ??= []).push(waiter);
        continue;
      }
      if (result === undefined) {
        try {
          result = { index, value: this.#currentValue(), cached: false, generation: this.#generation };
        } catch (error) {
          // The value cannot be read: treated as a failed update. No waiter was woken yet,
          // so all of them keep waiting for the rebuilt view.
          this.#reset();
          throw new ViewStaleError('the view failed to produce its value and was reset', { cause: error });
        }
      }
      settle(waiter, result);
    }
    if (result === undefined) return;
    this.#waiters.clear();
    if (still !== undefined) for (const waiter of still) this.#waiters.add(waiter);
  }

  /** Forgets the view (no waiter is told: they wait for the snapshot that follows). */
  #reset(): void {
    this.#view.reset();
    this.#index = 0;
    this.#generation = undefined;
    this.#result = undefined;
    this.#stats.resets += 1;
  }

  #currentValue(): T {
    // One value per index, shared by every caller.
    this.#result ??= { index: this.#index, value: this.#view.result(this.#index), cached: false };
    return this.#result.value;
  }

  #rejectWaiters(error: unknown): void {
    const waiting = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiting) fail(waiter, error);
  }

  #stop(reason: unknown): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = reason;
    this.#running = false;
    this.#rejectWaiters(stoppedError(reason));
  }
}

/** A terminal failure is passed on as it is; anything else says the materializer stopped. */
function stoppedError(reason: unknown): unknown {
  return isTerminalViewError(reason) || reason instanceof MaterializerStoppedError
    ? reason
    : new MaterializerStoppedError('the materializer has stopped', { cause: reason });
}

function ignore(): void {
  // Closing a finished source may fail; nothing depends on it.
}
