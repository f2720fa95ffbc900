// The default checkpoint store: one lmdb environment in a data directory.
//
// One named database, `checkpoints`: UTF-8 stream key → the encoded checkpoint (codec.ts), both
// raw bytes, so lmdb's own key and value encodings never see the data. A save resolves once it
// is flushed to disk; lmdb-js commits the puts of one event turn together, so the checkpointer's
// once-a-second batch costs one sync.

import { mkdir } from 'node:fs/promises';

import type { Database, RootDatabase } from 'lmdb';

import { ConfigError } from '../../internal/errors.ts';
import type { Checkpoint, CheckpointStore, LoadedCheckpoint } from './checkpoint.ts';
import { decodeCheckpoint, encodeCheckpoint, MAX_STREAM_KEY_BYTES } from './codec.ts';
import { CheckpointStoreClosedError, InvalidCheckpointError } from './errors.ts';

export interface LmdbCheckpointStoreOptions {
  /** The directory of the environment; created if missing. */
  readonly path: string;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class LmdbCheckpointStore implements CheckpointStore {
  readonly #root: RootDatabase;
  readonly #checkpoints: Database<Buffer, Buffer>;
  #closed = false;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#checkpoints = root.openDB<Buffer, Buffer>({
      name: 'checkpoints',
      encoding: 'binary',
      keyEncoding: 'binary',
    });
  }

  /** Opens (or creates) the store in the directory `options.path`. */
  static async open(options: LmdbCheckpointStoreOptions): Promise<LmdbCheckpointStore> {
    // Loaded here, not at import: lmdb is native, and a hub kept in memory must not need it.
    let open: typeof import('lmdb').open;
    try {
      ({ open } = await import('lmdb'));
    } catch (error) {
      throw new ConfigError(
        'hub.checkpoint',
        "the lmdb checkpoint store needs lmdb's native binary, which did not load; it comes with lmdb's " +
          'optional platform package (@lmdb/lmdb-<platform>-<arch>), so install without --omit=optional, ' +
          'or use MemoryCheckpointStore',
        { cause: error },
      );
    }
    // A directory, also when its name has a dot (lmdb-js would take `hub.v1` for a file).
    await mkdir(options.path, { recursive: true });
    return new LmdbCheckpointStore(
      open({ path: options.path, noSubdir: false, noSync: false, compression: false }),
    );
  }

  async load(streamKey: string): Promise<LoadedCheckpoint | undefined> {
    await this.#open();
    const bytes = this.#checkpoints.getBinary(keyBytes(streamKey));
    return bytes === undefined ? undefined : decodeCheckpoint(bytes);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await this.#open();
    await this.#put(checkpoint.streamKey, encodeCheckpoint(checkpoint));
  }

  async delete(streamKey: string): Promise<void> {
    await this.#open();
    await this.#checkpoints.remove(keyBytes(streamKey));
    await this.#root.flushed;
  }

  async keys(): Promise<string[]> {
    await this.#open();
    return [...this.#checkpoints.getKeys()].map((key) => textDecoder.decode(key));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  /** The stored bytes of a key, for tests and inspection tools. */
  async readRaw(streamKey: string): Promise<Uint8Array | undefined> {
    await this.#open();
    return this.#checkpoints.getBinary(keyBytes(streamKey));
  }

  /** Stores `bytes` as the key's checkpoint unchecked: how a test plants a damaged one. */
  async writeRaw(streamKey: string, bytes: Uint8Array): Promise<void> {
    await this.#open();
    await this.#put(streamKey, bytes);
  }

  async #put(streamKey: string, bytes: Uint8Array): Promise<void> {
    await this.#checkpoints.put(
      keyBytes(streamKey),
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    );
    await this.#root.flushed;
  }

  /** Rejects once the store is closed; every method awaits it, so none throws instead. */
  #open(): Promise<void> {
    return this.#closed ? Promise.reject(new CheckpointStoreClosedError()) : Promise.resolve();
  }
}

function keyBytes(streamKey: string): Buffer {
  const bytes = textEncoder.encode(streamKey);
  if (bytes.length === 0 || bytes.length > MAX_STREAM_KEY_BYTES) {
    throw new InvalidCheckpointError(`stream key must be 1 to ${MAX_STREAM_KEY_BYTES} bytes in UTF-8`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
