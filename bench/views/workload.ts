// The events the views suite applies: puts and deletes over a fixed working set of keys, in
// batches made once from fixed seeds, so every run (and every side of a case) applies the same
// changes. Values are 64-byte Buffers, the payload of a small keyed record.

import assert from 'node:assert/strict';

import type { Event, MapChange } from '../../src/views/index.ts';
import { seededBytes } from '../seeded-bytes.ts';

export type Change = MapChange<Uint8Array>;
export type Batch = readonly Event<Change>[];

export const valueBytes = 64;

export interface BatchPlan {
  /** Distinct batches made; a run cycles through them. */
  readonly batches: number;
  readonly eventsPerBatch: number;
  /** Keys the events touch: the view holds at most this many entries. */
  readonly keys: number;
  /** Of every 4 events, how many delete their key (the rest put). */
  readonly deletesPerFour: number;
  readonly seed: number;
}

/** A deterministic cycle of batches over `plan.keys` keys. */
export function makeBatches(plan: BatchPlan): readonly Batch[] {
  const keys = Array.from({ length: plan.keys }, (_, i) => `key-${String(i).padStart(6, '0')}`);
  // A few distinct values, shared: what a map stores is a reference either way.
  const values = Array.from({ length: 16 }, (_, i) => seededBytes(valueBytes, plan.seed + i));
  let x = plan.seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return Array.from({ length: plan.batches }, () =>
    Object.freeze(
      Array.from({ length: plan.eventsPerBatch }, (): Event<Change> => {
        const r = next();
        const subject = keys[r % plan.keys] ?? '';
        return (r >>> 20) % 4 < plan.deletesPerFour
          ? { subject, payload: { op: 'delete' } }
          : {
              subject,
              payload: { op: 'put', value: values[(r >>> 24) % values.length] ?? Buffer.alloc(valueBytes) },
            };
      }),
    ),
  );
}

/** The bare apply loop: what a hand-rolled consumer does with each event. */
export function applyToMap(map: Map<string, Uint8Array>, events: Batch): void {
  for (const event of events) {
    const change = event.payload;
    if (change.op === 'put') map.set(event.subject, change.value);
    else map.delete(event.subject);
  }
}

/** The map after `count` batches of the cycle, applied from empty. */
export function replay(batches: readonly Batch[], count: number): Map<string, Uint8Array> {
  const map = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) applyToMap(map, batches[i % batches.length] ?? []);
  return map;
}

/** Throws unless both maps hold the same keys with equal bytes. */
export function assertSameEntries(
  actual: ReadonlyMap<string, Uint8Array>,
  expected: ReadonlyMap<string, Uint8Array>,
  what: string,
): void {
  assert.equal(actual.size, expected.size, `${what}: ${actual.size} entries, expected ${expected.size}`);
  for (const [key, value] of expected) {
    const got = actual.get(key);
    assert.ok(got !== undefined, `${what}: ${key} missing`);
    assert.ok(Buffer.from(got).equals(value), `${what}: ${key} has the wrong value`);
  }
}
