// A closed loop at a fixed concurrency: `concurrency` calls are kept in flight, and as each
// completes the next starts, until `total` have completed. This is how a busy node uses one
// connection: many independent callers, each issuing its next call when its last one returns.

export async function runConcurrently(
  total: number,
  concurrency: number,
  call: () => Promise<unknown>,
): Promise<void> {
  let started = 0;
  const caller = async (): Promise<void> => {
    while (started < total) {
      started += 1;
      await call();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, caller));
}

/**
 * The `quantile` of request latency, in microseconds, over `total` calls made with
 * `concurrency` in flight: each call is timed from its start to its completion. Each reply is
 * then given to `verify` (outside the timing), which throws if it is wrong.
 */
export async function latencyQuantileUs<Reply>(
  total: number,
  concurrency: number,
  quantile: number,
  call: () => Promise<Reply>,
  verify: (reply: Reply) => void,
): Promise<number> {
  const latencies = new Float64Array(total);
  let started = 0;
  const caller = async (): Promise<void> => {
    while (started < total) {
      const index = started++;
      const start = performance.now();
      const reply = await call();
      latencies[index] = (performance.now() - start) * 1000;
      verify(reply);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, caller));
  latencies.sort();
  return latencies[Math.min(total - 1, Math.ceil(quantile * total) - 1)] ?? Number.NaN;
}
