// A blob store in memory, for tests and hubs without a data directory. Same limits and
// semantics as the file store; bytes are copied in and out so callers cannot alter held blobs.

import type { BlobStoreLimits } from './blob-store.ts';
import { CountedBlobStore, type BackendRead, type BlobBackend } from './counted-blob-store.ts';

class MemoryBackend implements BlobBackend {
  readonly blobs = new Map<string, Uint8Array>();

  write(digest: string, bytes: Uint8Array): Promise<void> {
    this.blobs.set(digest, bytes.slice());
    return Promise.resolve();
  }

  read(digest: string, maxBytes: number): Promise<BackendRead> {
    const bytes = this.blobs.get(digest);
    if (bytes === undefined) return Promise.resolve({ kind: 'missing' });
    if (bytes.length > maxBytes) return Promise.resolve({ kind: 'too-large', size: bytes.length });
    return Promise.resolve({ kind: 'found', bytes: bytes.slice() });
  }

  remove(digest: string): Promise<void> {
    this.blobs.delete(digest);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class MemoryBlobStore extends CountedBlobStore {
  constructor(limits: BlobStoreLimits = {}) {
    super(new MemoryBackend(), limits);
  }
}
