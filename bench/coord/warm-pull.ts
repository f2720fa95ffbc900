// `warm-pull-through-peer`: MB/s of one 64 MiB blob that a client GETs from a node's mirror
// while another node holds it: the mirror finds the holder in the directory and streams the blob
// from it, storing it as it passes. The peer is the same client GETting a blob of the same size
// straight from the origin (docker-registry) over loopback.
//
// Every sample of ours needs a blob the serving node does not hold yet. Before each one (not
// timed), a fresh random blob is uploaded to the origin and pulled through the mirror of the node
// HRW designates to fetch it, which stores it; the other node then serves the timed GET. Which
// node holds and which serves so depends on the digest; on loopback the two are alike.
//
// Each node runs in a process of its own (forked-cluster.ts), and this process is only the
// client, as it is against the origin.

import { randomBytes } from 'node:crypto';

import { startOrigin, type Origin } from '../../test/coord/e2e/origin.ts';
import { getBlob, getVerifiedBlob, peerHeadStatus, uploadBlob } from './blob-http.ts';
import { startForkedMirrorCluster, type ForkedMirrorCluster } from './forked-cluster.ts';
import { loadHrw, type Hrw } from './load-coord.ts';

export const warmBlobBytes = 64 * 1024 * 1024;
const repository = 'bench/warm-pull';
// Room for every blob a full run stores, so no eviction runs inside a timed GET.
const maxStoreBytes = 64 * warmBlobBytes;

export class WarmPull {
  #origin: Origin | undefined;
  #cluster: ForkedMirrorCluster | undefined;
  #hrw: Hrw | undefined;
  #peerBlob: string | undefined;
  readonly #servedByPeer: string[] = [];

  async start(): Promise<void> {
    this.#hrw = await loadHrw();
    this.#origin = await startOrigin();
    this.#cluster = await startForkedMirrorCluster({ nodes: 2, origin: this.#origin.url, maxStoreBytes });
    this.#peerBlob = await uploadBlob(this.#origin.url, repository, randomBytes(warmBlobBytes));
  }

  /** One GET of a fresh blob from the node that does not hold it, in MB/s. */
  readonly throughPeer = async (): Promise<number> => {
    const { holder, server, digest } = await this.#warmBlob();
    const fetched = await getBlob(server, repository, digest);
    if (fetched.bytes !== warmBlobBytes)
      throw new Error(`${server} sent ${fetched.bytes} of ${warmBlobBytes} bytes`);
    this.#servedByPeer.push(digest);
    // The serving node must have taken it from the holder: it holds it now, and the origin saw
    // only the holder's one fetch (checked for every sample in `check`).
    if ((await peerHeadStatus(server, repository, digest)) !== 200) {
      throw new Error(`${server} served ${digest} (held by ${holder}) without storing it`);
    }
    return megabytesPerSecond(fetched.bytes, fetched.ms);
  };

  /** One GET of a blob of the same size straight from the origin, in MB/s. */
  readonly fromOrigin = async (): Promise<number> => {
    const origin = this.#required(this.#origin);
    const fetched = await getBlob(origin.url, repository, this.#required(this.#peerBlob));
    if (fetched.bytes !== warmBlobBytes)
      throw new Error(`the origin sent ${fetched.bytes} of ${warmBlobBytes} bytes`);
    return megabytesPerSecond(fetched.bytes, fetched.ms);
  };

  /**
   * Both sides serve the right bytes, no mirror answered a server error, and every blob served
   * through a peer was fetched from the origin exactly once (by its holder, before timing).
   */
  async check(): Promise<void> {
    const origin = this.#required(this.#origin);
    const cluster = this.#required(this.#cluster);
    await getVerifiedBlob(origin.url, repository, this.#required(this.#peerBlob));
    const last = this.#servedByPeer.at(-1);
    if (last !== undefined) {
      for (const url of cluster.urls) await getVerifiedBlob(url, repository, last);
    }
    for (const digest of this.#servedByPeer) {
      const gets = origin.blobGets(digest);
      if (gets !== 1) throw new Error(`the origin served ${digest} ${gets} times, not once`);
    }
    const stats = await cluster.stats();
    const errors = stats.reduce((sum, node) => sum + node.serverErrors, 0);
    if (errors > 0) throw new Error(`the mirrors answered ${errors} server error(s)`);
    const streamed = stats.reduce((sum, node) => sum + node.streamed, 0);
    if (streamed !== this.#servedByPeer.length) {
      throw new Error(`${streamed} blobs were streamed from a peer, not ${this.#servedByPeer.length}`);
    }
  }

  async close(): Promise<void> {
    await this.#cluster?.close();
    await this.#origin?.stop();
  }

  // A new blob at the origin, stored by the node HRW designates for it and by no other.
  async #warmBlob(): Promise<{ holder: string; server: string; digest: string }> {
    const origin = this.#required(this.#origin);
    const cluster = this.#required(this.#cluster);
    const digest = await uploadBlob(origin.url, repository, randomBytes(warmBlobBytes));
    const [holder, server] = this.#required(this.#hrw).hrwRank(cluster.urls, digest) as [string, string];
    await getBlob(holder, repository, digest);
    const held = await peerHeadStatus(holder, repository, digest);
    const notYet = await peerHeadStatus(server, repository, digest);
    if (held !== 200 || notYet !== 404) {
      throw new Error(
        `after pulling ${digest} through ${holder}, it answers ${held} and ${server} answers ${notYet} (want 200, 404)`,
      );
    }
    return { holder, server, digest };
  }

  #required<T>(value: T | undefined): T {
    if (value === undefined) throw new Error('the warm-pull case has not started');
    return value;
  }
}

function megabytesPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (Math.max(ms, Number.EPSILON) / 1000);
}
