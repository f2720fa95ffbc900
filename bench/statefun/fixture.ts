// The bench process's half of the statefun suite's HTTP cases: it forks the server process
// (server.ts) and holds one keep-alive client per server.
//
// Every HTTP case shares one server process: starting one (tsx, three servers) takes about a
// second, which would otherwise come out of --quick's minute for each case. A case's setup
// acquires it and its teardown releases it; the process is stopped shortly after the last
// release, unless the next case's setup acquires it again first.

import { runConcurrently } from '../grid/concurrency.ts';
import { SharedResource } from '../shared-resource.ts';
import { PostClient } from './http-client.ts';
import { ServerProcess } from './server-process.ts';

/** One client per server, each allowed `concurrency` connections. */
export interface StatefunServers {
  readonly ours: PostClient;
  readonly official: PostClient;
  readonly floor: PostClient;
}

interface Running {
  readonly servers: StatefunServers;
  close(): Promise<void>;
}

const startTimeoutMs = 20_000;
// Each server runs each request body this long before the first case: a fresh server process
// takes about a second of load to reach its steady speed, longer than --quick's warm-up.
const serverWarmUpMs = 300;

async function warmUp(client: PostClient, body: Buffer, concurrency: number): Promise<void> {
  const end = performance.now() + serverWarmUpMs;
  while (performance.now() < end)
    await runConcurrently(concurrency * 2, concurrency, () => client.post(body));
}

async function start(concurrency: number, warmUpBodies: readonly Buffer[]): Promise<Running> {
  const server = new ServerProcess(startTimeoutMs);
  try {
    const ready = await server.ready;
    const servers: StatefunServers = {
      ours: new PostClient(ready.oursPort, concurrency, 'weft/statefun'),
      official: new PostClient(ready.officialPort, concurrency, 'apache-flink-statefun'),
      floor: new PostClient(ready.floorPort, concurrency, 'http-floor'),
    };
    const clients = [servers.ours, servers.official, servers.floor];
    const close = async (): Promise<void> => {
      for (const client of clients) client.close();
      await server.stop();
    };
    try {
      for (const client of clients) for (const body of warmUpBodies) await warmUp(client, body, concurrency);
    } catch (error) {
      await close();
      throw error;
    }
    return { servers, close };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export class SharedStatefunServers {
  readonly #shared: SharedResource<Running>;

  /** Each client keeps `concurrency` connections; each server first runs every warm-up body a while. */
  constructor(concurrency: number, warmUpBodies: readonly Buffer[]) {
    this.#shared = new SharedResource('statefun bench server process', () =>
      start(concurrency, warmUpBodies),
    );
  }

  async acquire(): Promise<StatefunServers> {
    return (await this.#shared.acquire()).servers;
  }

  release(): void {
    this.#shared.release();
  }
}
