// n grid nodes on loopback, each with a mirror on its HTTP server fronting one origin: a cluster
// as the mirror runs in production, less the network. A node's id is its host URL, which is also
// its mirror's base URL.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { loadMirror, loadTestGrid, type Mirror, type TestGrid } from './load-coord.ts';

export interface MirrorCluster {
  readonly grid: TestGrid;
  readonly mirrors: readonly Mirror[];
  /** The base URL of node i's mirror (its grid host). */
  readonly urls: readonly string[];
  /** Server errors answered by any mirror so far: a sample that got one is not a figure. */
  serverErrors(): number;
  close(): Promise<void>;
}

export interface MirrorClusterOptions {
  readonly nodes: number;
  readonly origin: string;
  readonly maxStoreBytes: number;
}

const connectTimeoutMs = 10_000;

export async function startMirrorCluster(options: MirrorClusterOptions): Promise<MirrorCluster> {
  const [Mirror, TestGrid] = await Promise.all([loadMirror(), loadTestGrid()]);
  const storeRoot = await mkdtemp(path.join(tmpdir(), 'weft-bench-mirror-'));
  const mirrors: Mirror[] = [];
  let grid: TestGrid | undefined;
  try {
    grid = await TestGrid.start(options.nodes, {
      onRequest: (i, req, res) => mirrors[i]?.handle(req, res) ?? false,
    });
    // Membership is the connected hosts: every node must see every other before the first pull.
    await grid.waitAllConnected({ signal: AbortSignal.timeout(connectTimeoutMs) });
    for (let i = 0; i < options.nodes; i++) {
      mirrors.push(
        await Mirror.open({
          grid: grid.manager(i),
          storeDirectory: path.join(storeRoot, `node-${i}`),
          maxStoreBytes: options.maxStoreBytes,
          origin: options.origin,
        }),
      );
    }
  } catch (error) {
    await Promise.all(mirrors.map((m) => m.close()));
    await grid?.close();
    await rm(storeRoot, { recursive: true, force: true });
    throw error;
  }
  const started = grid;
  return {
    grid: started,
    mirrors,
    urls: started.hosts,
    serverErrors: () => mirrors.reduce((sum, m) => sum + m.stats().responses.serverErrors, 0),
    close: async () => {
      await Promise.all(mirrors.map((m) => m.close()));
      await started.close();
      await rm(storeRoot, { recursive: true, force: true });
    },
  };
}
