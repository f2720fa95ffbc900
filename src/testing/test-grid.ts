// A grid of n nodes on loopback, for tests: real sockets, real handshakes, and (if the
// test passes one) a FakeClock for every timer.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Manager, type Connection, type GridLimits } from '../grid/index.ts';
import type { Clock } from '../internal/clock.ts';

export interface TestGridOptions {
  readonly clock?: Clock;
  readonly limits?: Partial<GridLimits>;
  readonly secret?: string;
  readonly random?: () => number;
}

export class TestGrid {
  readonly managers: readonly Manager[];
  readonly hosts: readonly string[];
  readonly #servers: readonly http.Server[];

  private constructor(managers: Manager[], hosts: string[], servers: http.Server[]) {
    this.managers = managers;
    this.hosts = hosts;
    this.#servers = servers;
  }

  /** Starts `n` managers, each on its own loopback port, all knowing each other. */
  static async start(n: number, options: TestGridOptions = {}): Promise<TestGrid> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a test grid needs at least one node, got ${n}`);
    // Ports first: every manager needs the full host list when it is made.
    const servers = await Promise.all(
      Array.from({ length: n }, async () => {
        const server = http.createServer((_req, res) => res.writeHead(404).end());
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return server;
      }),
    );
    const hosts = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    const managers = hosts.map(
      (local) =>
        new Manager({
          local,
          hosts,
          auth: { secret: options.secret ?? 'weft-test-grid-cluster-secret' },
          limits: options.limits,
          clock: options.clock,
          random: options.random,
        }),
    );
    managers.forEach((manager, i) => {
      manager.attach(servers[i] as http.Server);
    });
    return new TestGrid(managers, hosts, servers);
  }

  /** The manager of node `i`. */
  manager(i: number): Manager {
    const manager = this.managers[i];
    if (manager === undefined) throw new RangeError(`no node ${i} in a grid of ${this.managers.length}`);
    return manager;
  }

  /** Node `from`'s connection to node `to`. */
  connection(from: number, to: number): Connection {
    return this.manager(from).connection(this.hosts[to] ?? '');
  }

  /** Resolves when every node is connected to every other. */
  async waitAllConnected(options: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all(
      this.managers.flatMap((manager) =>
        manager.targets().map((host) => manager.connection(host).waitForConnect(options)),
      ),
    );
  }

  /** Closes every manager and server. */
  async close(): Promise<void> {
    await Promise.all(this.managers.map((m) => m.close()));
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => {
              resolve();
            });
            server.closeAllConnections();
          }),
      ),
    );
  }
}
