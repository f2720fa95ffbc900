// The durable floor of the runtime suite: the counter workload (workload.ts) straight onto lmdb,
// with no runtime, no HTTP and no protocol: get, increment and put each key in turn, the updates
// committed in groups, one synced transaction at a time. It opens lmdb as the runtime's
// LmdbStateStore does (noSync off, no compression, lmdb-js's default overlapping sync) and waits
// for each group as the store waits for a write: committed, then `flushed` to disk.
//
// `groupSize` is what the runtime achieves by group commit (its mean updates per transaction), so
// the floor answers: how fast could anything go that commits that often? A fractional size G is
// kept on average: group k holds floor((k + 1)·G) − floor(k·G) updates.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { open, type RootDatabase } from 'lmdb';

import { counterKey, KeyCounts, maxKeys } from './workload.ts';

export interface LmdbFloorRun {
  /** Mean updates per synced transaction, at least 1. */
  readonly groupSize: number;
  /** Updates in this run. */
  readonly updates: number;
}

export interface LmdbFloorResult {
  /** Durable updates per second. */
  readonly opsPerS: number;
  /** Synced transactions committed. */
  readonly commits: number;
}

const maxUpdates = 100_000_000;
/** Keys `check` reads back. */
const checkedKeys = 100;

function checkRun(run: LmdbFloorRun): void {
  const { groupSize, updates } = run;
  if (typeof groupSize !== 'number' || !Number.isFinite(groupSize) || groupSize < 1) {
    throw new RangeError(`groupSize must be a finite number of at least 1, got ${String(groupSize)}`);
  }
  if (!Number.isSafeInteger(updates) || updates < 1 || updates > maxUpdates) {
    throw new RangeError(`updates must be an integer from 1 to ${maxUpdates}, got ${String(updates)}`);
  }
}

/** The counters in a fresh lmdb environment in a temporary directory, removed on close. */
export class LmdbFloor {
  readonly #directory: string;
  readonly #db: RootDatabase<number, string>;
  readonly #keys: number;
  /** Updates made to each key, to check the stored counts against. */
  readonly #counts: KeyCounts;
  /** The next key to update: runs go on where the last one stopped. */
  #nextKey = 0;

  private constructor(directory: string, keys: number) {
    this.#directory = directory;
    this.#keys = keys;
    this.#counts = new KeyCounts(keys);
    this.#db = open<number, string>({ path: directory, noSync: false, compression: false });
  }

  static async open(options: { readonly keys: number }): Promise<LmdbFloor> {
    const { keys } = options;
    if (!Number.isSafeInteger(keys) || keys < 1 || keys > maxKeys) {
      throw new RangeError(`keys must be an integer from 1 to ${maxKeys}, got ${String(keys)}`);
    }
    const directory = await mkdtemp(path.join(tmpdir(), 'weft-lmdb-floor-'));
    try {
      return new LmdbFloor(directory, keys);
    } catch (error) {
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }

  async run(run: LmdbFloorRun): Promise<LmdbFloorResult> {
    checkRun(run);
    const { groupSize, updates } = run;
    const db = this.#db;
    let done = 0;
    let commits = 0;
    const start = performance.now();
    while (done < updates) {
      const size = Math.min(
        updates - done,
        Math.floor((commits + 1) * groupSize) - Math.floor(commits * groupSize),
      );
      await db.transaction(() => {
        for (let i = 0; i < size; i++) {
          const key = counterKey(this.#nextKey);
          db.putSync(key, (db.get(key) ?? 0) + 1);
          this.#counts.next(this.#nextKey);
          this.#nextKey = (this.#nextKey + 1) % this.#keys;
        }
      });
      await db.flushed;
      done += size;
      commits += 1;
    }
    return { opsPerS: (updates * 1000) / (performance.now() - start), commits };
  }

  /** Throws unless the stored count of every sampled key is the number of updates made to it. */
  check(): void {
    for (const key of this.#counts.sample(checkedKeys)) {
      const stored = this.#db.get(counterKey(key));
      const expected = this.#counts.get(key);
      if (stored !== expected) {
        throw new Error(`lmdb floor: ${counterKey(key)} holds ${String(stored)}, expected ${expected}`);
      }
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
    await rm(this.#directory, { recursive: true, force: true });
  }
}

/** One run of the floor in a fresh environment, checked, then removed. */
export async function runLmdbFloor(
  options: { readonly keys: number } & LmdbFloorRun,
): Promise<LmdbFloorResult> {
  const floor = await LmdbFloor.open({ keys: options.keys });
  try {
    const result = await floor.run(options);
    floor.check();
    return result;
  } finally {
    await floor.close();
  }
}
