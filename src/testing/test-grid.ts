// A grid of n nodes on loopback, for tests: real sockets, real handshakes, and (if the
// test passes one) a FakeClock for every timer.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Manager, type GridConnection, type GridLimits, type Logger } from '../grid/index.ts';
import type { Clock } from '../internal/clock.ts';

export interface TestGridOptions {
  readonly clock?: Clock;
  readonly limits?: Partial<GridLimits>;
  readonly secret?: string;
  readonly random?: () => number;
  /** Where the managers report handler failures and refusals; default console. */
  readonly logger?: Logger;
  /**
   * Serves the node's plain HTTP requests (those that are not grid upgrades), e.g. a mirror's
   * `handle`; returns false for a request it does not take, which is answered 404.
   */
  readonly onRequest?: (node: number, req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

export class TestGrid {
  readonly hosts: readonly string[];
  readonly #managers: Manager[];
  readonly #servers: readonly http.Server[];
  readonly #options: TestGridOptions;

  private constructor(
    managers: Manager[],
    hosts: string[],
    servers: http.Server[],
    options: TestGridOptions,
  ) {
    this.#managers = managers;
    this.hosts = hosts;
    this.#servers = servers;
    this.#options = options;
  }

  /** The current manager of each node. */
  get managers(): readonly Manager[] {
    return this.#managers;
  }

  /** Starts `n` managers, each on its own loopback port, all knowing each other. */
  static async start(n: number, options: TestGridOptions = {}): Promise<TestGrid> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a test grid needs at least one node, got ${n}`);
    // Ports first: every manager needs the full host list when it is made.
    const servers = await Promise.all(
      Array.from({ length: n }, async (_, node) => {
        const server = http.createServer((req, res) => {
          if (options.onRequest?.(node, req, res) !== true) res.writeHead(404).end();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return server;
      }),
    );
    const hosts = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    const managers = hosts.map((local) => newManager(local, hosts, options));
    managers.forEach((manager, i) => {
      manager.attach(servers[i] as http.Server);
    });
    return new TestGrid(managers, hosts, servers, options);
  }

  /**
   * Restarts node `i` as a peer would see a process restart: its manager closes, and a new
   * one (a new node id) takes over the same host and port. `setup` registers its handlers
   * before it starts.
   */
  async restart(i: number, setup: (manager: Manager) => void = () => undefined): Promise<Manager> {
    await this.manager(i).close();
    const manager = newManager(this.hosts[i] ?? '', this.hosts, this.#options);
    setup(manager);
    manager.attach(this.#servers[i] as http.Server);
    this.#managers[i] = manager;
    return manager;
  }

  /** The manager of node `i`. */
  manager(i: number): Manager {
    const manager = this.#managers[i];
    if (manager === undefined) throw new RangeError(`no node ${i} in a grid of ${this.managers.length}`);
    return manager;
  }

  /** Node `from`'s connection to node `to`. */
  connection(from: number, to: number): GridConnection {
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
    await Promise.all(this.#managers.map((m) => m.close()));
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

function newManager(local: string, hosts: readonly string[], options: TestGridOptions): Manager {
  return new Manager({
    local,
    hosts,
    auth: { secret: options.secret ?? 'weft-test-grid-cluster-secret' },
    limits: options.limits,
    clock: options.clock,
    random: options.random,
    logger: options.logger,
  });
}
