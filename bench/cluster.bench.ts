// Cluster suite: durable counter updates through the ingress of Weft nodes that keep the runtime's
// state in one shared PostgreSQL (`weft start --example --postgres`, the compiled CLI from dist/),
// against Restate and against the least PostgreSQL itself can do. Every side runs the runtime
// suite's workload (runtime/workload.ts): one counter per key, +1 per call, 32 calls in flight
// over 10 000 keys in turn.
//
// Cases:
// - cluster-3-nodes (ops_per_s) and cluster-3-nodes-p99 (latency_p99_us): three node processes
//   on this machine, in a fresh schema (`weft_bench_<random>`, dropped after), joined through the
//   first; key i is sent to node i mod 3, so about two thirds of the requests reach a node that
//   does not own the key and are forwarded over the grid (cluster/weft-cluster.ts,
//   cluster/ingress-client.ts). The ingress answers 202 once the message is durable in its owner's
//   inbox, and the counter runs after; so our throughput counts an update once it is applied
//   (each sample waits until the schema's inbox is empty), and our latency is the 202's. Peer:
//   Restate (restate-server, one node, the counter as a virtual object, default durability; the
//   runtime suite's runtime/restate-peer.ts), which answers once the call has run and is durable.
// - cluster-1-node (ops_per_s): the same with one node (no forwarding), in a schema of its own.
// - cluster-3-nodes-vs-pg-loop (ops_per_s): the three nodes against a bare `pg` loop doing what
//   the runtime's write path cannot do without, grouped as the runtime's commits were over this
//   case's samples of ours (cluster/pg-loop.ts says what it does and why it is the limit).
//
// Every case checks, before and after timing, that every key's stored count (read back from
// `<schema>.values`) is the number of 202s it had, that the nodes ran exactly the messages
// acknowledged, and that after the cluster had settled no batch failed or was fenced, no forward
// failed or was refused, no lease was lost and no node logged a warning; the peers check their own.
// After each case the figures that say what limited ours are printed: batches per commit,
// forwarded messages, and connections waiting for the nodes' PostgreSQL pools.

import { createRequire } from 'node:module';

import { PgLoop } from './cluster/pg-loop.ts';
import { startWeftCluster, type WeftCluster, type WeftClusterRun } from './cluster/weft-cluster.ts';
import { defineSuite, type BenchCase } from './harness.ts';
import { startRestateCounter, type RestateCounter } from './runtime/restate-peer.ts';
import { SharedResource } from './shared-resource.ts';

const concurrency = 32;
const keys = 10_000;
const load = { concurrency, keys } as const;

// A quick run's samples are half as long; the harness cannot tell a suite which run it is.
const quick = process.argv.includes('--quick');
const scale = (requests: number): number => (quick ? requests / 2 : requests);

/**
 * Updates in one throughput sample, on either side: a few seconds of ours at the rates seen
 * here (a few hundred per second), under a second of Restate's.
 */
const throughputRequests = scale(400);
/** Calls in one latency sample, on either side: its p99 stands on the five slowest. */
const latencyRequests = 500;
/** Samples per side: the harness's least for a full run, so the suite stays within minutes. */
const rounds = { rounds: 20, quickRounds: 10 } as const;
/** Each cluster first sends this many updates (keys 0 to n − 1), warming the nodes' JIT and pools. */
const warmupRequests = scale(2_000);
const restateWarmupMs = scale(2_000);
/** pg-loop updates per sample: at least this many, and at least two groups per connection. */
const pgLoopMinimumUpdates = scale(2_000);

// Async work over sockets throughout, with the servers in other processes: collect the young
// generation only before a sample (harness.ts).
const gc = 'minor';

function sharedCluster(nodes: number): SharedResource<WeftCluster> {
  return new SharedResource(`weft cluster of ${nodes}`, async () => {
    const cluster = await startWeftCluster({ nodes, ...load });
    try {
      await cluster.run({ requests: warmupRequests });
      const startup = await cluster.startupLog();
      if (startup.length > 0) {
        console.error(
          `    weft cluster of ${nodes}: the nodes logged ${startup.length} line(s) while joining:`,
        );
        for (const line of startup.slice(0, 5)) console.error(`      ${line.slice(0, 300)}`);
      }
      console.error(
        `    weft cluster of ${nodes}: ${cluster.baseline.leasesLost} partition leases moved while joining`,
      );
      return cluster;
    } catch (error) {
      await cluster.close();
      throw error;
    }
  });
}

const threeShared = sharedCluster(3);
const oneShared = sharedCluster(1);
const restateShared = new SharedResource('restate', () =>
  startRestateCounter({ warmup: { ...load, durationMs: restateWarmupMs } }),
);

function running<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not running: setup did not run`);
  return value;
}

/** What ours did in one case, summed over its samples, for the figures printed after it. */
class ClusterFigures {
  updates = 0;
  commits = 0;
  batches = 0;
  forwarded = 0;
  maxPoolWaiting = 0;
  p99sMs: number[] = [];

  add(run: WeftClusterRun): void {
    this.updates += run.acked.count;
    this.commits += run.delta.commits;
    this.batches += run.delta.batchesCommitted;
    this.forwarded += run.delta.forwarded;
    this.p99sMs.push(run.acked.p99Ms);
  }

  /** The pool figures are a moment's: the sum over the nodes at the end of a sample. */
  notePool(waiting: number): void {
    this.maxPoolWaiting = Math.max(this.maxPoolWaiting, waiting);
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
      `    ${what}: weft ${this.updates} updates in ${this.commits} store commits, ` +
        `${mean === undefined ? '-' : mean.toFixed(1)} batches per commit, ${this.forwarded} forwarded; ` +
        `median 202 p99 ${medianP99 === undefined ? '-' : medianP99.toFixed(1)} ms; ` +
        `up to ${this.maxPoolWaiting} queries waiting for a pool connection at a sample's end`,
    );
  }
}

async function sample(
  cluster: WeftCluster,
  figures: ClusterFigures,
  requests: number,
): Promise<WeftClusterRun> {
  const run = await cluster.run({ requests });
  figures.add(run);
  figures.notePool((await cluster.figures()).poolWaiting);
  return run;
}

const cases: BenchCase[] = [];
let three: WeftCluster | undefined;
let one: WeftCluster | undefined;
let restate: RestateCounter | undefined;

const restateSide = (metric: 'ops_per_s' | 'latency_p99_us'): NonNullable<BenchCase['peer']> => ({
  name: '@restatedev/restate-server',
  fn: async () => {
    const requests = metric === 'ops_per_s' ? throughputRequests : latencyRequests;
    const run = await running(restate, 'restate').run({ ...load, requests });
    return metric === 'ops_per_s' ? run.opsPerS : run.p99Ms * 1000;
  },
});

function againstRestate(
  name: string,
  metric: 'ops_per_s' | 'latency_p99_us',
  shared: SharedResource<WeftCluster>,
  label: string,
  which: () => WeftCluster | undefined,
  set: (cluster: WeftCluster | undefined) => void,
): BenchCase {
  const figures = new ClusterFigures();
  return {
    name,
    metric,
    selfMeasured: true,
    ...rounds,
    gc,
    ours: {
      label,
      fn: async () => {
        const cluster = running(which(), 'the weft cluster');
        if (metric === 'ops_per_s')
          return (await sample(cluster, figures, throughputRequests)).appliedOpsPerS;
        return (await sample(cluster, figures, latencyRequests)).acked.p99Ms * 1000;
      },
    },
    peer: restateSide(metric),
    setup: async () => {
      set(await shared.acquire());
      restate = await restateShared.acquire();
    },
    check: async () => {
      await running(which(), 'the weft cluster').check();
      await running(restate, 'restate').check();
    },
    teardown: () => {
      figures.print(name);
      if (which() !== undefined) shared.release();
      if (restate !== undefined) restateShared.release();
      set(undefined);
      restate = undefined;
      return undefined;
    },
  };
}

cases.push(
  againstRestate(
    'cluster-3-nodes',
    'ops_per_s',
    threeShared,
    'weft 3 nodes (postgres, http ingress)',
    () => three,
    (c) => (three = c),
  ),
  againstRestate(
    'cluster-3-nodes-p99',
    'latency_p99_us',
    threeShared,
    'weft 3 nodes (202: durable)',
    () => three,
    (c) => (three = c),
  ),
);

// ---------------------------------------------------------------------------------------
// cluster-3-nodes-vs-pg-loop

const loopFigures = new ClusterFigures();
let loop: PgLoop | undefined;
cases.push({
  name: 'cluster-3-nodes-vs-pg-loop',
  metric: 'ops_per_s',
  selfMeasured: true,
  ...rounds,
  gc,
  ours: {
    label: 'weft 3 nodes (postgres, http ingress)',
    fn: async () =>
      (await sample(running(three, 'the weft cluster'), loopFigures, throughputRequests)).appliedOpsPerS,
  },
  peer: {
    name: 'pg-loop',
    fn: async () => {
      // The harness samples ours first, so there is always a figure to match.
      const groupSize = loopFigures.meanBatches();
      if (groupSize === undefined) throw new Error('pg-loop: no sample of ours to take the group size from');
      const updates = Math.max(pgLoopMinimumUpdates, concurrency * Math.ceil(groupSize) * 2);
      return (await running(loop, 'the pg loop').run({ groupSize, updates })).opsPerS;
    },
  },
  setup: async () => {
    three = await threeShared.acquire();
    loop = await PgLoop.open(load);
    // Every key written once, so the loop's table is as large as the runtime's.
    await loop.run({ groupSize: 50, updates: keys });
  },
  check: async () => {
    await running(three, 'the weft cluster').check();
    await running(loop, 'the pg loop').check();
  },
  teardown: async () => {
    const mean = loopFigures.meanBatches();
    loopFigures.print('cluster-3-nodes-vs-pg-loop');
    console.error(`    pg-loop group size: ${mean === undefined ? '-' : mean.toFixed(1)} updates per group`);
    if (three !== undefined) threeShared.release();
    three = undefined;
    await loop?.close();
    loop = undefined;
  },
});

cases.push(
  againstRestate(
    'cluster-1-node',
    'ops_per_s',
    oneShared,
    'weft 1 node (postgres, http ingress)',
    () => one,
    (c) => (one = c),
  ),
);

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
    `workload: one counter per key, +1 per call; ${concurrency} calls in flight over ${keys} keys in turn`,
    'cluster-*: weft start --example --postgres (dist/), nodes on loopback sharing the PostgreSQL on this machine ' +
      'in a fresh schema; key i to node i mod n; counted once applied (the inbox is empty), p99 of the 202s (durable)',
    `restate-server ${packageVersion('@restatedev/restate-server')} with @restatedev/restate-sdk ` +
      `${packageVersion('@restatedev/restate-sdk')}, one node, default durability; answers once run and durable`,
    'cluster-3-nodes-vs-pg-loop: pg, 32 connections, per group an append transaction and a read-update-consume ' +
      "transaction, the group the size of the runtime's batches per commit in the same case",
  ],
});
