// The remote-official peer's server process: the official StateFun SDK (apache-flink-statefun) serving
// one counter function, `bench/counter` with one int state `count`, through its own
// `StateFun.handler()` on node:http, in a process of its own so that it does not share an event
// loop with the loop that drives it (official-loop.ts). Forked by official-loop.ts; reports its
// port over IPC and exits when the parent disconnects, closing its server first.

import http from 'node:http';

import { StateFun } from 'apache-flink-statefun';

import { closeServer, listenOnLoopback } from '../forked-server.ts';
import { officialCounter, type OfficialEndpointReady } from './official-counter.ts';

/** The official SDK's storage: one property per declared value; null when there is none. */
interface CounterStorage {
  count: number | null;
}

async function main(): Promise<void> {
  const statefun = new StateFun();
  statefun.bind({
    typename: officialCounter.typeName,
    specs: [{ name: officialCounter.state, type: StateFun.intType() }],
    fn(context, message) {
      const storage = context.storage as CounterStorage;
      storage.count = (storage.count ?? 0) + (message.asInt() ?? 0);
    },
  });
  const handler = statefun.handler();
  // The handler catches every error itself and answers 500.
  const server = http.createServer((request, response) => void handler(request, response));
  // Keep idle keep-alive connections open between the driver's runs.
  server.keepAliveTimeout = 0;
  const port = await listenOnLoopback(server);
  process.once('disconnect', () => {
    void closeServer(server).then(() => process.exit(0));
  });
  const ready: OfficialEndpointReady = { type: 'ready', port };
  process.send?.(ready);
}

if (process.send === undefined) {
  console.error('usage: forked by bench/runtime/official-loop.ts');
  process.exit(2);
}
await main();
