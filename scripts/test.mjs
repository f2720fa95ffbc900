// Runs the test suite: `npm test` runs every test, `npm test -- <module> [<module> …]`
// runs the tests under test/<module>/ (a path to a file or folder works too).
// Options starting with `--` go to `node --test` (e.g. --test-name-pattern=credit).
// Node 20's --test does not expand globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

console.log(`node ${process.version}: ${files.length} test files`);
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--conditions=weft-source',
    '--test',
    '--test-reporter=spec',
    '--test-timeout=120000',
    ...nodeOptions,
    ...files,
  ],
  { stdio: 'inherit', cwd: root },
);
if (result.error) throw result.error;
process.exit(result.status ?? 1);
