// Loopback ports nothing listens on, for servers that take a port number instead of picking one.
// A port found free may be taken by someone else before it is used: callers pick anew per start.

import net from 'node:net';

import { loopback } from '../forked-server.ts';

const attempts = 50;

/** A port free on loopback now. */
export async function freePort(): Promise<number> {
  const server = await listen(0);
  const { port } = server.address() as net.AddressInfo;
  await close(server);
  return port;
}

/**
 * A port `p` such that `p + offset` is free for every offset, e.g. `[0, 1, 2, 100]` for
 * `weft dev`'s three nodes and its hub.
 */
export async function freePortsAt(offsets: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const base = await freePort();
    if (offsets.some((offset) => base + offset > 65_535)) continue;
    const held: net.Server[] = [];
    try {
      for (const offset of offsets) held.push(await listen(base + offset));
      return base;
    } catch {
      // One of them is taken: try another base.
    } finally {
      await Promise.all(held.map(close));
    }
  }
  throw new Error(`no free loopback ports at offsets ${offsets.join(', ')} after ${attempts} attempts`);
}

function listen(port: number): Promise<net.Server> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, loopback, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}
