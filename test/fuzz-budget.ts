// Fuzzing with a floor on the work done and a time budget for more. fast-check's
// interruptAfterTimeLimit ends a run early and reports success however few inputs it tried,
// so on a loaded machine a time-limited fuzz passes having checked almost nothing. Here a fuzz
// first checks `minRuns` generated inputs whatever the time they take (a loaded machine takes
// longer; it does not check less), then keeps generating new ones until `timeLimitMs` has
// passed since it started. Only a machine so slow that the floor takes five times the budget
// fails for want of runs, and says so. The number checked and the seeds are printed; a failure
// is replayed by passing its `seed` and `path` (fast-check's report gives both), which runs
// that one case.

import type { TestContext } from 'node:test';

import fc from 'fast-check';

export interface FuzzBudget {
  /** How long, from the start, new inputs are tried once the floor is reached. */
  readonly timeLimitMs: number;
  /** Generated inputs always checked (hand-written examples not counted). */
  readonly minRuns: number;
  /** Stop here even with time left. */
  readonly maxRuns?: number;
}

const DEFAULT_MAX_RUNS = 1_000_000;
/**
 * The floor must be reached within this many time budgets, or the fuzz fails. A test's own
 * timeout must exceed this many budgets plus its setup.
 */
export const FLOOR_BUDGETS = 5;

type Phase<Ts> = (params: fc.Parameters<Ts>) => Promise<fc.RunDetails<Ts>>;

async function runPhases<Ts>(
  t: TestContext,
  budget: FuzzBudget,
  params: fc.Parameters<Ts>,
  run: Phase<Ts>,
  report: (details: fc.RunDetails<Ts>) => Promise<string | undefined>,
): Promise<number> {
  const started = performance.now();
  const examples = params.examples?.length ?? 0;
  const maxRuns = budget.maxRuns ?? DEFAULT_MAX_RUNS;
  const fail = async (details: fc.RunDetails<Ts>): Promise<never> => {
    throw new Error((await report(details)) ?? 'the fuzz failed', { cause: details.errorInstance });
  };

  // A replay: the seed (and path) of a reported failure, run as fast-check runs it, untimed.
  if (params.seed !== undefined) {
    const replay = await run({ ...params, numRuns: examples + Math.min(budget.minRuns, maxRuns) });
    if (replay.failed) return fail(replay);
    return replay.numRuns;
  }

  // The floor: the examples, then minRuns generated inputs, with a generous stop for a machine
  // that cannot do them at all.
  const floorLimitMs = budget.timeLimitMs * FLOOR_BUDGETS;
  const floor = await run({
    ...params,
    numRuns: examples + Math.min(budget.minRuns, maxRuns),
    plugins: [...(params.plugins ?? []), interruptAfter<Ts>(floorLimitMs)],
  });
  if (floor.failed && floor.counterexamplePath !== null) return fail(floor);
  let generated = Math.max(0, floor.numRuns - examples);
  if (generated < Math.min(budget.minRuns, maxRuns)) {
    throw new Error(
      `the fuzz checked only ${generated} generated inputs in ${floorLimitMs} ms; ` +
        `it needs at least ${budget.minRuns} to count (seed ${floor.seed})`,
    );
  }
  if (floor.failed) return fail(floor);

  // More inputs, from another seed, for what is left of the time budget.
  const leftMs = budget.timeLimitMs - (performance.now() - started);
  let seeds = `${floor.seed}`;
  if (leftMs > 0 && generated < maxRuns) {
    const more = await run({
      ...params,
      examples: [],
      seed: (floor.seed + 1) | 0,
      numRuns: maxRuns - generated,
      plugins: [...(params.plugins ?? []), interruptAfter<Ts>(leftMs)],
    });
    // Interrupted before its first run is a "failure" to fast-check; it is only time running out.
    if (more.failed && more.counterexamplePath !== null) return fail(more);
    if (more.failed && more.numRuns > 0) return fail(more);
    generated += more.numRuns;
    seeds += `, then ${more.seed}`;
  }
  t.diagnostic(
    `fuzz: ${generated} generated inputs in ${Math.round(performance.now() - started)} ms ` +
      `(floor ${budget.minRuns}, budget ${budget.timeLimitMs} ms; seeds ${seeds})`,
  );
  return generated;
}

function interruptAfter<Ts>(ms: number): fc.Plugin<Ts> {
  // The plugin never looks at the values it lets through, so it serves any property.
  return fc.interruptAfterTimeLimit(ms) as unknown as fc.Plugin<Ts>;
}

/** Checks `property` on at least `minRuns` generated inputs, then more until the time limit. */
export function fuzz<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  budget: FuzzBudget,
  property: fc.IProperty<Ts>,
  params: Omit<fc.Parameters<Ts>, 'numRuns'> = {},
): Promise<number> {
  return runPhases(
    t,
    budget,
    params,
    (phase) => Promise.resolve(fc.check(property, phase)),
    (details) => Promise.resolve(fc.defaultReportMessage(details)),
  );
}

/**
 * Like `fuzz`, for an async `check` of one input. fast-check stops waiting for a run at
 * the time limit but cannot stop it, so the run in progress is awaited here (and its
 * failure reported): nothing of the fuzz is still running when the caller goes on.
 */
export async function fuzzAsync<T>(
  t: TestContext,
  budget: FuzzBudget,
  arb: fc.Arbitrary<T>,
  check: (input: T) => Promise<void>,
  examples: readonly T[] = [],
  replay?: { readonly seed: number; readonly path?: string },
): Promise<number> {
  let current: Promise<void> = Promise.resolve();
  const property = fc.asyncProperty(arb, async (input) => {
    current = check(input);
    await current;
  });
  const params: fc.Parameters<[T]> = { examples: examples.map((example): [T] => [example]), ...replay };
  return runPhases(
    t,
    budget,
    params,
    async (phase) => {
      const details = await fc.check(property, phase);
      const last = await current.then(
        () => undefined,
        (error: unknown) => ({ error }),
      );
      // The run cut off by the time limit failed after fast-check stopped waiting for it.
      if (last !== undefined && details.counterexamplePath === null) throw last.error;
      return details;
    },
    (details) => fc.asyncDefaultReportMessage(details),
  );
}
