import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  defaultInFlightConfig,
  InFlightMap,
  isStalled,
  stallThresholdMs,
} from '../../src/coord/in-flight.ts';
import { CapacityExceededError, ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const SECOND = 1_000;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('InFlightMap', () => {
  test('the first claim of a key wins; a duplicate gets the running entry', () => {
    const clock = new FakeClock({ startMs: 7, wallStartMs: 1_700_000_000_000 });
    const inFlight = new InFlightMap({ clock });
    const first = inFlight.start('sha256:a', { kind: 'blob', size: 123 });
    assert.ok(first.claimed);
    assert.deepEqual(first.handle.entry, {
      key: 'sha256:a',
      kind: 'blob',
      size: 123,
      startedAt: 7,
      startedAtWallMs: 1_700_000_000_000,
    });
    clock.advance(SECOND);
    const second = inFlight.start('sha256:a', { kind: 'manifest' });
    assert.equal(second.claimed, false);
    assert.equal(second.entry, first.handle.entry);
    assert.equal(inFlight.get('sha256:a'), first.handle.entry);
    assert.deepEqual(inFlight.stats(), { inFlight: 1, claimed: 1, duplicates: 1, refused: 0, completed: 0 });
  });

  test('of many racing claims exactly one gets the handle', () => {
    const inFlight = new InFlightMap({ clock: new FakeClock() });
    const results = Array.from({ length: 1_000 }, () => inFlight.start('k', { kind: 'config' }));
    assert.equal(results.filter((r) => r.claimed).length, 1);
  });

  test('done releases the key once; a second done does nothing', () => {
    const inFlight = new InFlightMap({ clock: new FakeClock() });
    const claim = inFlight.start('k', { kind: 'manifest' });
    assert.ok(claim.claimed);
    claim.handle.done();
    assert.equal(inFlight.get('k'), undefined);
    claim.handle.done();
    assert.deepEqual(inFlight.stats(), { inFlight: 0, claimed: 1, duplicates: 0, refused: 0, completed: 1 });
    assert.ok(inFlight.start('k', { kind: 'manifest' }).claimed);
  });

  test('done of an old handle does not remove a newer claim of the same key', () => {
    const inFlight = new InFlightMap({ clock: new FakeClock() });
    const old = inFlight.start('k', { kind: 'blob' });
    assert.ok(old.claimed);
    old.handle.done();
    const newer = inFlight.start('k', { kind: 'blob' });
    assert.ok(newer.claimed);
    old.handle.done();
    assert.equal(inFlight.get('k'), newer.handle.entry);
    newer.handle.done();
    assert.equal(inFlight.get('k'), undefined);
  });

  test('a claim beyond maxEntries is refused with CapacityExceededError and counted', () => {
    const inFlight = new InFlightMap({ clock: new FakeClock(), maxEntries: 2 });
    const a = inFlight.start('a', { kind: 'blob' });
    inFlight.start('b', { kind: 'blob' });
    assert.throws(
      () => inFlight.start('c', { kind: 'blob' }),
      (error: unknown) => error instanceof CapacityExceededError && error.limit === 2 && error.retryable,
    );
    // A duplicate of a running key is still answered when full.
    assert.equal(inFlight.start('a', { kind: 'blob' }).claimed, false);
    assert.equal(inFlight.stats().refused, 1);
    assert.ok(a.claimed);
    a.handle.done();
    assert.ok(inFlight.start('c', { kind: 'blob' }).claimed);
  });

  test('defaults and bad options', () => {
    assert.equal(defaultInFlightConfig.maxEntries, 10_000);
    for (const maxEntries of [0, -1, 2.5, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new InFlightMap({ maxEntries }),
        (error: unknown) => error instanceof ConfigError && error.field === 'inFlight.maxEntries',
      );
    }
  });
});

describe('stall thresholds', () => {
  test('manifests and configs stall after 5 s whatever their size', () => {
    assert.equal(stallThresholdMs('manifest'), 5 * SECOND);
    assert.equal(stallThresholdMs('config', 10 * GiB), 5 * SECOND);
  });

  test('a small or unsized blob gets 10 s × 3', () => {
    assert.equal(stallThresholdMs('blob'), 30 * SECOND);
    assert.equal(stallThresholdMs('blob', 0), 30 * SECOND);
    assert.equal(stallThresholdMs('blob', 500 * MiB), 30 * SECOND); // exactly 10 s at 50 MiB/s
    assert.equal(stallThresholdMs('blob', Number.NaN), 30 * SECOND);
    assert.equal(stallThresholdMs('blob', -1), 30 * SECOND);
  });

  test('a large blob gets three times its transfer time at 50 MiB/s', () => {
    assert.equal(stallThresholdMs('blob', 1 * GiB), 61_440); // 20.48 s × 3
    assert.equal(stallThresholdMs('blob', 10 * GiB), 614_400); // 204.8 s × 3
  });

  test('an entry is stalled only once it has run longer than its threshold', () => {
    const clock = new FakeClock();
    const inFlight = new InFlightMap({ clock });
    const manifest = inFlight.start('m', { kind: 'manifest' });
    const blob = inFlight.start('b', { kind: 'blob', size: 10 * GiB });
    assert.ok(manifest.claimed && blob.claimed);
    clock.advance(5 * SECOND);
    assert.equal(inFlight.isStalled(manifest.handle.entry), false);
    clock.advance(1);
    assert.equal(inFlight.isStalled(manifest.handle.entry), true);
    assert.equal(isStalled(blob.handle.entry, 614_400), false);
    assert.equal(isStalled(blob.handle.entry, 614_401), true);
  });
});
