import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { SuiteResult } from '../../bench/harness.ts';
import { BenchTableError, renderTables, unpublishable } from '../../scripts/bench-tables.ts';

const result: SuiteResult = {
  suite: 'grid',
  node: 'v20.20.2',
  cpus: 2,
  date: '2026-12-06T15:00:00.000Z',
  quick: false,
  commit: '0123456789abcdef0123456789abcdef01234567',
  dirty: false,
  cases: [
    {
      name: 'unary-512B-par32',
      metric: 'ops_per_s',
      value: 65595,
      peer: 'grpc-js',
      peerValue: 5778,
      ratio: 11.455,
      ours: 'weft/grid',
      rsdPct: 25.5,
      peerRsdPct: 31.7,
      ratioQ1: 9.1,
      ratioQ3: 13.25,
      samples: 200,
    },
    {
      name: 'unary-512B-par32',
      metric: 'latency_p99_us',
      value: 1034.73,
      peer: 'grpc-js',
      peerValue: 34303.94,
      ratio: 35.7,
      ours: 'weft/grid',
      rsdPct: 17.7,
      peerRsdPct: 24.4,
      ratioQ1: 18.38,
      ratioQ3: 40.37,
      samples: 40,
    },
  ],
};

const load = (suite: string): Promise<SuiteResult> =>
  suite === 'grid' ? Promise.resolve(result) : Promise.reject(new Error(`no bench/results/${suite}.json`));

describe('bench tables in the docs', () => {
  test('a marked table is replaced by the rows of its result, with the commit it measured', async () => {
    const doc =
      'Before.\n\n<!-- bench-table: grid -->\n\n| stale | table |\n\n<!-- /bench-table -->\n\nAfter.\n';
    const out = await renderTables('doc.md', doc, load);
    assert.match(
      out,
      /^Before\.\n\n<!-- bench-table: grid -->\n\n_From `bench\/results\/grid.json`: a full run of commit `0123456789`, 2026-12-06, Node v20\.20\.2, 2 CPUs\._/,
    );
    assert.doesNotMatch(out, /stale/);
    assert.match(
      out,
      /\| `unary-512B-par32` \| `ops_per_s` \| weft\/grid \| 65,595 \| grpc-js \| 5,778 \| 11\.46× \| 9\.10–13\.25 \| 25\.5% \/ 31\.7% \| 200 \|/,
    );
    assert.match(out, /\| 1,035 µs \| grpc-js \| 34,304 µs \| 35\.70× \|/);
    assert.match(out, /<!-- \/bench-table -->\n\nAfter\.\n$/);
  });

  test('a metric filter keeps the rows of that metric only', async () => {
    const doc = '<!-- bench-table: grid metric=latency_p99_us -->\n<!-- /bench-table -->\n';
    const out = await renderTables('doc.md', doc, load);
    assert.match(out, /latency_p99_us/);
    assert.doesNotMatch(out, /`ops_per_s`/);
  });

  test('a table of a run with uncommitted changes says so', async () => {
    const dirty = (): Promise<SuiteResult> => Promise.resolve({ ...result, dirty: true });
    const out = await renderTables('doc.md', '<!-- bench-table: grid -->\n<!-- /bench-table -->\n', dirty);
    assert.match(out, /commit `0123456789` with uncommitted changes/);
  });

  test('a missing close is an error even when a later table has one, so no prose is swallowed', async () => {
    const doc =
      '<!-- bench-table: grid -->\nprose that must stay\n\n<!-- bench-table: grid -->\n<!-- /bench-table -->\n';
    await assert.rejects(renderTables('doc.md', doc, load), /has no "<!-- \/bench-table -->"/);
  });

  test('a marker inside a code fence is an example, left as it is', async () => {
    const doc = '```md\n<!-- bench-table: nope -->\nexample\n<!-- /bench-table -->\n```\n';
    assert.equal(await renderTables('doc.md', doc, load), doc);
  });

  test('a result written before the harness recorded provenance is refused with what to do', async () => {
    const { commit: _commit, ...old } = result;
    await assert.rejects(
      renderTables('doc.md', '<!-- bench-table: grid -->\n<!-- /bench-table -->', () =>
        Promise.resolve(old as SuiteResult),
      ),
      /has no commit: it predates the current harness; run the suite again/,
    );
  });

  test('only a full run of a clean commit may be published', () => {
    assert.equal(unpublishable(result), undefined);
    assert.match(String(unpublishable({ ...result, quick: true })), /quick run/);
    assert.match(String(unpublishable({ ...result, dirty: true })), /uncommitted changes/);
    assert.match(String(unpublishable({ ...result, commit: null, dirty: null })), /no commit/);
  });

  test('an unclosed marker, an unknown filter or metric, or a missing result is an error, not a silent skip', async () => {
    await assert.rejects(renderTables('doc.md', '<!-- bench-table: grid -->\n', load), BenchTableError);
    await assert.rejects(
      renderTables('doc.md', '<!-- bench-table: grid cases=x -->\n<!-- /bench-table -->', load),
      /unknown bench-table filter "cases"/,
    );
    await assert.rejects(
      renderTables('doc.md', '<!-- bench-table: grid metric=latency_p95_us -->\n<!-- /bench-table -->', load),
      /doc\.md: unknown metric "latency_p95_us"/,
    );
    await assert.rejects(
      renderTables('doc.md', '<!-- bench-table: nope -->\n<!-- /bench-table -->', load),
      /no bench\/results\/nope\.json/,
    );
  });
});
