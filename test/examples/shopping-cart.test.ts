// The shopping-cart example runs as docs/runtime.md says: one command, a few seconds of real
// time (its holds expire after 2 s on the system clock), and it shows what it claims.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');

test('the shopping-cart example runs and shows its holds expiring and cancelled ones not firing', () => {
  const result = spawnSync(
    process.execPath,
    ['--conditions=weft-source', '--import', 'tsx', 'examples/shopping-cart/main.ts'],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(result.status, 0, `the example failed:\n${result.stdout}\n${result.stderr}`);
  const out = result.stdout;
  assert.match(out, /cart alice: hold on apple expired/);
  assert.match(out, /cancelled holds that fired anyway: none/);
  assert.match(out, /receipt for bob: 1 unit\(s\)/);
  assert.match(out, /last seen \(session expired\)/);
  assert.match(out, /closed\n$/);
});
