import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ReplayGuard } from '../../src/grid/replay-guard.ts';

const HOST = 'http://10.0.0.2:9000';
const WINDOW = 300_000;
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n);

test('a process must present strictly newer Connect times', () => {
  const guard = new ReplayGuard(WINDOW);
  assert.equal(guard.claim(HOST, id(1), 1_000, 1_000), true);
  assert.equal(guard.claim(HOST, id(1), 1_000, 1_000), false, 'the same Connect again is a replay');
  assert.equal(guard.claim(HOST, id(1), 999, 1_000), false);
  assert.equal(guard.claim(HOST, id(1), 1_001, 1_001), true);
});

test('a restarted process (new node id) is accepted even if its clock is behind', () => {
  const guard = new ReplayGuard(WINDOW);
  assert.equal(guard.claim(HOST, id(1), 50_000, 50_000), true);
  assert.equal(guard.claim(HOST, id(2), 40_000, 50_000), true);
  assert.equal(guard.claim(HOST, id(1), 45_000, 50_000), false, 'the old process’s replay is still refused');
});

test('hosts are separate', () => {
  const guard = new ReplayGuard(WINDOW);
  assert.equal(guard.claim(HOST, id(1), 1_000, 1_000), true);
  assert.equal(guard.claim('http://10.0.0.3:9000', id(1), 1_000, 1_000), true);
});

test('memory stays bounded: processes past the window are forgotten, and at most 16 per host are kept', () => {
  const guard = new ReplayGuard(WINDOW, 16);
  assert.equal(guard.claim(HOST, id(1), 1_000, 1_000), true);
  // Long after the window, process 1's old Connect would fail the skew check anyway.
  assert.equal(guard.claim(HOST, id(1), 500, 1_000 + WINDOW + 1), true);
  for (let n = 10; n < 30; n++) assert.equal(guard.claim(HOST, id(n), 2_000, 2_000), true);
  assert.equal(guard.claim(HOST, id(29), 2_000, 2_000), false, 'the most recent are remembered');
  assert.equal(guard.claim(HOST, id(10), 2_000, 2_000), true, 'the least recent were let go');
});
