import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import fc from 'fast-check';

import {
  CheckpointCorruptError,
  Checkpointer,
  CheckpointStoreClosedError,
  decodeCheckpoint,
  encodeCheckpoint,
  InvalidCheckpointError,
  LmdbCheckpointStore,
  MemoryCheckpointStore,
  type Checkpoint,
  type CheckpointSnapshot,
  type CheckpointStore,
  type LoadedCheckpoint,
  type PendingRecord,
} from '../../src/hub/checkpoint/index.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const KEY = 'ns/run/step';
const DAY_MS = 24 * 60 * 60 * 1_000;
const MAX_UINT64 = 2n ** 64n - 1n;

function record(partition: string, seq: bigint, fill = Number(seq % 200n) + 1, size = 16): PendingRecord {
  return { partition, seq, packet: new Uint8Array(size).fill(fill) };
}

function checkpoint(overrides: Partial<Checkpoint> = {}): Checkpoint {
  return {
    streamKey: KEY,
    lastAck: 3n,
    partitionAcks: new Map([['p1', 10n]]),
    pending: [record('', 4n), record('', 5n), record('p1', 11n)],
    updatedAtWallMs: Date.UTC(2026, 0, 1),
    ...overrides,
  };
}

/** The same facts, as plain values `deepEqual` compares. */
function plain(c: Checkpoint | undefined): unknown {
  if (c === undefined) return undefined;
  return {
    streamKey: c.streamKey,
    lastAck: c.lastAck,
    partitionAcks: [...c.partitionAcks].sort(),
    pending: c.pending.map((r) => [r.partition, r.seq, [...r.packet]]),
    updatedAtWallMs: c.updatedAtWallMs,
  };
}

interface RawStore extends CheckpointStore {
  readRaw(streamKey: string): Promise<Uint8Array | undefined>;
  writeRaw(streamKey: string, bytes: Uint8Array): Promise<void>;
}

/** Flips one byte inside the packet of the record whose packet is filled with `fill`. */
async function damagePacket(store: RawStore, fill: number): Promise<void> {
  const bytes = Uint8Array.from((await store.readRaw(KEY)) ?? []);
  const at = Buffer.from(bytes).indexOf(Buffer.alloc(16, fill));
  assert.ok(at > 0, 'packet bytes found');
  bytes[at + 3] = (bytes[at + 3] ?? 0) ^ 0xff;
  await store.writeRaw(KEY, bytes);
}

// One suite, run against every store.
function describeStore(name: string, open: (t: TestContext) => Promise<RawStore>): void {
  describe(name, () => {
    test('a saved checkpoint loads back field for field, uint64 extremes included', async (t) => {
      const store = await open(t);
      const saved = checkpoint({
        lastAck: MAX_UINT64,
        partitionAcks: new Map([
          ['p1', 0n],
          ['ünï', MAX_UINT64 - 1n],
        ]),
        pending: [record('', 0n, 1, 0), record('ünï', MAX_UINT64, 2, 1_000)],
      });
      await store.save(saved);
      const loaded = await store.load(KEY);
      assert.deepEqual(plain(loaded), plain(saved));
      assert.equal(loaded?.corruptRecords, 0);
    });

    test('a save replaces the key whole; delete and keys see it', async (t) => {
      const store = await open(t);
      await store.save(checkpoint());
      await store.save(checkpoint({ streamKey: 'ns/run/other' }));
      await store.save(checkpoint({ pending: [], lastAck: 9n }));
      assert.deepEqual((await store.keys()).sort(), ['ns/run/other', KEY]);
      assert.deepEqual((await store.load(KEY))?.pending, []);
      assert.equal((await store.load(KEY))?.lastAck, 9n);
      await store.delete(KEY);
      await store.delete(KEY);
      assert.equal(await store.load(KEY), undefined);
      assert.deepEqual(await store.keys(), ['ns/run/other']);
    });

    test('one damaged record is left out and counted; the others load', async (t) => {
      const store = await open(t);
      await store.save(
        checkpoint({ pending: [record('', 4n, 101), record('', 5n, 102), record('', 6n, 103)] }),
      );
      await damagePacket(store, 102);
      const loaded = await store.load(KEY);
      assert.deepEqual(
        loaded?.pending.map((r) => r.seq),
        [4n, 6n],
      );
      assert.equal(loaded.corruptRecords, 1);
    });

    test('a damaged head makes the whole checkpoint unreadable, as a CheckpointCorruptError', async (t) => {
      const store = await open(t);
      await store.save(checkpoint());
      const bytes = Uint8Array.from((await store.readRaw(KEY)) ?? []);
      bytes[16] = (bytes[16] ?? 0) ^ 0x01; // inside the stream key, in the head frame
      await store.writeRaw(KEY, bytes);
      await assert.rejects(store.load(KEY), CheckpointCorruptError);
      await store.writeRaw(KEY, new Uint8Array([1, 2, 3]));
      await assert.rejects(store.load(KEY), CheckpointCorruptError);
    });

    test('a checkpoint out of range is refused with InvalidCheckpointError', async (t) => {
      const store = await open(t);
      await assert.rejects(store.save(checkpoint({ streamKey: '' })), InvalidCheckpointError);
      await assert.rejects(store.save(checkpoint({ lastAck: -1n })), InvalidCheckpointError);
      await assert.rejects(
        store.save(checkpoint({ pending: [record('', MAX_UINT64 + 1n)] })),
        InvalidCheckpointError,
      );
      await assert.rejects(store.save(checkpoint({ streamKey: 'k'.repeat(1_025) })), InvalidCheckpointError);
      assert.deepEqual(await store.keys(), []);
    });

    test('a closed store rejects every call', async (t) => {
      const store = await open(t);
      await store.close();
      await assert.rejects(store.load(KEY), CheckpointStoreClosedError);
      await assert.rejects(store.save(checkpoint()), CheckpointStoreClosedError);
      await assert.rejects(store.keys(), CheckpointStoreClosedError);
    });
  });
}

async function tempDirectory(t: TestContext): Promise<string> {
  const directory = await mkdtemp(path.join(tmpdir(), 'weft-hub-checkpoint-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

describeStore('MemoryCheckpointStore', () => Promise.resolve(new MemoryCheckpointStore()));
describeStore('LmdbCheckpointStore', async (t) => {
  const store = await LmdbCheckpointStore.open({ path: await tempDirectory(t) });
  t.after(() => store.close());
  return store;
});

describe('LmdbCheckpointStore on disk', () => {
  test('a checkpoint survives closing and reopening the directory', async (t) => {
    const directory = await tempDirectory(t);
    const first = await LmdbCheckpointStore.open({ path: directory });
    await first.save(checkpoint());
    await first.close();
    const second = await LmdbCheckpointStore.open({ path: directory });
    t.after(() => second.close());
    assert.deepEqual(plain(await second.load(KEY)), plain(checkpoint()));
  });
});

describe('checkpoint codec', () => {
  test('a record cut short loses it and every record after it, not the ones before', () => {
    const bytes = encodeCheckpoint(checkpoint({ pending: [record('', 4n), record('', 5n), record('', 6n)] }));
    const loaded = decodeCheckpoint(bytes.subarray(0, bytes.length - 20));
    assert.deepEqual(
      loaded.pending.map((r) => r.seq),
      [4n, 5n],
    );
    assert.equal(loaded.corruptRecords, 1);
    const cut = decodeCheckpoint(bytes.subarray(0, bytes.length - 60));
    assert.deepEqual(
      cut.pending.map((r) => r.seq),
      [4n],
    );
    assert.equal(cut.corruptRecords, 2);
  });

  test('a newer format version is refused, not misread', () => {
    const bytes = encodeCheckpoint(checkpoint());
    bytes[4] = 2;
    assert.throws(() => decodeCheckpoint(bytes), /version 2/);
  });

  test('arbitrary bytes decode or throw CheckpointCorruptError, nothing else', () => {
    const valid = encodeCheckpoint(checkpoint());
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
            const bytes = valid.slice();
            bytes[at] = (bytes[at] ?? 0) ^ xor;
            return bytes;
          }),
        ),
        (bytes) => {
          try {
            const loaded: LoadedCheckpoint = decodeCheckpoint(bytes);
            assert.ok(loaded.pending.length + loaded.corruptRecords <= 3);
          } catch (error) {
            assert.ok(error instanceof CheckpointCorruptError, String(error));
          }
        },
      ),
      { numRuns: 2_000, interruptAfterTimeLimit: 2_000 },
    );
  });
});

/** A memory store whose next `failures` writes reject. */
class FlakyStore extends MemoryCheckpointStore {
  failures = 0;

  override save(c: Checkpoint): Promise<void> {
    if (this.failures > 0) {
      this.failures -= 1;
      return Promise.reject(new Error('disk full'));
    }
    return super.save(c);
  }
}

function setup(options: { maxPending?: number; retentionMs?: number; store?: MemoryCheckpointStore } = {}): {
  clock: FakeClock;
  store: MemoryCheckpointStore;
  states: Map<string, CheckpointSnapshot>;
  checkpointer: Checkpointer;
} {
  const clock = new FakeClock();
  const store = options.store ?? new MemoryCheckpointStore();
  const states = new Map<string, CheckpointSnapshot>();
  const checkpointer = new Checkpointer({
    store,
    clock,
    snapshot: (key) => states.get(key),
    ...(options.maxPending === undefined ? {} : { maxPending: options.maxPending }),
    ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
  });
  return { clock, store, states, checkpointer };
}

function snapshot(pending: PendingRecord[], lastAck = 0n, acks: [string, bigint][] = []): CheckpointSnapshot {
  return { lastAck, partitionAcks: new Map(acks), pending };
}

describe('Checkpointer', () => {
  test('dirty keys are written at the next interval, with the wall time; clean keys are not', async () => {
    const { clock, store, states, checkpointer } = setup();
    states.set(KEY, snapshot([record('', 2n), record('', 1n)]));
    states.set('ns/run/clean', snapshot([record('', 1n)]));
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(999);
    assert.equal(await store.load(KEY), undefined);
    await clock.advanceAsync(1);
    const saved = await store.load(KEY);
    assert.deepEqual(
      saved?.pending.map((r) => r.seq),
      [1n, 2n],
    );
    assert.equal(saved.updatedAtWallMs, clock.wallTimeMs());
    assert.deepEqual(await store.keys(), [KEY]);
    assert.equal(checkpointer.stats().saves, 1);
    await clock.advanceAsync(5_000);
    assert.equal(checkpointer.stats().saves, 1);
  });

  test('a key whose snapshot is gone has its checkpoint deleted', async () => {
    const { clock, store, states, checkpointer } = setup();
    states.set(KEY, snapshot([record('', 1n)]));
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(1_000);
    states.delete(KEY);
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(1_000);
    assert.deepEqual(await store.keys(), []);
    assert.equal(checkpointer.stats().deletes, 1);
  });

  test('a failed save is retried at the next interval', async () => {
    const store = new FlakyStore();
    store.failures = 1;
    const { clock, states, checkpointer } = setup({ store });
    states.set(KEY, snapshot([record('', 1n)]));
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(1_000);
    assert.equal(await store.load(KEY), undefined);
    assert.deepEqual([checkpointer.stats().saveFailures, checkpointer.stats().dirtyKeys], [1, 1]);
    await clock.advanceAsync(1_000);
    assert.deepEqual(
      (await store.load(KEY))?.pending.map((r) => r.seq),
      [1n],
    );
    assert.deepEqual([checkpointer.stats().saves, checkpointer.stats().dirtyKeys], [1, 0]);
  });

  test('close writes what is dirty at once and stops the timer', async () => {
    const { clock, store, states, checkpointer } = setup();
    states.set(KEY, snapshot([record('', 1n)]));
    checkpointer.markDirty(KEY);
    await checkpointer.close();
    assert.equal((await store.load(KEY))?.pending.length, 1);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(checkpointer.markDirty(KEY), false);
  });

  test('over maxPending each partition keeps its oldest records, in turns; the rest are counted', async () => {
    const { store, states, checkpointer } = setup({ maxPending: 4 });
    const a = [1n, 2n, 3n, 4n, 5n, 6n].map((seq) => record('a', seq));
    states.set(KEY, snapshot([...a, record('b', 7n), record('b', 8n)]));
    checkpointer.markDirty(KEY);
    await checkpointer.flush();
    assert.deepEqual(
      (await store.load(KEY))?.pending.map((r) => `${r.partition}${r.seq}`),
      ['a1', 'a2', 'b7', 'b8'],
    );
    assert.equal(checkpointer.stats().truncatedRecords, 4);
  });

  test('load leaves out records at or below their partition ack, and orders the rest for replay', async () => {
    const { store, checkpointer } = setup();
    await store.save(
      checkpoint({
        updatedAtWallMs: Date.UTC(2026, 0, 1),
        lastAck: 3n,
        partitionAcks: new Map([['a', 5n]]),
        pending: [
          record('b', 1n),
          record('a', 6n),
          record('a', 5n),
          record('a', 4n),
          record('', 4n),
          record('', 3n),
          record('', 2n),
          record('a', 6n),
        ],
      }),
    );
    const loaded = await checkpointer.load(KEY);
    assert.deepEqual(
      loaded?.pending.map((r) => `${r.partition}:${r.seq}`),
      [':4', 'a:6', 'b:1'],
    );
    assert.equal(checkpointer.stats().ackedRecordsSkipped, 4);
    assert.equal(checkpointer.stats().loads, 1);
  });

  test('a checkpoint past retention is ignored, counted and deleted; one within it loads', async () => {
    const { clock, store, checkpointer } = setup({ retentionMs: DAY_MS });
    await store.save(checkpoint({ updatedAtWallMs: clock.wallTimeMs() - DAY_MS }));
    assert.notEqual(await checkpointer.load(KEY), undefined);
    clock.advance(1);
    assert.equal(await checkpointer.load(KEY), undefined);
    assert.equal(checkpointer.stats().expiredCheckpoints, 1);
    assert.deepEqual(await store.keys(), []);
  });

  test('damaged records and whole damaged checkpoints are skipped and counted; load never rejects', async () => {
    const { store, checkpointer } = setup();
    await store.save(checkpoint({ pending: [record('', 4n, 101), record('', 5n, 102)] }));
    await damagePacket(store, 101);
    assert.deepEqual(
      (await checkpointer.load(KEY))?.pending.map((r) => r.seq),
      [5n],
    );
    assert.equal(checkpointer.stats().corruptRecords, 1);

    await store.writeRaw(KEY, new Uint8Array(64).fill(7));
    assert.equal(await checkpointer.load(KEY), undefined);
    assert.equal(checkpointer.stats().corruptCheckpoints, 1);
    assert.deepEqual(await store.keys(), []);

    await store.close();
    assert.equal(await checkpointer.load(KEY), undefined);
    assert.equal(checkpointer.stats().loadFailures, 1);
  });

  test('a tick does not start while the previous write is still running', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    class SlowStore extends MemoryCheckpointStore {
      calls = 0;
      override async save(c: Checkpoint): Promise<void> {
        this.calls += 1;
        await gate;
        return super.save(c);
      }
    }
    const store = new SlowStore();
    const { clock, states, checkpointer } = setup({ store });
    states.set(KEY, snapshot([record('', 1n)]));
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(1_000);
    checkpointer.markDirty(KEY);
    await clock.advanceAsync(3_000);
    assert.equal(store.calls, 1);
    release();
    await clock.advanceAsync(1_000);
    assert.equal(store.calls, 2);
    await checkpointer.close();
  });

  test('a bad option is a ConfigError naming the field', () => {
    const clock = new FakeClock();
    const store = new MemoryCheckpointStore();
    assert.throws(
      () => new Checkpointer({ store, clock, snapshot: () => undefined, maxPending: 0 }),
      (error) => error instanceof ConfigError && error.field === 'hub.checkpoint.maxPending',
    );
    assert.throws(
      () => new Checkpointer({ store, clock, snapshot: () => undefined, retentionMs: -1 }),
      ConfigError,
    );
  });
});
