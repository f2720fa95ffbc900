// Runtime suite: the Weft runtime (src/runtime/runtime.ts, compiled, from dist/) running a
// counter, against Restate, against the least lmdb can do, and against the least a driver of a
// remote StateFun function can do. Every side runs the same workload (runtime/workload.ts): one
// counter per key, +1 per call, `concurrency` calls in flight over `keys` keys in turn, a session's
// runs going on from the key where the last one stopped.
//
// Cases:
// - durable-counter-10k (ops_per_s) and durable-counter-10k-p99 (latency_p99_us): durable
//   updates through each system's HTTP ingress. Ours: the runtime with its HTTP ingress and the
//   counter as an in-process function, on lmdb in a fresh temporary directory, in a forked
//   process; this process is the load client (runtime/weft-counter.ts). Peer: Restate
//   (restate-server, a virtual object written with @restatedev/restate-sdk, default durability;
//   runtime/restate-peer.ts), its load client in its own process beside the server.
//   Restate answers a call with the new count once it has run and is durable. Our ingress
//   answers 202 once the message is durable, and the function runs after; so our throughput
//   counts an update once the runtime has committed its effect (each sample waits for that), and
//   our latency is the 202's: until the update is durable, not until it is applied.
// - durable-counter-10k-vs-lmdb-floor (ops_per_s): ours as above, against lmdb-js alone
//   (runtime/lmdb-floor.ts: get, increment and put each key, committed in synced groups) with the
//   group size our runtime reached: its batches per store commit, measured over this case's
//   samples of ours. Ours also syncs each ingress append; the floor has no such write.
// - remote-official (ops_per_s): invocations/s of the runtime driving the official SDK's
//   endpoint (apache-flink-statefun, its own process) as a remote function, on a MemoryStateStore
//   so that no disk is measured (runtime/weft-remote-counter.ts), against a bare keep-alive
//   request loop sending that endpoint the same requests (runtime/official-loop.ts). Both drivers
//   run in this process.
//
// Every case checks, before and after timing, that every key's stored count is the number of
// acknowledged updates to it (ours: all 10 000 keys, read back from the store; the peers: their
// own checks), and that our runtime had no failed batch, refusal or logged warning.

import { createRequire } from 'node:module';

import { defineSuite, type BenchCase } from './harness.ts';
import { LmdbFloor } from './runtime/lmdb-floor.ts';
import { createRequestLoop, startOfficialEndpoint, type RequestLoop } from './runtime/official-loop.ts';
import { startRestateCounter, type RestateCounter } from './runtime/restate-peer.ts';
import { startWeftCounter, type WeftCounter } from './runtime/weft-counter.ts';
import { startRemoteCounter, type RemoteCounter } from './runtime/weft-remote-counter.ts';
import { SharedResource } from './shared-resource.ts';

const concurrency = 32;
const keys = 10_000;
const load = { concurrency, keys } as const;

// A quick run's samples are half as long, as the harness's own batches are (batchMs 5, not 10);
// it cannot tell a suite which run it is, so the flag is read here. Latency samples keep their
// size: a p99 needs its ten slowest calls.
const quick = process.argv.includes('--quick');
const scale = (requests: number): number => (quick ? requests / 2 : requests);

/** Updates in one throughput sample of ours: about half a second (a quick run: a quarter). */
const durableRequests = scale(2_000);
/** Restate's: about as long, at its rate (a tenth of ours or less). */
const restateRequests = scale(400);
/** Calls in one latency sample, on either side: its p99 stands on the ten slowest. */
const latencyRequests = 1_000;
/** Invocations in one remote-official sample, on either side. */
const remoteRequests = scale(2_000);
/**
 * Samples per side. A Restate latency sample takes one and a half seconds; the others take
 * about one second a round, and take more rounds in a full run, whose spread is wide.
 */
const rounds = { rounds: 40, quickRounds: 10 } as const;
const latencyRounds = { rounds: 30, quickRounds: 10 } as const;
/** Each Weft counter process first runs every key once (a quick run: half), warming JIT and store. */
const weftWarmupRequests = scale(keys);
/** The remote-official sides run this many calls in setup, for the JIT of all three processes. */
const remoteWarmupRequests = scale(4_000);
const restateWarmupMs = scale(2_000);

// Async work over sockets throughout, with servers in other processes: a forced full GC before a
// sample slows the next milliseconds of it (harness.ts), so every case collects the young
// generation only.
const gc = 'minor';

/** One Weft counter process for all the durable cases, warmed up once. */
const weftShared = new SharedResource('weft counter process', async () => {
  const counter = await startWeftCounter(load);
  try {
    await counter.run({ requests: weftWarmupRequests });
    return counter;
  } catch (error) {
    await counter.close();
    throw error;
  }
});
const restateShared = new SharedResource('restate', () =>
  startRestateCounter({ warmup: { ...load, durationMs: restateWarmupMs } }),
);

let weft: WeftCounter | undefined;
let restate: RestateCounter | undefined;

function running<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not running: setup did not run`);
  return value;
}

/** What ours did in one case, summed over its samples, for the figures printed after it. */
class WeftFigures {
  updates = 0;
  commits = 0;
  batches = 0;
  p99sMs: number[] = [];

  add(run: { acked: { count: number; p99Ms: number }; commits: number; batches: number }): void {
    this.updates += run.acked.count;
    this.commits += run.commits;
    this.batches += run.batches;
    this.p99sMs.push(run.acked.p99Ms);
  }

  /** Batches per store commit over the samples so far; undefined before the first. */
  meanBatches(): number | undefined {
    return this.commits === 0 ? undefined : this.batches / this.commits;
  }

  print(what: string): void {
    const mean = this.meanBatches();
    const p99s = [...this.p99sMs].sort((a, b) => a - b);
    const medianP99 = p99s[Math.floor(p99s.length / 2)];
    console.error(
      `    ${what}: weft ${this.updates} updates in ${this.commits} store commits of batches, ` +
        `${mean === undefined ? '-' : mean.toFixed(1)} batches per commit; ` +
        `median 202 p99 ${medianP99 === undefined ? '-' : medianP99.toFixed(1)} ms`,
    );
  }
}

const durableLifecycle = (figures: WeftFigures, what: string): Pick<BenchCase, 'setup' | 'teardown'> => ({
  setup: async () => {
    weft = await weftShared.acquire();
    restate = await restateShared.acquire();
  },
  teardown: () => {
    figures.print(what);
    if (weft !== undefined) weftShared.release();
    if (restate !== undefined) restateShared.release();
    weft = undefined;
    restate = undefined;
    return undefined;
  },
});

async function checkDurable(): Promise<void> {
  await running(weft, 'the weft counter').check();
  await running(restate, 'restate').check();
}

const cases: BenchCase[] = [];

// ---------------------------------------------------------------------------------------
// durable-counter-10k: throughput and p99 against Restate

const throughputFigures = new WeftFigures();
cases.push({
  name: 'durable-counter-10k',
  metric: 'ops_per_s',
  selfMeasured: true,
  ...rounds,
  gc,
  ours: {
    label: 'weft runtime (lmdb, http ingress)',
    fn: async () => {
      const run = await running(weft, 'the weft counter').run({ requests: durableRequests });
      throughputFigures.add(run);
      return run.appliedOpsPerS;
    },
  },
  peer: {
    name: '@restatedev/restate-server',
    fn: async () => (await running(restate, 'restate').run({ ...load, requests: restateRequests })).opsPerS,
  },
  ...durableLifecycle(throughputFigures, 'durable-counter-10k'),
  check: checkDurable,
});

const latencyFigures = new WeftFigures();
cases.push({
  name: 'durable-counter-10k-p99',
  metric: 'latency_p99_us',
  selfMeasured: true,
  ...latencyRounds,
  gc,
  ours: {
    label: 'weft runtime (202: durable)',
    fn: async () => {
      const run = await running(weft, 'the weft counter').run({ requests: latencyRequests });
      latencyFigures.add(run);
      return run.acked.p99Ms * 1000;
    },
  },
  peer: {
    name: '@restatedev/restate-server',
    fn: async () =>
      (await running(restate, 'restate').run({ ...load, requests: latencyRequests })).p99Ms * 1000,
  },
  ...durableLifecycle(latencyFigures, 'durable-counter-10k-p99'),
  check: checkDurable,
});

// ---------------------------------------------------------------------------------------
// durable-counter-10k-vs-lmdb-floor

const floorFigures = new WeftFigures();
let floor: LmdbFloor | undefined;
cases.push({
  name: 'durable-counter-10k-vs-lmdb-floor',
  metric: 'ops_per_s',
  selfMeasured: true,
  ...rounds,
  gc,
  ours: {
    label: 'weft runtime (lmdb, http ingress)',
    fn: async () => {
      const run = await running(weft, 'the weft counter').run({ requests: durableRequests });
      floorFigures.add(run);
      return run.appliedOpsPerS;
    },
  },
  peer: {
    name: 'lmdb-floor',
    fn: async () => {
      // The harness samples ours first, so there is always a figure to match.
      const groupSize = floorFigures.meanBatches();
      if (groupSize === undefined)
        throw new Error('lmdb-floor: no sample of ours to take the group size from');
      return (await running(floor, 'the lmdb floor').run({ groupSize, updates: durableRequests })).opsPerS;
    },
  },
  setup: async () => {
    weft = await weftShared.acquire();
    floor = await LmdbFloor.open({ keys });
    // Every key written once, so the floor's tree is as large as the runtime's.
    await floor.run({ groupSize: 100, updates: keys });
  },
  check: async () => {
    await running(weft, 'the weft counter').check();
    running(floor, 'the lmdb floor').check();
  },
  teardown: async () => {
    const mean = floorFigures.meanBatches();
    floorFigures.print('durable-counter-10k-vs-lmdb-floor');
    console.error(
      `    lmdb-floor group size: ${mean === undefined ? '-' : mean.toFixed(1)} updates per commit`,
    );
    if (weft !== undefined) weftShared.release();
    weft = undefined;
    await floor?.close();
    floor = undefined;
  },
});

// ---------------------------------------------------------------------------------------
// remote-official

let remote:
  | {
      readonly endpoint: { close(): Promise<void> };
      readonly ours: RemoteCounter;
      readonly loop: RequestLoop;
    }
  | undefined;

function remoteSides(): NonNullable<typeof remote> {
  return running(remote, 'the remote-official sides');
}

cases.push({
  name: 'remote-official',
  metric: 'ops_per_s',
  selfMeasured: true,
  ...rounds,
  gc,
  ours: {
    label: 'weft runtime (memory store)',
    fn: async () => (await remoteSides().ours.run({ requests: remoteRequests })).opsPerS,
  },
  peer: {
    name: 'apache-flink-statefun (request loop)',
    fn: async () => (await remoteSides().loop.run({ requests: remoteRequests })).opsPerS,
  },
  setup: async () => {
    const endpoint = await startOfficialEndpoint();
    let ours: RemoteCounter | undefined;
    try {
      ours = await startRemoteCounter({ url: endpoint.url, ...load });
      const loop = createRequestLoop({ url: endpoint.url, ...load });
      remote = { endpoint, ours, loop };
      await ours.run({ requests: remoteWarmupRequests });
      await loop.run({ requests: remoteWarmupRequests });
    } catch (error) {
      await ours?.close();
      await endpoint.close();
      throw error;
    }
  },
  check: async () => {
    await remoteSides().ours.check();
    await remoteSides().loop.check();
  },
  teardown: async () => {
    if (remote === undefined) return;
    const { endpoint, ours, loop } = remote;
    remote = undefined;
    console.error(`    remote-official: weft ${ours.meanBatchesPerCommit().toFixed(2)} batches per commit`);
    loop.close();
    await ours.close();
    await endpoint.close();
  },
});

function packageVersion(name: string): string {
  try {
    const version = (createRequire(import.meta.url)(`${name}/package.json`) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export default defineSuite({
  cases,
  notes: () => [
    `workload: one int counter per key, +1 per call; ${concurrency} calls in flight over ${keys} keys in turn`,
    `durable-counter-10k: weft runtime in a forked process, lmdb in a fresh temp dir, HTTP ingress; ` +
      `restate-server ${packageVersion('@restatedev/restate-server')} with @restatedev/restate-sdk ` +
      `${packageVersion('@restatedev/restate-sdk')}, default durability`,
    'durable-counter-10k: ours counts an update once its effect is committed (the 202 comes when the message ' +
      'is durable); Restate answers once the call has run and is durable',
    'durable-counter-10k-p99: ours is the 202 (durable message), Restate the reply (call run and durable)',
    'durable-counter-10k-vs-lmdb-floor: lmdb-js get+put per update, committed in synced groups of the size ' +
      "the runtime's store commits had (its batches per commit)",
    `remote-official: weft runtime in this process on a MemoryStateStore (no disk), against a bare keep-alive ` +
      `loop; both drive one apache-flink-statefun ${packageVersion('apache-flink-statefun')} endpoint process`,
  ],
});
