import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { failureClassOfStatus, isFailureClass } from '../../src/coord/failure-class.ts';
import {
  defaultNegativeCacheConfig,
  NegativeCache,
  type NegativeCacheRecordEvent,
} from '../../src/coord/negative-cache.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const SECOND = 1_000;

describe('failure classes', () => {
  test('an origin status maps to its class: 401/403 auth, 404 not-found, 429 rate-limited, else transient', () => {
    assert.equal(failureClassOfStatus(401), 'auth');
    assert.equal(failureClassOfStatus(403), 'auth');
    assert.equal(failureClassOfStatus(404), 'not-found');
    assert.equal(failureClassOfStatus(429), 'rate-limited');
    for (const status of [500, 502, 503, 400, 0]) assert.equal(failureClassOfStatus(status), 'transient');
  });

  test('only the four class names pass the guard', () => {
    assert.ok(isFailureClass('rate-limited'));
    for (const value of ['AUTH', '', 3, undefined, null]) assert.equal(isFailureClass(value), false);
  });
});

describe('NegativeCache', () => {
  test('consecutive failures climb the ladder 10, 30, 90, 270, 600, 600 s', () => {
    const clock = new FakeClock({ startMs: 1_000 });
    const cache = new NegativeCache({ clock });
    const cooldowns: number[] = [];
    for (let n = 1; n <= 6; n++) {
      const result = cache.recordFailure('sha256:a', 'transient');
      assert.ok(result.recorded);
      assert.equal(result.failures, n);
      assert.equal(result.cooldownUntil, clock.now() + result.cooldownMs);
      cooldowns.push(result.cooldownMs / SECOND);
      clock.advance(SECOND);
    }
    assert.deepEqual(cooldowns, [10, 30, 90, 270, 600, 600]);
  });

  test('a key in cooldown is reported with its class, failure count and end in both time bases', () => {
    const clock = new FakeClock({ startMs: 500, wallStartMs: 1_700_000_000_000 });
    const cache = new NegativeCache({ clock });
    cache.recordFailure('k', 'auth');
    cache.recordFailure('k', 'not-found');
    clock.advance(4 * SECOND);
    assert.deepEqual(cache.lookup('k'), {
      recentlyFailed: true,
      failureClass: 'not-found',
      failures: 2,
      cooldownUntil: 500 + 30 * SECOND,
      cooldownUntilWallMs: 1_700_000_000_000 + 30 * SECOND,
    });
    assert.equal(cache.lookup('other'), undefined);
  });

  test('lookup drops an entry whose cooldown has ended, and the ladder starts again', () => {
    const clock = new FakeClock();
    const cache = new NegativeCache({ clock });
    cache.recordFailure('k', 'transient');
    clock.advance(10 * SECOND - 1);
    assert.ok(cache.lookup('k'));
    clock.advance(1);
    assert.equal(cache.lookup('k'), undefined);
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.stats().expired, 1);
    const again = cache.recordFailure('k', 'transient');
    assert.ok(again.recorded);
    assert.equal(again.cooldownMs, 10 * SECOND);
  });

  test('sweep removes exactly the expired entries', () => {
    const clock = new FakeClock();
    const cache = new NegativeCache({ clock });
    cache.recordFailure('short', 'transient'); // 10 s
    cache.recordFailure('long', 'transient');
    cache.recordFailure('long', 'transient'); // 30 s
    clock.advance(5 * SECOND);
    cache.recordFailure('later', 'transient'); // until 15 s
    clock.advance(10 * SECOND);
    assert.equal(cache.sweep(), 2);
    assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 1, expired: 2 });
    assert.ok(cache.lookup('long'));
    assert.equal(cache.sweep(), 0);
  });

  test('a success clears the cooldown and resets the ladder', () => {
    const cache = new NegativeCache({ clock: new FakeClock() });
    cache.recordFailure('k', 'rate-limited');
    cache.recordFailure('k', 'rate-limited');
    assert.equal(cache.recordSuccess('k'), true);
    assert.equal(cache.lookup('k'), undefined);
    assert.equal(cache.recordSuccess('k'), false);
    const next = cache.recordFailure('k', 'rate-limited');
    assert.ok(next.recorded);
    assert.equal(next.failures, 1);
    assert.equal(cache.stats().cleared, 1);
  });

  test('a failure under a delegated credential is not recorded and does not climb the ladder', () => {
    const cache = new NegativeCache({ clock: new FakeClock() });
    assert.deepEqual(cache.recordFailure('k', 'auth', { delegatedCredential: true }), {
      recorded: false,
      reason: 'delegated-credential',
    });
    assert.equal(cache.lookup('k'), undefined);
    cache.recordFailure('k', 'auth');
    cache.recordFailure('k', 'auth', { delegatedCredential: true });
    assert.equal(cache.lookup('k')?.failures, 1);
    assert.equal(cache.stats().skippedDelegated, 2);
    assert.equal(cache.stats().recorded, 1);
  });

  test('a full cache evicts the entry expiring soonest and counts it', () => {
    const clock = new FakeClock();
    const cache = new NegativeCache({ clock, maxEntries: 3 });
    cache.recordFailure('old-but-long', 'transient');
    cache.recordFailure('old-but-long', 'transient'); // until 30 s
    clock.advance(SECOND);
    cache.recordFailure('soonest', 'transient'); // until 11 s
    clock.advance(SECOND);
    cache.recordFailure('newest', 'transient'); // until 12 s
    cache.recordFailure('incoming', 'transient');
    assert.equal(cache.lookup('soonest'), undefined);
    for (const key of ['old-but-long', 'newest', 'incoming']) assert.ok(cache.lookup(key), key);
    assert.equal(cache.stats().entries, 3);
    assert.equal(cache.stats().evicted, 1);
  });

  test('a full cache drops an expired entry before evicting a live one', () => {
    const clock = new FakeClock();
    const cache = new NegativeCache({ clock, maxEntries: 2 });
    cache.recordFailure('a', 'transient'); // until 10 s
    clock.advance(SECOND);
    cache.recordFailure('b', 'transient'); // until 11 s
    clock.advance(9 * SECOND);
    cache.recordFailure('c', 'transient');
    assert.ok(cache.lookup('b'));
    assert.deepEqual(cache.stats(), { ...cache.stats(), evicted: 0, expired: 1, entries: 2 });
  });

  test('a repeat failure of a key already held needs no room', () => {
    const cache = new NegativeCache({ clock: new FakeClock(), maxEntries: 1 });
    cache.recordFailure('k', 'transient');
    cache.recordFailure('k', 'transient');
    assert.equal(cache.lookup('k')?.failures, 2);
    assert.equal(cache.stats().evicted, 0);
  });

  test('each recorded failure is published on weft:coord:negative-cache', () => {
    const events: NegativeCacheRecordEvent[] = [];
    const unsubscribe = subscribeDiagnostics('weft:coord:negative-cache', (message) => {
      events.push(message as NegativeCacheRecordEvent);
    });
    try {
      const cache = new NegativeCache({ clock: new FakeClock() });
      cache.recordFailure('k', 'not-found');
      cache.recordFailure('k', 'not-found');
      cache.recordFailure('k', 'auth', { delegatedCredential: true });
    } finally {
      unsubscribe();
    }
    assert.deepEqual(events, [
      { key: 'k', failureClass: 'not-found', failures: 1, cooldownMs: 10_000 },
      { key: 'k', failureClass: 'not-found', failures: 2, cooldownMs: 30_000 },
    ]);
  });

  test('defaults: 100 000 entries, 10 s first cooldown, 10 min cap', () => {
    assert.equal(defaultNegativeCacheConfig.maxEntries, 100_000);
    assert.equal(defaultNegativeCacheConfig.firstCooldownMs, 10_000);
    assert.equal(defaultNegativeCacheConfig.maxCooldownMs, 600_000);
    const cache = new NegativeCache();
    assert.equal(cache.cooldownForFailure(1), 10_000);
    assert.equal(cache.cooldownForFailure(1_000), 600_000);
  });

  test('a bad option is refused with a ConfigError naming the field', () => {
    const cases: [object, string][] = [
      [{ maxEntries: 0 }, 'negativeCache.maxEntries'],
      [{ maxEntries: 1.5 }, 'negativeCache.maxEntries'],
      [{ firstCooldownMs: Number.NaN }, 'negativeCache.firstCooldownMs'],
      [{ firstCooldownMs: 5_000, maxCooldownMs: 1_000 }, 'negativeCache.maxCooldownMs'],
    ];
    for (const [config, field] of cases) {
      assert.throws(
        () => new NegativeCache(config),
        (error: unknown) => error instanceof ConfigError && error.field === field,
      );
    }
  });
});
