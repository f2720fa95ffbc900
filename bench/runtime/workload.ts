// The workload every side of the runtime suite runs: a counter per key, incremented by one per
// call, over `keys` keys taken in turn (key 0, 1, …, keys − 1, 0, …; a session's runs go on from
// where its last one stopped, `firstKey`), with `concurrency` calls in flight. Calls to one key
// never overlap: a call whose key is still busy waits for it, so the n-th reply for a key must
// carry n (counted from the key's first call in the session), which is what every peer checks on
// every reply.

/** How much load one run applies: a fixed number of calls or a fixed time. */
export type LoadSize = { readonly requests: number } | { readonly durationMs: number };

export type Load = {
  /** Calls in flight at once. */
  readonly concurrency: number;
  /** Distinct keys, taken in turn. */
  readonly keys: number;
  /**
   * The first call's key, default 0. A session of runs passes the key after the last one its
   * previous run called, so that runs shorter than `keys` still go over every key.
   */
  readonly firstKey?: number;
} & LoadSize;

export interface LoadResult {
  /** Completed calls per second, from the first call's start to the last one's end. */
  readonly opsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Calls completed. */
  readonly count: number;
}

/** Above this a key table or a latency list stops being a small thing to hold. */
export const maxKeys = 1_000_000;
const maxRequests = 10_000_000;
const maxConcurrency = 4_096;
const maxDurationMs = 600_000;

/** The key of index `index`: the same string on every side. */
export function counterKey(index: number): string {
  return `key-${index}`;
}

function checkInteger(name: string, value: unknown, least: number, most: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < least || value > most) {
    throw new RangeError(`${name} must be an integer from ${least} to ${most}, got ${String(value)}`);
  }
}

/** Throws a RangeError naming the field unless `load` is a load this module can run. */
export function checkLoad(load: Load): void {
  checkInteger('concurrency', load.concurrency, 1, maxConcurrency);
  checkInteger('keys', load.keys, 1, maxKeys);
  if (load.firstKey !== undefined) checkInteger('firstKey', load.firstKey, 0, load.keys - 1);
  const size = load as { readonly requests?: unknown; readonly durationMs?: unknown };
  if ((size.requests === undefined) === (size.durationMs === undefined)) {
    throw new RangeError('a load needs exactly one of requests and durationMs');
  }
  if (size.requests !== undefined) checkInteger('requests', size.requests, 1, maxRequests);
  else checkInteger('durationMs', size.durationMs, 1, maxDurationMs);
}

/** The `quantile` (0 to 1) of sorted `values`, nearest rank. */
export function quantileOf(sorted: Float64Array, quantile: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))] as number;
}

/** Counts calls per key; the expected reply of a key's next call is its count plus one. */
export class KeyCounts {
  readonly #counts: Uint32Array;

  constructor(keys: number = maxKeys) {
    checkInteger('keys', keys, 1, maxKeys);
    this.#counts = new Uint32Array(keys);
  }

  /** Records one more call to `key` and returns how many it has had. */
  next(key: number): number {
    const count = (this.#counts[key] ?? 0) + 1;
    this.#counts[key] = count;
    return count;
  }

  get(key: number): number {
    return this.#counts[key] ?? 0;
  }

  /** Up to `most` keys that have had calls, spread evenly over those. */
  sample(most: number): number[] {
    const called: number[] = [];
    this.#counts.forEach((count, key) => {
      if (count > 0) called.push(key);
    });
    if (called.length <= most) return called;
    return Array.from({ length: most }, (_, i) => called[Math.floor((i * called.length) / most)] as number);
  }
}

/**
 * Runs `load`, calling `call(keyIndex)` for each call with never two calls to one key at once,
 * and times each. A call that throws fails the run: no figure from a run that went wrong.
 */
export async function runClosedLoop(load: Load, call: (key: number) => Promise<void>): Promise<LoadResult> {
  checkLoad(load);
  const { concurrency, keys, firstKey = 0 } = load;
  const size = load as { readonly requests?: number; readonly durationMs?: number };
  const requests = size.requests ?? maxRequests;
  const busy = new Map<number, Promise<void>>();
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = size.durationMs === undefined ? Number.POSITIVE_INFINITY : start + size.durationMs;
  let started = 0;
  // The first call that failed; an object, so that what the callers set is seen after they end.
  const outcome: { failure?: { readonly error: unknown } } = {};
  const caller = async (): Promise<void> => {
    while (outcome.failure === undefined && started < requests && performance.now() < deadline) {
      const key = (firstKey + started) % keys;
      started += 1;
      // Keys outnumber callers, so this is rare: only a call slower than `keys` others.
      let previous = busy.get(key);
      while (previous !== undefined) {
        await previous;
        previous = busy.get(key);
      }
      const begin = performance.now();
      const done = call(key);
      const settled = done.then(
        () => undefined,
        () => undefined,
      );
      busy.set(key, settled);
      try {
        await done;
      } catch (error) {
        outcome.failure ??= { error };
      } finally {
        busy.delete(key);
      }
      latencies.push(performance.now() - begin);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, caller));
  if (outcome.failure !== undefined) throw outcome.failure.error;
  const elapsedMs = performance.now() - start;
  const sorted = Float64Array.from(latencies).sort();
  return {
    opsPerS: (sorted.length * 1000) / elapsedMs,
    p50Ms: quantileOf(sorted, 0.5),
    p99Ms: quantileOf(sorted, 0.99),
    count: sorted.length,
  };
}
