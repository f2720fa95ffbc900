// The benchmark harness. A suite (`bench/<suite>.bench.ts`) default-exports
// `defineSuite({ cases })`; each case runs our code and a real peer package on the same
// workload in the same process, so the ratio between them means something on any machine.
//
// How one case is measured (docs/benchmarks.md says the same for readers of results):
// 1. `setup`, then `check`: a benchmark of code that computes the wrong thing is worthless.
// 2. Warm-up of both sides, so the JIT has optimised both before anything is timed.
// 3. Calibration: the batch size (calls per timed sample) that takes about `batchMs`, so
//    timer resolution and loop overhead are noise against the work.
// 4. Rounds in ABBA order (ours, peer, peer, ours, …), GCs before every sample (full ones
//    unless the case asks for minor), so slow drift (heap growth, CPU clock, a noisy
//    neighbour) hits both sides alike.
// A case-measured metric (`mb_per_s`, `heap_bytes_per_op`, `origin_fetches_per_blob`) skips 2
// and 3: each call of a side measures one sample itself.
// 5. `check` runs again after the rounds: a side that broke while it was timed (a stream that
//    failed and recovered, a wrong reply) fails the case instead of publishing a figure.
// 6. Each side's value is the median of its samples, the ratio the median of the per-round
//    ratios; the spread is reported as each side's relative standard deviation and as the
//    quartiles of the per-round ratios.
//
// Rules every suite follows, enforced here (docs/benchmarks.md, Rules): at least
// `minimumRounds` samples per side; a case that throws or fails its check fails the run and
// no result file is written; every result file records the commit and whether the tree was
// dirty (provenance.ts).
//
// The statistics, results and suite-finding functions are exported for the unit tests
// (test/bench/harness.test.ts); only measurement itself needs a real clock.

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { sourceRevision, type SourceRevision } from './provenance.ts';

// ---------------------------------------------------------------------------------------
// Suite definition

/**
 * Throughput in operations or megabytes (10^6 bytes) per second (higher is better), per-op
 * latency quantiles in microseconds, V8 heap bytes retained per op, or fetches from an origin
 * per blob served, or the longest pause in a stream of deliveries in milliseconds, or how long a
 * node took to be ready, a page to show its first row or a change, in milliseconds (lower is
 * better). See `metricTraits` for which the harness times.
 */
export type Metric =
  | 'ops_per_s'
  | 'mb_per_s'
  | 'latency_p50_us'
  | 'latency_p99_us'
  | 'heap_bytes_per_op'
  | 'origin_fetches_per_blob'
  | 'max_gap_ms'
  | 'ready_ms'
  | 'first_paint_ms'
  | 'update_latency_ms';

export interface MetricTraits {
  readonly better: 'higher' | 'lower';
  /**
   * `harness`: the harness times calls of `fn` (unless the case is `selfMeasured`). `case`: each
   * call of `fn` is one whole sample and returns it, e.g. a transfer it timed itself or a count
   * it read from an origin's access log.
   */
  readonly measuredBy: 'harness' | 'case';
  /**
   * A count or a size, not a time: samples barely vary, so fewer are needed and no warm-up call
   * is made (`minimumRounds.counted`).
   */
  readonly counted: boolean;
  /** Decimals a result keeps. */
  readonly digits: number;
}

export const metricTraits: Readonly<Record<Metric, MetricTraits>> = {
  ops_per_s: { better: 'higher', measuredBy: 'harness', counted: false, digits: 0 },
  mb_per_s: { better: 'higher', measuredBy: 'case', counted: false, digits: 1 },
  latency_p50_us: { better: 'lower', measuredBy: 'harness', counted: false, digits: 3 },
  latency_p99_us: { better: 'lower', measuredBy: 'harness', counted: false, digits: 3 },
  heap_bytes_per_op: { better: 'lower', measuredBy: 'case', counted: true, digits: 0 },
  origin_fetches_per_blob: { better: 'lower', measuredBy: 'case', counted: true, digits: 3 },
  // The longest pause between two deliveries, in milliseconds, that one call measured.
  max_gap_ms: { better: 'lower', measuredBy: 'case', counted: false, digits: 3 },
  // From spawning a cluster until it said every node is ready, in milliseconds, per call.
  ready_ms: { better: 'lower', measuredBy: 'case', counted: false, digits: 1 },
  // From a page's navigation start until it first showed what it is for, in milliseconds.
  first_paint_ms: { better: 'lower', measuredBy: 'case', counted: false, digits: 1 },
  // From a change being accepted until a page showed it, in milliseconds.
  update_latency_ms: { better: 'lower', measuredBy: 'case', counted: false, digits: 1 },
};

export const metrics: readonly Metric[] = Object.keys(metricTraits) as Metric[];

/**
 * One operation. If it returns a promise the harness awaits it before starting the next.
 * For a case-measured metric (`metricTraits`) nothing is timed: each call is one whole sample,
 * and returns (or resolves to) what it measured, e.g. heap bytes per op across processes.
 */
export type Operation = () => unknown;

/** A lifecycle hook; may be async. */
export type Hook = () => Promise<void> | undefined;

export interface BenchCase {
  /** The workload, e.g. `encode-frame-512B`. One name may run against several peers. */
  readonly name: string;
  readonly metric: Metric;
  readonly ours: { readonly label: string; readonly fn: Operation };
  /**
   * The same workload on a real peer package. Left out only for a figure no peer has (the hub's
   * longest delivery pause across a cutover): the row then reports ours alone, with no ratio.
   */
  readonly peer?: { readonly name: string; readonly fn: Operation };
  /**
   * Operations one call of either side's `fn` completes; default 1. For work measured in
   * bulk, such as a call that completes 256 requests with 32 of them in flight: throughput
   * is then per operation (requests per second), not per call. Throughput metrics only.
   */
  readonly opsPerCall?: number;
  /**
   * Samples per side instead of the run's `rounds`, for samples that take seconds; at least
   * `minimumRounds.full` for this metric. `quickRounds` is the same for a `--quick` run
   * (default: `rounds`), at least `minimumRounds.quick`.
   */
  readonly rounds?: number;
  readonly quickRounds?: number;
  /**
   * What is collected before each sample: `full` (the default), two full GCs; `minor`, only
   * the young generation. A forced full GC slows the next milliseconds of allocation-heavy
   * async code (by about a third in the grid suite, and not by the same amount for both
   * sides), so a case timing such code, with its peer's server in another process, uses `minor`.
   */
  readonly gc?: 'full' | 'minor';
  /**
   * Each call of a side measures one whole sample itself and returns (or resolves to) it, in
   * the case's metric: for a latency quantile of requests made concurrently, which one timed
   * call cannot give. The harness warms each side up with one call, then takes the rounds.
   * Cases of a metric the case measures (`metricTraits[metric].measuredBy`) always are.
   */
  readonly selfMeasured?: boolean;
  /** Runs once before `check` and timing, e.g. to start a server. */
  readonly setup?: Hook;
  /**
   * Throws if ours or the peer computes the wrong thing, or has had trouble (a failed stream, a
   * refused request). Runs after `setup`, before timing, and again after the last round.
   */
  readonly check?: Hook;
  /** Runs once after timing, also when `setup`, `check` or timing failed. */
  readonly teardown?: Hook;
}

export interface Suite {
  readonly cases: readonly BenchCase[];
  /** Lines printed once above the results table, e.g. encoded sizes. */
  readonly notes?: () => readonly string[] | Promise<readonly string[]>;
}

// Suites made by defineSuite, so a loader can tell one from an arbitrary default export.
const definedSuites = new WeakSet<Suite>();

/** Validates a suite definition; a suite file default-exports the result. */
export function defineSuite(suite: Suite): Suite {
  if (suite.cases.length === 0) throw new TypeError('a suite needs at least one case');
  const seen = new Set<string>();
  for (const c of suite.cases) {
    if (!/^\S+$/.test(c.name)) {
      throw new TypeError(`case name must be non-empty without spaces, got "${c.name}"`);
    }
    if (!metrics.includes(c.metric)) {
      throw new TypeError(`case ${c.name}: metric must be one of ${metrics.join(', ')}, got ${c.metric}`);
    }
    const opsPerCall = c.opsPerCall ?? 1;
    if (!Number.isSafeInteger(opsPerCall) || opsPerCall < 1) {
      throw new TypeError(`case ${c.name}: opsPerCall must be a positive integer, got ${opsPerCall}`);
    }
    // A latency is timed per call; spread over several operations it would mean nothing.
    if (opsPerCall !== 1 && c.metric !== 'ops_per_s') {
      throw new TypeError(`case ${c.name}: opsPerCall is for throughput (ops_per_s) only`);
    }
    const minimum = minimumRoundsFor(c.metric);
    for (const [field, value, least] of [
      ['rounds', c.rounds, minimum.full],
      ['quickRounds', c.quickRounds, minimum.quick],
    ] as const) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= least)) {
        throw new TypeError(
          `case ${c.name}: ${field} must be an integer of at least ${least} for ${c.metric}, got ${value}`,
        );
      }
    }
    if (c.ours.label === '' || c.peer?.name === '') {
      throw new TypeError(`case ${c.name}: ours.label and peer.name are required`);
    }
    // A result row is identified by (name, metric, peer): the same workload against two peers,
    // or measured two ways (throughput and p99 latency), is two rows.
    const key = `${c.name}\0${c.metric}\0${c.peer?.name ?? ''}`;
    if (seen.has(key)) {
      throw new TypeError(`case ${c.name} (${c.metric}) against ${peerName(c)} is defined twice`);
    }
    seen.add(key);
  }
  const defined = Object.freeze({ ...suite, cases: Object.freeze([...suite.cases]) });
  definedSuites.add(defined);
  return defined;
}

/** The peer's name, or `no peer` for a case measured on ours alone. */
export function peerName(c: Pick<BenchCase, 'peer'>): string {
  return c.peer?.name ?? 'no peer';
}

export function isSuite(value: unknown): value is Suite {
  return typeof value === 'object' && value !== null && definedSuites.has(value as Suite);
}

// ---------------------------------------------------------------------------------------
// Measurement

export interface MeasureOptions {
  /** Which of a case's round counts applies: `rounds` or `quickRounds`. */
  readonly mode: 'quick' | 'full';
  /** How long each side runs before calibration. */
  readonly warmupMs: number;
  /** Target duration of one timed sample. */
  readonly batchMs: number;
  /** Samples per side; rounds alternate which side goes first. */
  readonly rounds: number;
}

export const quickOptions: MeasureOptions = { mode: 'quick', warmupMs: 250, batchMs: 5, rounds: 60 };
export const fullOptions: MeasureOptions = { mode: 'full', warmupMs: 2_000, batchMs: 10, rounds: 200 };

/**
 * The fewest samples per side a case may take. A median and quartiles of fewer are at the
 * mercy of one unlucky sample (the grid's p99 rows once stood on five, with rsd up to 167 %).
 * A counted figure (heap bytes, origin fetches) is measured whole by each sample and barely
 * varies, so it needs fewer.
 */
export const minimumRounds = {
  timed: { full: 20, quick: 10 },
  counted: { full: 3, quick: 1 },
} as const;

export function minimumRoundsFor(metric: Metric): { readonly full: number; readonly quick: number } {
  return metricTraits[metric].counted ? minimumRounds.counted : minimumRounds.timed;
}

/** Samples per side that case `c` takes in a run with `options`. */
export function roundsFor(c: Pick<BenchCase, 'rounds' | 'quickRounds'>, options: MeasureOptions): number {
  if (options.mode === 'quick') return c.quickRounds ?? c.rounds ?? options.rounds;
  return c.rounds ?? options.rounds;
}

// No batch grows beyond this, whatever calibration says (guards against a no-op fn).
const maxBatchSize = 2 ** 30;

// Results are stored here so the optimiser cannot prove a call useless and drop it.
const sink: unknown[] = [undefined];

export interface CaseSamples {
  readonly ours: readonly number[];
  /** Empty for a case without a peer. */
  readonly peer: readonly number[];
}

/** Which side samples first in a round: ours, peer | peer, ours | ours, peer | … (ABBA). */
export function roundOrder(round: number): readonly ['ours', 'peer'] | readonly ['peer', 'ours'] {
  return round % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours'];
}

/** Runs a case's lifecycle (setup, check, measure, check, teardown) and summarises it. */
export async function runCase(c: BenchCase, options: MeasureOptions): Promise<CaseResult> {
  try {
    // Inside the try: a setup that fails half-way (a server process acquired, then a check of
    // it failed) is still torn down, so the run's next case does not inherit it.
    await c.setup?.();
    await c.check?.();
    const samples = await measureCase(c, options);
    // What was timed must still be right: trouble during the rounds fails the case.
    await c.check?.();
    return summarizeCase(c, samples);
  } finally {
    await c.teardown?.();
  }
}

/** Whether each call of the case's sides returns its own sample (see BenchCase.selfMeasured). */
export function isSelfMeasured(c: Pick<BenchCase, 'metric' | 'selfMeasured'>): boolean {
  return metricTraits[c.metric].measuredBy === 'case' || c.selfMeasured === true;
}

/** Warm-up, calibration and ABBA rounds for both sides of a case; returns the raw samples. */
export async function measureCase(c: BenchCase, options: MeasureOptions): Promise<CaseSamples> {
  const opsPerCall = c.opsPerCall ?? 1;
  const selfMeasured = isSelfMeasured(c);
  const sides = {
    ours: new Contender(c.ours.fn, c.metric, opsPerCall, selfMeasured),
    peer: c.peer === undefined ? undefined : new Contender(c.peer.fn, c.metric, opsPerCall, selfMeasured),
  };
  const present = sides.peer === undefined ? [sides.ours] : [sides.ours, sides.peer];
  // A side that measures itself needs no probe or batch size; a timed one is warmed up by a call.
  if (selfMeasured && !metricTraits[c.metric].counted) {
    for (const side of present) await side.sample();
  }
  if (!selfMeasured) {
    for (const side of present) await side.probe();
    for (const side of present) {
      collectGarbage(c.gc ?? 'full');
      await side.warmUp(options.warmupMs);
    }
    for (const side of present) await side.calibrate(options.batchMs);
  }

  const samples: { ours: number[]; peer: number[] } = { ours: [], peer: [] };
  const rounds = roundsFor(c, options);
  for (let round = 0; round < rounds; round++) {
    for (const who of roundOrder(round)) {
      const side = sides[who];
      if (side === undefined) continue;
      // Every sample starts from the same heap state, whichever side ran before it.
      collectGarbage(c.gc ?? 'full');
      samples[who].push(await side.sample());
    }
  }
  return samples;
}

function collectGarbage(kind: 'full' | 'minor'): void {
  if (kind === 'minor') {
    globalThis.gc?.({ type: 'minor' });
    return;
  }
  // Twice: V8 frees dead ArrayBuffer memory on a background thread after a full GC, and that
  // work would otherwise overlap (and slow, by up to a third here) the next sample. The second
  // GC first waits for the first one's sweeping to finish, and finds next to nothing itself.
  globalThis.gc?.();
  globalThis.gc?.();
}

/** One side of a case: knows whether its op is async and how many ops make one sample. */
class Contender {
  readonly #fn: Operation;
  readonly #metric: Metric;
  // The latency quantile this side reports, or undefined for throughput.
  readonly #quantile: number | undefined;
  readonly #opsPerCall: number;
  #isAsync = false;
  #batchSize = 1;
  #latenciesUs = new Float64Array(0);

  readonly #selfMeasured: boolean;

  constructor(fn: Operation, metric: Metric, opsPerCall: number, selfMeasured: boolean) {
    this.#fn = fn;
    this.#metric = metric;
    this.#selfMeasured = selfMeasured;
    this.#opsPerCall = opsPerCall;
    this.#quantile = metric === 'latency_p50_us' ? 0.5 : metric === 'latency_p99_us' ? 0.99 : undefined;
  }

  /** Calls the op once to learn whether it returns promises; a sync op then runs without awaits. */
  async probe(): Promise<void> {
    const result = this.#fn();
    if (isPromiseLike(result)) {
      this.#isAsync = true;
      await result;
    }
  }

  async warmUp(durationMs: number): Promise<void> {
    const end = performance.now() + durationMs;
    let n = 1;
    while (performance.now() < end) {
      const ms = await this.#runBatch(n);
      // Batches stop growing at a tenth of the warm-up, so the last one overshoots it by little.
      if (ms < durationMs / 10) n = Math.min(n * 2, maxBatchSize);
    }
  }

  async calibrate(targetMs: number): Promise<void> {
    // Time per op is the fastest seen: noise only ever adds time, and one preempted batch
    // must not fix a tiny batch size for the whole case. Doubling stops once three batches
    // in a row are long enough by that estimate.
    let n = 1;
    let fastestMsPerOp = Number.POSITIVE_INFINITY;
    let longEnough = 0;
    while (longEnough < 3 && n < maxBatchSize) {
      const ms = await this.#runBatch(n);
      fastestMsPerOp = Math.min(fastestMsPerOp, Math.max(ms, Number.EPSILON) / n);
      if (n * fastestMsPerOp >= targetMs) {
        longEnough++;
      } else {
        longEnough = 0;
        n *= 2;
      }
    }
    const size = Math.round(targetMs / fastestMsPerOp);
    this.#batchSize = Math.min(Math.max(size, this.#minBatchSize()), maxBatchSize);
  }

  /** One sample: ops per second, the batch's latency quantile in microseconds, or the measured heap. */
  async sample(): Promise<number> {
    if (this.#selfMeasured) {
      const measured = await this.#fn();
      if (typeof measured !== 'number' || !Number.isFinite(measured)) {
        throw new TypeError(
          `a self-measured ${this.#metric} operation must return a finite number, got ${String(measured)}`,
        );
      }
      return measured;
    }
    const n = this.#batchSize;
    const ms = await this.#runBatch(n);
    if (this.#quantile === undefined) return ((n * this.#opsPerCall) / Math.max(ms, Number.EPSILON)) * 1000;
    return quantileSorted(this.#latenciesUs.subarray(0, n).sort(), this.#quantile);
  }

  // A latency batch needs enough ops that its tail holds ten of them (p99: 1000 ops).
  #minBatchSize(): number {
    return this.#quantile === undefined ? 1 : Math.ceil(10 / (1 - this.#quantile));
  }

  // Elapsed milliseconds for n ops. Latency metrics time every op on its own.
  async #runBatch(n: number): Promise<number> {
    if (this.#quantile !== undefined) {
      if (this.#latenciesUs.length < n) this.#latenciesUs = new Float64Array(n);
      return timeEachOp(this.#fn, n, this.#latenciesUs);
    }
    return this.#isAsync ? timeAsyncBatch(this.#fn, n) : timeSyncBatch(this.#fn, n);
  }
}

function timeSyncBatch(fn: Operation, n: number): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink[0] = fn();
  return performance.now() - start;
}

async function timeAsyncBatch(fn: Operation, n: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) sink[0] = await fn();
  return performance.now() - start;
}

async function timeEachOp(fn: Operation, n: number, latenciesUs: Float64Array): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const opStart = performance.now();
    const result = fn();
    sink[0] = isPromiseLike(result) ? await result : result;
    latenciesUs[i] = (performance.now() - opStart) * 1000;
  }
  return performance.now() - start;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

// ---------------------------------------------------------------------------------------
// Statistics

/** The q-quantile (0 ≤ q ≤ 1) of ascending values, interpolating linearly between ranks. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const rank = (sorted.length - 1) * q;
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sorted[lower] ?? Number.NaN;
  const high = sorted[upper] ?? Number.NaN;
  return low + (high - low) * (rank - lower);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return quantileSorted(sorted, 0.5);
}

/** Sample standard deviation over the mean, in percent; 0 for fewer than two values. */
export function relativeStdDevPct(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1);
  return (Math.sqrt(variance) / mean) * 100;
}

/** How many times better ours is: ours/peer for throughput, peer/ours for latency, heap and counts. */
export function ratioFor(metric: Metric, ours: number, peer: number): number {
  for (const v of [ours, peer]) {
    if (!(v > 0 && Number.isFinite(v))) {
      throw new RangeError(`${metric}: a ratio needs positive finite values, got ${v}`);
    }
  }
  return metricTraits[metric].better === 'higher' ? ours / peer : peer / ours;
}

// ---------------------------------------------------------------------------------------
// Results

/**
 * One row of bench/results/<suite>.json. The fields after `ratio` are documented extras. A case
 * without a peer has `peer` and every figure of the peer or the ratio null.
 */
export interface CaseResult {
  readonly name: string;
  readonly metric: Metric;
  readonly value: number;
  readonly peer: string | null;
  readonly peerValue: number | null;
  readonly ratio: number | null;
  readonly ours: string;
  readonly rsdPct: number;
  readonly peerRsdPct: number | null;
  /** The first and third quartiles of the per-round ratios: how far one round may stray. */
  readonly ratioQ1: number | null;
  readonly ratioQ3: number | null;
  /** Samples per side. */
  readonly samples: number;
}

export interface SuiteResult {
  readonly suite: string;
  readonly node: string;
  readonly cpus: number;
  readonly date: string;
  readonly quick: boolean;
  /** The commit measured (`git rev-parse HEAD`), or null outside a git checkout. */
  readonly commit: string | null;
  /** Whether tracked or untracked files differed from that commit (bench/results aside). */
  readonly dirty: boolean | null;
  readonly cases: readonly CaseResult[];
}

/**
 * The median of the per-round ratios: sample i of each side comes from round i, taken back to
 * back, so a machine-wide slowdown that outlasts a round (seen here: the whole VM running at
 * half speed for hundreds of ms) divides out instead of landing on one side's median only.
 */
export function pairedRatio(metric: Metric, samples: CaseSamples): number {
  return median(roundRatios(metric, samples));
}

/** One ratio per round, from the two samples that round took back to back. */
export function roundRatios(metric: Metric, samples: CaseSamples): number[] {
  if (samples.ours.length !== samples.peer.length) {
    throw new RangeError(`unpaired samples: ${samples.ours.length} ours, ${samples.peer.length} peer`);
  }
  return samples.ours.map((ours, i) => ratioFor(metric, ours, samples.peer[i] ?? Number.NaN));
}

/** A case's row: medians, ratio and spread, rounded to what the samples can support. */
export function summarizeCase(
  c: Pick<BenchCase, 'name' | 'metric' | 'ours' | 'peer'>,
  samples: CaseSamples,
): CaseResult {
  const valueDigits = metricTraits[c.metric].digits;
  if (c.peer === undefined) {
    if (samples.peer.length > 0) throw new RangeError(`case ${c.name} has no peer but peer samples`);
    return {
      name: c.name,
      metric: c.metric,
      value: round(median(samples.ours), valueDigits),
      peer: null,
      peerValue: null,
      ratio: null,
      ours: c.ours.label,
      rsdPct: round(relativeStdDevPct(samples.ours), 1),
      peerRsdPct: null,
      ratioQ1: null,
      ratioQ3: null,
      samples: samples.ours.length,
    };
  }
  const ratios = roundRatios(c.metric, samples).sort((a, b) => a - b);
  return {
    name: c.name,
    metric: c.metric,
    value: round(median(samples.ours), valueDigits),
    peer: c.peer.name,
    peerValue: round(median(samples.peer), valueDigits),
    ratio: round(quantileSorted(ratios, 0.5), 3),
    ours: c.ours.label,
    rsdPct: round(relativeStdDevPct(samples.ours), 1),
    peerRsdPct: round(relativeStdDevPct(samples.peer), 1),
    ratioQ1: round(quantileSorted(ratios, 0.25), 3),
    ratioQ3: round(quantileSorted(ratios, 0.75), 3),
    samples: samples.ours.length,
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export interface RunEnvironment extends SourceRevision {
  readonly node: string;
  readonly cpus: number;
  readonly date: string;
}

export function currentEnvironment(repoDir: string): RunEnvironment {
  return {
    node: process.version,
    cpus: availableParallelism(),
    date: new Date().toISOString(),
    ...sourceRevision(repoDir),
  };
}

export function suiteResult(
  suite: string,
  quick: boolean,
  env: RunEnvironment,
  cases: readonly CaseResult[],
): SuiteResult {
  const { node, cpus, date, commit, dirty } = env;
  return { suite, node, cpus, date, quick, commit, dirty, cases };
}

export interface RunSuiteOptions {
  readonly quick: boolean;
  /** Where the measured code lives, for the commit and dirty fields. */
  readonly repoDir: string;
  /** Instead of the quick or full settings (the unit tests measure in milliseconds). */
  readonly measure?: MeasureOptions;
  /** Called as each case finishes, for progress output. */
  readonly onCase?: (result: CaseResult) => void;
  /** Called when a case fails; the run goes on to the next case. */
  readonly onFailure?: (failure: CaseFailure) => void;
}

export interface CaseFailure {
  readonly name: string;
  readonly metric: Metric;
  /** The peer's name, `no peer` for a case without one. */
  readonly peer: string;
  readonly error: unknown;
}

/**
 * A suite's run: the result when every case succeeded, or the failures. A run with any failed
 * case has no result, so no figure of it is ever published; the other cases still run, so one
 * run shows every failure.
 */
export type SuiteRun =
  | { readonly ok: true; readonly result: SuiteResult }
  | { readonly ok: false; readonly failures: readonly CaseFailure[]; readonly partial: SuiteResult };

export async function runSuite(name: string, suite: Suite, options: RunSuiteOptions): Promise<SuiteRun> {
  const env = currentEnvironment(options.repoDir);
  const measure = options.measure ?? (options.quick ? quickOptions : fullOptions);
  const cases: CaseResult[] = [];
  const failures: CaseFailure[] = [];
  for (const c of suite.cases) {
    try {
      const result = await runCase(c, measure);
      options.onCase?.(result);
      cases.push(result);
    } catch (error) {
      const failure = { name: c.name, metric: c.metric, peer: peerName(c), error };
      options.onFailure?.(failure);
      failures.push(failure);
    }
  }
  const result = suiteResult(name, options.quick, env, cases);
  return failures.length === 0 ? { ok: true, result } : { ok: false, failures, partial: result };
}

/** The results as an aligned text table, one row per case. */
export function formatTable(result: SuiteResult): string {
  const header = [
    'case',
    'metric',
    'ours',
    'value',
    'peer',
    'peer value',
    'ratio',
    'ratio Q1-Q3',
    'rsd ours/peer',
  ];
  // A case without a peer shows a dash where the peer's figures and the ratio would be.
  const or = (value: number | null, show: (v: number) => string): string =>
    value === null ? '-' : show(value);
  const rows = result.cases.map((c) => [
    c.name,
    c.metric,
    c.ours,
    formatValue(c.metric, c.value),
    c.peer ?? '-',
    or(c.peerValue, (v) => formatValue(c.metric, v)),
    or(c.ratio, (v) => `${v.toFixed(2)}x`),
    c.ratioQ1 === null || c.ratioQ3 === null ? '-' : `${c.ratioQ1.toFixed(2)}-${c.ratioQ3.toFixed(2)}`,
    `${c.rsdPct.toFixed(1)}% / ${or(c.peerRsdPct, (v) => `${v.toFixed(1)}%`)}`,
  ]);
  // Text columns align left, numbers right.
  const numeric = new Set([3, 5, 6, 7, 8]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function formatValue(metric: Metric, value: number): string {
  // At most two decimals: a table is read by eye, the result file keeps the rest.
  const decimals = Math.min(metricTraits[metric].digits, 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/**
 * Writes `<dir>/<suite>.json` atomically: a reader (or a crash mid-write) never sees a
 * half-written file, because the content is written beside it and then renamed over it.
 */
export async function writeSuiteResult(dir: string, result: SuiteResult): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${result.suite}.json`);
  // *.tmp.json is git-ignored; the random part keeps two concurrent runs apart.
  const temp = path.join(dir, `${result.suite}.${randomUUID()}.tmp.json`);
  try {
    await writeFile(temp, `${JSON.stringify(result, null, 2)}\n`);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return file;
}

// ---------------------------------------------------------------------------------------
// Finding suites

const suiteSuffix = '.bench.ts';

export class UnknownSuiteError extends Error {
  readonly code = 'ERR_UNKNOWN_SUITE';
  readonly suite: string;
  readonly available: readonly string[];

  constructor(suite: string, available: readonly string[]) {
    const choices = available.length === 0 ? 'there are none' : `available: ${available.join(', ')}`;
    super(`unknown suite "${suite}"; ${choices}`);
    this.name = 'UnknownSuiteError';
    this.suite = suite;
    this.available = available;
  }
}

/** Suite names in `dir`: every `<name>.bench.ts`, sorted. */
export async function listSuites(dir: string): Promise<string[]> {
  const files = await readdir(dir);
  return files
    .filter((f) => f.endsWith(suiteSuffix))
    .map((f) => f.slice(0, -suiteSuffix.length))
    .sort();
}

/** Imports `<dir>/<name>.bench.ts`. Only listed names are loaded, so a name is never a path. */
export async function loadSuite(dir: string, name: string): Promise<Suite> {
  const available = await listSuites(dir);
  if (!available.includes(name)) throw new UnknownSuiteError(name, available);
  const file = path.join(dir, `${name}${suiteSuffix}`);
  const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  if (!isSuite(module.default)) throw new TypeError(`${file} must default-export defineSuite({ cases })`);
  return module.default;
}
