// The default blob store: one file per blob under a directory.
//
// Layout: `<directory>/sha256/<first 2 hex>/<64 hex>` for blobs and `<directory>/tmp/` for writes
// in progress. A write goes to a fresh temporary file, is synced, then renamed into place, so a
// crash leaves either the whole blob or none (stray temporary files are removed at open). Paths
// are built only from validated digests, never from reference text.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

import { ConfigError } from '../../internal/errors.ts';
import type { BlobStoreLimits } from './blob-store.ts';
import {
  CountedBlobStore,
  verifyBlobStoreLimits,
  type BackendRead,
  type BlobBackend,
  type ExistingBlob,
} from './counted-blob-store.ts';

export interface FsBlobStoreOptions extends BlobStoreLimits {
  /** Created if missing. Blobs already there are kept, each with one reference. */
  readonly directory: string;
}

const digestName = /^[0-9a-f]{64}$/;
const fanOutName = /^[0-9a-f]{2}$/;

class FsBackend implements BlobBackend {
  readonly #blobs: string;
  readonly #tmp: string;

  constructor(directory: string) {
    this.#blobs = path.join(directory, 'sha256');
    this.#tmp = path.join(directory, 'tmp');
  }

  #pathOf(digest: string): string {
    return path.join(this.#blobs, digest.slice(0, 2), digest);
  }

  async prepare(): Promise<ExistingBlob[]> {
    await rm(this.#tmp, { recursive: true, force: true });
    await mkdir(this.#tmp, { recursive: true });
    await mkdir(this.#blobs, { recursive: true });
    const existing: ExistingBlob[] = [];
    for (const fanOut of await readdir(this.#blobs)) {
      if (!fanOutName.test(fanOut)) continue;
      for (const name of await readdir(path.join(this.#blobs, fanOut))) {
        if (!digestName.test(name) || !name.startsWith(fanOut)) continue;
        const info = await stat(path.join(this.#blobs, fanOut, name));
        if (info.isFile()) existing.push({ digest: name, bytes: info.size });
      }
    }
    return existing;
  }

  async write(digest: string, bytes: Uint8Array): Promise<void> {
    const tmpPath = path.join(this.#tmp, `${digest}.${randomBytes(6).toString('hex')}`);
    try {
      const file = await open(tmpPath, 'wx');
      try {
        await file.writeFile(bytes);
        await file.datasync();
      } finally {
        await file.close();
      }
      const finalPath = this.#pathOf(digest);
      await mkdir(path.dirname(finalPath), { recursive: true });
      await rename(tmpPath, finalPath);
    } catch (error) {
      await unlink(tmpPath).catch(() => undefined);
      throw error;
    }
  }

  async read(digest: string, maxBytes: number): Promise<BackendRead> {
    let file;
    try {
      file = await open(this.#pathOf(digest), 'r');
    } catch (error) {
      if (isMissing(error)) return { kind: 'missing' };
      throw error;
    }
    try {
      const { size } = await file.stat();
      if (size > maxBytes) return { kind: 'too-large', size };
      return { kind: 'found', bytes: new Uint8Array(await file.readFile()) };
    } finally {
      await file.close();
    }
  }

  async remove(digest: string): Promise<void> {
    await unlink(this.#pathOf(digest)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class FsBlobStore extends CountedBlobStore {
  /** Opens (or creates) the store in `options.directory`. */
  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    const { directory, ...limits } = options;
    if (typeof directory !== 'string' || directory === '') {
      throw new ConfigError('hub.offload.directory', 'must be a non-empty path');
    }
    verifyBlobStoreLimits(limits);
    const backend = new FsBackend(directory);
    return new FsBlobStore(backend, limits, await backend.prepare());
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
