// Orders a story's steps so every step comes after all the steps it needs, or names a cycle.

export interface DagOrder {
  /** Steps in dependency order; ties keep document order. Complete only when `cycle` is undefined. */
  readonly order: readonly string[];
  /** One cycle, as step ids in flow order with the first repeated at the end (`a → b → a`). */
  readonly cycle: readonly string[] | undefined;
}

/** Kahn's algorithm over `ids` (document order) with `upstream` listing each step's needs. */
export function orderSteps(
  ids: readonly string[],
  upstream: ReadonlyMap<string, readonly string[]>,
): DagOrder {
  const waiting = new Map<string, number>();
  const downstream = new Map<string, string[]>();
  for (const id of ids) {
    waiting.set(id, upstream.get(id)?.length ?? 0);
    downstream.set(id, []);
  }
  for (const id of ids) for (const from of upstream.get(id) ?? []) downstream.get(from)?.push(id);

  const order: string[] = [];
  const ready = ids.filter((id) => waiting.get(id) === 0);
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i] as string;
    order.push(id);
    for (const next of downstream.get(id) ?? []) {
      const left = (waiting.get(next) ?? 0) - 1;
      waiting.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  if (order.length === ids.length) return { order, cycle: undefined };
  return { order, cycle: findCycle(ids, upstream, new Set(order)) };
}

/**
 * Every step Kahn's algorithm left behind still waits on another step left behind, so walking
 * upstream from one of them must come back to a step already visited: that loop is a cycle.
 */
function findCycle(
  ids: readonly string[],
  upstream: ReadonlyMap<string, readonly string[]>,
  ordered: ReadonlySet<string>,
): string[] {
  const start = ids.find((id) => !ordered.has(id)) as string;
  const seenAt = new Map<string, number>();
  const walk: string[] = [];
  let current = start;
  while (!seenAt.has(current)) {
    seenAt.set(current, walk.length);
    walk.push(current);
    current = (upstream.get(current) ?? []).find((id) => !ordered.has(id)) as string;
  }
  const loop = walk.slice(seenAt.get(current));
  // The walk went against the flow; reverse it so the cycle reads in the direction packets move,
  // and start it at its first step in document order so the same story names the same cycle.
  loop.reverse();
  const position = new Map(ids.map((id, i) => [id, i]));
  let first = 0;
  loop.forEach((id, i) => {
    if ((position.get(id) ?? 0) < (position.get(loop[first] as string) ?? 0)) first = i;
  });
  const rotated = [...loop.slice(first), ...loop.slice(0, first)];
  rotated.push(rotated[0] as string);
  return rotated;
}
