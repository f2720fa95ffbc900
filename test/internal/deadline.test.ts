import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { MAX_TIMER_MS } from '../../src/internal/clock.ts';
import {
  callScope,
  clampTimeout,
  deadlineAfter,
  deadlineOf,
  minDeadline,
  NO_DEADLINE,
  remainingMs,
} from '../../src/internal/deadline.ts';
import { DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

describe('deadlines', () => {
  test('a deadline is an absolute point: time spent before using it counts', () => {
    const clock = new FakeClock({ startMs: 500 });
    const deadline = deadlineAfter(clock, 1_000);
    assert.equal(deadline, 1_500);
    clock.advance(400);
    assert.equal(remainingMs(clock, deadline), 600);
    clock.advance(700);
    assert.equal(remainingMs(clock, deadline), 0, 'a passed deadline has 0 ms left, never negative');
  });

  test('no timeout means no deadline', () => {
    const clock = new FakeClock();
    assert.equal(deadlineAfter(clock, undefined), NO_DEADLINE);
    assert.equal(remainingMs(clock, NO_DEADLINE), Number.POSITIVE_INFINITY);
  });

  test('the earliest deadline wins, and missing ones are ignored', () => {
    assert.equal(minDeadline(300, undefined, 100, 200), 100);
    assert.equal(minDeadline(undefined, NO_DEADLINE), NO_DEADLINE);
    assert.equal(minDeadline(), NO_DEADLINE);
  });

  test('timeouts clamp to [0, 2^31-1] ms and NaN is refused', () => {
    assert.equal(clampTimeout(-10), 0);
    assert.equal(clampTimeout(2 ** 31), MAX_TIMER_MS);
    assert.equal(clampTimeout(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.throws(() => clampTimeout(Number.NaN), RangeError);
    const clock = new FakeClock();
    assert.equal(deadlineAfter(clock, 10 * 365 * 24 * 3_600_000), MAX_TIMER_MS);
  });
});

describe('callScope', () => {
  test('aborts with DeadlineExceededError when the timeout passes, and not before', async () => {
    const clock = new FakeClock();
    const scope = callScope(clock, { timeoutMs: 1_000 });
    clock.advance(999);
    assert.equal(scope.signal.aborted, false);
    clock.advance(1);
    assert.equal(scope.signal.aborted, true);
    assert.ok(scope.signal.reason instanceof DeadlineExceededError);
    assert.equal(scope.signal.reason.timeoutMs, 1_000);
    assert.equal(scope.signal.reason.retryable, true);
    scope.dispose();
    await Promise.resolve();
  });

  test('uses the default timeout only when the caller gave none', () => {
    const clock = new FakeClock();
    assert.equal(callScope(clock, {}, 60_000).deadline, 60_000);
    assert.equal(callScope(clock, { timeoutMs: 5 }, 60_000).deadline, 5);
    assert.equal(callScope(clock, {}).deadline, NO_DEADLINE);
  });

  test('a child scope inherits the parent deadline when it is earlier than its own timeout', () => {
    const clock = new FakeClock();
    const parent = callScope(clock, { timeoutMs: 100 });
    clock.advance(40);
    const child = callScope(clock, { signal: parent.signal, timeoutMs: 1_000 });
    assert.equal(child.deadline, 100);
    assert.equal(deadlineOf(child.signal), 100);
    clock.advance(60);
    assert.equal(child.signal.aborted, true);
    assert.ok(child.signal.reason instanceof DeadlineExceededError);
    child.dispose();
    parent.dispose();
  });

  test('a child timeout shorter than the parent deadline wins', () => {
    const clock = new FakeClock();
    const parent = callScope(clock, { timeoutMs: 1_000 });
    const child = callScope(clock, { signal: parent.signal, timeoutMs: 10 });
    assert.equal(child.deadline, 10);
    clock.advance(10);
    assert.equal(child.signal.aborted, true);
    assert.equal(parent.signal.aborted, false);
    child.dispose();
    parent.dispose();
  });

  test('the parent aborting aborts the scope with the same reason', () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const scope = callScope(clock, { signal: controller.signal, timeoutMs: 1_000 });
    const reason = new Error('caller left');
    controller.abort(reason);
    assert.equal(scope.signal.reason, reason);
    scope.dispose();
    assert.equal(clock.pendingTimers, 0);
  });

  test('an already aborted parent or an already passed deadline yields an aborted scope', () => {
    const clock = new FakeClock();
    const aborted = callScope(clock, { signal: AbortSignal.abort(new Error('gone')), timeoutMs: 5 });
    assert.equal(aborted.signal.aborted, true);
    assert.match(String(aborted.signal.reason), /gone/);
    const expired = callScope(clock, { timeoutMs: 0 });
    assert.ok(expired.signal.reason instanceof DeadlineExceededError);
    assert.equal(clock.pendingTimers, 0);
  });

  test('dispose cancels the timer and stops listening to the parent', () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const scope = callScope(clock, { signal: controller.signal, timeoutMs: 50 });
    scope.dispose();
    assert.equal(clock.pendingTimers, 0);
    controller.abort(new Error('late'));
    clock.advance(100);
    assert.equal(scope.signal.aborted, false);
  });

  test('a plain signal carries no deadline', () => {
    assert.equal(deadlineOf(new AbortController().signal), NO_DEADLINE);
    assert.equal(deadlineOf(undefined), NO_DEADLINE);
  });
});

test('abort() on a scope aborts its signal only, with the given reason', () => {
  const clock = new FakeClock();
  const parent = new AbortController();
  const scope = callScope(clock, { signal: parent.signal, timeoutMs: 100 });
  scope.abort(new Error('handler cancelled'));
  assert.match(String(scope.signal.reason), /handler cancelled/);
  assert.equal(parent.signal.aborted, false);
  scope.dispose();
  assert.equal(clock.pendingTimers, 0);
});
