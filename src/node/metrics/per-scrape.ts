// prom-client runs every metric's `collect()` in one synchronous pass per scrape, so a
// module's `stats()` read once and forgotten at the next microtask gives all of that
// module's series the same snapshot, for the price of one `stats()` call per scrape.

/** Wraps `read` so that calls within one synchronous run share one result. */
export function perScrape<T>(read: () => T): () => T {
  let held: { readonly value: T } | undefined;
  return () => {
    if (held === undefined) {
      held = { value: read() };
      queueMicrotask(() => {
        held = undefined;
      });
    }
    return held.value;
  };
}
