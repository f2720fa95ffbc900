// The hub suite's server process: the hub (compiled; gRPC HubService on loopback, and served on
// this process's grid node, the other node being the bench's) and the bare grpc-js forwarder,
// side by side, so every path runs on the other CPU than its clients.
// Forked by server-process.ts with the bench's grid host URL as argv[2]; answers with its ports
// ("ready"), lets its grid node dial once told ("connect"), and exits when the bench
// disconnects, closing its servers first so that a `--cpu-prof` profile is written.

import http from 'node:http';

import * as grpc from '@grpc/grpc-js';

import { closeServer, listenOnLoopback, loopback } from '../forked-server.ts';
import { loadGrid } from '../grid/load-grid.ts';
import { hubGridSecret } from './grid-secret.ts';
import { addForwardService } from './grpc-forward.ts';
import { isConnect, type ReadyMessage } from './ipc.ts';
import { loadHub, loadHubGrid } from './load-hub.ts';
import { storyJson } from './workload.ts';

async function main(benchHost: string): Promise<void> {
  const [{ Hub, parseStory }, { serveHubOnGrid }, { Manager }] = await Promise.all([
    loadHub(),
    loadHubGrid(),
    loadGrid(),
  ]);
  const stories = (['at_least_once', 'none'] as const).map((mode) =>
    parseStory(storyJson(mode), { format: 'json' }),
  );
  const hub = new Hub({ stories });
  const hubPort = await hub.listen({ port: 0, host: loopback });

  // The hub's grid node; it dials the bench's node only once that one is attached.
  const gridServer = http.createServer((_req, res) => res.writeHead(404).end());
  const gridHost = `http://${loopback}:${await listenOnLoopback(gridServer)}`;
  let allowConnect = (): void => undefined;
  const connectAllowed = new Promise<void>((resolve) => {
    allowConnect = resolve;
  });
  const manager = new Manager({
    local: gridHost,
    hosts: [benchHost, gridHost],
    auth: { secret: hubGridSecret },
    blockConnect: connectAllowed,
  });
  serveHubOnGrid(hub, manager);
  manager.attach(gridServer);
  process.on('message', (message) => {
    if (isConnect(message)) allowConnect();
  });

  const forwarder = new grpc.Server();
  addForwardService(forwarder);
  const forwardPort = await new Promise<number>((resolve, reject) => {
    forwarder.bindAsync(`${loopback}:0`, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) resolve(port);
      else reject(error);
    });
  });

  process.once('disconnect', () => {
    forwarder.forceShutdown();
    void (async () => {
      await hub.close();
      await manager.close();
      await closeServer(gridServer);
    })().finally(() => process.exit(0));
  });
  const ready: ReadyMessage = { type: 'ready', hubPort, forwardPort, gridHost };
  process.send?.(ready);
}

const benchHost = process.argv[2];
if (benchHost === undefined) {
  console.error('usage: forked by bench/hub/server-process.ts with the bench’s grid host URL');
  process.exit(2);
}
main(benchHost).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
