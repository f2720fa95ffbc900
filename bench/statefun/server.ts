// The statefun suite's server process: every HTTP server the suite measures, side by side in
// one process, so each runs on the same CPU with the same event loop across the same loopback:
// - ours: `StatefulFunctions.handler()` (weft/statefun, compiled, from dist/);
// - apache-flink-statefun: the official SDK's `StateFun.handler()`;
// - http-floor: a bare node:http listener that reads the whole body and answers a fixed 64-byte
//   body, the most any handler can do over node:http here.
// All serve the same function (functions.ts). Forked by server-process.ts, it reports its ports
// over IPC and exits when the bench disconnects, closing its servers first so that a
// `--cpu-prof` profile is written.

import http from 'node:http';

import { closeServer, listenOnLoopback } from '../forked-server.ts';
import { officialStateFun, ourFunctions } from './functions.ts';
import type { ReadyMessage } from './ipc.ts';
import { loadStatefun } from './load-statefun.ts';
import { floorReply } from './workload.ts';

/** A server for `listener` on a free loopback port, with that port. */
async function listen(listener: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(listener);
  // Keep idle keep-alive connections open: a client's sockets sit idle while other cases run.
  server.keepAliveTimeout = 0;
  return { server, port: await listenOnLoopback(server) };
}

const floorHeaders = { 'Content-Type': 'application/octet-stream', 'Content-Length': floorReply.length };

function floor(request: http.IncomingMessage, response: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.once('end', () => {
    // The whole body, as any handler needs it; then the fixed answer.
    if (Buffer.concat(chunks).length === 0) response.writeHead(400).end();
    else response.writeHead(200, floorHeaders).end(floorReply);
  });
}

async function main(): Promise<void> {
  const sdk = await loadStatefun();
  const ours = await listen(ourFunctions(sdk).handler());
  const officialHandler = officialStateFun().handler();
  const official = await listen((request, response) => {
    // It catches every error itself and answers 500.
    void officialHandler(request, response);
  });
  const floorServer = await listen(floor);
  const servers = [ours, official, floorServer].map((s) => s.server);
  process.once('disconnect', () => {
    void Promise.all(servers.map(closeServer)).then(() => process.exit(0));
  });
  const ready: ReadyMessage = {
    type: 'ready',
    oursPort: ours.port,
    officialPort: official.port,
    floorPort: floorServer.port,
  };
  process.send?.(ready);
}

if (process.send === undefined) {
  console.error('usage: forked by bench/statefun/server-process.ts');
  process.exit(2);
}
await main();
