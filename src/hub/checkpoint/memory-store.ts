// Checkpoints in a Map, for tests and for embedding a hub without a data directory.
//
// Stored encoded, exactly as the lmdb store stores them, so what passes here passes there, and
// the raw bytes can be damaged on purpose to test the corrupt-record paths.

import type { Checkpoint, CheckpointStore, LoadedCheckpoint } from './checkpoint.ts';
import { decodeCheckpoint, encodeCheckpoint } from './codec.ts';
import { CheckpointStoreClosedError, CheckpointStoreFullError } from './errors.ts';

export interface MemoryCheckpointStoreOptions {
  /** Most stream keys held; a save of a new key beyond it is refused. Default 100_000. */
  readonly maxKeys?: number;
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly #entries = new Map<string, Uint8Array>();
  readonly #maxKeys: number;
  #closed = false;

  constructor(options: MemoryCheckpointStoreOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  async load(streamKey: string): Promise<LoadedCheckpoint | undefined> {
    await this.#open();
    const bytes = this.#entries.get(streamKey);
    return bytes === undefined ? undefined : decodeCheckpoint(bytes);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await this.#open();
    const bytes = encodeCheckpoint(checkpoint);
    this.#put(checkpoint.streamKey, bytes);
  }

  async delete(streamKey: string): Promise<void> {
    await this.#open();
    this.#entries.delete(streamKey);
  }

  async keys(): Promise<string[]> {
    await this.#open();
    return [...this.#entries.keys()];
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** The stored bytes of a key (a copy), for tests and inspection tools. */
  async readRaw(streamKey: string): Promise<Uint8Array | undefined> {
    await this.#open();
    return this.#entries.get(streamKey)?.slice();
  }

  /** Stores `bytes` as the key's checkpoint unchecked: how a test plants a damaged one. */
  async writeRaw(streamKey: string, bytes: Uint8Array): Promise<void> {
    await this.#open();
    this.#put(streamKey, bytes.slice());
  }

  #put(streamKey: string, bytes: Uint8Array): void {
    if (!this.#entries.has(streamKey) && this.#entries.size >= this.#maxKeys) {
      throw new CheckpointStoreFullError(this.#maxKeys);
    }
    this.#entries.set(streamKey, bytes);
  }

  /** Rejects once the store is closed; every method awaits it, so none throws instead. */
  #open(): Promise<void> {
    return this.#closed ? Promise.reject(new CheckpointStoreClosedError()) : Promise.resolve();
  }
}
