// Views suite: weft/views' blocking queries, its map view and its remote event streams, each
// against the plainest thing that does the same job in Node.
//
// Cases:
// - fan-out-10k: 10 000 `fetch`es blocked on one Materializer (over an in-process
//   EventPublisher, MapView), one publish; the time until every fetch has returned, p50 and
//   p99 over many publishes (views/fan-out.ts). Peer: node:events, 10 000 listeners each
//   resolving its own promise, one `emit`. Self-measured: a sample is many publishes.
// - map-apply: events/s of `MapView.update` on batches of 100 puts and deletes over 10 000
//   keys. Peer: the same loop over the same events straight onto a `Map` (views/workload.ts).
// - remote-events: events/s from an EventPublisher on one grid node to a Materializer
//   (MapView) on another, batches of 16 events with 64-byte values, published as fast as the
//   materializer applies them (views/pipeline.ts). Peers: `local`, the same publisher and
//   materializer in one process without the grid; `ws-msgpack`, the same batches as msgpackr
//   messages over a bare `ws` socket applied to a Map.

import assert from 'node:assert/strict';

import type { MapView } from '../src/views/index.ts';
import { defineSuite, type BenchCase } from './harness.ts';
import { EventEmitterFanOut, fanOutQuantileUs, MaterializerFanOut, type FanOut } from './views/fan-out.ts';
import { loadTesting, loadViews } from './views/load-views.ts';
import {
  pump,
  startLocalPipeline,
  startRemotePipeline,
  WsMsgpackPipeline,
  type Pipeline,
} from './views/pipeline.ts';
import { applyToMap, assertSameEntries, makeBatches, replay, valueBytes } from './views/workload.ts';

const cases: BenchCase[] = [];

// ---------------------------------------------------------------------------------------
// fan-out-10k

const waiters = 10_000;
// Publishes per sample; the p99 of 100 is the second slowest. Setting up 10 000 fetches costs
// ours about ten times the publish itself (untimed, but it sets the pace of the case).
const fanOutsPerSample = { latency_p50_us: 50, latency_p99_us: 100 } as const;

let fanOut: { ours: FanOut; peer: FanOut } | undefined;

function fanOutSides(): { ours: FanOut; peer: FanOut } {
  if (fanOut === undefined) throw new Error('fan-out-10k: setup did not run');
  return fanOut;
}

for (const metric of ['latency_p50_us', 'latency_p99_us'] as const) {
  const quantile = metric === 'latency_p50_us' ? 0.5 : 0.99;
  const perSample = fanOutsPerSample[metric];
  cases.push({
    name: 'fan-out-10k',
    metric,
    selfMeasured: true,
    rounds: 20,
    quickRounds: 10,
    // Full GCs before each sample (the default): ours leaves megabytes of dead waiters in the old
    // generation, whose marking would otherwise run into the peer's next sample.
    ours: {
      label: 'weft/views Materializer',
      fn: () => fanOutQuantileUs(fanOutSides().ours, perSample, quantile),
    },
    peer: { name: 'EventEmitter', fn: () => fanOutQuantileUs(fanOutSides().peer, perSample, quantile) },
    setup: async () => {
      fanOut = {
        ours: await MaterializerFanOut.start(await loadViews(), waiters),
        peer: new EventEmitterFanOut(waiters),
      };
    },
    check: async () => {
      await fanOutSides().ours.check();
      await fanOutSides().peer.check();
    },
    teardown: () => {
      fanOut?.ours.close();
      fanOut?.peer.close();
      fanOut = undefined;
      return undefined;
    },
  });
}

// ---------------------------------------------------------------------------------------
// map-apply

const applyPlan = { batches: 256, eventsPerBatch: 100, keys: 10_000, deletesPerFour: 1, seed: 0xa991 };
const applyBatches = makeBatches(applyPlan);
let applyView: MapView<Uint8Array> | undefined;
const applyMap = new Map<string, Uint8Array>();
let applyNext = { ours: 0, peer: 0 };

cases.push({
  name: 'map-apply',
  metric: 'ops_per_s',
  opsPerCall: applyPlan.eventsPerBatch,
  ours: {
    label: 'weft/views MapView',
    fn: () => {
      (applyView as MapView<Uint8Array>).update(applyBatches[applyNext.ours++ % applyBatches.length] ?? []);
    },
  },
  peer: {
    name: 'Map.set',
    fn: () => {
      applyToMap(applyMap, applyBatches[applyNext.peer++ % applyBatches.length] ?? []);
    },
  },
  setup: async () => {
    const views = await loadViews();
    applyView = new views.MapView<Uint8Array>();
    applyMap.clear();
    applyNext = { ours: 0, peer: 0 };
  },
  check: () => {
    const view = applyView as MapView<Uint8Array>;
    for (const batch of applyBatches) {
      view.update(batch);
      applyToMap(applyMap, batch);
    }
    const expected = replay(applyBatches, applyBatches.length);
    assertSameEntries(view.result(), expected, 'MapView');
    assertSameEntries(applyMap, expected, 'Map.set');
    return undefined;
  },
  teardown: () => {
    applyView = undefined;
    applyMap.clear();
    return undefined;
  },
});

// ---------------------------------------------------------------------------------------
// remote-events

const remotePlan = { batches: 256, eventsPerBatch: 16, keys: 4_096, deletesPerFour: 1, seed: 0x7e30 };
const remoteBatches = makeBatches(remotePlan);
/** Batches each publisher keeps (its default is 4 096; a smaller ring bounds the working set). */
const bufferBatches = 512;
/** How far ahead of the consumer a producer may publish: the buffer less a margin. */
const window = bufferBatches - 64;
const batchesPerCall = 512;

type PipelineKind = 'remote' | 'local' | 'ws-msgpack';
const pipelines = new Map<PipelineKind, { pipeline: Pipeline; next: number }>();

async function startPipeline(kind: PipelineKind): Promise<Pipeline> {
  if (kind === 'ws-msgpack') return WsMsgpackPipeline.start();
  const views = await loadViews();
  if (kind === 'local') return startLocalPipeline(views, remoteBatches, bufferBatches);
  return startRemotePipeline(views, await loadTesting(), remoteBatches, bufferBatches);
}

async function pumpCall(kind: PipelineKind): Promise<void> {
  const running = pipelines.get(kind);
  if (running === undefined) throw new Error(`remote-events: the ${kind} pipeline is not running`);
  running.next = await pump(running.pipeline, remoteBatches, running.next, batchesPerCall, window);
}

async function checkPipeline(kind: PipelineKind): Promise<void> {
  await pumpCall(kind);
  const running = pipelines.get(kind);
  assert.ok(running !== undefined);
  const { pipeline } = running;
  assert.equal(pipeline.applied, pipeline.published, `${kind}: not everything published was applied`);
  assertSameEntries(await pipeline.entries(), replay(remoteBatches, pipeline.batchesPublished), kind);
  assert.deepEqual(pipeline.problems(), [], `${kind}: the stream had trouble`);
}

for (const peer of ['local', 'ws-msgpack'] as const) {
  cases.push({
    name: 'remote-events',
    metric: 'ops_per_s',
    opsPerCall: batchesPerCall * remotePlan.eventsPerBatch,
    // Async, allocation-heavy work on both sides of a socket (see harness.ts).
    gc: 'minor',
    ours: { label: 'weft/views over weft/grid', fn: () => pumpCall('remote') },
    peer: { name: peer, fn: () => pumpCall(peer) },
    setup: async () => {
      for (const kind of ['remote', peer] as const)
        pipelines.set(kind, { pipeline: await startPipeline(kind), next: 0 });
    },
    check: async () => {
      await checkPipeline('remote');
      await checkPipeline(peer);
    },
    // The check runs again after timing (harness.ts): a stream that failed, resubscribed or
    // fell behind while it was timed fails the case, and its figure is not published.
    teardown: async () => {
      for (const { pipeline } of pipelines.values()) await pipeline.close();
      pipelines.clear();
    },
  });
}

export default defineSuite({
  notes: () => [
    `fan-out-10k: ${waiters} fetches on one Materializer (no ViewStore) vs as many EventEmitter listeners; ` +
      `a sample is the p50 of ${fanOutsPerSample.latency_p50_us} or the p99 of ${fanOutsPerSample.latency_p99_us} publishes`,
    `map-apply: batches of ${applyPlan.eventsPerBatch} events (1 in 4 a delete) over ${applyPlan.keys} keys`,
    `remote-events: batches of ${remotePlan.eventsPerBatch} events with ${valueBytes} B values over ` +
      `${remotePlan.keys} keys, ${batchesPerCall} batches a call, at most ${window} ahead of the consumer ` +
      `(publisher buffer ${bufferBatches}); grid nodes and ws ends all in this process`,
  ],
  cases,
});
