// One injectable source of time for every timer, TTL, backoff and liveness check.
//
// Components take a `Clock` instead of calling `setTimeout` and `Date.now` so that
// their tests run on `FakeClock` and advance time by hand: no test sleeps, and a
// 60 s timeout is tested in microseconds. `now()` is monotonic (it never goes back
// when the wall clock is adjusted); `wallTimeMs()` is for timestamps that leave the
// process, such as a handshake's time, and nothing else.

import { onAbort } from './abort.ts';

/** Largest delay a Node timer honours (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A scheduled callback. `cancel()` is idempotent and safe after it fired. */
export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /** Keep the process alive while this timer is pending (Node's ref/unref). Default false. */
  readonly keepAlive?: boolean;
}

export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin; compare only with other `now()` values. */
  now(): number;
  /** Milliseconds since the Unix epoch, for timestamps sent to other processes. */
  wallTimeMs(): number;
  /** Runs `callback` once after `delayMs` (clamped to [0, 2^31-1]). */
  setTimeout(callback: () => void, delayMs: number, options?: TimerOptions): Timer;
  /** Runs `callback` every `intervalMs` (clamped to [1, 2^31-1]) until cancelled. */
  setInterval(callback: () => void, intervalMs: number, options?: TimerOptions): Timer;
}

/** Delay accepted by timers: negative and NaN become 0, anything above 2^31-1 ms becomes 2^31-1 ms. */
export function clampDelay(delayMs: number): number {
  if (!(delayMs > 0)) return 0;
  return delayMs > MAX_TIMER_MS ? MAX_TIMER_MS : delayMs;
}

/**
 * The process's real clock. Timers are unref'd unless asked otherwise: a pending
 * heartbeat or TTL must not keep a process alive that has nothing else to do.
 * Node fires a timer of more than 2^31-1 ms after 1 ms; `clampDelay` prevents that.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallTimeMs: () => Date.now(),
  setTimeout(callback, delayMs, options) {
    const handle = setTimeout(callback, clampDelay(delayMs));
    if (options?.keepAlive !== true) handle.unref();
    return {
      cancel: () => {
        clearTimeout(handle);
      },
    };
  },
  setInterval(callback, intervalMs, options) {
    const handle = setInterval(callback, Math.max(1, clampDelay(intervalMs)));
    if (options?.keepAlive !== true) handle.unref();
    return {
      cancel: () => {
        clearInterval(handle);
      },
    };
  },
};

/** Resolves after `delayMs` on `clock`, or rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      stopListening();
      resolve();
    }, delayMs);
    const stopListening = onAbort(signal, (reason) => {
      timer.cancel();
      reject(reason);
    });
  });
}
