// The benchmark tables in docs/, generated from bench/results/<suite>.json, so a figure in the
// docs is always one a run of the recorded commit produced, with the commit next to it.
//
//   npm run bench:tables            rewrite every table in docs/*.md from the result files
//   npm run check:bench-tables      fail if any table differs from its result file, or if a
//                                   result is unfit to publish (CI)
//
// A table sits between two markers in a Markdown file, outside code fences:
//
//   <!-- bench-table: grid -->
//   (generated)
//   <!-- /bench-table -->
//
// `<!-- bench-table: grid metric=latency_p99_us -->` keeps the rows of one metric only.

import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import * as prettier from 'prettier';

import { metrics, type CaseResult, type Metric, type SuiteResult } from '../bench/harness.ts';

const openMarker = /<!-- bench-table: ([a-z0-9-]+)((?: [a-z]+=[^\s>]+)*) -->/g;
const closeMarker = '<!-- /bench-table -->';
const fence = /^(```|~~~)/;

export class BenchTableError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'BenchTableError';
  }
}

/** Reads bench/results/<suite>.json; the caller passes it in so tests need no files. */
export type LoadResult = (suite: string) => Promise<SuiteResult>;

/** Offsets of the text inside code fences, where a marker is an example, not a table. */
function fencedRanges(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  let offset = 0;
  let openedAt: number | undefined;
  for (const line of text.split('\n')) {
    if (fence.test(line.trimStart())) {
      if (openedAt === undefined) openedAt = offset;
      else {
        ranges.push([openedAt, offset + line.length]);
        openedAt = undefined;
      }
    }
    offset += line.length + 1;
  }
  if (openedAt !== undefined) ranges.push([openedAt, text.length]);
  return ranges;
}

/** `text` with every marked table regenerated from its suite's result. */
export async function renderTables(file: string, text: string, load: LoadResult): Promise<string> {
  const fenced = fencedRanges(text);
  const inFence = (at: number): boolean => fenced.some(([from, to]) => at >= from && at < to);
  const opens = [...text.matchAll(openMarker)].filter((m) => !inFence(m.index));
  let out = '';
  let position = 0;
  for (const [i, match] of opens.entries()) {
    const start = match.index;
    const end = text.indexOf(closeMarker, start);
    // The close must come before the next table opens, or one missing close would swallow
    // everything up to the next table's.
    const nextOpen = opens[i + 1]?.index ?? text.length;
    if (end === -1 || end > nextOpen)
      throw new BenchTableError(file, `"${match[0]}" has no "${closeMarker}"`);
    const suite = match[1] ?? '';
    const filters = parseFilters(file, match[2] ?? '');
    const result = await load(suite);
    out += text.slice(position, start) + match[0] + '\n\n' + table(file, result, filters) + '\n\n';
    position = end;
  }
  return out + text.slice(position);
}

interface Filters {
  readonly metric?: Metric;
}

function parseFilters(file: string, raw: string): Filters {
  const filters: { metric?: Metric } = {};
  for (const pair of raw.trim().split(' ').filter(Boolean)) {
    const [key, value] = pair.split('=');
    if (key !== 'metric') throw new BenchTableError(file, `unknown bench-table filter "${key}"`);
    const metric = metrics.find((m) => m === value);
    if (metric === undefined) {
      throw new BenchTableError(file, `unknown metric "${value}"; one of ${metrics.join(', ')}`);
    }
    filters.metric = metric;
  }
  return filters;
}

/** Throws unless `result` has what a table shows: a result written before provenance has not. */
function checkShape(file: string, result: SuiteResult): void {
  // Parsed JSON: the type says what a current result has, not what an old file holds.
  const fields = (value: object): ReadonlySet<string> => new Set(Object.keys(value));
  const top = fields(result);
  const missing = ['commit', 'dirty', 'date', 'node', 'cpus', 'quick'].filter((k) => !top.has(k));
  const rowFields = ['ratioQ1', 'ratioQ3', 'samples'];
  if (result.cases.some((c) => rowFields.some((k) => !fields(c).has(k)))) missing.push('cases[].ratioQ1');
  if (missing.length > 0) {
    throw new BenchTableError(
      file,
      `bench/results/${result.suite}.json has no ${missing.join(', ')}: ` +
        'it predates the current harness; run the suite again',
    );
  }
}

function table(file: string, result: SuiteResult, filters: Filters): string {
  checkShape(file, result);
  const rows = result.cases.filter((c) => filters.metric === undefined || c.metric === filters.metric);
  if (rows.length === 0)
    throw new BenchTableError(file, `bench/results/${result.suite}.json has no such rows`);
  const commit = result.commit === null ? 'an unknown commit' : `commit \`${result.commit.slice(0, 10)}\``;
  const provenance =
    `_From \`bench/results/${result.suite}.json\`: a ${result.quick ? 'quick' : 'full'} run of ${commit}` +
    `${result.dirty === true ? ' with uncommitted changes' : ''}, ${result.date.slice(0, 10)}, ` +
    `Node ${result.node}, ${result.cpus} CPUs._`;
  const header =
    '| case | metric | ours | value | peer | peer value | ratio | ratio Q1–Q3 | rsd ours / peer | samples |\n' +
    '| --- | --- | --- | --: | --- | --: | --: | --: | --: | --: |';
  return [provenance, '', header, ...rows.map(row)].join('\n');
}

function row(c: CaseResult): string {
  const cells = [
    `\`${c.name}\``,
    `\`${c.metric}\``,
    c.ours,
    value(c.metric, c.value),
    // A case without a peer (a figure no peer has) shows a dash for the peer and the ratio.
    c.peer ?? '—',
    c.peerValue === null ? '—' : value(c.metric, c.peerValue),
    c.ratio === null ? '—' : `${c.ratio.toFixed(2)}×`,
    c.ratioQ1 === null || c.ratioQ3 === null ? '—' : `${c.ratioQ1.toFixed(2)}–${c.ratioQ3.toFixed(2)}`,
    `${c.rsdPct.toFixed(1)}% / ${c.peerRsdPct === null ? '—' : `${c.peerRsdPct.toFixed(1)}%`}`,
    String(c.samples),
  ];
  return `| ${cells.join(' | ')} |`;
}

function value(metric: Metric, v: number): string {
  const digits = { maximumFractionDigits: 0 };
  if (metric === 'ops_per_s') return v.toLocaleString('en-US', digits);
  if (metric === 'heap_bytes_per_op') return `${v.toLocaleString('en-US', digits)} B`;
  if (metric === 'mb_per_s') return `${v.toLocaleString('en-US', { maximumFractionDigits: 1 })} MB/s`;
  if (metric === 'origin_fetches_per_blob') return v.toFixed(2);
  if (metric.endsWith('_ms')) return `${v.toLocaleString('en-US', { maximumFractionDigits: 1 })} ms`;
  return `${v.toLocaleString('en-US', digits)} µs`;
}

/** Why a result must not be published in the docs, or undefined if it may be. */
export function unpublishable(result: SuiteResult): string | undefined {
  if (result.quick) return 'a quick run (publish full runs)';
  if (result.commit === null) return 'a run outside a git checkout (no commit)';
  if (result.dirty !== false) return 'a run of a tree with uncommitted changes';
  return undefined;
}

/** Source folders whose changes can move a suite's figures. */
const measuredSources: Record<string, readonly string[]> = {
  codec: ['src/grid', 'src/internal'],
  grid: ['src/grid', 'src/internal'],
  statefun: ['src/statefun', 'src/internal'],
  views: ['src/views', 'src/grid', 'src/internal'],
  runtime: ['src/runtime', 'src/statefun', 'src/internal'],
  coord: ['src/coord', 'src/grid', 'src/internal'],
  hub: ['src/hub', 'src/grid', 'src/internal'],
  node: ['src/node', 'src/cli', 'src/views', 'src/grid', 'src/runtime', 'src/internal'],
  cluster: ['src/runtime', 'src/node', 'src/grid', 'src/coord', 'src/statefun', 'src/internal'],
};

/** The measured sources changed since the result's commit, as a note (not an error). */
function staleness(root: string, result: SuiteResult): string | undefined {
  const sources = measuredSources[result.suite];
  if (result.commit === null || sources === undefined) return undefined;
  try {
    const changed = execFileSync('git', ['diff', '--name-only', result.commit, 'HEAD', '--', ...sources], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (changed === '') return undefined;
    return `${changed.split('\n').length} file(s) under ${sources.join(', ')} changed since ${result.commit.slice(0, 10)}`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const root = path.resolve(import.meta.dirname, '..');
  const docs = path.join(root, 'docs');
  const loaded = new Map<string, Promise<SuiteResult>>();
  const load: LoadResult = (suite) => {
    let loading = loaded.get(suite);
    if (loading === undefined) {
      const file = path.join(root, 'bench', 'results', `${suite}.json`);
      loading = readFile(file, 'utf8').then((text) => JSON.parse(text) as SuiteResult);
      loaded.set(suite, loading);
    }
    return loading;
  };
  const problems: string[] = [];
  const stale: string[] = [];
  for (const name of (await readdir(docs)).filter((f) => f.endsWith('.md')).sort()) {
    const file = path.join(docs, name);
    const before = await readFile(file, 'utf8');
    if (!before.includes('<!-- bench-table:')) continue;
    const options = { ...(await prettier.resolveConfig(file)), filepath: file };
    const after = await prettier.format(await renderTables(`docs/${name}`, before, load), options);
    if (after === before) continue;
    stale.push(`docs/${name}`);
    if (!values.check) await writeFile(file, after);
  }
  for (const [suite, loading] of loaded) {
    const result = await loading;
    const why = unpublishable(result);
    if (why !== undefined) problems.push(`bench/results/${suite}.json is ${why}`);
    const note = staleness(root, result);
    if (note !== undefined)
      console.log(`note: bench/results/${suite}.json: ${note}; consider running it again`);
  }
  if (values.check && stale.length > 0)
    problems.push(`tables differ from bench/results: ${stale.join(', ')}; run npm run bench:tables`);
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    return 1;
  }
  console.log(
    stale.length === 0 || values.check ? 'bench tables are up to date' : `rewrote ${stale.join(', ')}`,
  );
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
