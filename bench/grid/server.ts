// The grid suite's server process: every server the suite measures against, side by side in
// one process, so ours and each peer run on the same CPU, with the same event loop, across
// the same loopback:
// - the second node of a two-node weft grid (the bench process is the first);
// - a grpc-js server with the same service;
// - a raw `ws` server: plain echo on /echo, hand-batched echo on /batched.
//
// Forked by server-process.ts, so it talks to the bench over IPC (ipc.ts):
// argv[2] is the bench node's grid host URL; the server answers with its ports ("ready"),
// connects the grid once told to ("connect"), and reports its heap on request ("stats").
// It exits when the bench disconnects (or dies), closing every server first so that a
// `--cpu-prof` profile is written.

import http from 'node:http';

import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';

import { closeServer, listenOnLoopback, loopback } from '../forked-server.ts';
import { loadGrid } from './load-grid.ts';
import { registerGridServers } from './grid-echo.ts';
import { addEchoService } from './grpc-echo.ts';
import { parseToServer, type FromServer, type StatsRequest } from './ipc.ts';
import { serveBatchedEcho } from './ws-batch.ts';
import { wsOptions } from './ws-connect.ts';
import { serveEcho } from './ws-echo.ts';
import { gridSecret } from './workload.ts';

function send(message: FromServer): void {
  process.send?.(message);
}

async function main(benchHost: string): Promise<void> {
  // The grid: both nodes need the full host list up front, so the port comes first. The
  // bench node is not listening for the grid until it knows this host, so no dial or
  // handshake happens before it says "connect".
  const gridServer = http.createServer((_req, res) => res.writeHead(404).end());
  const gridHost = `http://${loopback}:${await listenOnLoopback(gridServer)}`;
  let allowConnect = (): void => undefined;
  const connectAllowed = new Promise<void>((resolve) => {
    allowConnect = resolve;
  });
  const { Manager } = await loadGrid();
  const manager = new Manager({
    local: gridHost,
    hosts: [benchHost, gridHost],
    auth: { secret: gridSecret },
    blockConnect: connectAllowed,
  });
  const grid = registerGridServers(manager);
  manager.attach(gridServer);

  const grpcServer = new grpc.Server();
  const grpcEcho = addEchoService(grpcServer);
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(`${loopback}:0`, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) resolve(port);
      else reject(error);
    });
  });

  const wsServer = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: wsServer, ...wsOptions });
  wss.on('connection', (ws, request) => {
    ws.on('error', () => undefined);
    if (request.url === '/batched') serveBatchedEcho(ws);
    else if (request.url === '/echo') serveEcho(ws);
    else ws.close(1008, 'unknown path');
  });
  const wsPort = await listenOnLoopback(wsServer);

  const stats = (request: StatsRequest): void => {
    if (request.gc) {
      // Twice, as the harness does: the second waits for the first one's background freeing.
      globalThis.gc?.();
      globalThis.gc?.();
    }
    send({
      type: 'stats',
      id: request.id,
      heapUsedBytes: process.memoryUsage().heapUsed,
      idleStreams: { grid: grid.idleStreams(), grpc: grpcEcho.idleStreams() },
    });
  };
  process.on('message', (raw) => {
    const message = parseToServer(raw);
    if (message.type === 'connect') allowConnect();
    else stats(message);
  });
  process.once('disconnect', () => {
    void (async () => {
      await manager.close();
      grpcServer.forceShutdown();
      for (const client of wss.clients) client.terminate();
      wss.close();
      await Promise.all([closeServer(gridServer), closeServer(wsServer)]);
      process.exit(0);
    })();
  });
  send({ type: 'ready', gridHost, grpcPort, wsPort });
}

const benchHost = process.argv[2];
if (benchHost === undefined || process.send === undefined || globalThis.gc === undefined) {
  console.error(
    'usage: forked by bench/grid/server-process.ts, with --expose-gc and the bench node’s grid host URL',
  );
  process.exit(2);
}
await main(benchHost);
