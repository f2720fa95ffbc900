// The part every blob store shares: reference counts, byte and blob limits, digest checks and
// stats. A backend only moves bytes (memory map, files); it never sees a reference string.

import { ConfigError } from '../../internal/errors.ts';
import { BLOB_REF_PREFIX, parseBlobRef, sha256Hex } from './blob-ref.ts';
import {
  defaultBlobStoreLimits,
  type BlobGetOptions,
  type BlobPutOptions,
  type BlobStore,
  type BlobStoreLimits,
  type BlobStoreStats,
} from './blob-store.ts';
import {
  OffloadBlobCorruptError,
  OffloadBlobNotFoundError,
  OffloadStoreClosedError,
  OffloadStoreFullError,
  OffloadBlobTooLargeError,
  InvalidBlobRefError,
} from './errors.ts';

export type BackendRead =
  | { readonly kind: 'found'; readonly bytes: Uint8Array }
  | { readonly kind: 'missing' }
  | { readonly kind: 'too-large'; readonly size: number };

/** Where bytes live, addressed by their validated sha256 hex digest. */
export interface BlobBackend {
  write(digest: string, bytes: Uint8Array): Promise<void>;
  /** Must not read a blob larger than `maxBytes`: report `too-large` from its size instead. */
  read(digest: string, maxBytes: number): Promise<BackendRead>;
  /** Resolves also when there was nothing to remove. */
  remove(digest: string): Promise<void>;
  close(): Promise<void>;
}

interface Held {
  readonly bytes: number;
  refs: number;
}

/** A blob already in the backend when the store opens; it starts with one reference. */
export interface ExistingBlob {
  readonly digest: string;
  readonly bytes: number;
}

export class CountedBlobStore implements BlobStore {
  readonly #backend: BlobBackend;
  readonly #maxBytes: number;
  readonly #maxBlobs: number;
  readonly #held = new Map<string, Held>();
  /** A write or removal in progress per digest; others wait for it before touching that digest. */
  readonly #busy = new Map<string, Promise<void>>();
  #heldBytes = 0;
  #reservedBytes = 0;
  #reservedBlobs = 0;
  #closed = false;
  readonly #counts = {
    puts: 0,
    dedupedPuts: 0,
    gets: 0,
    deletes: 0,
    removed: 0,
    refusedFull: 0,
    refusedTooLarge: 0,
    invalidRefs: 0,
    notFound: 0,
    corrupt: 0,
  };

  protected constructor(
    backend: BlobBackend,
    limits: BlobStoreLimits,
    existing: readonly ExistingBlob[] = [],
  ) {
    this.#backend = backend;
    const resolved = verifyBlobStoreLimits(limits);
    this.#maxBytes = resolved.maxBytes;
    this.#maxBlobs = resolved.maxBlobs;
    // Blobs found on disk may exceed new, lower limits; the store then refuses puts until deletes make room.
    for (const blob of existing) {
      this.#held.set(blob.digest, { bytes: blob.bytes, refs: 1 });
      this.#heldBytes += blob.bytes;
    }
  }

  async put(bytes: Uint8Array, options: BlobPutOptions = {}): Promise<string> {
    this.#checkOpen();
    options.signal?.throwIfAborted();
    this.#counts.puts++;
    if (bytes.length > this.#maxBytes) {
      this.#counts.refusedTooLarge++;
      throw new OffloadBlobTooLargeError('blob', bytes.length, this.#maxBytes);
    }
    const digest = sha256Hex(bytes);
    for (;;) {
      const held = this.#held.get(digest);
      if (held !== undefined) {
        held.refs++;
        this.#counts.dedupedPuts++;
        return BLOB_REF_PREFIX + digest;
      }
      const busy = this.#busy.get(digest);
      if (busy === undefined) break;
      await busy.catch(ignore);
      this.#checkOpen();
    }
    this.#reserve(bytes.length);
    const write = this.#backend.write(digest, bytes);
    this.#busy.set(digest, write);
    try {
      await write;
    } catch (error) {
      this.#reservedBytes -= bytes.length;
      this.#reservedBlobs--;
      throw error;
    } finally {
      this.#busy.delete(digest);
    }
    this.#reservedBytes -= bytes.length;
    this.#reservedBlobs--;
    this.#held.set(digest, { bytes: bytes.length, refs: 1 });
    this.#heldBytes += bytes.length;
    return BLOB_REF_PREFIX + digest;
  }

  async get(ref: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    this.#checkOpen();
    options.signal?.throwIfAborted();
    const digest = this.#parse(ref);
    this.#counts.gets++;
    const limit = Math.min(options.maxBytes ?? this.#maxBytes, this.#maxBytes);
    const read = await this.#backend.read(digest, limit);
    if (read.kind === 'missing') {
      this.#counts.notFound++;
      this.#forget(digest);
      throw new OffloadBlobNotFoundError(ref);
    }
    if (read.kind === 'too-large') {
      this.#counts.refusedTooLarge++;
      throw new OffloadBlobTooLargeError(`blob ${ref}`, read.size, limit);
    }
    if (sha256Hex(read.bytes) !== digest) {
      // Damaged bytes can never be served; remove them so a fresh put can store them again.
      this.#counts.corrupt++;
      this.#forget(digest);
      this.#counts.removed++;
      await this.#backend.remove(digest);
      throw new OffloadBlobCorruptError(ref, 'sha256 of the stored bytes does not match');
    }
    return read.bytes;
  }

  async delete(ref: string): Promise<boolean> {
    this.#checkOpen();
    const digest = this.#parse(ref);
    const held = this.#held.get(digest);
    if (held === undefined) return false;
    this.#counts.deletes++;
    held.refs--;
    if (held.refs > 0) return true;
    this.#forget(digest);
    this.#counts.removed++;
    const removal = this.#backend.remove(digest);
    this.#busy.set(digest, removal);
    try {
      await removal;
    } finally {
      if (this.#busy.get(digest) === removal) this.#busy.delete(digest);
    }
    return true;
  }

  stats(): BlobStoreStats {
    return {
      blobs: this.#held.size,
      bytes: this.#heldBytes,
      maxBlobs: this.#maxBlobs,
      maxBytes: this.#maxBytes,
      ...this.#counts,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled(this.#busy.values());
    await this.#backend.close();
  }

  #reserve(bytes: number): void {
    if (this.#held.size + this.#reservedBlobs >= this.#maxBlobs) {
      this.#counts.refusedFull++;
      throw new OffloadStoreFullError(`the blob store holds its limit of ${this.#maxBlobs} blobs`);
    }
    const used = this.#heldBytes + this.#reservedBytes;
    if (used + bytes > this.#maxBytes) {
      this.#counts.refusedFull++;
      throw new OffloadStoreFullError(
        `the blob store has ${this.#maxBytes - used} of ${this.#maxBytes} bytes free, ${bytes} needed`,
      );
    }
    this.#reservedBytes += bytes;
    this.#reservedBlobs++;
  }

  #forget(digest: string): void {
    const held = this.#held.get(digest);
    if (held === undefined) return;
    this.#held.delete(digest);
    this.#heldBytes -= held.bytes;
  }

  #parse(ref: string): string {
    try {
      return parseBlobRef(ref);
    } catch (error) {
      if (error instanceof InvalidBlobRefError) this.#counts.invalidRefs++;
      throw error;
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new OffloadStoreClosedError();
  }
}

/** `limits` with defaults filled in; a `ConfigError` naming the field when one is not a positive integer. */
export function verifyBlobStoreLimits(limits: BlobStoreLimits): Required<BlobStoreLimits> {
  const resolved = { ...defaultBlobStoreLimits, ...stripUndefined(limits) };
  for (const field of ['maxBytes', 'maxBlobs'] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`hub.offload.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function ignore(): void {}
