// The package root and the errors a user can meet: every error class with a code is
// exported from `weft` and from its module, and docs/errors.md lists every code.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import * as coord from '../../src/coord/index.ts';
import * as grid from '../../src/grid/index.ts';
import * as hub from '../../src/hub/index.ts';
import * as runtime from '../../src/runtime/index.ts';
import * as statefun from '../../src/statefun/index.ts';
import * as views from '../../src/views/index.ts';
import * as root from '../../src/weft/index.ts';

const srcRoot = new URL('../../src/', import.meta.url);
const modules: Record<string, Record<string, unknown>> = { grid, statefun, views, runtime, coord, hub };

interface ErrorClass {
  readonly name: string;
  readonly code: string;
  readonly module: string;
}

/** Every `export class … { static readonly code = '…' }` under src/. */
function errorClasses(): ErrorClass[] {
  const found: ErrorClass[] = [];
  for (const file of readdirSync(srcRoot, { recursive: true }).map(String)) {
    if (!file.endsWith('.ts') || file.startsWith('gen')) continue;
    const text = readFileSync(new URL(file, srcRoot), 'utf8');
    for (const match of text.matchAll(
      /export class (\w+) extends (?:(?!export class)[\s\S])*?static readonly code = '(\w+)'/g,
    )) {
      found.push({ name: match[1] ?? '', code: match[2] ?? '', module: file.split(path.sep)[0] ?? '' });
    }
  }
  return found;
}

const classes = errorClasses();

test('the scan finds the error classes of every module', () => {
  assert.ok(classes.length >= 25, `only ${classes.length} error classes found`);
  for (const module of ['internal', 'grid', 'statefun', 'views', 'runtime']) {
    assert.ok(
      classes.some((c) => c.module === module),
      `no error class found in ${module}`,
    );
  }
});

test('every error class is exported from the root entry and from the module that throws it', () => {
  for (const { name, module } of classes) {
    const fromRoot = (root as Record<string, unknown>)[name];
    assert.equal(typeof fromRoot, 'function', `weft does not export ${name}`);
    // The shared errors come from every module; a module's own from that module.
    const homes = module === 'internal' ? Object.keys(modules) : [module];
    for (const home of homes) {
      assert.equal(modules[home]?.[name], fromRoot, `weft/${home} does not export the same ${name}`);
    }
  }
});

test('docs/errors.md has a row for every code, naming its class, and no code that does not exist', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const { name, code } of classes) {
    assert.match(
      doc,
      new RegExp(`\\| \`${code}\` +\\| \`${name}\` +\\|`),
      `docs/errors.md lacks ${code} (${name})`,
    );
  }
  const documented = [...doc.matchAll(/^\| `(WEFT_\w+)`/gm)].map((m) => m[1]);
  const codes = new Set(classes.map((c) => c.code));
  for (const code of documented)
    assert.ok(codes.has(code ?? ''), `docs/errors.md lists ${code ?? ''}, which no class has`);
});

test('the root entry says its version, as package.json does, and names the modules', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
    exports: Record<string, unknown>;
  };
  assert.equal(root.VERSION, pkg.version);
  for (const module of root.MODULES) assert.ok(`./${module.slice('weft/'.length)}` in pkg.exports, module);
});

test('an error of any module is a WeftError with its code and verdict', () => {
  const error = new root.DisconnectedError('gone');
  assert.ok(error instanceof root.WeftError);
  assert.equal(error.code, 'WEFT_GRID_DISCONNECTED');
  assert.equal(root.isRetryable(error), true);
});
