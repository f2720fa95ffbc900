// The pipeline example runs as its README says: one command, and it shows what it claims.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');

test('the pipeline example carries every line through three steps and back to an acknowledgement', () => {
  const result = spawnSync(
    process.execPath,
    ['--conditions=weft-source', '--import', 'tsx', 'examples/pipeline/main.ts'],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(result.status, 0, `the example failed:\n${result.stdout}\n${result.stderr}`);
  const published = [...result.stdout.matchAll(/^publish: (.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(published, [
    'THE HUB BUFFERS!',
    'ACKS FLOW BACK!',
    'GENERATIONS HAND OFF!',
    'NOTHING IS LOST!',
  ]);
  assert.match(result.stdout, /ingest: all 4 acknowledged end to end \(unacked: 0\)/);
  assert.match(result.stdout, /closed\n$/);
});
