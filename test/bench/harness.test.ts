import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
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
  relativeStdDevPct,
  roundOrder,
  runCase,
  summarizeCase,
  suiteResult,
  UnknownSuiteError,
  writeSuiteResult,
  type BenchCase,
  type SuiteResult,
} from '../../bench/harness.ts';

const benchDir = path.resolve(import.meta.dirname, '../../bench');

// Small enough that a case measures in milliseconds; nothing below asserts on the timings.
const tinyOptions = { warmupMs: 0, batchMs: 0.05, rounds: 2 };

function throughputCase(overrides: Partial<BenchCase> = {}): BenchCase {
  return {
    name: 'noop',
    metric: 'ops_per_s',
    ours: { label: 'ours', fn: () => 1 },
    peer: { name: 'peer', fn: () => 2 },
    ...overrides,
  };
}

const environment = { node: 'v20.20.2', cpus: 2, date: '2026-01-02T03:04:05.000Z' };

describe('ratio', () => {
  test('for throughput it is ours over the peer, so more ops per second scores higher', () => {
    assert.equal(ratioFor('ops_per_s', 300, 100), 3);
  });

  test('for latency it is the peer over ours, so fewer microseconds score higher', () => {
    assert.equal(ratioFor('latency_p50_us', 10, 30), 3);
    assert.equal(ratioFor('latency_p99_us', 40, 20), 0.5);
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

  test('hooks run in order around the measurement', async () => {
    const calls: string[] = [];
    const hook = (name: string) => async (): Promise<void> => {
      await Promise.resolve();
      calls.push(name);
    };
    const c = throughputCase({ setup: hook('setup'), check: hook('check'), teardown: hook('teardown') });
    const result = await runCase(c, tinyOptions);
    assert.deepEqual(calls, ['setup', 'check', 'teardown']);
    assert.equal(result.name, 'noop');
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
    });
  });

  test('the ratio compares the two samples of each round, so a slowdown lasting several rounds cancels out', () => {
    // Round 1 straddles a machine-wide halving of speed: ours ran before it, the peer after.
    const samples = { ours: [8, 8, 4], peer: [4, 2, 2] };
    const row = summarizeCase(throughputCase(), samples);
    assert.equal(row.value / row.peerValue, 4);
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
    assert.deepEqual(Object.keys(result), ['suite', 'node', 'cpus', 'date', 'quick', 'cases']);
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
    assert.match(header ?? '', /^case\s+metric\s+ours\s+value\s+peer\s+peer value\s+ratio\s+rsd/);
    assert.match(
      line ?? '',
      /^decode-frame-512B\s+ops_per_s\s+ours\s+1,500,000\s+peer\s+1,000,000\s+1\.50x\s+0\.0% \/ 0\.0%$/,
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
