// One mirror node in a process of its own, as in production: its grid manager and its mirror on
// one HTTP server on loopback. It reports its port, is told every host of the cluster, connects,
// opens its mirror and reports ready; it answers stats requests, and shuts down and exits when
// its IPC channel closes.

import http from 'node:http';

import type * as Grid from '../../src/grid/index.ts';
import { closeServer, listenOnLoopback } from '../forked-server.ts';
import { loadBuilt } from '../load-built.ts';
import { loadMirror, type Mirror } from './load-coord.ts';
import { parseToNode, type FromNode, type NodeStartMessage } from './node-ipc.ts';

const connectTimeoutMs = 10_000;

let mirror: Mirror | undefined;
let manager: Grid.Manager | undefined;
const server = http.createServer((req, res) => {
  if (mirror?.handle(req, res) !== true) res.writeHead(404).end();
});

function send(message: FromNode): void {
  process.send?.(message);
}

async function start(message: NodeStartMessage): Promise<void> {
  const { Manager } = await loadBuilt<typeof Grid>('weft/grid');
  const Mirror = await loadMirror();
  manager = new Manager({
    local: message.local,
    hosts: message.hosts,
    auth: { secret: 'weft-bench-coord-cluster-secret' },
  });
  manager.attach(server);
  const grid = manager;
  await Promise.all(
    grid
      .targets()
      .map((host) => grid.connection(host).waitForConnect({ signal: AbortSignal.timeout(connectTimeoutMs) })),
  );
  mirror = await Mirror.open({
    grid,
    storeDirectory: message.storeDirectory,
    maxStoreBytes: message.maxStoreBytes,
    origin: message.origin,
  });
  send({ type: 'ready' });
}

process.on('message', (raw) => {
  const message = parseToNode(raw);
  if (message.type === 'start') {
    start(message).catch((error: unknown) => {
      send({
        type: 'failed',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    });
    return;
  }
  const stats = mirror?.stats();
  send({
    type: 'stats',
    id: message.id,
    serverErrors: stats?.responses.serverErrors ?? 0,
    peerFetches: stats?.content.peerFetches ?? 0,
    streamed: stats?.content.streamed ?? 0,
    originFetches: stats?.originFetches.started ?? 0,
  });
});

process.once('disconnect', () => {
  void (async () => {
    await mirror?.close();
    await manager?.close();
    await closeServer(server);
    process.exit(0);
  })();
});

send({ type: 'listening', port: await listenOnLoopback(server) });
