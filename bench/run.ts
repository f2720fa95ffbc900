// The benchmark CLI: `npm run bench -- <suite> [--quick]`, which runs
// `node --expose-gc --import tsx bench/run.ts <suite> [--quick]`.
//
// Runs bench/<suite>.bench.ts, prints progress to stderr and the results table to stdout,
// and writes bench/results/<suite>.json. Exit codes: 0 done, 1 a case failed (then no result
// file is written: a failed run publishes no figure), 2 bad usage (unknown suite or option).

import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  formatTable,
  listSuites,
  loadSuite,
  runSuite,
  UnknownSuiteError,
  writeSuiteResult,
  type Suite,
} from './harness.ts';

const benchDir = import.meta.dirname;
const repoDir = path.dirname(benchDir);
const resultsDir = path.join(benchDir, 'results');
const usage = 'usage: npm run bench -- <suite> [--quick]';

async function main(argv: readonly string[]): Promise<number> {
  let suiteName: string;
  let quick: boolean;
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { quick: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    const [first, ...rest] = positionals;
    if (first === undefined || rest.length > 0) throw new TypeError('expected exactly one suite name');
    suiteName = first;
    quick = values.quick;
  } catch (error) {
    console.error(`${errorMessage(error)}\n${usage}\nsuites: ${(await listSuites(benchDir)).join(', ')}`);
    return 2;
  }

  let suite: Suite;
  try {
    suite = await loadSuite(benchDir, suiteName);
  } catch (error) {
    if (!(error instanceof UnknownSuiteError)) throw error;
    console.error(`${error.message}\n${usage}`);
    return 2;
  }

  if (globalThis.gc === undefined) {
    console.error('warning: no --expose-gc, so GC runs inside timed samples; use npm run bench');
  }
  for (const note of (await suite.notes?.()) ?? []) console.log(note);
  console.error(`running ${suiteName}${quick ? ' (quick)' : ''}: ${suite.cases.length} cases`);

  const run = await runSuite(suiteName, suite, {
    quick,
    repoDir,
    onCase: (c) => {
      const versus = c.peer === null || c.ratio === null ? '' : ` vs ${c.peer}: ${c.ratio.toFixed(2)}x`;
      console.error(`  ${c.name} ${c.metric}${c.metric.endsWith('_ms') ? ` ${c.value} ms` : ''}${versus}`);
    },
    onFailure: (f) => {
      console.error(`  FAILED ${f.name} ${f.metric} vs ${f.peer}: ${errorMessage(f.error)}`);
    },
  });
  if (!run.ok) {
    if (run.partial.cases.length > 0) console.log(`\n${formatTable(run.partial)}\n`);
    console.error(
      `${run.failures.length} case(s) failed; ${path.join('bench/results', `${suiteName}.json`)} is left as it was`,
    );
    for (const f of run.failures)
      console.error(`\n${f.name} ${f.metric} vs ${f.peer}:\n${errorDetail(f.error)}`);
    return 1;
  }
  const { result } = run;
  console.log(`\n${formatTable(result)}\n`);
  if (result.commit === null) console.error('warning: not a git checkout, so the result records no commit');
  else if (result.dirty === true)
    console.error(`warning: the tree differs from ${result.commit}; the result says dirty`);
  const file = await writeSuiteResult(resultsDir, result);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  return 0;
}

function errorDetail(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

process.exitCode = await main(process.argv.slice(2));
