// The content store: blobs on the local filesystem, named by their digest, bounded in bytes.
//
// Layout under `directory`:
//   blobs/<algorithm>/<first two hex digits>/<hex>   one file per blob, named only from checked hex
//   tmp/<random>                                     writes in progress (same filesystem, so the
//                                                    final rename is atomic)
//
// Invariants:
// - A blob is visible (`has`, `read`) only once its bytes hashed to its digest, were fsynced and
//   renamed into place; a failed, aborted or mismatching write leaves nothing behind.
// - One write per digest at a time. A second write of the same digest waits for the first: if the
//   first stored the blob, the second returns it (`created: false`) without reading its source;
//   if the first failed, the second writes from its own source.
// - `bytes` never exceeds `maxBytes`: a write makes room by evicting the least recently read or
//   written blobs, skipping those with a reader open (a reader pins its blob until its stream
//   closes). Bytes of writes still streaming into tmp/ are not counted until they commit.
// - The index is one small entry per blob; a JavaScript Map's insertion order is the LRU order.
//   Each blob file's mtime records its last use (refreshed at most once a second), so a restart
//   rebuilds the same order from a directory scan. Files are trusted on restart (not re-hashed):
//   only a verified rename puts a file at a blob path.

import { createHash, type Hash, randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import { linkSignals, raceSignal } from '../internal/abort.ts';
import { type Clock, systemClock } from '../internal/clock.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../internal/errors.ts';
import {
  DIGEST_HEX_LENGTHS,
  type DigestAlgorithm,
  isDigest,
  type ParsedDigest,
  parseDigest,
} from './digest.ts';
import { BlobTooLargeError, DigestMismatchError, InvalidRangeError } from './errors.ts';

export interface ContentStoreConfig {
  /** Directory holding the store; created when missing. One store per directory at a time. */
  readonly directory: string;
  /** Bytes of blobs held at most; older blobs are evicted to make room, a larger blob is refused. */
  readonly maxBytes: number;
  /** Writes of distinct digests streaming at once; one more is refused, retryably. Default 256. */
  readonly maxConcurrentWrites?: number;
  /** Source of wall time for blob mtimes (the LRU order kept across restarts). Default the system clock. */
  readonly clock?: Clock;
  /** Called with each digest evicted to make room (a mirror withdraws it from the directory). */
  readonly onEvicted?: (digest: string) => void;
}

export const defaultContentStoreConfig = {
  maxConcurrentWrites: 256,
  clock: systemClock,
} as const satisfies Partial<ContentStoreConfig>;

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`; both ends default to the blob's. */
export interface ByteRange {
  readonly start?: number;
  readonly end?: number;
}

export interface WriteOptions {
  /** The size announced for the blob (an OCI descriptor's size); other byte counts are refused. */
  readonly expectedSize?: number;
  /** Aborting stops the write and removes what it wrote; it rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

export interface WriteResult {
  readonly digest: string;
  readonly size: number;
  /** False when the blob was already stored (or stored meanwhile by a concurrent write). */
  readonly created: boolean;
}

/** A source of blob bytes: a Node Readable (in binary mode) or any async iterable of byte chunks. */
export type BlobSource = AsyncIterable<Uint8Array> | Readable;

export interface ContentStoreStats {
  /** Blobs stored now. */
  readonly blobs: number;
  /** Bytes of stored blobs (plus, for a moment, those of writes being renamed into place). */
  readonly bytes: number;
  /** Read streams open now; each pins its blob against eviction. */
  readonly readers: number;
  /** Writes streaming now. */
  readonly writesInFlight: number;
  /** `read` calls that found the blob. */
  readonly hits: number;
  /** `read` calls that did not. */
  readonly misses: number;
  /** Blobs stored by a write. */
  readonly writes: number;
  /** Writes answered with a blob already stored or stored by a concurrent write. */
  readonly deduplicated: number;
  /** Blobs removed to make room. */
  readonly evictions: number;
  /** Writes refused because the bytes did not match the digest or the expected size. */
  readonly digestMismatches: number;
  /** Writes refused for room: larger than `maxBytes`, too many at once, or every blob pinned. */
  readonly refused: number;
}

interface BlobEntry {
  readonly size: number;
  readonly filePath: string;
  /** Open read streams; a pinned blob is never evicted. */
  readers: number;
  /** Wall time last written to the file's mtime. */
  touchedWallMs: number;
}

// A hot blob is read many times a second; its mtime only needs to order it against cold ones.
const MTIME_REFRESH_MS = 1_000;
const FANOUT_DIRECTORY = /^[0-9a-f]{2}$/;

export class ContentStore {
  readonly #directory: string;
  readonly #tmpDirectory: string;
  readonly #maxBytes: number;
  readonly #maxConcurrentWrites: number;
  readonly #clock: Clock;
  readonly #onEvicted: ((digest: string) => void) | undefined;
  /** Stored blobs, least recently used first. */
  readonly #blobs = new Map<string, BlobEntry>();
  /** The write in progress per digest; settles (never rejects) when it ends. */
  readonly #writes = new Map<string, Promise<void>>();
  /** Unlinks of evicted blobs still running, so a new write of the digest renames after them. */
  readonly #removals = new Map<string, Promise<void>>();
  /** Fire-and-forget disk work (mtime refreshes), awaited by `close`. */
  readonly #background = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  #bytes = 0;
  #readers = 0;
  #hits = 0;
  #misses = 0;
  #written = 0;
  #deduplicated = 0;
  #evictions = 0;
  #digestMismatches = 0;
  #refused = 0;

  private constructor(config: VerifiedConfig) {
    this.#directory = path.resolve(config.directory);
    this.#tmpDirectory = path.join(this.#directory, 'tmp');
    this.#maxBytes = config.maxBytes;
    this.#maxConcurrentWrites = config.maxConcurrentWrites;
    this.#clock = config.clock;
    this.#onEvicted = config.onEvicted;
  }

  /**
   * Opens (creating if needed) the store in `config.directory`: removes leftover temporary files,
   * rebuilds the index from the blob files (LRU order by mtime) and evicts down to `maxBytes`.
   */
  static async open(config: ContentStoreConfig): Promise<ContentStore> {
    const store = new ContentStore(verifyConfig(config));
    await store.#recover();
    return store;
  }

  /** True when the blob is stored. Throws `InvalidDigestError` for a malformed digest. */
  has(digest: string): boolean {
    return this.#blobs.has(parseDigest(digest).digest);
  }

  /** The digests stored now, least recently used first. */
  digests(): string[] {
    return [...this.#blobs.keys()];
  }

  /** The blob's size in bytes, or undefined when it is not stored. */
  size(digest: string): number | undefined {
    return this.#blobs.get(parseDigest(digest).digest)?.size;
  }

  /**
   * A stream of the blob's bytes (`range` inclusive, as in HTTP), or undefined when it is not
   * stored. The blob cannot be evicted until the stream closes: read it to the end or destroy it.
   * Throws `InvalidRangeError` unless `0 ≤ start ≤ end < size`.
   */
  async read(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    const key = parseDigest(digest).digest;
    this.#throwIfClosed();
    const entry = this.#blobs.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    const bounds = checkRange(range, entry.size, key);
    this.#pin(entry);
    let handle: FileHandle;
    try {
      handle = await open(entry.filePath, 'r');
    } catch (error) {
      this.#unpin(entry);
      if (!isNotFound(error)) throw error;
      // Removed behind the store's back: forget it, so the mirror fetches it again.
      if (this.#blobs.get(key) === entry) this.#forget(key, entry);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#touch(key, entry);
    const stream = handle.createReadStream({ ...bounds, autoClose: true, highWaterMark: READ_CHUNK_BYTES });
    stream.once('close', () => {
      this.#unpin(entry);
    });
    return stream;
  }

  /**
   * Stores the bytes of `source` under `digest`, verifying them as they stream. Resolves once the
   * blob is durable and visible. Rejects with `DigestMismatchError` (the bytes hash to another
   * digest or their count is not `expectedSize`), `BlobTooLargeError`, `CapacityExceededError`
   * (retryable: too many writes, or every blob is being read), or the signal's reason; in every
   * such case nothing is stored. The store reads `source` to its end or destroys it.
   */
  async write(digest: string, source: BlobSource, options?: WriteOptions): Promise<WriteResult> {
    const parsed = parseDigest(digest);
    const expectedSize = checkExpectedSize(options?.expectedSize);
    const signal = options?.signal;
    const link = linkSignals(signal, this.#closing.signal);
    try {
      if (link.signal.aborted) throw link.signal.reason;
      if (expectedSize !== undefined && expectedSize > this.#maxBytes) {
        this.#refused++;
        throw new BlobTooLargeError(parsed.digest, expectedSize, this.#maxBytes);
      }
      for (;;) {
        const stored = this.#blobs.get(parsed.digest);
        if (stored !== undefined) {
          if (expectedSize !== undefined && stored.size !== expectedSize) {
            this.#digestMismatches++;
            throw new DigestMismatchError(
              `blob ${parsed.digest} is ${stored.size} bytes, not the ${expectedSize} expected`,
              {
                expectedDigest: parsed.digest,
                actualDigest: parsed.digest,
                expectedSize,
                actualSize: stored.size,
              },
            );
          }
          this.#deduplicated++;
          this.#touch(parsed.digest, stored);
          discardSource(source);
          return { digest: parsed.digest, size: stored.size, created: false };
        }
        const running = this.#writes.get(parsed.digest);
        if (running === undefined) break;
        // Another write of this digest is streaming: reuse its blob, or write ours if it fails.
        await raceSignal(running, link.signal);
      }
      if (this.#writes.size >= this.#maxConcurrentWrites) {
        this.#refused++;
        throw new CapacityExceededError('content store writes', this.#maxConcurrentWrites);
      }
      const writing = this.#writeNew(parsed, source, expectedSize, link.signal);
      const settled = writing.then(noop, noop);
      this.#writes.set(parsed.digest, settled);
      try {
        return await writing;
      } finally {
        if (this.#writes.get(parsed.digest) === settled) this.#writes.delete(parsed.digest);
      }
    } catch (error) {
      discardSource(source);
      throw error;
    } finally {
      link.dispose();
    }
  }

  stats(): ContentStoreStats {
    return {
      blobs: this.#blobs.size,
      bytes: this.#bytes,
      readers: this.#readers,
      writesInFlight: this.#writes.size,
      hits: this.#hits,
      misses: this.#misses,
      writes: this.#written,
      deduplicated: this.#deduplicated,
      evictions: this.#evictions,
      digestMismatches: this.#digestMismatches,
      refused: this.#refused,
    };
  }

  /**
   * Aborts the writes in progress (with `ClosedError`) and waits for them and for pending disk
   * work. Streams already returned by `read` stay readable. Later calls to `read`/`write` throw
   * `ClosedError`.
   */
  async close(): Promise<void> {
    if (!this.#closing.signal.aborted) this.#closing.abort(new ClosedError('content store closed'));
    await Promise.all([...this.#writes.values(), ...this.#removals.values(), ...this.#background]);
  }

  async #writeNew(
    parsed: ParsedDigest,
    source: BlobSource,
    expectedSize: number | undefined,
    signal: AbortSignal,
  ): Promise<WriteResult> {
    const tempPath = path.join(this.#tmpDirectory, randomUUID());
    const handle = await open(tempPath, 'wx');
    let size: number;
    let committed = false;
    try {
      try {
        size = await this.#streamVerified(parsed, source, expectedSize, signal, handle);
        await handle.sync();
        const nowSeconds = this.#clock.wallTimeMs() / 1_000;
        await handle.utimes(nowSeconds, nowSeconds);
      } finally {
        await handle.close();
      }
      if (signal.aborted) throw signal.reason;
      const filePath = this.#blobPath(parsed);
      this.#reserve(size);
      try {
        await mkdir(path.dirname(filePath), { recursive: true });
        await this.#removals.get(parsed.digest);
        await rename(tempPath, filePath);
      } catch (error) {
        this.#bytes -= size;
        throw error;
      }
      committed = true;
      this.#blobs.set(parsed.digest, { size, filePath, readers: 0, touchedWallMs: this.#clock.wallTimeMs() });
      this.#written++;
      return { digest: parsed.digest, size, created: true };
    } finally {
      if (!committed) await rm(tempPath, { force: true }).catch(noop);
    }
  }

  /** Copies `source` into `handle`, hashing as it goes; returns the byte count once verified. */
  async #streamVerified(
    parsed: ParsedDigest,
    source: BlobSource,
    expectedSize: number | undefined,
    signal: AbortSignal,
    handle: FileHandle,
  ): Promise<number> {
    const hash: Hash = createHash(parsed.algorithm);
    const iterator = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const writer = new BatchedWriter(handle);
    let size = 0;
    let finished = false;
    try {
      for (;;) {
        // Raced, so an abort ends a write whose source has gone quiet.
        const next = await raceSignal(iterator.next(), signal);
        if (next.done === true) break;
        const chunk: unknown = next.value;
        if (!(chunk instanceof Uint8Array)) {
          throw new TypeError(`blob source for ${parsed.digest} yielded a ${typeof chunk}, not bytes`);
        }
        size += chunk.byteLength;
        if (expectedSize !== undefined && size > expectedSize) {
          throw this.#mismatch(parsed, `more than the ${expectedSize} bytes expected`, {
            expectedSize,
            size,
          });
        }
        if (size > this.#maxBytes) {
          this.#refused++;
          throw new BlobTooLargeError(parsed.digest, size, this.#maxBytes);
        }
        hash.update(chunk);
        await writer.add(chunk);
      }
      finished = true;
      await writer.flush();
    } finally {
      if (!finished) {
        writer.abandon();
        void Promise.resolve(iterator.return?.()).catch(noop);
      }
    }
    if (expectedSize !== undefined && size !== expectedSize) {
      throw this.#mismatch(parsed, `${size} bytes, not the ${expectedSize} expected`, { expectedSize, size });
    }
    const actualDigest = `${parsed.algorithm}:${hash.digest('hex')}`;
    if (actualDigest !== parsed.digest) {
      throw this.#mismatch(parsed, `bytes hash to ${actualDigest}`, { actualDigest, expectedSize, size });
    }
    return size;
  }

  #mismatch(
    parsed: ParsedDigest,
    problem: string,
    details: { actualDigest?: string; expectedSize: number | undefined; size: number },
  ): DigestMismatchError {
    this.#digestMismatches++;
    return new DigestMismatchError(`blob written as ${parsed.digest} was refused: ${problem}`, {
      expectedDigest: parsed.digest,
      ...(details.actualDigest === undefined ? {} : { actualDigest: details.actualDigest }),
      ...(details.expectedSize === undefined ? {} : { expectedSize: details.expectedSize }),
      actualSize: details.size,
    });
  }

  /** Counts `size` bytes in, evicting unpinned blobs oldest first; evicts nothing if that cannot fit. */
  #reserve(size: number): void {
    let room = this.#maxBytes - this.#bytes;
    const victims: [string, BlobEntry][] = [];
    if (room < size) {
      for (const candidate of this.#blobs) {
        if (candidate[1].readers > 0) continue;
        victims.push(candidate);
        room += candidate[1].size;
        if (room >= size) break;
      }
    }
    if (room < size) {
      this.#refused++;
      throw new CapacityExceededError(
        'content store (every blob that could make room is being read)',
        this.#maxBytes,
      );
    }
    for (const [key, entry] of victims) this.#evict(key, entry);
    this.#bytes += size;
  }

  #evict(key: string, entry: BlobEntry): void {
    this.#forget(key, entry);
    this.#evictions++;
    const onEvicted = this.#onEvicted;
    if (onEvicted !== undefined) {
      try {
        onEvicted(key);
      } catch {
        // A listener's failure must not fail the write that made room.
      }
    }
    const removal: Promise<void> = unlink(entry.filePath)
      .catch(noop)
      .finally(() => {
        if (this.#removals.get(key) === removal) this.#removals.delete(key);
      });
    this.#removals.set(key, removal);
  }

  #forget(key: string, entry: BlobEntry): void {
    this.#blobs.delete(key);
    this.#bytes -= entry.size;
  }

  /** Marks the blob most recently used, in memory now and in its mtime at most once a second. */
  #touch(key: string, entry: BlobEntry): void {
    // A concurrent read may have found the file gone and forgotten it meanwhile.
    if (this.#blobs.get(key) !== entry) return;
    this.#blobs.delete(key);
    this.#blobs.set(key, entry);
    const nowMs = this.#clock.wallTimeMs();
    if (nowMs - entry.touchedWallMs < MTIME_REFRESH_MS) return;
    entry.touchedWallMs = nowMs;
    const refresh = utimes(entry.filePath, nowMs / 1_000, nowMs / 1_000)
      .catch(noop)
      .finally(() => this.#background.delete(refresh));
    this.#background.add(refresh);
  }

  #pin(entry: BlobEntry): void {
    entry.readers++;
    this.#readers++;
  }

  #unpin(entry: BlobEntry): void {
    entry.readers--;
    this.#readers--;
  }

  #blobPath(parsed: { algorithm: DigestAlgorithm; hex: string }): string {
    return path.join(this.#directory, 'blobs', parsed.algorithm, parsed.hex.slice(0, 2), parsed.hex);
  }

  #throwIfClosed(): void {
    if (this.#closing.signal.aborted) throw new ClosedError('content store closed');
  }

  async #recover(): Promise<void> {
    await mkdir(path.join(this.#directory, 'blobs'), { recursive: true });
    // Leftovers of writes cut short by a crash: never renamed, so never visible; just remove them.
    await rm(this.#tmpDirectory, { recursive: true, force: true });
    await mkdir(this.#tmpDirectory, { recursive: true });
    const found: { key: string; filePath: string; size: number; mtimeMs: number }[] = [];
    for (const algorithm of Object.keys(DIGEST_HEX_LENGTHS) as DigestAlgorithm[]) {
      const algorithmDirectory = path.join(this.#directory, 'blobs', algorithm);
      for (const fanout of await readdirIfExists(algorithmDirectory)) {
        if (!fanout.isDirectory() || !FANOUT_DIRECTORY.test(fanout.name)) continue;
        for (const file of await readdirIfExists(path.join(algorithmDirectory, fanout.name))) {
          // Only regular files with a well-formed name in the right fan-out directory: a symlink
          // or a stray file is not a blob this store wrote.
          const key = `${algorithm}:${file.name}`;
          if (!file.isFile() || !file.name.startsWith(fanout.name) || !isDigest(key)) continue;
          const filePath = this.#blobPath({ algorithm, hex: file.name });
          const stat = await lstat(filePath).catch(() => undefined);
          if (stat?.isFile() !== true) continue;
          found.push({ key, filePath, size: stat.size, mtimeMs: stat.mtimeMs });
        }
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { key, filePath, size, mtimeMs } of found) {
      this.#blobs.set(key, { size, filePath, readers: 0, touchedWallMs: mtimeMs });
      this.#bytes += size;
    }
    // `maxBytes` may have shrunk since the last run.
    for (const [key, entry] of this.#blobs) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#evict(key, entry);
    }
    await Promise.all(this.#removals.values());
  }
}

type VerifiedConfig = Required<Omit<ContentStoreConfig, 'onEvicted'>> & {
  readonly onEvicted: ((digest: string) => void) | undefined;
};

function verifyConfig(config: ContentStoreConfig): VerifiedConfig {
  if (typeof config.directory !== 'string' || config.directory === '') {
    throw new ConfigError('contentStore.directory', 'must be a non-empty path');
  }
  if (!Number.isSafeInteger(config.maxBytes) || config.maxBytes <= 0) {
    throw new ConfigError(
      'contentStore.maxBytes',
      `must be a positive integer, got ${String(config.maxBytes)}`,
    );
  }
  const maxConcurrentWrites = config.maxConcurrentWrites ?? defaultContentStoreConfig.maxConcurrentWrites;
  if (!Number.isSafeInteger(maxConcurrentWrites) || maxConcurrentWrites <= 0) {
    throw new ConfigError(
      'contentStore.maxConcurrentWrites',
      `must be a positive integer, got ${String(maxConcurrentWrites)}`,
    );
  }
  return {
    directory: config.directory,
    maxBytes: config.maxBytes,
    maxConcurrentWrites,
    clock: config.clock ?? defaultContentStoreConfig.clock,
    onEvicted: config.onEvicted,
  };
}

function checkExpectedSize(expectedSize: number | undefined): number | undefined {
  if (expectedSize === undefined) return undefined;
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new RangeError(`expectedSize must be a non-negative integer, got ${String(expectedSize)}`);
  }
  return expectedSize;
}

/** The `createReadStream` bounds for `range`, or throws `InvalidRangeError`. */
function checkRange(
  range: ByteRange | undefined,
  size: number,
  digest: string,
): { start?: number; end?: number } {
  if (range?.start === undefined && range?.end === undefined) return {};
  const start = range.start ?? 0;
  const end = range.end ?? size - 1;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end >= size) {
    throw new InvalidRangeError(
      `range ${String(start)}-${String(end)} is not inside blob ${digest} of ${size} bytes`,
      size,
    );
  }
  return { start, end };
}

// Chunks are gathered up to this many bytes and written with one writev while the next batch
// arrives: one write in flight and one batch filling, so the disk and the source overlap without
// buffering more than twice this.
const WRITE_BATCH_BYTES = 1024 * 1024;

// Reads in large chunks: a blob is read whole, and each chunk costs a syscall and an event.
const READ_CHUNK_BYTES = 512 * 1024;

/** Writes chunks in batches, one batch in flight while the next fills. */
class BatchedWriter {
  readonly #handle: FileHandle;
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #inFlight: Promise<void> | undefined;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** Takes a chunk; waits only when a full batch must wait for the write before it. */
  async add(chunk: Uint8Array): Promise<void> {
    this.#batch.push(chunk);
    this.#batchBytes += chunk.byteLength;
    if (this.#batchBytes >= WRITE_BATCH_BYTES) await this.#send();
  }

  /** Writes what is left; resolves when every byte is written. */
  async flush(): Promise<void> {
    await this.#send();
    await this.#inFlight;
  }

  /** Gives up: a write in flight may still fail, and nobody needs to hear it. */
  abandon(): void {
    this.#inFlight?.catch(noop);
    this.#batch = [];
  }

  async #send(): Promise<void> {
    await this.#inFlight;
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const writing = writeAll(this.#handle, batch);
    // Awaited by the next send or flush; until then a failure must not count as unhandled.
    writing.catch(noop);
    this.#inFlight = writing;
  }
}

async function writeAll(handle: FileHandle, chunks: Uint8Array[]): Promise<void> {
  let pending = chunks;
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending);
    // A short write (rare on a regular file) resumes where it stopped.
    const rest: Uint8Array[] = [];
    for (const chunk of pending) {
      if (bytesWritten >= chunk.byteLength) {
        bytesWritten -= chunk.byteLength;
      } else {
        rest.push(chunk.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}

/** Releases a source the store will not read (a Readable holds a socket or file until destroyed). */
function discardSource(source: BlobSource): void {
  if (source instanceof Readable && !source.destroyed) source.destroy();
}

async function readdirIfExists(directory: string): Promise<Dirent[]> {
  try {
    return await readdir(directory, { withFileTypes: true });
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function noop(): void {
  // Nothing to do: the outcome is observed elsewhere.
}
