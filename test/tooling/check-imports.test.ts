import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

const script = path.resolve(import.meta.dirname, '../../scripts/check-imports.ts');
const scratch = mkdtempSync(path.join(tmpdir(), 'weft-check-imports-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function sourceTree(name: string, files: Record<string, string>): string {
  const root = path.join(scratch, name);
  for (const [file, contents] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), contents);
  }
  return root;
}

function checkImports(root: string): { status: number | null; stdout: string; stderr: string } {
  // Run from the scratch directory, so paths print relative to it; tsx is found from here.
  const result = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), script, '--root', root],
    {
      encoding: 'utf8',
      cwd: scratch,
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('check:imports', () => {
  it('passes a layered tree and says what it scanned', () => {
    const root = sourceTree('clean', {
      'internal/clock.ts': 'export const now = 0;',
      'grid/index.ts': "export { now } from '../internal/clock.ts';",
      'views/index.ts': "import { now } from '../grid/index.ts';\nexport const v = now;",
    });
    const { status, stdout } = checkImports(root);
    assert.equal(status, 0);
    assert.match(stdout, /3 files in 3 modules, 2 edges between modules/);
  });

  it('fails on a module cycle, naming the chain and the files of each step', () => {
    const root = sourceTree('cycle', {
      'grid/index.ts': "export { v } from '../views/index.ts';",
      'views/index.ts': "export { g } from '../grid/mux.ts';",
      'grid/mux.ts': 'export const g = 1;',
    });
    const { status, stderr } = checkImports(root);
    assert.equal(status, 1);
    assert.match(stderr, /import cycle between modules: grid → views → grid/);
    assert.match(stderr, /grid → views: cycle\/grid\/index\.ts → cycle\/views\/index\.ts/);
    assert.match(stderr, /views → grid: cycle\/views\/index\.ts → cycle\/grid\/mux\.ts/);
    assert.match(stderr, /grid may not import views/);
    assert.match(stderr, /deep import: cycle\/views\/index\.ts → cycle\/grid\/mux\.ts/);
  });

  it('refuses to run on a directory that does not exist', () => {
    const { status, stderr } = checkImports(path.join(scratch, 'nowhere'));
    assert.equal(status, 2);
    assert.match(stderr, /is not a directory/);
  });
});
