import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import {
  defineSuite,
  formatTable,
  listSuites,
  loadSuite,
  measureCase,
  median,
  pairedRatio,
  quantileSorted,
  ratioFor,
  minimumRounds,
  relativeStdDevPct,
  roundOrder,
  roundsFor,
  runCase,
  runSuite,
  summarizeCase,
  suiteResult,
  UnknownSuiteError,
  writeSuiteResult,
  type BenchCase,
  type SuiteResult,
} from '../../bench/harness.ts';
import { sourceRevision } from '../../bench/provenance.ts';

const benchDir = path.resolve(import.meta.dirname, '../../bench');

// Small enough that a case measures in milliseconds; nothing below asserts on the timings.
const tinyOptions = { mode: 'full', warmupMs: 0, batchMs: 0.05, rounds: 2 } as const;

function throughputCase(overrides: Partial<BenchCase> = {}): BenchCase {
  return {
    name: 'noop',
    metric: 'ops_per_s',
    ours: { label: 'ours', fn: () => 1 },
    peer: { name: 'peer', fn: () => 2 },
    ...overrides,
  };
}

const environment = {
  node: 'v20.20.2',
  cpus: 2,
  date: '2026-01-02T03:04:05.000Z',
  commit: '0123456789abcdef0123456789abcdef01234567',
  dirty: false,
};

describe('ratio', () => {
  test('for throughput it is ours over the peer, so more ops per second scores higher', () => {
    assert.equal(ratioFor('ops_per_s', 300, 100), 3);
  });

  test('for latency it is the peer over ours, so fewer microseconds score higher', () => {
    assert.equal(ratioFor('latency_p50_us', 10, 30), 3);
    assert.equal(ratioFor('latency_p99_us', 40, 20), 0.5);
  });

  test('more megabytes per second score higher, fewer origin fetches per blob score higher', () => {
    assert.equal(ratioFor('mb_per_s', 240, 300), 0.8);
    assert.equal(ratioFor('origin_fetches_per_blob', 1, 8), 8);
    assert.equal(ratioFor('origin_fetches_per_blob', 2, 1), 0.5);
  });

  test('a zero, negative or non-finite value is refused rather than turned into Infinity or NaN', () => {
    assert.throws(() => ratioFor('ops_per_s', 1, 0), RangeError);
    assert.throws(() => ratioFor('latency_p50_us', 0, 1), RangeError);
    assert.throws(() => ratioFor('ops_per_s', Number.NaN, 1), RangeError);
    assert.throws(() => ratioFor('ops_per_s', -1, 1), RangeError);
  });
});

describe('statistics', () => {
  test('the median of an odd count is the middle value, whatever the input order', () => {
    assert.equal(median([9, 1, 5]), 5);
  });

  test('the median of an even count is the mean of the two middle values', () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  test('median does not reorder its input', () => {
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2]);
  });

  test('quantiles interpolate between ranks', () => {
    const sorted = Array.from({ length: 101 }, (_, i) => i);
    assert.equal(quantileSorted(sorted, 0.99), 99);
    assert.equal(quantileSorted([0, 10], 0.25), 2.5);
    assert.equal(quantileSorted([7], 0.99), 7);
  });

  test('a quantile of no values is an error, not NaN', () => {
    assert.throws(() => quantileSorted([], 0.5), RangeError);
  });

  test('relative standard deviation uses the sample deviation and is in percent', () => {
    // mean 3, sample variance 2.5
    assert.ok(Math.abs(relativeStdDevPct([1, 2, 3, 4, 5]) - (Math.sqrt(2.5) / 3) * 100) < 1e-9);
  });

  test('identical samples, or a single one, have no spread', () => {
    assert.equal(relativeStdDevPct([4, 4, 4]), 0);
    assert.equal(relativeStdDevPct([4]), 0);
  });
});

describe('rounds', () => {
  test('rounds alternate which side goes first, giving ours, peer, peer, ours (ABBA)', () => {
    const sequence = [0, 1, 2, 3].flatMap((round) => roundOrder(round));
    assert.deepEqual(sequence, ['ours', 'peer', 'peer', 'ours', 'ours', 'peer', 'peer', 'ours']);
  });

  test('every round yields one sample per side', async () => {
    const samples = await measureCase(throughputCase(), { ...tinyOptions, rounds: 3 });
    assert.equal(samples.ours.length, 3);
    assert.equal(samples.peer.length, 3);
  });

  test('an async operation is awaited: never more than one of its calls is in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const op = async (): Promise<void> => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await Promise.resolve();
      inFlight--;
    };
    for (const metric of ['ops_per_s', 'latency_p50_us'] as const) {
      await measureCase(throughputCase({ metric, ours: { label: 'ours', fn: op } }), tinyOptions);
    }
    assert.equal(maxInFlight, 1);
  });
});

describe('self-measured cases', () => {
  test('each call is one sample, taken as returned, after one warm-up call per side', async () => {
    let oursCalls = 0;
    let peerCalls = 0;
    const samples = await measureCase(
      throughputCase({
        metric: 'latency_p99_us',
        selfMeasured: true,
        rounds: 3,
        ours: { label: 'ours', fn: () => 100 + oursCalls++ },
        peer: { name: 'peer', fn: () => Promise.resolve(200 + peerCalls++) },
      }),
      tinyOptions,
    );
    assert.deepEqual(samples.ours, [101, 102, 103], 'call 0 warmed up');
    assert.deepEqual(samples.peer, [201, 202, 203]);
  });

  test('a self-measured call that returns no number fails the case', async () => {
    await assert.rejects(
      measureCase(
        throughputCase({
          metric: 'latency_p99_us',
          selfMeasured: true,
          ours: { label: 'ours', fn: () => 'fast' },
        }),
        tinyOptions,
      ),
      /must return a finite number/,
    );
  });
});

describe('metrics the case measures', () => {
  test('a counted metric takes each call as a sample, with no warm-up call, and no opt-in', async () => {
    let oursCalls = 0;
    let peerCalls = 0;
    const samples = await measureCase(
      throughputCase({
        metric: 'origin_fetches_per_blob',
        rounds: 3,
        ours: { label: 'ours', fn: () => 1 + oursCalls++ / 4 },
        peer: { name: 'peer', fn: () => Promise.resolve(8 + peerCalls++) },
      }),
      tinyOptions,
    );
    assert.deepEqual(samples.ours, [1, 1.25, 1.5], 'the first call is a sample');
    assert.deepEqual(samples.peer, [8, 9, 10]);
  });

  test('a throughput the case times (mb_per_s) gets one warm-up call per side, then its samples', async () => {
    let oursCalls = 0;
    const samples = await measureCase(
      throughputCase({
        metric: 'mb_per_s',
        rounds: 2,
        ours: { label: 'ours', fn: () => 100 + oursCalls++ },
        peer: { name: 'peer', fn: () => 300 },
      }),
      tinyOptions,
    );
    assert.deepEqual(samples.ours, [101, 102], 'call 0 warmed up');
  });

  test('a case-measured call that returns no number fails the case', async () => {
    await assert.rejects(
      measureCase(
        throughputCase({ metric: 'origin_fetches_per_blob', ours: { label: 'ours', fn: () => undefined } }),
        tinyOptions,
      ),
      /origin_fetches_per_blob operation must return a finite number, got undefined/,
    );
  });

  test('a result keeps origin fetches to 3 decimals and MB/s to 1, and the table shows them', () => {
    const fetches = summarizeCase(throughputCase({ name: 'fan-out', metric: 'origin_fetches_per_blob' }), {
      ours: [1, 1.125, 1],
      peer: [8, 8, 8],
    });
    assert.equal(fetches.value, 1);
    assert.equal(fetches.peerValue, 8);
    assert.equal(fetches.ratio, 8);
    const speed = summarizeCase(throughputCase({ name: 'warm-pull', metric: 'mb_per_s' }), {
      ours: [240.04, 250.16, 260.26],
      peer: [300, 300, 300],
    });
    assert.equal(speed.value, 250.2);
    assert.equal(speed.ratio, 0.834);
    const table = formatTable(suiteResult('coord', false, environment, [fetches, speed]));
    assert.match(table, /fan-out\s+origin_fetches_per_blob\s+ours\s+1\.00\s+peer\s+8\.00\s+8\.00x/);
    assert.match(table, /warm-pull\s+mb_per_s\s+ours\s+250\.2\s+peer\s+300\.0\s+0\.83x/);
  });
});

describe('a case without a peer', () => {
  test('only ours is sampled, and its row reports ours alone: no peer figures, no ratio', async () => {
    let calls = 0;
    const { peer: _, ...rest } = throughputCase();
    const c: BenchCase = {
      ...rest,
      name: 'handoff-gap',
      metric: 'max_gap_ms',
      rounds: 20,
      ours: { label: 'ours', fn: () => 10 + (calls++ % 3) },
    };
    const samples = await measureCase(c, tinyOptions);
    assert.equal(samples.ours.length, 20);
    assert.equal(calls, 21, 'one warm-up call, then one call per round');
    assert.deepEqual(samples.peer, []);
    const row = summarizeCase(c, samples);
    assert.equal(row.value, 11);
    assert.deepEqual(
      [row.peer, row.peerValue, row.ratio, row.ratioQ1, row.ratioQ3, row.peerRsdPct],
      [null, null, null, null, null, null],
    );
    const table = formatTable(suiteResult('hub', false, environment, [row]));
    assert.match(table, /handoff-gap\s+max_gap_ms\s+ours\s+11\.00\s+-\s+-\s+-\s+-/);
  });

  test('a peerless case that fails is reported as having no peer', async () => {
    const { peer: _, ...rest } = throughputCase();
    const suite = defineSuite({
      cases: [{ ...rest, metric: 'max_gap_ms', ours: { label: 'ours', fn: () => Number.NaN } }],
    });
    const run = await runSuite('hub', suite, { quick: false, repoDir: tmpdir(), measure: tinyOptions });
    assert.ok(!run.ok);
    assert.equal(run.failures[0]?.peer, 'no peer');
  });
});

describe('case lifecycle', () => {
  test('a failing check stops the case before anything is timed, and teardown still runs', async () => {
    const calls: string[] = [];
    const c = throughputCase({
      ours: { label: 'ours', fn: () => calls.push('ours') },
      setup: () => {
        calls.push('setup');
      },
      check: () => {
        calls.push('check');
        throw new Error('ours decodes the wrong thing');
      },
      teardown: () => {
        calls.push('teardown');
      },
    });
    await assert.rejects(runCase(c, tinyOptions), /ours decodes the wrong thing/);
    assert.deepEqual(calls, ['setup', 'check', 'teardown']);
  });

  test('a setup that fails half-way is still torn down, so the next case does not inherit it', async () => {
    const calls: string[] = [];
    const c = throughputCase({
      setup: () => {
        calls.push('setup');
        throw new Error('the server process did not start');
      },
      teardown: () => {
        calls.push('teardown');
      },
    });
    await assert.rejects(runCase(c, tinyOptions), /did not start/);
    assert.deepEqual(calls, ['setup', 'teardown']);
  });

  test('hooks run in order around the measurement, with the check before and after it', async () => {
    const calls: string[] = [];
    const hook = (name: string) => async (): Promise<void> => {
      await Promise.resolve();
      calls.push(name);
    };
    const c = throughputCase({ setup: hook('setup'), check: hook('check'), teardown: hook('teardown') });
    const result = await runCase(c, tinyOptions);
    assert.deepEqual(calls, ['setup', 'check', 'check', 'teardown']);
    assert.equal(result.name, 'noop');
  });

  test('a side that goes wrong while it is timed fails the case instead of giving a figure', async () => {
    // As the views suite's streams do: the trouble is counted in the background, not thrown.
    let troubleWhileTimed = 0;
    let calls = 0;
    const c = throughputCase({
      ours: {
        label: 'ours',
        fn: () => {
          calls += 1;
          if (calls === 50) troubleWhileTimed += 1;
        },
      },
      check: () => {
        assert.equal(troubleWhileTimed, 0, 'the stream failed and resubscribed');
      },
    });
    await assert.rejects(runCase(c, tinyOptions), /the stream failed and resubscribed/);
    assert.ok(calls >= 50);
  });
});

describe('running a suite', () => {
  const repoDir = path.resolve(import.meta.dirname, '../..');

  test('a failed case fails the run: no result, every failure named, the other cases still run', async () => {
    const ran: string[] = [];
    const suite = defineSuite({
      cases: [
        throughputCase({ name: 'first', check: () => void ran.push('first') }),
        throughputCase({
          name: 'broken',
          ours: {
            label: 'ours',
            fn: () => {
              throw new Error('the server went away');
            },
          },
        }),
        throughputCase({ name: 'last', check: () => void ran.push('last') }),
      ],
    });
    const failures: string[] = [];
    const run = await runSuite('demo', suite, {
      quick: true,
      repoDir,
      onFailure: (f) => failures.push(f.name),
      measure: tinyOptions,
    });
    assert.equal(run.ok, false);
    assert.ok(!run.ok);
    assert.deepEqual(
      run.failures.map((f) => [f.name, (f.error as Error).message]),
      [['broken', 'the server went away']],
    );
    assert.deepEqual(failures, ['broken']);
    assert.deepEqual(
      run.partial.cases.map((c) => c.name),
      ['first', 'last'],
    );
    assert.ok(ran.includes('last'), 'the case after the failure ran');
  });

  test('a run whose cases all succeed has a result with the commit measured', async () => {
    const run = await runSuite('demo', defineSuite({ cases: [throughputCase()] }), {
      quick: true,
      repoDir,
      measure: tinyOptions,
    });
    assert.ok(run.ok);
    assert.match(run.result.commit ?? '', /^[0-9a-f]{40}$/);
    assert.equal(typeof run.result.dirty, 'boolean');
  });
});

describe('minimum samples', () => {
  test('a case may not take fewer samples than the minimum for its metric, in either mode', () => {
    assert.throws(
      () => defineSuite({ cases: [throughputCase({ rounds: minimumRounds.timed.full - 1 })] }),
      /rounds must be an integer of at least 20 for ops_per_s/,
    );
    assert.throws(
      () =>
        defineSuite({
          cases: [throughputCase({ metric: 'latency_p99_us', selfMeasured: true, rounds: 5 })],
        }),
      /at least 20 for latency_p99_us, got 5/,
    );
    assert.throws(
      () => defineSuite({ cases: [throughputCase({ quickRounds: minimumRounds.timed.quick - 1 })] }),
      /quickRounds must be an integer of at least 10/,
    );
    assert.throws(
      () => defineSuite({ cases: [throughputCase({ metric: 'heap_bytes_per_op', rounds: 2 })] }),
      /at least 3 for heap_bytes_per_op/,
    );
    defineSuite({ cases: [throughputCase({ metric: 'heap_bytes_per_op', rounds: 3, quickRounds: 1 })] });
    assert.throws(
      () => defineSuite({ cases: [throughputCase({ metric: 'origin_fetches_per_blob', rounds: 2 })] }),
      /at least 3 for origin_fetches_per_blob/,
    );
    defineSuite({
      cases: [throughputCase({ metric: 'origin_fetches_per_blob', rounds: 3, quickRounds: 1 })],
    });
    assert.throws(
      () => defineSuite({ cases: [throughputCase({ metric: 'mb_per_s', rounds: 5 })] }),
      /at least 20 for mb_per_s/,
    );
  });

  test('a quick run takes quickRounds, falling back to rounds, then to the run default', () => {
    const quick = { ...tinyOptions, mode: 'quick', rounds: 60 } as const;
    const full = { ...tinyOptions, mode: 'full', rounds: 200 } as const;
    assert.equal(roundsFor({ rounds: 30, quickRounds: 10 }, quick), 10);
    assert.equal(roundsFor({ rounds: 30, quickRounds: 10 }, full), 30);
    assert.equal(roundsFor({ rounds: 30 }, quick), 30);
    assert.equal(roundsFor({}, quick), 60);
    assert.equal(roundsFor({}, full), 200);
  });
});

describe('defineSuite', () => {
  test('the same workload may run against several peers', () => {
    const suite = defineSuite({
      cases: [throughputCase(), throughputCase({ peer: { name: 'other', fn: () => 3 } })],
    });
    assert.equal(suite.cases.length, 2);
  });

  test('the same workload against the same peer twice is refused', () => {
    assert.throws(() => defineSuite({ cases: [throughputCase(), throughputCase()] }), /defined twice/);
  });

  test('an empty suite, a blank case name or an unknown metric is refused', () => {
    assert.throws(() => defineSuite({ cases: [] }), TypeError);
    assert.throws(() => defineSuite({ cases: [throughputCase({ name: 'a b' })] }), TypeError);
    const bogus = JSON.parse('"ops_per_minute"') as BenchCase['metric'];
    assert.throws(() => defineSuite({ cases: [throughputCase({ metric: bogus })] }), /metric must be one of/);
  });
});

describe('results', () => {
  test('a case row has the documented fields, with medians as values', () => {
    const row = summarizeCase(throughputCase({ name: 'encode-frame-512B' }), {
      ours: [300, 100, 200],
      peer: [100, 50, 150],
    });
    assert.deepEqual(row, {
      name: 'encode-frame-512B',
      metric: 'ops_per_s',
      value: 200,
      peer: 'peer',
      peerValue: 100,
      ratio: 2,
      ours: 'ours',
      rsdPct: 50,
      peerRsdPct: 50,
      ratioQ1: 1.667,
      ratioQ3: 2.5,
      samples: 3,
    });
  });

  test('the spread of the ratio is the quartiles of the per-round ratios', () => {
    // Per-round ratios 1, 2, 3, 4, 5 whatever order the rounds came in.
    const row = summarizeCase(throughputCase(), { ours: [5, 1, 3, 2, 4], peer: [1, 1, 1, 1, 1] });
    assert.deepEqual([row.ratioQ1, row.ratio, row.ratioQ3], [2, 3, 4]);
  });

  test('the ratio compares the two samples of each round, so a slowdown lasting several rounds cancels out', () => {
    // Round 1 straddles a machine-wide halving of speed: ours ran before it, the peer after.
    const samples = { ours: [8, 8, 4], peer: [4, 2, 2] };
    const row = summarizeCase(throughputCase(), samples);
    assert.equal(row.value / (row.peerValue ?? Number.NaN), 4);
    assert.equal(row.ratio, 2);
    assert.equal(pairedRatio('latency_p50_us', { ours: [1, 2, 2], peer: [2, 2, 6] }), 2);
  });

  test('samples that do not pair up by round are refused', () => {
    assert.throws(() => pairedRatio('ops_per_s', { ours: [1, 2], peer: [1] }), RangeError);
  });

  test('a latency row keeps nanoseconds and rates a lower latency above 1', () => {
    const row = summarizeCase(throughputCase({ metric: 'latency_p99_us' }), {
      ours: [12.34567],
      peer: [24.69134],
    });
    assert.equal(row.value, 12.346);
    assert.equal(row.peerValue, 24.691);
    assert.equal(row.ratio, 2);
  });

  test('a suite result has exactly the top-level fields of bench/results/<suite>.json', () => {
    const result = suiteResult('codec', true, environment, []);
    assert.deepEqual(Object.keys(result), [
      'suite',
      'node',
      'cpus',
      'date',
      'quick',
      'commit',
      'dirty',
      'cases',
    ]);
    assert.equal(result.commit, environment.commit);
    assert.equal(result.suite, 'codec');
    assert.equal(result.quick, true);
  });

  test('the table shows each case with its peer, ratio and spread', () => {
    const row = summarizeCase(throughputCase({ name: 'decode-frame-512B' }), {
      ours: [1_500_000],
      peer: [1_000_000],
    });
    const table = formatTable(suiteResult('codec', false, environment, [row]));
    const [header, , line] = table.split('\n');
    assert.match(
      header ?? '',
      /^case\s+metric\s+ours\s+value\s+peer\s+peer value\s+ratio\s+ratio Q1-Q3\s+rsd/,
    );
    assert.match(
      line ?? '',
      /^decode-frame-512B\s+ops_per_s\s+ours\s+1,500,000\s+peer\s+1,000,000\s+1\.50x\s+1\.50-1\.50\s+0\.0% \/ 0\.0%$/,
    );
  });

  test('the result file is replaced whole and no temporary file is left behind', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'weft-bench-'));
    try {
      const first: SuiteResult = suiteResult('codec', true, environment, []);
      const second: SuiteResult = { ...first, quick: false };
      await writeSuiteResult(dir, first);
      const file = await writeSuiteResult(dir, second);
      assert.equal(file, path.join(dir, 'codec.json'));
      assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), second);
      assert.deepEqual(await readdir(dir), ['codec.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('finding suites', () => {
  test('suites are the bench/*.bench.ts files', async () => {
    assert.ok((await listSuites(benchDir)).includes('codec'));
  });

  test('an unknown suite is an UnknownSuiteError that lists the suites there are', async () => {
    await assert.rejects(loadSuite(benchDir, 'nope'), (error: unknown) => {
      assert.ok(error instanceof UnknownSuiteError);
      assert.equal(error.code, 'ERR_UNKNOWN_SUITE');
      assert.equal(error.suite, 'nope');
      assert.ok(error.available.includes('codec'));
      assert.match(error.message, /unknown suite "nope"; available: .*codec/);
      return true;
    });
  });

  test('a suite name is never treated as a path', async () => {
    await assert.rejects(loadSuite(benchDir, '../bench/codec'), UnknownSuiteError);
  });

  test('a known suite loads as the suite its file defines', async () => {
    const suite = await loadSuite(benchDir, 'codec');
    assert.ok(suite.cases.length > 0);
  });
});

describe('provenance', () => {
  async function repo(t: TestContext): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'weft-provenance-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const git = (...args: string[]): void => {
      execFileSync('git', args, { cwd: dir, stdio: 'ignore' });
    };
    git('init', '-q');
    await mkdir(path.join(dir, 'bench', 'results'), { recursive: true });
    await writeFile(path.join(dir, 'code.ts'), 'export {};\n');
    await writeFile(path.join(dir, 'bench', 'results', 'codec.json'), '{}\n');
    git('add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'first');
    return dir;
  }

  test('a clean checkout records its commit and is not dirty', async (t) => {
    const dir = await repo(t);
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    assert.deepEqual(sourceRevision(dir), { commit: head, dirty: false });
  });

  test('a modified or an untracked file makes the tree dirty', async (t) => {
    const dir = await repo(t);
    await writeFile(path.join(dir, 'code.ts'), 'export const changed = 1;\n');
    assert.equal(sourceRevision(dir).dirty, true);
    execFileSync('git', ['checkout', '--', 'code.ts'], { cwd: dir });
    await writeFile(path.join(dir, 'new.ts'), 'export {};\n');
    assert.equal(sourceRevision(dir).dirty, true);
  });

  test('results written by earlier runs do not make the tree dirty', async (t) => {
    const dir = await repo(t);
    await writeFile(path.join(dir, 'bench', 'results', 'codec.json'), '{"changed":true}\n');
    await writeFile(path.join(dir, 'bench', 'results', 'grid.json'), '{}\n');
    assert.equal(sourceRevision(dir).dirty, false);
  });

  test('outside a git checkout both fields are null, not a guess', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'weft-provenance-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    assert.deepEqual(sourceRevision(dir), { commit: null, dirty: null });
  });
});
