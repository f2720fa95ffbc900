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
