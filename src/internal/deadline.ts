// Absolute deadlines and the signals that enforce them.
//
// A deadline is a point on a Clock's monotonic time line (`clock.now()` units), or
// `NO_DEADLINE`. Working in absolute points means a deadline handed down through
// several calls never stretches: each hop takes the minimum of what it was given
// and its own timeout, and the time already spent is accounted for. Timeouts are
// clamped to 2^31-1 ms, the longest a Node timer can wait; callers asking for more
// get about 24.8 days, never a timer that fires at once.
//
// A signal made by `callScope` remembers its deadline, so work started under it
// (an RPC from inside a handler, say) inherits the remaining time automatically.

import { linkSignals } from './abort.ts';
import { MAX_TIMER_MS, type Clock, type Timer } from './clock.ts';
import { DeadlineExceededError } from './errors.ts';

/** A point in `clock.now()` milliseconds, or `NO_DEADLINE`. */
export type Deadline = number;

export const NO_DEADLINE: Deadline = Number.POSITIVE_INFINITY;

/** Clamps a timeout to [0, 2^31-1] ms. Rejects NaN: a NaN timeout is a bug upstream, not "no timeout". */
export function clampTimeout(timeoutMs: number): number {
  if (Number.isNaN(timeoutMs)) throw new RangeError('timeoutMs is NaN');
  if (timeoutMs <= 0) return 0;
  return timeoutMs > MAX_TIMER_MS ? MAX_TIMER_MS : timeoutMs;
}

/** The deadline `timeoutMs` from now; `undefined` means none. */
export function deadlineAfter(clock: Clock, timeoutMs: number | undefined): Deadline {
  return timeoutMs === undefined ? NO_DEADLINE : clock.now() + clampTimeout(timeoutMs);
}

/** The earliest of the given deadlines; undefined entries are ignored. */
export function minDeadline(...deadlines: readonly (Deadline | undefined)[]): Deadline {
  let earliest = NO_DEADLINE;
  for (const d of deadlines) if (d !== undefined && d < earliest) earliest = d;
  return earliest;
}

/** Milliseconds left before `deadline`: 0 when passed, Infinity when there is none. */
export function remainingMs(clock: Clock, deadline: Deadline): number {
  if (deadline === NO_DEADLINE) return NO_DEADLINE;
  return Math.max(0, deadline - clock.now());
}

const deadlineOfSignals = new WeakMap<AbortSignal, Deadline>();

/** The deadline a `callScope` signal carries, or `NO_DEADLINE` for any other signal. */
export function deadlineOf(signal: AbortSignal | undefined): Deadline {
  return (signal && deadlineOfSignals.get(signal)) ?? NO_DEADLINE;
}

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
}

/** The signal and deadline one call runs under. `dispose()` when the call ends. */
export interface CallScope {
  readonly signal: AbortSignal;
  readonly deadline: Deadline;
  /** Aborts the scope's signal (not the parent's) with `reason`. */
  abort(reason?: unknown): void;
  dispose(): void;
}

/**
 * Scope for one call: its deadline is the earliest of the parent signal's deadline
 * and `timeoutMs` (or `defaultTimeoutMs` when the caller gave none); its signal aborts
 * when the parent aborts (same reason) or, at the deadline, with a `DeadlineExceededError`.
 */
export function callScope(clock: Clock, options: CallOptions = {}, defaultTimeoutMs?: number): CallScope {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const deadline = minDeadline(deadlineOf(options.signal), deadlineAfter(clock, timeoutMs));
  const linked = linkSignals(options.signal);
  deadlineOfSignals.set(linked.signal, deadline);

  let timer: Timer | undefined;
  if (!linked.signal.aborted && deadline !== NO_DEADLINE) {
    const wait = remainingMs(clock, deadline);
    const expire = (): void => {
      linked.abort(new DeadlineExceededError(`deadline of ${wait} ms exceeded`, { timeoutMs: wait }));
    };
    if (wait === 0) expire();
    else timer = clock.setTimeout(expire, wait);
  }
  return {
    signal: linked.signal,
    deadline,
    abort: linked.abort,
    dispose() {
      timer?.cancel();
      linked.dispose();
    },
  };
}
