// The frame checksum is the same number whichever implementation computes it: with the
// native @node-rs/xxhash (an optional dependency) or without it, in JavaScript alone.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { crc32OfFrame, frameChecksumImplementation } from '../../src/grid/crc.ts';

const script = `
import { crc32OfFrame, frameChecksumImplementation } from './src/grid/crc.ts';
const sums = [];
for (let length = 0; length <= 700; length++) {
  const bytes = Uint8Array.from({ length }, (_, i) => (i * 131 + length * 7) & 0xff);
  sums.push(crc32OfFrame(bytes));
}
console.log(JSON.stringify({ implementation: frameChecksumImplementation, sums }));
`;

function sumsIn(env: Record<string, string>): { implementation: string; sums: number[] } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url),
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as { implementation: string; sums: number[] };
}

test('without the native hash, every frame length gets the checksum the native hash gives', () => {
  assert.equal(frameChecksumImplementation, 'native', 'this repository installs the optional native hash');
  const native = sumsIn({});
  const javascript = sumsIn({ WEFT_NATIVE_XXHASH: '0' });
  assert.equal(native.implementation, 'native');
  assert.equal(javascript.implementation, 'javascript');
  assert.deepEqual(javascript.sums, native.sums);
  assert.equal(native.sums[0], crc32OfFrame(new Uint8Array(0)));
  // XXH3-64("") = 2d06800538d394c2: its low 32 bits.
  assert.equal(native.sums[0], 0x38d394c2);
});
