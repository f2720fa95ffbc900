import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { MAX_TIMER_MS, sleep } from '../../src/internal/clock.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

describe('FakeClock', () => {
  test('time stands still until the test advances it', () => {
    const clock = new FakeClock({ startMs: 1_000, wallStartMs: Date.UTC(2030, 0, 1) });
    assert.equal(clock.now(), 1_000);
    assert.equal(clock.wallTimeMs(), Date.UTC(2030, 0, 1));
    clock.advance(250);
    assert.equal(clock.now(), 1_250);
    assert.equal(clock.wallTimeMs(), Date.UTC(2030, 0, 1) + 250);
  });

  test('timers fire in due order, ties in the order they were set, each seeing its own due time', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 30);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`b1@${clock.now()}`), 20);
    clock.setTimeout(() => fired.push(`b2@${clock.now()}`), 20);
    clock.advance(25);
    assert.deepEqual(fired, ['a@10', 'b1@20', 'b2@20']);
    assert.equal(clock.now(), 25);
    assert.equal(clock.pendingTimers, 1);
    assert.equal(clock.nextTimerInMs, 5);
  });

  test('a timer set by a firing timer fires in the same advance when it falls due inside it', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    clock.setTimeout(() => {
      fired.push(clock.now());
      clock.setTimeout(() => fired.push(clock.now()), 5);
      clock.setTimeout(() => fired.push(clock.now()), 50);
    }, 10);
    clock.advance(20);
    assert.deepEqual(fired, [10, 15]);
    clock.advance(40);
    assert.deepEqual(fired, [10, 15, 60]);
  });

  test('a cancelled timer never fires, and cancelling twice or after firing is harmless', () => {
    const clock = new FakeClock();
    let fired = 0;
    const timer = clock.setTimeout(() => fired++, 10);
    timer.cancel();
    timer.cancel();
    clock.advance(100);
    assert.equal(fired, 0);
    const other = clock.setTimeout(() => fired++, 1);
    clock.advance(1);
    other.cancel();
    assert.equal(fired, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  test('intervals repeat at their period until cancelled', () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const interval = clock.setInterval(() => at.push(clock.now()), 10);
    clock.advance(35);
    assert.deepEqual(at, [10, 20, 30]);
    interval.cancel();
    clock.advance(100);
    assert.deepEqual(at, [10, 20, 30]);
  });

  test('delays are clamped like a Node timer that cannot wait past 2^31-1 ms', () => {
    const clock = new FakeClock();
    let fired = false;
    clock.setTimeout(() => (fired = true), 2 ** 40);
    clock.advance(1);
    assert.equal(fired, false, 'a huge delay must not fire at once, as a raw Node timer would');
    assert.equal(clock.nextTimerInMs, MAX_TIMER_MS - 1);
    let negative = false;
    clock.setTimeout(() => (negative = true), -5);
    clock.advance(0);
    assert.equal(negative, true);
  });

  test('advancing by a negative or non-finite step is refused', () => {
    const clock = new FakeClock();
    assert.throws(() => {
      clock.advance(-1);
    }, RangeError);
    assert.throws(() => {
      clock.advance(Number.NaN);
    }, RangeError);
  });

  test('advanceAsync lets promise continuations schedule and run the next timer', async () => {
    const clock = new FakeClock();
    const steps: number[] = [];
    const work = (async () => {
      await sleep(clock, 10);
      steps.push(clock.now());
      await sleep(clock, 10);
      steps.push(clock.now());
    })();
    await clock.advanceAsync(25);
    await work;
    assert.deepEqual(steps, [10, 20]);
  });

  test('runNext jumps straight to the next timer', async () => {
    const clock = new FakeClock();
    let fired = 0;
    clock.setTimeout(() => fired++, 5_000);
    assert.equal(await clock.runNext(), true);
    assert.equal(clock.now(), 5_000);
    assert.equal(fired, 1);
    assert.equal(await clock.runNext(), false);
  });
});

describe('sleep', () => {
  test('resolves when the clock reaches the delay', async () => {
    const clock = new FakeClock();
    let done = false;
    const slept = sleep(clock, 100).then(() => (done = true));
    await clock.advanceAsync(99);
    assert.equal(done, false);
    await clock.advanceAsync(1);
    await slept;
    assert.equal(done, true);
  });

  test('rejects with the signal reason on abort and leaves no timer behind', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const reason = new Error('stop');
    const slept = sleep(clock, 100, controller.signal);
    controller.abort(reason);
    await assert.rejects(slept, (error) => error === reason);
    assert.equal(clock.pendingTimers, 0);
  });

  test('rejects at once for an already aborted signal without setting a timer', async () => {
    const clock = new FakeClock();
    await assert.rejects(sleep(clock, 100, AbortSignal.abort(new Error('early'))), /early/);
    assert.equal(clock.pendingTimers, 0);
  });
});
