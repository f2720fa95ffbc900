// `origin-fetches-per-blob-8-nodes`: 8 nodes pull the same image at once, each GETting every
// blob of it through its own mirror, and we count the origin's blob GETs in its access log. The
// peer is the same 8 pulls made straight from the origin, as nodes without a mirror would.
//
// Each sample pushes a fresh image first (new seed, so new digests that no store holds), which is
// preparation and not part of the figure: what a sample returns is a count, not a time.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { buildImage, pushImage } from '../../test/coord/e2e/image.ts';
import type { OciImage } from '../../test/coord/e2e/oci-layout.ts';
import { startOrigin, type Origin } from '../../test/coord/e2e/origin.ts';
import { getVerifiedBlob } from './blob-http.ts';
import { startMirrorCluster, type MirrorCluster } from './mirror-cluster.ts';

export const fanOutNodes = 8;
const repository = 'bench/fan-out';
// Config plus three layers: a pull asks for four blobs of different sizes at once.
const layerSizesBytes = [2 * 1024 * 1024, 1024 * 1024, 256 * 1024];

export class FanOutPull {
  #origin: Origin | undefined;
  #cluster: MirrorCluster | undefined;
  #scratch: string | undefined;
  #images = 0;

  async start(): Promise<void> {
    this.#scratch = await mkdtemp(path.join(tmpdir(), 'weft-bench-fan-out-'));
    this.#origin = await startOrigin();
    this.#cluster = await startMirrorCluster({
      nodes: fanOutNodes,
      origin: this.#origin.url,
      maxStoreBytes: 1024 * 1024 * 1024,
    });
  }

  /** Origin blob GETs per blob when every node pulls a fresh image through its own mirror. */
  readonly throughMirrors = async (): Promise<number> => {
    const cluster = this.#required(this.#cluster);
    const image = await this.#freshImage();
    return this.#pullEverywhere(image, cluster.urls);
  };

  /** The same, with every node pulling straight from the origin. */
  readonly straightFromOrigin = async (): Promise<number> => {
    const origin = this.#required(this.#origin);
    const image = await this.#freshImage();
    return this.#pullEverywhere(
      image,
      Array.from({ length: fanOutNodes }, () => origin.url),
    );
  };

  /** Throws if a mirror answered a server error: a pull that failed is no sample. */
  check(): void {
    const errors = this.#required(this.#cluster).serverErrors();
    if (errors > 0) throw new Error(`the mirrors answered ${errors} server error(s)`);
  }

  async close(): Promise<void> {
    await this.#cluster?.close();
    await this.#origin?.stop();
    if (this.#scratch !== undefined) await rm(this.#scratch, { recursive: true, force: true });
  }

  // Every node GETs every blob at once (verifying each); the origin's new blob GETs per blob.
  async #pullEverywhere(image: OciImage, baseUrls: readonly string[]): Promise<number> {
    const origin = this.#required(this.#origin);
    const before = image.blobDigests.map((digest) => origin.blobGets(digest));
    await Promise.all(
      baseUrls.flatMap((url) => image.blobDigests.map((digest) => getVerifiedBlob(url, repository, digest))),
    );
    const after = image.blobDigests.map((digest) => origin.blobGets(digest));
    const fetches = after.reduce((sum, n, i) => sum + n - (before[i] ?? 0), 0);
    return fetches / image.blobDigests.length;
  }

  async #freshImage(): Promise<OciImage> {
    const n = this.#images++;
    const layoutDir = path.join(this.#required(this.#scratch), `image-${n}`);
    const image = await buildImage(layoutDir, {
      seed: `weft-bench-coord-${process.pid}-${n}`,
      layerSizesBytes,
    });
    await pushImage(image, this.#required(this.#origin).url, repository);
    return image;
  }

  #required<T>(value: T | undefined): T {
    if (value === undefined) throw new Error('the fan-out case has not started');
    return value;
  }
}
