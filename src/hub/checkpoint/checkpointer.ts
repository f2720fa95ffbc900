// Writes the checkpoints of changed stream keys once per interval, and reads them back on start.
//
// The hub marks a key dirty whenever its acks or unacked packets change; every `intervalMs` the
// checkpointer asks for a snapshot of each dirty key and saves it (or deletes the checkpoint when
// the snapshot says nothing is left). A failed save leaves the key dirty, so the next interval
// tries again. Loading filters what a replay must not resend: checkpoints past retention,
// records already acked, damaged records.

import type { Clock, Timer } from '../../internal/clock.ts';
import { ConfigError } from '../../internal/errors.ts';
import { ackOfPartition, type Checkpoint, type CheckpointStore, type PendingRecord } from './checkpoint.ts';
import { CheckpointCorruptError } from './errors.ts';

/** The delivery state of a key, as the hub hands it over at write time. */
export interface CheckpointSnapshot {
  readonly lastAck: bigint;
  readonly partitionAcks: ReadonlyMap<string, bigint>;
  /** Unacked packets, any order. */
  readonly pending: readonly PendingRecord[];
}

export interface CheckpointerConfig {
  /** How often dirty keys are written. Default 1_000. */
  readonly intervalMs: number;
  /** Most pending records written per key; the newest beyond are left out (counted). Default 1_000. */
  readonly maxPending: number;
  /** A checkpoint older than this (by its wall time) is ignored and deleted on load; 0 keeps all. Default 24 h. */
  readonly retentionMs: number;
  /** Most keys waiting to be written; marks beyond are refused (counted). Default 10_000. */
  readonly maxDirtyKeys: number;
}

export const defaultCheckpointerConfig: Readonly<CheckpointerConfig> = {
  intervalMs: 1_000,
  maxPending: 1_000,
  retentionMs: 24 * 60 * 60 * 1_000,
  maxDirtyKeys: 10_000,
};

export interface CheckpointerOptions extends Partial<CheckpointerConfig> {
  readonly store: CheckpointStore;
  readonly clock: Clock;
  /** The key's state now; undefined when nothing is left to keep, which deletes its checkpoint. */
  readonly snapshot: (streamKey: string) => CheckpointSnapshot | undefined;
}

export interface CheckpointerStats {
  /** Checkpoints written. */
  readonly saves: number;
  /** Writes (saves and deletes) that failed; each key is tried again at the next interval. */
  readonly saveFailures: number;
  /** Checkpoints deleted because their key had nothing left. */
  readonly deletes: number;
  /** Snapshot callbacks that threw; the key stays dirty. */
  readonly snapshotFailures: number;
  /** Checkpoints found by `load`. */
  readonly loads: number;
  /** Loads whose store read failed (not corruption). */
  readonly loadFailures: number;
  /** Checkpoints unreadable as a whole, skipped and deleted. */
  readonly corruptCheckpoints: number;
  /** Damaged pending records left out of a loaded checkpoint. */
  readonly corruptRecords: number;
  /** Checkpoints past retention, ignored and deleted. */
  readonly expiredCheckpoints: number;
  /** Loaded records at or below their partition's ack, left out. */
  readonly ackedRecordsSkipped: number;
  /** Pending records left out of writes by `maxPending` (counted at every write). */
  readonly truncatedRecords: number;
  /** Marks refused because `maxDirtyKeys` keys were waiting. */
  readonly dirtyRefused: number;
  /** Keys waiting to be written now. */
  readonly dirtyKeys: number;
}

type Counters = { -readonly [K in Exclude<keyof CheckpointerStats, 'dirtyKeys'>]: number };

export class Checkpointer {
  readonly #store: CheckpointStore;
  readonly #clock: Clock;
  readonly #snapshot: (streamKey: string) => CheckpointSnapshot | undefined;
  readonly #config: CheckpointerConfig;
  #dirty = new Set<string>();
  #running: Promise<void> | undefined;
  #timer: Timer | undefined;
  #closed = false;
  readonly #counters: Counters = {
    saves: 0,
    saveFailures: 0,
    deletes: 0,
    snapshotFailures: 0,
    loads: 0,
    loadFailures: 0,
    corruptCheckpoints: 0,
    corruptRecords: 0,
    expiredCheckpoints: 0,
    ackedRecordsSkipped: 0,
    truncatedRecords: 0,
    dirtyRefused: 0,
  };

  constructor(options: CheckpointerOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#snapshot = options.snapshot;
    this.#config = verifyCheckpointerConfig(options);
    this.#timer = this.#clock.setInterval(() => {
      // Skips a tick while the previous write is still running; its keys stay dirty.
      if (this.#running === undefined) void this.#writeDirty();
    }, this.#config.intervalMs);
  }

  /** Asks for the key to be written at the next interval. False when refused (closed or full). */
  markDirty(streamKey: string): boolean {
    if (this.#closed) return false;
    if (!this.#dirty.has(streamKey) && this.#dirty.size >= this.#config.maxDirtyKeys) {
      this.#counters.dirtyRefused += 1;
      return false;
    }
    this.#dirty.add(streamKey);
    return true;
  }

  /** Writes every dirty key now (after any write already running). Never rejects; failures are counted. */
  async flush(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
    await this.#writeDirty();
  }

  /**
   * The key's checkpoint as a replay should use it, or undefined: missing, unreadable, past
   * retention, or the store failed. Pending records are those still unacked, by (partition, seq),
   * without duplicates. Never rejects.
   */
  async load(streamKey: string): Promise<Checkpoint | undefined> {
    let loaded;
    try {
      loaded = await this.#store.load(streamKey);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) {
        this.#counters.loadFailures += 1;
        return undefined;
      }
      this.#counters.corruptCheckpoints += 1;
      await this.#deleteQuietly(streamKey);
      return undefined;
    }
    if (loaded === undefined) return undefined;
    this.#counters.loads += 1;
    this.#counters.corruptRecords += loaded.corruptRecords;
    const ageMs = this.#clock.wallTimeMs() - loaded.updatedAtWallMs;
    if (this.#config.retentionMs > 0 && ageMs > this.#config.retentionMs) {
      this.#counters.expiredCheckpoints += 1;
      await this.#deleteQuietly(streamKey);
      return undefined;
    }
    const seen = new Set<string>();
    const pending: PendingRecord[] = [];
    for (const record of loaded.pending) {
      if (record.seq <= ackOfPartition(loaded, record.partition)) {
        this.#counters.ackedRecordsSkipped += 1;
        continue;
      }
      const id = `${record.seq}/${record.partition}`;
      if (seen.has(id)) continue;
      seen.add(id);
      pending.push(record);
    }
    return {
      streamKey: loaded.streamKey,
      lastAck: loaded.lastAck,
      partitionAcks: loaded.partitionAcks,
      pending: pending.sort(replayOrder),
      updatedAtWallMs: loaded.updatedAtWallMs,
    };
  }

  /** Keys with a stored checkpoint (what a restarting hub loads). Rejects if the store does. */
  keys(): Promise<string[]> {
    return this.#store.keys();
  }

  stats(): CheckpointerStats {
    return { ...this.#counters, dirtyKeys: this.#dirty.size };
  }

  /** Stops the timer and writes what is dirty. Does not close the store: its opener does. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.flush();
  }

  #writeDirty(): Promise<void> {
    const run = this.#writeAll().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #writeAll(): Promise<void> {
    const keys = [...this.#dirty];
    this.#dirty = new Set();
    const updatedAtWallMs = this.#clock.wallTimeMs();
    // Together: lmdb commits the puts of one turn in one transaction.
    await Promise.all(keys.map((key) => this.#writeOne(key, updatedAtWallMs)));
  }

  async #writeOne(streamKey: string, updatedAtWallMs: number): Promise<void> {
    let snapshot: CheckpointSnapshot | undefined;
    try {
      snapshot = this.#snapshot(streamKey);
    } catch {
      this.#counters.snapshotFailures += 1;
      this.#dirty.add(streamKey);
      return;
    }
    try {
      if (snapshot === undefined) {
        await this.#store.delete(streamKey);
        this.#counters.deletes += 1;
        return;
      }
      const pending = this.#keptPending(snapshot.pending);
      await this.#store.save({
        streamKey,
        lastAck: snapshot.lastAck,
        partitionAcks: snapshot.partitionAcks,
        pending,
        updatedAtWallMs,
      });
      this.#counters.saves += 1;
    } catch {
      // Retried at the next interval (marked again even past maxDirtyKeys: it was already held).
      this.#counters.saveFailures += 1;
      this.#dirty.add(streamKey);
    }
  }

  /**
   * The records to write, in replay order. Over `maxPending`, each partition keeps its oldest
   * records, taken in turns across partitions, so no partition loses all of its records to
   * another's backlog; the newest are what is left out.
   */
  #keptPending(all: readonly PendingRecord[]): PendingRecord[] {
    const sorted = [...all].sort(replayOrder);
    const max = this.#config.maxPending;
    if (sorted.length <= max) return sorted;
    this.#counters.truncatedRecords += sorted.length - max;
    const byPartition: PendingRecord[][] = [];
    for (const record of sorted) {
      const last = byPartition.at(-1);
      if (last?.[0]?.partition === record.partition) last.push(record);
      else byPartition.push([record]);
    }
    const kept: PendingRecord[] = [];
    for (let round = 0; kept.length < max; round++) {
      for (const records of byPartition) {
        const record = records[round];
        if (record !== undefined && kept.length < max) kept.push(record);
      }
    }
    return kept.sort(replayOrder);
  }

  async #deleteQuietly(streamKey: string): Promise<void> {
    try {
      await this.#store.delete(streamKey);
    } catch {
      // Left for the next load to find again; nothing is lost by keeping it.
    }
  }
}

function replayOrder(a: PendingRecord, b: PendingRecord): number {
  if (a.partition !== b.partition) return a.partition < b.partition ? -1 : 1;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

function verifyCheckpointerConfig(options: Partial<CheckpointerConfig>): CheckpointerConfig {
  const config: CheckpointerConfig = {
    intervalMs: options.intervalMs ?? defaultCheckpointerConfig.intervalMs,
    maxPending: options.maxPending ?? defaultCheckpointerConfig.maxPending,
    retentionMs: options.retentionMs ?? defaultCheckpointerConfig.retentionMs,
    maxDirtyKeys: options.maxDirtyKeys ?? defaultCheckpointerConfig.maxDirtyKeys,
  };
  const positive = ['intervalMs', 'maxPending', 'maxDirtyKeys'] as const;
  for (const field of positive) {
    if (!Number.isInteger(config[field]) || config[field] < 1) {
      throw new ConfigError(`hub.checkpoint.${field}`, `must be a positive integer, got ${config[field]}`);
    }
  }
  if (!Number.isFinite(config.retentionMs) || config.retentionMs < 0) {
    throw new ConfigError('hub.checkpoint.retentionMs', `must be 0 or more, got ${config.retentionMs}`);
  }
  return config;
}
