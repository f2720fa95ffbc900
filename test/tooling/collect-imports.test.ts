import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { collectImports } from '../../scripts/collect-imports.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'weft-collect-imports-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Writes `files` (path under src/ → contents) into a fresh tree and returns its src/. */
function sourceTree(name: string, files: Record<string, string>): string {
  const root = path.join(scratch, name, 'src');
  for (const [file, contents] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), contents);
  }
  return root;
}

describe('collectImports', () => {
  it('sees every form of relative import and ignores packages, strings and comments', () => {
    const root = sourceTree('forms', {
      'hub/all.ts': [
        "import { a } from '../grid/a.ts';",
        "import type { B } from '../grid/b.ts';",
        "export * from '../grid/c.ts';",
        "export type { D } from '../grid/d.ts';",
        "const e = await import('../grid/e.ts');",
        "type F = typeof import('../grid/f.ts');",
        "import { g } from '../grid/g.js';",
        "import { WebSocket } from 'ws';",
        "import fs from 'node:fs';",
        "const text = `import('../grid/not-an-import.ts')`;",
        "// import '../grid/commented-out.ts';",
      ].join('\n'),
      ...Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((n) => [`grid/${n}.ts`, ''])),
    });
    const { imports, problems } = collectImports(root);
    assert.deepEqual(
      imports.map((edge) => edge.to),
      ['grid/a.ts', 'grid/b.ts', 'grid/c.ts', 'grid/d.ts', 'grid/e.ts', 'grid/f.ts', 'grid/g.ts'],
    );
    assert.ok(imports.every((edge) => edge.from === 'hub/all.ts'));
    assert.deepEqual(problems, []);
  });

  it('reports imports that leave the root or name no file, and files outside any module', () => {
    const root = sourceTree('broken', {
      'grid/a.ts': [
        "import '../../package.json';",
        "import { x } from './missing.ts';",
        "import { y } from './b';",
        "import { z } from './b.ts';",
      ].join('\n'),
      'grid/b.ts': '',
      'stray.ts': "import '../outside.ts';",
    });
    const { files, imports, problems } = collectImports(root);
    assert.deepEqual(files, ['grid/a.ts', 'grid/b.ts']);
    assert.deepEqual(imports, [{ from: 'grid/a.ts', to: 'grid/b.ts' }]);
    assert.deepEqual(problems, [
      { kind: 'leaves-root', file: 'grid/a.ts', specifier: '../../package.json' },
      { kind: 'unresolved', file: 'grid/a.ts', specifier: './missing.ts' },
      // ESM needs the extension: an extensionless import does not resolve under NodeNext.
      { kind: 'unresolved', file: 'grid/a.ts', specifier: './b' },
      { kind: 'outside-module', file: 'stray.ts' },
      { kind: 'leaves-root', file: 'stray.ts', specifier: '../outside.ts' },
    ]);
  });
});
