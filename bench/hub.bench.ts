// The hub suite: weft/hub end to end, producer → hub → consumer, against JetStream and a bare
// grpc-js forwarder. The hub (compiled, dist/hub) and the forwarder run in a forked server
// process (bench/hub/server.ts), so on two CPUs the path under test gets one and its clients the
// other, as nats-server does for JetStream; in one process the clients' work would dominate.
// Every packet is 1 KiB and numbered: each side checks that what arrives is complete and in order.
//
// - at-least-once-1KiB: HubConnector producer and consumer on a two-step story with delivery
//   at_least_once; the consumer acks each delivery, and a call ends once the hub has acknowledged
//   every packet to the producer (which it does only after the consumer's acks). Peer: JetStream,
//   publish awaiting each PubAck, a pull consumer acking each message explicitly; a fresh stream
//   and consumer per case, deleted after.
// - at-most-once-1KiB-grpc: the same pair with delivery none. Peer: a bare grpc-js server that
//   forwards raw bytes from one client's bidi stream to another's, the ceiling of gRPC on Node.
// - handoff-gap: the longest pause in delivery at the consumer while a generation-2 consumer takes
//   over under load (bench/hub/handoff.ts); no peer has the figure, so the row is ours alone.
// - at-most-once-1KiB-grid: the same pair with delivery none, both connectors on the bench's grid
//   node reaching the hub over grid streams (HubConnector `grid`); the hub is served on the server
//   process's node (serveHubOnGrid). Peer: NATS core, publish → subscribe, no acks.

import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { defineSuite, type BenchCase } from './harness.ts';
import { SharedResource } from './shared-resource.ts';
import { ConnectorPair, type HubTarget } from './hub/connector-pair.ts';
import type { HubGridTarget } from '../src/hub/grid/index.ts';
import { loadGrid } from './grid/load-grid.ts';
import { hubGridSecret } from './hub/grid-secret.ts';
import { NatsCorePair } from './hub/nats-core.ts';
import { ForwardPair } from './hub/grpc-forward.ts';
import { measureHandoffGap } from './hub/handoff.ts';
import { JetStreamPair, natsServer } from './hub/jetstream.ts';
import { loadHub, type HubModule } from './hub/load-hub.ts';
import { HubServerProcess } from './hub/server-process.ts';
import { packetBytes, packetsPerCall, type DeliveryMode } from './hub/workload.ts';
import { closeServer, listenOnLoopback, loopback } from './forked-server.ts';

interface Servers {
  readonly hub: HubModule;
  readonly hubAddress: string;
  readonly forwardAddress: string;
  /** The hub's node, as the connectors on the bench's grid node reach it. */
  readonly hubGrid: HubGridTarget;
  readonly process: HubServerProcess;
  close(): Promise<void>;
}

const gridConnectTimeoutMs = 20_000;

const servers = new SharedResource<Servers>('hub bench server', async () => {
  // The bench's grid node needs its port before the server starts: both list both hosts.
  const gridServer = http.createServer((_req, res) => res.writeHead(404).end());
  const benchHost = `http://${loopback}:${await listenOnLoopback(gridServer)}`;
  const process = new HubServerProcess(benchHost);
  let manager: { close(): Promise<void> } | undefined;
  const close = async (): Promise<void> => {
    await process.stop();
    await manager?.close();
    await closeServer(gridServer);
  };
  try {
    const [ready, hub, { Manager }] = await Promise.all([process.ready, loadHub(), loadGrid()]);
    const gridManager = new Manager({
      local: benchHost,
      hosts: [benchHost, ready.gridHost],
      auth: { secret: hubGridSecret },
    });
    manager = gridManager;
    gridManager.attach(gridServer);
    process.allowGridConnect();
    await gridManager
      .connection(ready.gridHost)
      .waitForConnect({ signal: AbortSignal.timeout(gridConnectTimeoutMs) });
    return {
      hub,
      hubAddress: `${loopback}:${ready.hubPort}`,
      forwardAddress: `${loopback}:${ready.forwardPort}`,
      hubGrid: { manager: gridManager, node: ready.gridHost },
      process,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
});

function checkServer(s: Servers | undefined): void {
  if (s !== undefined && !s.process.running) throw new Error('the hub bench server process died');
}

/** A fresh story run per case, so no case sees another's state (a DNS-1123 name). */
function runName(caseName: string): string {
  return `${caseName.toLowerCase()}-${randomUUID().slice(0, 8)}`;
}

function pairCase<
  Peer extends { deliver(n: number): Promise<void>; check(): void; close(): Promise<void> | void },
>(
  name: string,
  mode: DeliveryMode,
  target: (s: Servers) => HubTarget,
  peerName: string,
  openPeer: (s: Servers) => Promise<Peer>,
): BenchCase {
  let s: Servers | undefined;
  let ours: ConnectorPair | undefined;
  let peer: Peer | undefined;
  return {
    name,
    metric: 'ops_per_s',
    opsPerCall: packetsPerCall,
    // Client/server async work: a forced full GC would slow the next samples unevenly.
    gc: 'minor',
    ours: {
      label: `weft/hub HubConnector (${mode}${name.endsWith('-grid') ? ', grid' : ''})`,
      fn: () => (ours as ConnectorPair).deliver(packetsPerCall),
    },
    peer: { name: peerName, fn: () => (peer as Peer).deliver(packetsPerCall) },
    setup: async () => {
      s = await servers.acquire();
      ours = await ConnectorPair.open(s.hub, target(s), runName(name), mode);
      peer = await openPeer(s);
    },
    check: async () => {
      checkServer(s);
      await ours?.deliver(16);
      await peer?.deliver(16);
      ours?.check();
      peer?.check();
    },
    teardown: async () => {
      await ours?.close();
      await peer?.close();
      if (s !== undefined) servers.release();
    },
  };
}

function handoffCase(): BenchCase {
  let s: Servers | undefined;
  return {
    name: 'handoff-gap',
    metric: 'max_gap_ms',
    rounds: 20,
    quickRounds: 10,
    ours: {
      label: 'weft/hub blue-green cutover (at_least_once)',
      fn: () => {
        const { hub, hubAddress } = s as Servers;
        return measureHandoffGap(hub, hubAddress, runName('handoff-gap'));
      },
    },
    setup: async () => {
      s = await servers.acquire();
    },
    check: () => {
      checkServer(s);
      return undefined;
    },
    teardown: () => {
      if (s !== undefined) servers.release();
      return undefined;
    },
  };
}

export default defineSuite({
  notes: () => [
    `packets of ${packetBytes} B, ${packetsPerCall} per timed call; ops_per_s counts packets delivered end to end`,
    `hub and bare grpc-js forwarder in a forked process; JetStream: nats-server at ${natsServer}, memory storage`,
    'grid case: both connectors on the bench process’s grid node, the hub on the server process’s; NATS core on the same nats-server',
  ],
  cases: [
    pairCase(
      'at-least-once-1KiB',
      'at_least_once',
      (s) => s.hubAddress,
      'nats JetStream',
      () => JetStreamPair.open(),
    ),
    pairCase(
      'at-most-once-1KiB-grpc',
      'none',
      (s) => s.hubAddress,
      'grpc-js bare forward',
      (s) => ForwardPair.open(s.forwardAddress, randomUUID()),
    ),
    pairCase(
      'at-most-once-1KiB-grid',
      'none',
      (s) => s.hubGrid,
      'nats core',
      () => NatsCorePair.open(),
    ),
    handoffCase(),
  ],
});
