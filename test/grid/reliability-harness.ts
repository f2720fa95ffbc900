// Shared by reliability.test.ts, liveness.test.ts and resources.test.ts: a grid whose
// links run through fault-injecting TCP proxies, the two-node setups the tests start
// from, and a few waits that follow real socket I/O without sleeping.
//
// Every node's host URL is its proxy's address, so every dial goes through a proxy
// that the test can reset (a crashed link), blackhole (a peer that stops answering
// while TCP stays open), hold (a peer that stops reading) or make refuse new links
// (a peer that is down). A node can also be restarted: a new Manager, with a new node
// id, behind the same host URL.

import http from 'node:http';
import net from 'node:net';
import type { TestContext } from 'node:test';

import { Manager, type GridConnection, type GridLimits, type GridStream } from '../../src/grid/index.ts';
import { onAbort } from '../../src/internal/abort.ts';
import { FakeClock, TestGrid } from '../../src/testing/index.ts';

/** Which way bytes flow through a proxy: from the dialler to the node, or back. */
export type Direction = 'to-node' | 'from-node';

interface Link {
  readonly dialler: net.Socket;
  readonly node: net.Socket;
  blackholed: boolean;
  readonly held: Set<Direction>;
}

/** A TCP proxy in front of one node, with faults on demand. */
export class ChaosProxy {
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  /** Port of the node behind the proxy; links are refused while undefined. */
  target: number | undefined;
  /** While true, new links are reset at once: the node looks down. */
  refusing = false;
  /** Links accepted so far (each is one dial). */
  accepted = 0;
  /** Sees every chunk before it is forwarded, with the link it travels on; a test can hold the link there. */
  onChunk: ((direction: Direction, link: { hold(direction: Direction): void }) => void) | undefined;

  private constructor(server: net.Server) {
    this.#server = server;
    server.on('connection', (socket) => {
      this.#onConnection(socket);
    });
  }

  static async start(): Promise<ChaosProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ChaosProxy(server);
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Live links. */
  get links(): number {
    return this.#links.size;
  }

  /** Resets every live link, both ways: the peers see a crashed connection. */
  kill(): void {
    for (const link of this.#links) {
      link.dialler.resetAndDestroy();
      link.node.resetAndDestroy();
    }
    this.#links.clear();
  }

  /** Live links swallow every byte from now on, both ways; TCP stays open and silent. */
  blackhole(): void {
    for (const link of this.#links) link.blackholed = true;
  }

  /** Stops reading bytes going `direction` on live links: they pile up in TCP buffers. */
  hold(direction: Direction): void {
    for (const link of this.#links) holdLink(link, direction);
  }

  /** Undoes `hold`: the piled-up bytes flow again, in order. */
  release(direction: Direction): void {
    for (const link of this.#links) {
      link.held.delete(direction);
      (direction === 'to-node' ? link.dialler : link.node).resume();
    }
  }

  async close(): Promise<void> {
    this.kill();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }

  #onConnection(dialler: net.Socket): void {
    this.accepted += 1;
    if (this.refusing || this.target === undefined) {
      dialler.on('error', ignore);
      dialler.resetAndDestroy();
      return;
    }
    // No Nagle delay: the grid's own sockets turn it off too, and it would add 40 ms per round trip.
    dialler.setNoDelay(true);
    const node = net.connect({ port: this.target, host: '127.0.0.1', noDelay: true });
    const link: Link = { dialler, node, blackholed: false, held: new Set() };
    this.#links.add(link);
    const control = {
      hold: (direction: Direction): void => {
        holdLink(link, direction);
      },
    };
    const forward = (from: net.Socket, to: net.Socket, direction: Direction): void => {
      from.on('data', (chunk: Buffer) => {
        this.onChunk?.(direction, control);
        if (link.blackholed) return;
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => {
            if (!link.held.has(direction)) from.resume();
          });
        }
      });
      from.on('end', () => {
        if (!link.blackholed) to.end();
      });
    };
    forward(dialler, node, 'to-node');
    forward(node, dialler, 'from-node');
    const drop = (): void => {
      this.#links.delete(link);
      dialler.destroy();
      node.destroy();
    };
    for (const socket of [dialler, node]) {
      socket.on('error', ignore);
      socket.on('close', drop);
    }
  }
}

function holdLink(link: Link, direction: Direction): void {
  link.held.add(direction);
  (direction === 'to-node' ? link.dialler : link.node).pause();
}

function ignore(): void {
  // Socket errors end the link through 'close'.
}

export interface ProxiedGridOptions {
  readonly clock: FakeClock;
  readonly limits?: Partial<GridLimits>;
  readonly random?: () => number;
  /** Registers handlers on node `index` (also on a restarted node). */
  readonly setup?: (manager: Manager, index: number) => void;
}

const secret = 'weft-reliability-test-secret';

/** n grid nodes on loopback, each behind its own ChaosProxy. */
export class ProxiedGrid {
  readonly hosts: readonly string[];
  readonly proxies: readonly ChaosProxy[];
  readonly #managers: Manager[];
  readonly #servers: http.Server[];
  readonly #options: ProxiedGridOptions;

  private constructor(
    options: ProxiedGridOptions,
    proxies: ChaosProxy[],
    managers: Manager[],
    servers: http.Server[],
  ) {
    this.#options = options;
    this.proxies = proxies;
    this.hosts = proxies.map((p) => p.url);
    this.#managers = managers;
    this.#servers = servers;
  }

  static async start(n: number, options: ProxiedGridOptions): Promise<ProxiedGrid> {
    const proxies = await Promise.all(Array.from({ length: n }, () => ChaosProxy.start()));
    const hosts = proxies.map((p) => p.url);
    // Every node listens before any dials, so no first dial fails and waits for a redial timer.
    const servers = await Promise.all(proxies.map((proxy) => listenBehind(proxy)));
    const managers = servers.map((server, i) => attachManager(options, hosts, i, server));
    return new ProxiedGrid(options, proxies, managers, servers);
  }

  manager(i: number): Manager {
    return at(this.#managers, i);
  }

  proxy(i: number): ChaosProxy {
    return at(this.proxies, i);
  }

  /** Node `from`'s connection to node `to`. */
  connection(from: number, to: number): GridConnection {
    return this.manager(from).connection(at(this.hosts, to));
  }

  /** The node of the pair (a, b) that dials the other. */
  dialler(a: number, b: number): number {
    return this.connection(a, b).dials ? a : b;
  }

  /** The proxy the link between a and b runs through: the one in front of the accepting node. */
  linkProxy(a: number, b: number): ChaosProxy {
    return this.proxy(this.dialler(a, b) === a ? b : a);
  }

  async waitAllConnected(): Promise<void> {
    await Promise.all(
      this.#managers.flatMap((m) => m.targets().map((host) => m.connection(host).waitForConnect())),
    );
  }

  /** Shuts node `i` down for good (its Manager closes, its proxy refuses). */
  async stop(i: number): Promise<void> {
    this.proxy(i).refusing = true;
    await this.manager(i).close();
    await closeServer(at(this.#servers, i));
  }

  /** Starts a new Manager (a new node id) behind node `i`'s host URL; `stop(i)` first. */
  async restart(i: number): Promise<Manager> {
    const server = await listenBehind(this.proxy(i));
    const manager = attachManager(this.#options, this.hosts, i, server);
    this.#managers[i] = manager;
    this.#servers[i] = server;
    this.proxy(i).refusing = false;
    return manager;
  }

  async close(): Promise<void> {
    await Promise.all(this.#managers.map((m) => m.close()));
    await Promise.all(this.#servers.map(closeServer));
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}

/** A server for a node, with the proxy pointed at it. */
async function listenBehind(proxy: ChaosProxy): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.target = (server.address() as net.AddressInfo).port;
  return server;
}

/** A Manager for node `i` on `server`; it starts dialling at once. */
function attachManager(
  options: ProxiedGridOptions,
  hosts: readonly string[],
  i: number,
  server: http.Server,
): Manager {
  const manager = new Manager({
    local: at(hosts, i),
    hosts,
    auth: { secret },
    limits: options.limits,
    clock: options.clock,
    random: options.random,
  });
  options.setup?.(manager, i);
  manager.attach(server);
  return manager;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

function at<T>(list: readonly T[], i: number): T {
  const value = list[i];
  if (value === undefined) throw new RangeError(`no node ${i}`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Two-node setups, each node serving the handlers below.

export interface ProxiedPair {
  readonly g: ProxiedGrid;
  readonly clock: FakeClock;
  readonly served: readonly [Served, Served];
  /** Index of the node that dials, and of the one that accepts. */
  readonly dialler: number;
  readonly acceptor: number;
}

/** Two nodes behind ChaosProxies, connected; redial jitter is 0 unless `random` says otherwise. */
export async function proxiedPair(
  t: TestContext,
  options: Partial<Omit<ProxiedGridOptions, 'setup'>> = {},
): Promise<ProxiedPair> {
  const clock = options.clock ?? new FakeClock();
  const served: [Served, Served] = [new Served(), new Served()];
  const g = await ProxiedGrid.start(2, {
    random: () => 0,
    ...options,
    clock,
    setup: (manager, i) => {
      serve(manager, served[i] as Served);
    },
  });
  t.after(() => g.close());
  await g.waitAllConnected();
  const dialler = g.dialler(0, 1);
  return { g, clock, served, dialler, acceptor: 1 - dialler };
}

export interface TestPair {
  readonly tg: TestGrid;
  readonly clock: FakeClock;
  readonly served: readonly [Served, Served];
}

/** A plain TestGrid pair, connected, for what needs no faults on the link. */
export async function testPair(t: TestContext, clock = new FakeClock()): Promise<TestPair> {
  const tg = await TestGrid.start(2, { clock });
  t.after(() => tg.close());
  const served: [Served, Served] = [new Served(), new Served()];
  serve(tg.manager(0), served[0]);
  serve(tg.manager(1), served[1]);
  await tg.waitAllConnected();
  return { tg, clock, served };
}

/**
 * A round trip each way. Frames queued before it (pings, pongs, credits) have been
 * delivered and handled on both nodes once it returns: one socket keeps them in order.
 */
export async function roundTrips(grid: {
  connection(from: number, to: number): GridConnection;
}): Promise<void> {
  await grid.connection(0, 1).request(ECHO, undefined);
  await grid.connection(1, 0).request(ECHO, undefined);
}

/** Reads the next response of a stream. */
export function next(stream: GridStream): Promise<IteratorResult<Uint8Array>> {
  return stream[Symbol.asyncIterator]().next();
}

// ---------------------------------------------------------------------------------------
// Waits

/** One turn of the event loop: lets socket I/O and queued writes run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Waits, turn by turn, until `check()` holds; fails naming `what` if it does not within
 * `budgetMs` of real time. This follows socket I/O; it never sleeps a fixed time.
 */
export async function eventually(check: () => boolean, what: string, budgetMs = 5_000): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > budgetMs)
      throw new Error(`still waiting for ${what} after ${budgetMs} ms`);
    await turn();
  }
}

/** Settles with the outcome of `promise` as a value, so a test can inspect a pending call. */
export interface Watched<T> {
  readonly promise: Promise<T>;
  settled: boolean;
  value: T | undefined;
  error: unknown;
}

export function watch<T>(promise: Promise<T>): Watched<T> {
  const watched: Watched<T> = { promise, settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => {
      watched.settled = true;
      watched.value = value;
    },
    (error: unknown) => {
      watched.settled = true;
      watched.error = error;
    },
  );
  return watched;
}

// ---------------------------------------------------------------------------------------
// Handlers the reliability tests serve, and what they saw.

/** Single: answers with the request's payload. */
export const ECHO = 64;
/** Single: never answers; ends (rejecting with the reason) when its signal aborts. */
export const HANG = 65;
/** Stream: sends one item (the initial payload), then waits for its signal to abort. */
export const HOLD = 66;
/** Stream: sends `u32(initial)` items numbered from 0, then returns. */
export const COUNT_UP = 67;

/** What one node's handlers saw. */
export class Served {
  /** Signals of HANG requests, in arrival order. */
  readonly hanging: AbortSignal[] = [];
  /** Signals of HOLD streams, in arrival order. */
  readonly holding: AbortSignal[] = [];
  echoes = 0;
}

export function serve(manager: Manager, served: Served): void {
  manager.registerSingle(ECHO, (payload) => {
    served.echoes += 1;
    return payload;
  });
  manager.registerSingle(HANG, (_payload, { signal }) => {
    served.hanging.push(signal);
    return untilAborted(signal);
  });
  manager.registerStream(HOLD, {
    inCapacity: 1,
    handle: async ({ initial, send, signal }) => {
      served.holding.push(signal);
      await send(initial ?? new Uint8Array(0));
      await untilAborted(signal);
    },
  });
  manager.registerStream(COUNT_UP, {
    inCapacity: 0,
    handle: async ({ initial, send }) => {
      const count = initial === undefined ? 0 : readU32(initial);
      for (let i = 0; i < count; i++) await send(u32(i));
    },
  });
}

/** Rejects with the signal's reason once it aborts. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    onAbort(signal, reject);
  });
}

export function u32(n: number): Uint8Array {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(n);
  return bytes;
}

export function readU32(bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0);
}
