// A Clock that moves only when a test moves it.
//
// Timers fire in order of due time, ties in the order they were set, each with
// `now()` equal to its due time, so code under test sees exactly the times it
// would see in production. `advance` is synchronous; `advanceAsync` also lets
// promise chains run between timers, which is what async code under test needs
// (a timer resolves a promise whose continuation sets the next timer).

import { clampDelay, type Clock, type Timer } from './clock.ts';

interface PendingTimer {
  readonly id: number;
  due: number;
  readonly intervalMs: number | undefined;
  readonly callback: () => void;
}

export interface FakeClockOptions {
  /** Starting value of `now()`. Default 0. */
  readonly startMs?: number;
  /** Wall time at `now() === startMs`. Default 2026-01-01T00:00:00Z. */
  readonly wallStartMs?: number;
}

export class FakeClock implements Clock {
  #now: number;
  readonly #wallOffset: number;
  #nextId = 1;
  /** Sorted by due time, then id: the head is the next timer to fire. */
  #timers: PendingTimer[] = [];

  constructor(options: FakeClockOptions = {}) {
    this.#now = options.startMs ?? 0;
    this.#wallOffset = (options.wallStartMs ?? Date.UTC(2026, 0, 1)) - this.#now;
  }

  now(): number {
    return this.#now;
  }

  wallTimeMs(): number {
    return this.#now + this.#wallOffset;
  }

  setTimeout(callback: () => void, delayMs: number): Timer {
    return this.#schedule(callback, clampDelay(delayMs), undefined);
  }

  setInterval(callback: () => void, intervalMs: number): Timer {
    const every = Math.max(1, clampDelay(intervalMs));
    return this.#schedule(callback, every, every);
  }

  /** Number of timers waiting to fire. A test that expects cleanup asserts this is 0. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Milliseconds until the next timer fires, or undefined when none is pending. */
  get nextTimerInMs(): number | undefined {
    const head = this.#timers[0];
    return head === undefined ? undefined : head.due - this.#now;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, synchronously. */
  advance(ms: number): void {
    const target = this.#now + checkStep(ms);
    for (let timer = this.#takeDue(target); timer !== undefined; timer = this.#takeDue(target)) {
      timer.callback();
    }
    this.#now = target;
  }

  /**
   * Moves time forward by `ms` like `advance`, letting pending promise callbacks run
   * before the first timer, after each timer and at the end.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#now + checkStep(ms);
    await flushMicrotasks();
    for (let timer = this.#takeDue(target); timer !== undefined; timer = this.#takeDue(target)) {
      timer.callback();
      await flushMicrotasks();
    }
    this.#now = target;
    await flushMicrotasks();
  }

  /** Jumps to the next timer and fires it (and any due at the same instant). Returns false if none. */
  async runNext(): Promise<boolean> {
    const wait = this.nextTimerInMs;
    if (wait === undefined) return false;
    await this.advanceAsync(wait);
    return true;
  }

  #schedule(callback: () => void, delayMs: number, intervalMs: number | undefined): Timer {
    const timer: PendingTimer = { id: this.#nextId++, due: this.#now + delayMs, intervalMs, callback };
    this.#insert(timer);
    return {
      cancel: () => {
        this.#remove(timer);
      },
    };
  }

  /** Removes and returns the head timer if it is due by `target`, advancing `now` to its due time. */
  #takeDue(target: number): PendingTimer | undefined {
    const head = this.#timers[0];
    if (head === undefined || head.due > target) return undefined;
    this.#timers.shift();
    this.#now = head.due;
    if (head.intervalMs !== undefined) {
      head.due += head.intervalMs;
      this.#insert(head);
    }
    return head;
  }

  #insert(timer: PendingTimer): void {
    // Binary search for the first timer that fires after this one.
    let low = 0;
    let high = this.#timers.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const other = this.#timers[mid];
      if (
        other !== undefined &&
        (other.due < timer.due || (other.due === timer.due && other.id < timer.id))
      ) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    this.#timers.splice(low, 0, timer);
  }

  #remove(timer: PendingTimer): void {
    const index = this.#timers.indexOf(timer);
    if (index !== -1) this.#timers.splice(index, 1);
  }
}

function checkStep(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a clock by ${ms} ms`);
  return ms;
}

/** Lets every queued promise callback run: a macrotask turn comes after the microtask queue drains. */
function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
