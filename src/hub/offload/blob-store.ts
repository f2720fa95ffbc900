// The storage contract behind offload: bytes in, an opaque reference out.
//
// Blobs are content-addressed (sha256), so the same bytes put twice share one blob. Each `put`
// adds a reference to it and each `delete` drops one; the blob is removed when none are left, so
// one packet's delivery never deletes bytes another packet still needs. A full store refuses
// (`OffloadStoreFullError`) rather than evicting: evicting would break a packet already in flight.

export interface BlobPutOptions {
  /**
   * MIME type of the bytes, for stores that keep metadata (an object store). Advisory: blobs
   * are content-addressed, and packets carry their own type.
   */
  readonly contentType?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface BlobGetOptions {
  /** Refuse (`OffloadBlobTooLargeError`) without reading a blob larger than this. Default: no limit beyond the store's. */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal | undefined;
}

export interface BlobStore {
  /**
   * Stores `bytes` and resolves to their reference. Rejects with `OffloadBlobTooLargeError` when
   * `bytes` alone exceed the store's `maxBytes`, `OffloadStoreFullError` when there is no room now.
   */
  put(bytes: Uint8Array, options?: BlobPutOptions): Promise<string>;
  /**
   * The bytes under `ref`, verified against its sha256. Rejects with `InvalidBlobRefError`,
   * `OffloadBlobNotFoundError`, `OffloadBlobCorruptError` or `OffloadBlobTooLargeError` (or an I/O error of the backend).
   */
  get(ref: string, options?: BlobGetOptions): Promise<Uint8Array>;
  /** Drops one reference; resolves true when `ref` was held, false when unknown. */
  delete(ref: string): Promise<boolean>;
  stats(): BlobStoreStats;
  /** Later calls reject with `OffloadStoreClosedError`. Blobs on disk stay. */
  close(): Promise<void>;
}

export interface BlobStoreStats {
  /** Blobs held now, and their total size. */
  readonly blobs: number;
  readonly bytes: number;
  readonly maxBlobs: number;
  readonly maxBytes: number;
  readonly puts: number;
  /** Puts of bytes already held: a reference added, nothing written. */
  readonly dedupedPuts: number;
  readonly gets: number;
  readonly deletes: number;
  /** Blobs removed because their last reference was deleted (or they were corrupt). */
  readonly removed: number;
  readonly refusedFull: number;
  readonly refusedTooLarge: number;
  readonly invalidRefs: number;
  readonly notFound: number;
  readonly corrupt: number;
}

export interface BlobStoreLimits {
  /** Total bytes held. Default 1 GiB. */
  readonly maxBytes?: number;
  /** Blobs held. Default 100_000. */
  readonly maxBlobs?: number;
}

export const defaultBlobStoreLimits: Required<BlobStoreLimits> = {
  maxBytes: 1024 * 1024 * 1024,
  maxBlobs: 100_000,
};
