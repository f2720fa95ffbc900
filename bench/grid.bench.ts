// Grid suite: weft's grid against gRPC (grpc-js) and raw WebSockets (ws), client and server
// in separate processes on loopback, as two nodes of a cluster would be.
//
// This process is the client: the harness times calls made here. The servers of every peer
// run side by side in one forked process (grid/server.ts), sharing its CPU and event loop.
// Each peer is used through one connection, as the grid uses one socket per pair of nodes:
// one grid connection, one grpc-js channel (one HTTP/2 session), one WebSocket per ws peer.
//
// Cases (docs/grid.md explains them with the results):
// - unary-512B-parN: a 512 B echo with N requests kept in flight (grid/concurrency.ts).
//   Throughput: one op is one request; a harness call completes 2 × N of them (`opsPerCall`):
//   N callers, each issuing its second request as soon as its first returns. p99 latency: a
//   call times 1 000 requests one by one with N in flight and returns their 99th percentile.
// - stream-128B: a one-way stream of 128 B items; one op is one item received, a call is one
//   stream of 1 000 items.
// - request-1MiB: a 1 MiB echo, one request at a time.
// - idle-streams-10k: the V8 heap one idle stream costs, caller and handler process together
//   (grid/idle-streams.ts); measured, not timed.

import { defineSuite, type BenchCase } from './harness.ts';
import { latencyQuantileUs, runConcurrently } from './grid/concurrency.ts';
import { SharedGridBench, type GridBench } from './grid/fixture.ts';
import { gridEcho, gridItems, streamOutCapacity } from './grid/grid-echo.ts';
import { openIdleStreams, type IdleKind } from './grid/idle-streams.ts';
import { assertEcho, assertItems, encodeItemsRequest } from './grid/workload.ts';
import { seededBytes } from './seeded-bytes.ts';

const shared = new SharedGridBench();
let running: GridBench | undefined;

function bench(): GridBench {
  if (running === undefined) throw new Error('the grid bench is not running: setup did not run');
  return running;
}

/** Every case holds the shared server process from its setup to its teardown. */
const lifecycle: Pick<BenchCase, 'gc' | 'setup' | 'teardown'> = {
  // Full GCs here slow the next sample of this async, allocation-heavy work (harness.ts).
  gc: 'minor',
  setup: async (): Promise<void> => {
    running = await shared.acquire();
  },
  teardown: (): undefined => {
    running = undefined;
    shared.release();
  },
};

const cases: BenchCase[] = [];

// ---------------------------------------------------------------------------------------
// Unary echo at concurrency 1, 32, 256

const unaryBytes = 512;
const unaryPayload = seededBytes(unaryBytes, 0x5eed);
// Requests per caller in one harness call. Two, so that each caller issues its next request as
// its last returns, whatever the others do; more would only make the slowest peer's samples
// (grpc-js at par256) longer.
const loopsPerCall = 2;

type Echo = (payload: Uint8Array) => Promise<Uint8Array | undefined>;

const ourEcho: Echo = (payload) => gridEcho(bench().grid, payload);
// grpc-js serializes a Buffer; the payloads here are Buffers already, so this is a view, not a copy.
const grpcEcho: Echo = (payload) =>
  bench().grpc.echo(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
const unaryPeers: readonly { readonly name: string; readonly echo: Echo }[] = [
  { name: 'grpc-js', echo: grpcEcho },
  { name: 'ws-batched', echo: (payload) => bench().wsBatched.request(payload) },
];

/** Distinct payloads all in flight at once, so a reply matched to the wrong request shows. */
async function checkConcurrentEcho(echo: Echo, concurrency: number, what: string): Promise<void> {
  const requests = Array.from({ length: concurrency }, (_, i) => seededBytes(unaryBytes, i + 1));
  const replies = await Promise.all(requests.map((request) => echo(request)));
  replies.forEach((reply, i) => {
    assertEcho(reply, requests[i] ?? Buffer.alloc(0), `${what}, request ${i} of ${concurrency}`);
  });
}

for (const concurrency of [1, 32, 256]) {
  const perCall = loopsPerCall * concurrency;
  for (const peer of unaryPeers) {
    cases.push({
      name: `unary-${unaryBytes}B-par${concurrency}`,
      metric: 'ops_per_s',
      opsPerCall: perCall,
      ours: {
        label: 'weft/grid',
        fn: () => runConcurrently(perCall, concurrency, () => ourEcho(unaryPayload)),
      },
      peer: {
        name: peer.name,
        fn: () => runConcurrently(perCall, concurrency, () => peer.echo(unaryPayload)),
      },
      ...lifecycle,
      check: async () => {
        await checkConcurrentEcho(ourEcho, concurrency, 'weft/grid');
        await checkConcurrentEcho(peer.echo, concurrency, peer.name);
      },
    });
  }
}

// p99 latency of the same echo: N callers in flight, each request timed on its own. One
// sample is 1 000 requests, so its 99th percentile stands on the ten slowest; the row's value
// is the median of 40 such samples (a quick run: 10), and its spread is reported with it.
const latencyRequests = 1_000;
const latencyRounds = 40;
const latencyQuickRounds = 10;

for (const concurrency of [1, 32, 256]) {
  for (const peer of unaryPeers) {
    // Every reply is compared with its request, after its latency is taken.
    const p99 = (echo: Echo, what: string) => () =>
      latencyQuantileUs(
        latencyRequests,
        concurrency,
        0.99,
        () => echo(unaryPayload),
        (reply) => {
          assertEcho(reply, unaryPayload, what);
        },
      );
    cases.push({
      name: `unary-${unaryBytes}B-par${concurrency}`,
      metric: 'latency_p99_us',
      selfMeasured: true,
      // A sample is a thousand requests; grpc-js at par 1 takes half a second for one.
      rounds: latencyRounds,
      quickRounds: latencyQuickRounds,
      ours: { label: 'weft/grid', fn: p99(ourEcho, 'weft/grid') },
      peer: { name: peer.name, fn: p99(peer.echo, peer.name) },
      ...lifecycle,
      check: async () => {
        await checkConcurrentEcho(ourEcho, concurrency, 'weft/grid');
        await checkConcurrentEcho(peer.echo, concurrency, peer.name);
      },
    });
  }
}

// ---------------------------------------------------------------------------------------
// One-way stream of 128 B items

const itemBytes = 128;
const itemsPerStream = 1_000;
const itemTemplate = seededBytes(itemBytes, 0x17e4);
const itemsRequest = encodeItemsRequest(itemsPerStream, itemTemplate);

function expectCount(received: number, what: string): void {
  if (received !== itemsPerStream) throw new Error(`${what}: ${received} of ${itemsPerStream} items`);
}

cases.push({
  name: `stream-${itemBytes}B`,
  metric: 'ops_per_s',
  opsPerCall: itemsPerStream,
  ours: {
    label: `weft/grid (outCapacity ${streamOutCapacity})`,
    fn: async () => {
      expectCount(await gridItems(bench().grid, itemsRequest), 'weft/grid');
    },
  },
  peer: {
    name: 'grpc-js',
    fn: async () => {
      expectCount(await bench().grpc.items(itemsRequest), 'grpc-js');
    },
  },
  ...lifecycle,
  check: async () => {
    const ours: Uint8Array[] = [];
    await gridItems(bench().grid, itemsRequest, (item) => ours.push(item));
    assertItems(ours, itemsPerStream, itemTemplate, 'weft/grid');
    const peer: Uint8Array[] = [];
    await bench().grpc.items(itemsRequest, (item) => peer.push(item));
    assertItems(peer, itemsPerStream, itemTemplate, 'grpc-js');
  },
});

// ---------------------------------------------------------------------------------------
// 1 MiB echo

const largeBytes = 1024 * 1024;
const largePayload = seededBytes(largeBytes, 0x1a29e);

cases.push({
  name: 'request-1MiB',
  metric: 'ops_per_s',
  ours: { label: 'weft/grid', fn: () => ourEcho(largePayload) },
  peer: { name: 'ws', fn: () => bench().wsEcho.request(largePayload) },
  ...lifecycle,
  check: async () => {
    assertEcho(await ourEcho(largePayload), largePayload, 'weft/grid');
    assertEcho(await bench().wsEcho.request(largePayload), largePayload, 'ws');
  },
});

// ---------------------------------------------------------------------------------------
// 10 000 idle streams: heap per stream, in the caller's and the handler's process together

const idleCount = 10_000;

async function idleHeap(kind: IdleKind, label: string): Promise<number> {
  const streams = await openIdleStreams(bench(), kind, idleCount);
  await streams.close();
  const { clientBytes, serverBytes } = streams.heap;
  // The row carries the sum; the split is worth seeing too.
  const bytes = (n: number): string => `${Math.round(n).toLocaleString('en-US')} B`;
  console.error(`    ${label}: ${bytes(clientBytes)} caller + ${bytes(serverBytes)} handler per idle stream`);
  return clientBytes + serverBytes;
}

cases.push({
  name: `idle-streams-${idleCount / 1000}k`,
  metric: 'heap_bytes_per_op',
  // One sample opens 10 000 streams at each end and takes seconds; the figure barely moves.
  rounds: 3,
  quickRounds: 1,
  ours: { label: 'weft/grid', fn: () => idleHeap('grid', 'weft/grid') },
  peer: { name: 'grpc-js', fn: () => idleHeap('grpc', 'grpc-js') },
  ...lifecycle,
  check: async () => {
    for (const kind of ['grid', 'grpc'] as const) {
      // Opening checks that every stream echoed its request and that the server holds them all.
      const streams = await openIdleStreams(bench(), kind, 100);
      await streams.close();
    }
  },
});

export default defineSuite({
  cases,
  notes: () => [
    'client: this process; servers: one forked process (bench/grid/server.ts); loopback',
    `unary: one op = one ${unaryBytes} B request; a call completes ${loopsPerCall} x N with N in flight`,
    `stream: one op = one ${itemBytes} B item; a call reads one stream of ${itemsPerStream} items`,
    `idle streams: one op = one stream; V8 heap after full GCs, caller + handler process`,
  ],
});
