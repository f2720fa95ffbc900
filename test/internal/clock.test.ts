import assert from 'node:assert/strict';
import { test } from 'node:test';

import { clampDelay, MAX_TIMER_MS, systemClock } from '../../src/internal/clock.ts';

test('clampDelay keeps delays within what a Node timer honours', () => {
  assert.equal(clampDelay(-1), 0);
  assert.equal(clampDelay(Number.NaN), 0);
  assert.equal(clampDelay(15), 15);
  assert.equal(clampDelay(MAX_TIMER_MS + 1), MAX_TIMER_MS);
  assert.equal(clampDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
});

test('the system clock is monotonic and its wall time is the epoch time', () => {
  const a = systemClock.now();
  const b = systemClock.now();
  assert.ok(b >= a);
  assert.ok(Math.abs(systemClock.wallTimeMs() - Date.now()) < 1_000);
});
