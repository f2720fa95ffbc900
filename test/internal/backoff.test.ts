import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Backoff,
  backoffDelay,
  defaultRetryWaiterConfig,
  RetryWaiter,
  retryWaiterDelay,
  type BackoffPolicy,
} from '../../src/internal/backoff.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const fixed =
  (value: number): (() => number) =>
  () =>
    value;

describe('backoffDelay', () => {
  test('exponential doubles from the base and stops at the cap', () => {
    const policy: BackoffPolicy = { kind: 'exponential', baseDelayMs: 500, maxDelayMs: 30_000 };
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(policy, n));
    assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  test('exponential honours a custom multiplier', () => {
    const policy: BackoffPolicy = {
      kind: 'exponential',
      baseDelayMs: 100,
      maxDelayMs: 10_000,
      multiplier: 3,
    };
    assert.deepEqual(
      [1, 2, 3].map((n) => backoffDelay(policy, n)),
      [100, 300, 900],
    );
  });

  test('linear grows by the base each attempt; constant stays at the base', () => {
    const linear: BackoffPolicy = { kind: 'linear', baseDelayMs: 1_000, maxDelayMs: 2_500 };
    assert.deepEqual(
      [1, 2, 3].map((n) => backoffDelay(linear, n)),
      [1_000, 2_000, 2_500],
    );
    const constant: BackoffPolicy = { kind: 'constant', baseDelayMs: 1_000, maxDelayMs: 5_000 };
    assert.deepEqual(
      [1, 5, 50].map((n) => backoffDelay(constant, n)),
      [1_000, 1_000, 1_000],
    );
  });

  test('jitter spreads the delay symmetrically and never passes the cap', () => {
    const policy: BackoffPolicy = { kind: 'constant', baseDelayMs: 1_000, maxDelayMs: 1_100, jitter: 0.2 };
    assert.equal(backoffDelay(policy, 1, fixed(0)), 800);
    assert.equal(backoffDelay(policy, 1, fixed(0.5)), 1_000);
    assert.equal(backoffDelay(policy, 1, fixed(0.999_999)), 1_100);
  });

  test('huge attempt numbers stay at the cap', () => {
    const policy: BackoffPolicy = { kind: 'exponential', baseDelayMs: 1, maxDelayMs: 60_000 };
    assert.equal(backoffDelay(policy, 10_000), 60_000);
  });
});

describe('Backoff', () => {
  test('counts attempts and starts over after reset', () => {
    const backoff = new Backoff({ kind: 'exponential', baseDelayMs: 10, maxDelayMs: 1_000 });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [10, 20, 40]);
    assert.equal(backoff.attempts, 3);
    backoff.reset();
    assert.equal(backoff.next(), 10);
  });

  test('a bad policy is refused with the field named', () => {
    const bad: [{ [K in keyof BackoffPolicy]?: BackoffPolicy[K] }, string][] = [
      [{ baseDelayMs: -1 }, 'backoff.baseDelayMs'],
      [{ maxDelayMs: 1 }, 'backoff.maxDelayMs'],
      [{ multiplier: 0.5 }, 'backoff.multiplier'],
      [{ jitter: 2 }, 'backoff.jitter'],
      [{ kind: 'fibonacci' as 'constant' }, 'backoff.kind'],
    ];
    for (const [override, field] of bad) {
      const policy: BackoffPolicy = { kind: 'exponential', baseDelayMs: 10, maxDelayMs: 100, ...override };
      assert.throws(
        () => new Backoff(policy),
        (error) => error instanceof ConfigError && error.field === field,
      );
    }
  });
});

describe('RetryWaiter (Consul waiter)', () => {
  const noJitter = { ...defaultRetryWaiterConfig, jitterPercent: 0 };

  test('the first failure retries at once, then 200 ms·2^(n-2) up to the 60 s cap', () => {
    const table = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => retryWaiterDelay(noJitter, n, fixed(0)));
    assert.deepEqual(table, [0, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000]);
    assert.equal(retryWaiterDelay(noJitter, 100, fixed(0)), 60_000);
  });

  test('jitter is added after the cap, so a capped wait reaches up to twice the cap', () => {
    const config = defaultRetryWaiterConfig;
    assert.equal(retryWaiterDelay(config, 2, fixed(0.5)), 300);
    assert.equal(retryWaiterDelay(config, 50, fixed(0)), 60_000);
    assert.equal(retryWaiterDelay(config, 50, fixed(0.999_999)), 119_999);
    assert.equal(retryWaiterDelay(config, 1, fixed(0.9)), 0, 'no jitter on a zero wait');
  });

  test('a minimum wait floors the real waits; failures within minFailures still retry at once', () => {
    const config = { ...noJitter, minWaitMs: 500 };
    assert.equal(retryWaiterDelay(config, 1, fixed(0)), 0);
    assert.equal(retryWaiterDelay(config, 2, fixed(0)), 500);
    assert.equal(retryWaiterDelay(config, 4, fixed(0)), 800);
  });

  test('wait() sleeps the earned delay on the clock and reset() starts over', async () => {
    const clock = new FakeClock();
    const waiter = new RetryWaiter(clock, { jitterPercent: 0 });
    /** Milliseconds of fake time until `wait()` resolved. */
    const timeWait = async (): Promise<number> => {
      const start = clock.now();
      let resolvedAt: number | undefined;
      const waiting = waiter.wait().then(() => (resolvedAt = clock.now()));
      while (resolvedAt === undefined) await clock.advanceAsync(1);
      await waiting;
      return resolvedAt - start;
    };
    assert.deepEqual([await timeWait(), await timeWait(), await timeWait()], [0, 200, 400]);
    assert.equal(waiter.failures, 3);
    waiter.reset();
    assert.equal(await timeWait(), 0);
  });

  test('wait() rejects with the signal reason when aborted', async () => {
    const clock = new FakeClock();
    const waiter = new RetryWaiter(clock, { jitterPercent: 0 });
    const first = waiter.wait();
    await clock.advanceAsync(0);
    await first;
    const controller = new AbortController();
    const pending = waiter.wait(controller.signal);
    controller.abort(new Error('shutting down'));
    await assert.rejects(pending, /shutting down/);
    assert.equal(clock.pendingTimers, 0);
  });

  test('a bad setting is refused with the field named', () => {
    assert.throws(
      () => new RetryWaiter(new FakeClock(), { factorMs: -5 }),
      (error) => error instanceof ConfigError && error.field === 'retryWaiter.factorMs',
    );
  });
});
