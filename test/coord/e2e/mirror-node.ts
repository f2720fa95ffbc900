// A Weft node with its mirror in a process of its own, so a test can SIGKILL it in the middle
// of a pull and its peers see what they would see of a crashed machine: sockets reset, no
// goodbye, a store left as it was.
//
// The parent side (`startMirrorNodes`) and the child side (run when this file is the process's
// entry point) speak over the IPC channel:
//   child → parent  { type: 'listening', port }        its HTTP server is up
//   parent → child  { type: 'start', … }               every node's host URL, now known
//   child → parent  { type: 'ready' }                  mirror open, connected to every peer
//   parent → child  { type: 'stats', id }  → child  { type: 'stats', id, stats }

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

import { Manager } from '../../../src/grid/index.ts';
import { subscribeDiagnostics } from '../../../src/internal/diagnostics.ts';
import { Mirror, type MirrorStats } from '../../../src/coord/mirror/mirror.ts';

export interface MirrorNodeOptions {
  readonly origin: string;
  /** One store directory per node. */
  readonly storeDirectories: readonly string[];
  readonly maxStoreBytes?: number;
  readonly stallMs?: number;
}

export interface MirrorNode {
  /** Its grid host URL: its node id and its mirror's base URL. */
  readonly host: string;
  readonly storeDirectory: string;
  readonly pid: number;
  /** The mirror's stats, asked over IPC; rejects once the node is dead. */
  stats(): Promise<MirrorStats>;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  readonly alive: boolean;
}

type ChildMessage =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'ready' }
  | { readonly type: 'stats'; readonly id: number; readonly stats: MirrorStats };

type ParentMessage =
  | {
      readonly type: 'start';
      readonly local: string;
      readonly hosts: readonly string[];
      readonly origin: string;
      readonly storeDirectory: string;
      readonly maxStoreBytes: number;
      readonly stallMs: number | undefined;
    }
  | { readonly type: 'stats'; readonly id: number };

const thisFile = fileURLToPath(import.meta.url);
const startTimeoutMs = 30_000;
const statsTimeoutMs = 5_000;
const secret = 'weft-e2e-mirror-node-secret';

// Children still running when the test process exits are killed, as origin.ts does.
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Starts one child node per store directory, all knowing each other; resolves once all are connected. */
export async function startMirrorNodes(options: MirrorNodeOptions): Promise<MirrorNode[]> {
  const launched = options.storeDirectories.map(() => launch());
  try {
    const ports = await Promise.all(launched.map(({ next }) => next('listening')));
    const hosts = ports.map((m) => `http://127.0.0.1:${(m as { port: number }).port}`);
    launched.forEach(({ child }, i) => {
      const start: ParentMessage = {
        type: 'start',
        local: hosts[i] as string,
        hosts,
        origin: options.origin,
        storeDirectory: options.storeDirectories[i] as string,
        maxStoreBytes: options.maxStoreBytes ?? 1e9,
        stallMs: options.stallMs,
      };
      child.send(start);
    });
    await Promise.all(launched.map(({ next }) => next('ready')));
    return launched.map(({ child, stats, exited }, i) => ({
      host: hosts[i] as string,
      storeDirectory: options.storeDirectories[i] as string,
      pid: child.pid as number,
      stats,
      get alive() {
        return child.exitCode === null && child.signalCode === null;
      },
      kill: async () => {
        child.kill('SIGKILL');
        await exited;
      },
    }));
  } catch (error) {
    for (const { child } of launched) child.kill('SIGKILL');
    throw error;
  }
}

/** Forks a child node and wraps its IPC in promises. */
function launch(): {
  child: ChildProcess;
  next: (type: 'listening' | 'ready') => Promise<ChildMessage>;
  stats: () => Promise<MirrorStats>;
  exited: Promise<void>;
} {
  const child = fork(thisFile, [], {
    execArgv: ['--import', 'tsx', '--conditions=weft-source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });
  const statsWaiters = new Map<number, (stats: MirrorStats) => void>();
  const startWaiters = new Map<string, (message: ChildMessage) => void>();
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'stats') statsWaiters.get(message.id)?.(message.stats);
    else startWaiters.get(message.type)?.(message);
  });
  const deadOrTimeout = (what: string, timeoutMs: number): Promise<never> =>
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`mirror node ${child.pid}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`mirror node ${child.pid} exited before ${what}`));
      });
    });
  let statsId = 0;
  return {
    child,
    exited,
    next: (type) =>
      Promise.race([
        new Promise<ChildMessage>((resolve) => startWaiters.set(type, resolve)),
        deadOrTimeout(type, startTimeoutMs),
      ]),
    stats: () => {
      const id = ++statsId;
      const answer = new Promise<MirrorStats>((resolve) => statsWaiters.set(id, resolve));
      if (!child.connected) return Promise.reject(new Error(`mirror node ${child.pid} is gone`));
      child.send({ type: 'stats', id } satisfies ParentMessage);
      return Promise.race([answer, deadOrTimeout('stats', statsTimeoutMs)]).finally(() =>
        statsWaiters.delete(id),
      );
    },
  };
}

/** The child: an HTTP server, then (once told every host) a grid manager and a mirror on it. */
async function runChild(send: (message: ChildMessage) => void): Promise<void> {
  let mirror: Mirror | undefined;
  const server = http.createServer((req, res) => {
    if (mirror?.handle(req, res) !== true) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The parent is gone (it crashed or was killed): nothing is left to serve.
  process.once('disconnect', () => process.exit(0));
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stats') {
      if (mirror !== undefined) send({ type: 'stats', id: message.id, stats: mirror.stats() });
      return;
    }
    void (async () => {
      const manager = new Manager({ local: message.local, hosts: message.hosts, auth: { secret } });
      mirror = await Mirror.open({
        grid: manager,
        storeDirectory: message.storeDirectory,
        maxStoreBytes: message.maxStoreBytes,
        origin: message.origin,
        logger: console,
        ...(message.stallMs === undefined ? {} : { stallMs: message.stallMs }),
      });
      manager.attach(server);
      if (process.env['WEFT_E2E_TRACE'] === '1') traceTo(message.local);
      await Promise.all(manager.targets().map((host) => manager.connection(host).waitForConnect()));
      send({ type: 'ready' });
    })();
  });
  send({ type: 'listening', port: (server.address() as AddressInfo).port });
}

/** With WEFT_E2E_TRACE=1, each child prints its fetches and cascade decisions to stderr. */
function traceTo(self: string): void {
  for (const channel of ['weft:coord:fetch', 'weft:coord:cascade']) {
    subscribeDiagnostics(channel, (event) => {
      console.error(`${Math.round(performance.now())} ${self} ${channel} ${JSON.stringify(event)}`);
    });
  }
}

if (process.argv[1] === thisFile && process.send !== undefined) {
  const send = process.send.bind(process);
  await runChild((message) => {
    send(message);
  });
}
