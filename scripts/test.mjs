// Runs the test suite: `npm test` runs every test, `npm test -- <module> [<module> …]`
// runs the tests under test/<module>/ (a path to a file or folder works too).
// Options starting with `--` go to `node --test` (e.g. --test-name-pattern=credit).
// Node 20's --test does not expand globs, so the files are listed here.
//
// Every test file gets two minutes. A file that needs longer (a chaos test of real processes
// over many rounds) says so near its top with `@weft-test-timeout <ms>`; such files run after the
// others, each in a run of its own with its own limit.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const testRoot = path.join(root, 'test');
const args = process.argv.slice(2);
const nodeOptions = args.filter((a) => a.startsWith('--'));
const selectors = args.filter((a) => !a.startsWith('--'));

function testFilesUnder(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f));
}

function resolveSelector(selector) {
  for (const candidate of [path.join(testRoot, selector), path.resolve(selector)]) {
    if (!existsSync(candidate)) continue;
    return statSync(candidate).isDirectory() ? testFilesUnder(candidate) : [candidate];
  }
  const modules = readdirSync(testRoot, { withFileTypes: true }).filter((d) => d.isDirectory());
  console.error(`no tests match "${selector}"; modules: ${modules.map((d) => d.name).join(', ')}`);
  process.exit(2);
}

const files = (selectors.length === 0 ? [testFilesUnder(testRoot)] : selectors.map(resolveSelector))
  .flat()
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(2);
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** The limit a file states near its top (`@weft-test-timeout <ms>`), or undefined. */
function statedTimeout(file) {
  const head = readFileSync(file, 'utf8').slice(0, 4_000);
  const match = /@weft-test-timeout (\d+)/.exec(head);
  return match === null ? undefined : Number(match[1]);
}

const runs = [{ files: [], timeoutMs: DEFAULT_TIMEOUT_MS }];
for (const file of files) {
  const timeoutMs = statedTimeout(file);
  if (timeoutMs === undefined) runs[0].files.push(file);
  else runs.push({ files: [file], timeoutMs });
}

console.log(`node ${process.version}: ${files.length} test files`);
let status = 0;
for (const { files: runFiles, timeoutMs } of runs) {
  if (runFiles.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=weft-source',
      '--test',
      '--test-reporter=spec',
      `--test-timeout=${timeoutMs}`,
      ...nodeOptions,
      ...runFiles,
    ],
    { stdio: 'inherit', cwd: root },
  );
  if (result.error) throw result.error;
  if (result.status !== 0) status = result.status ?? 1;
}
process.exit(status);
