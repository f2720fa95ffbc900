// The bench process's half of the grid suite: it forks the server process (server.ts), joins
// it in a two-node grid and connects one client of each peer to it.
//
// Every case shares one server process: starting one (tsx, four servers, a grid handshake)
// takes about a second, which would otherwise come out of --quick's minute for each case. A
// case's setup acquires it and its teardown releases it; the process is stopped shortly after
// the last release, unless the next case's setup acquires it again first.

import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { GridConnection } from '../../src/grid/index.ts';
import { loopback } from '../forked-server.ts';
import { SharedResource } from '../shared-resource.ts';
import { loadGrid } from './load-grid.ts';
import { GrpcEchoClient } from './grpc-echo.ts';
import type { StatsMessage } from './ipc.ts';
import { ServerProcess } from './server-process.ts';
import { WsBatchedClient } from './ws-batch.ts';
import { WsEchoClient } from './ws-echo.ts';
import { gridSecret } from './workload.ts';

/** What a case talks to: one client per peer, all connected to the server process. */
export interface GridBench {
  /** The bench node's grid connection to the server node. */
  readonly grid: GridConnection;
  readonly grpc: GrpcEchoClient;
  readonly wsEcho: WsEchoClient;
  readonly wsBatched: WsBatchedClient;
  /** The server process's heap and idle streams, after two full GCs there if `gc`. */
  serverStats(options: { gc: boolean }): Promise<StatsMessage>;
}

const startTimeoutMs = 20_000;

/**
 * Reports the bench node's grid connection failing. A dropped link is redialled and the next
 * case waits for it, but a run whose grid link dropped should say why.
 */
function reportConnectionErrors(): () => void {
  const onState = (message: unknown): void => {
    if (typeof message !== 'object' || message === null) return;
    const { state, error } = message as { state?: unknown; error?: unknown };
    if (state === 'connection-error') console.error('grid bench: the grid connection failed:', error);
  };
  diagnosticsChannel.subscribe('weft:grid:connection-state', onState);
  return () => diagnosticsChannel.unsubscribe('weft:grid:connection-state', onState);
}

interface Running {
  readonly bench: GridBench;
  close(): Promise<void>;
}

function waitForGrid(grid: GridConnection): Promise<void> {
  return grid.waitForConnect({ signal: AbortSignal.timeout(startTimeoutMs) });
}

async function start(): Promise<Running> {
  // The bench node's port must exist before the server starts: it is in the server's host list.
  const gridServer = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => gridServer.listen(0, loopback, resolve));
  const benchHost = `http://${loopback}:${(gridServer.address() as AddressInfo).port}`;
  const server = new ServerProcess(benchHost, startTimeoutMs);
  const closeAll: (() => Promise<void> | void)[] = [
    () => server.stop(),
    () =>
      new Promise<void>((resolve) => {
        gridServer.close(() => {
          resolve();
        });
        gridServer.closeAllConnections();
      }),
  ];
  const close = async (): Promise<void> => {
    for (const step of closeAll.splice(0).reverse()) await step();
  };
  try {
    const ready = await server.ready;
    closeAll.push(reportConnectionErrors());
    const { Manager } = await loadGrid();
    const manager = new Manager({
      local: benchHost,
      hosts: [benchHost, ready.gridHost],
      auth: { secret: gridSecret },
    });
    closeAll.push(() => manager.close());
    manager.attach(gridServer);
    server.send({ type: 'connect' });
    const grid = manager.connection(ready.gridHost);
    await waitForGrid(grid);
    const grpc = await GrpcEchoClient.connect(`${loopback}:${ready.grpcPort}`);
    closeAll.push(() => {
      grpc.close();
    });
    const wsEcho = await WsEchoClient.connect(`ws://${loopback}:${ready.wsPort}/echo`);
    closeAll.push(() => {
      wsEcho.close();
    });
    const wsBatched = await WsBatchedClient.connect(`ws://${loopback}:${ready.wsPort}/batched`);
    closeAll.push(() => {
      wsBatched.close();
    });
    const bench: GridBench = {
      grid,
      grpc,
      wsEcho,
      wsBatched,
      serverStats: ({ gc }) => server.stats(gc),
    };
    return { bench, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The server process and clients, shared by the cases that hold them. */
export class SharedGridBench {
  readonly #shared = new SharedResource<Running>('grid bench server process', start);

  async acquire(): Promise<GridBench> {
    const { bench } = await this.#shared.acquire();
    try {
      // An earlier case may have lost the link (it is redialled); measure on a live one.
      await waitForGrid(bench.grid);
    } catch (error) {
      this.#shared.release();
      throw error;
    }
    return bench;
  }

  release(): void {
    this.#shared.release();
  }
}
