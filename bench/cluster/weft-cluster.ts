// Our side of the cluster suite: `nodes` Weft node processes (the compiled CLI, dist/cli/main.js,
// `weft start --example`) sharing one PostgreSQL schema of their own (`weft_bench_<random>`,
// dropped on close), joined through the first node as seed, and this process as their load
// client through their HTTP ingress (ingress-client.ts) with the runtime suite's workload
// (runtime/workload.ts: `concurrency` requests in flight over `keys` keys in turn).
//
// A run counts an update once it is applied, as the runtime suite does: the 202 comes once the
// message is durable in its owner's inbox (in PostgreSQL), and the counter runs after; so the
// time runs from the first request until the schema's inbox is empty, which it is only once
// every acknowledged message has been consumed by a commit that also wrote its count (the store
// deletes a message in the same transaction as the batch's state). Latencies are the 202s'.
//
// `check` reads every key's count back from `<schema>.values` and compares it with the 202s this
// process had for it, and fails on any failed or fenced batch, failed or refused forward, lost
// lease, or line a node logged (they run at log level warn, so every line is a warning or worse).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import type { NodeStats } from '../../src/node/node-stats.ts';
import { loadStatefun } from '../statefun/load-statefun.ts';
import { freePort } from '../node/free-ports.ts';
import {
  checkLoad,
  counterKey,
  KeyCounts,
  runClosedLoop,
  type LoadResult,
  type LoadSize,
} from '../runtime/workload.ts';
import { ClusterIngressClient, exampleCounter } from './ingress-client.ts';
import { dropSchema, freshSchema, postgresConfig, postgresUrl } from './postgres.ts';

const cliEntry = path.resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
/** The runtime's partitions (src/runtime/cluster/partition.ts DEFAULT_PARTITIONS). */
const partitions = 1024;
const readyTimeoutMs = 60_000;
const settleTimeoutMs = 60_000;
const stopTimeoutMs = 30_000;
const statusTimeoutMs = 5_000;
const logTailChars = 4_096;
/** How often a settling run asks whether the inbox is empty. */
const settlePollMs = 2;

export interface WeftClusterOptions {
  readonly nodes: number;
  readonly concurrency: number;
  readonly keys: number;
}

type ClusterStats = NonNullable<NodeStats['cluster']>;
type RuntimeStats = NonNullable<NodeStats['runtime']>;

/** Figures summed over the nodes' `GET /v1/status`. */
export interface ClusterFigures {
  readonly commits: number;
  readonly batchesCommitted: number;
  readonly messagesIn: number;
  readonly messagesProcessed: number;
  readonly batchFailures: number;
  readonly fencedBatches: number;
  readonly forwarded: number;
  readonly forwardRefused: number;
  readonly forwardFailed: number;
  readonly leasesLost: number;
  readonly poolWaiting: number;
  readonly poolTotal: number;
  readonly poolSize: number;
}

export interface WeftClusterRun {
  /** The 202s: their rate and latencies (until durable). */
  readonly acked: LoadResult;
  /** Updates per second from the first request until every acknowledged one was applied. */
  readonly appliedOpsPerS: number;
  /** The run's figures: the difference of the nodes' sums before and after it. */
  readonly delta: ClusterFigures;
}

export interface WeftCluster {
  readonly nodes: number;
  readonly schema: string;
  run(size: LoadSize): Promise<WeftClusterRun>;
  /**
   * Adds once more to a few keys, waits until everything is applied, then throws unless every
   * key's stored count is the number of 202s it had and no node had trouble. Resolves with the
   * keys compared.
   */
  check(): Promise<number>;
  /** The nodes' figures, summed. */
  figures(): Promise<ClusterFigures>;
  /** The figures once the cluster had settled, before any load: joining's lease moves. */
  readonly baseline: ClusterFigures;
  /** The lines the nodes logged while joining, before the cluster had settled. */
  startupLog(): Promise<string[]>;
  /** Stops the nodes (SIGTERM), removes their directory and drops the schema; safe to call twice. */
  close(): Promise<void>;
}

interface NodeProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

// Nodes still running when this process exits are killed, so none outlive a run.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function spawnNode(
  name: string,
  port: number,
  seeds: readonly string[],
  dataDir: string,
  configFile: string,
  secret: string,
): NodeProcess {
  const logFile = path.join(dataDir, `${name}.log`);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('WEFT_')) env[key] = value;
  }
  env['WEFT_CLUSTER_SECRET'] = secret;
  const args = [
    cliEntry,
    'start',
    '--config',
    configFile,
    '--name',
    name,
    '--port',
    String(port),
    '--data-dir',
    path.join(dataDir, name),
    ...seeds.flatMap((seed) => ['--seed', seed]),
    '--example',
    '--log-level',
    'warn',
  ];
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { env, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  running.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
    child.once('error', () => {
      running.delete(child);
      resolve();
    });
  });
  return { name, url: `http://127.0.0.1:${port}`, port, logFile, child, exited };
}

async function status(node: NodeProcess): Promise<NodeStats> {
  const response = await fetch(`${node.url}/v1/status`, { signal: AbortSignal.timeout(statusTimeoutMs) });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`${node.name}: GET /v1/status answered ${response.status}`);
  }
  return (await response.json()) as NodeStats;
}

function sections(stats: NodeStats, name: string): { cluster: ClusterStats; runtime: RuntimeStats } {
  const { cluster, runtime } = stats;
  if (cluster === undefined || runtime === undefined) {
    throw new Error(`${name}: /v1/status has no cluster or runtime section: not a clustered runtime`);
  }
  return { cluster, runtime };
}

function sumFigures(all: readonly { cluster: ClusterStats; runtime: RuntimeStats }[]): ClusterFigures {
  const sum = (pick: (s: { cluster: ClusterStats; runtime: RuntimeStats }) => number): number =>
    all.reduce((total, s) => total + pick(s), 0);
  return {
    commits: sum((s) => s.cluster.commits),
    batchesCommitted: sum((s) => s.cluster.batchesCommitted),
    messagesIn: sum((s) => s.runtime.messagesIn),
    messagesProcessed: sum((s) => s.runtime.messagesProcessed),
    batchFailures: sum((s) => s.runtime.batchFailures),
    fencedBatches: sum((s) => s.cluster.fencedBatches),
    forwarded: sum((s) => s.cluster.forwarded),
    forwardRefused: sum((s) => s.cluster.forwardRefused),
    forwardFailed: sum((s) => s.cluster.forwardFailed),
    leasesLost: sum((s) => s.cluster.leasesLost),
    poolWaiting: sum((s) => s.cluster.pool?.waiting ?? 0),
    poolTotal: sum((s) => s.cluster.pool?.total ?? 0),
    poolSize: sum((s) => s.cluster.pool?.size ?? 0),
  };
}

function difference(after: ClusterFigures, before: ClusterFigures): ClusterFigures {
  const out: Record<string, number> = {};
  for (const key of Object.keys(after) as (keyof ClusterFigures)[]) out[key] = after[key] - before[key];
  return out as unknown as ClusterFigures;
}

async function logTails(nodes: readonly NodeProcess[]): Promise<string> {
  let text = '';
  for (const node of nodes) {
    const log = await readFile(node.logFile, 'utf8').catch(() => '');
    text += `\n--- ${node.name}.log (end) ---\n${log.slice(-logTailChars)}`;
  }
  return text;
}

/** Waits until every node sees every other and the partitions' leases are all held, none moving. */
async function waitConverged(nodes: readonly NodeProcess[]): Promise<void> {
  const deadline = performance.now() + readyTimeoutMs;
  let last = 'no status yet';
  while (performance.now() < deadline) {
    try {
      const all = await Promise.all(nodes.map(async (n) => sections(await status(n), n.name).cluster));
      const held = all.reduce((total, c) => total + c.partitionsHeld, 0);
      const moving = all.reduce((total, c) => total + c.partitionsMoving, 0);
      const live = all.map((c) => c.liveMembers);
      if (held === partitions && moving === 0 && live.every((l) => l === nodes.length)) return;
      last = `${held} of ${partitions} partitions held, ${moving} moving, live members ${live.join('/')}`;
    } catch (error) {
      last = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    }
    for (const node of nodes) {
      if (node.child.exitCode !== null || node.child.signalCode !== null)
        throw new Error(`${node.name} exited while starting`);
    }
    await sleep(100);
  }
  throw new Error(`the cluster did not settle within ${readyTimeoutMs} ms (last: ${last})`);
}

/** Starts the nodes and waits until they hold every partition between them, none moving. */
export async function startWeftCluster(options: WeftClusterOptions): Promise<WeftCluster> {
  const { nodes: count, concurrency, keys } = options;
  checkLoad({ concurrency, keys, requests: 1 });
  if (!Number.isSafeInteger(count) || count < 1 || count > 16) {
    throw new RangeError(`nodes must be an integer from 1 to 16, got ${String(count)}`);
  }
  const sdk = await loadStatefun();
  const schema = freshSchema('weft_bench');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-bench-cluster-'));
  const configFile = path.join(dataDir, 'node.config.json');
  await writeFile(configFile, JSON.stringify({ runtime: { postgres: postgresUrl, postgresSchema: schema } }));
  const secret = `bench-${schema}`;
  const nodes: NodeProcess[] = [];
  const monitor = new pg.Client(postgresConfig());
  /** Each node's log up to when the cluster had settled: joining, which `startupLog` reports. */
  const startupLogBytes = new Map<string, number>();
  let monitorOpen = false;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      for (const node of nodes) node.child.kill('SIGTERM');
      await Promise.all(
        nodes.map(async (node) => {
          const timer = setTimeout(() => node.child.kill('SIGKILL'), stopTimeoutMs);
          await node.exited;
          clearTimeout(timer);
        }),
      );
      if (monitorOpen) await monitor.end();
      await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
      await dropSchema(schema);
    })());

  try {
    // The first node makes the schema; the others join through it.
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      let port = await freePort();
      while (ports.includes(port)) port = await freePort();
      ports.push(port);
    }
    const firstPort = ports[0] ?? 0;
    nodes.push(spawnNode('n0', firstPort, [], dataDir, configFile, secret));
    await waitConverged(nodes.slice(0, 1));
    for (let i = 1; i < count; i++) {
      nodes.push(
        spawnNode(`n${i}`, ports[i] ?? 0, [`http://127.0.0.1:${firstPort}`], dataDir, configFile, secret),
      );
    }
    await waitConverged(nodes);
    await monitor.connect();
    monitorOpen = true;
    for (const node of nodes) startupLogBytes.set(node.name, (await stat(node.logFile)).size);
  } catch (error) {
    const tails = await logTails(nodes);
    await close();
    throw new Error(`${(error as Error).message}${tails}`, { cause: error });
  }

  const figures = async (): Promise<ClusterFigures> =>
    sumFigures(await Promise.all(nodes.map(async (n) => sections(await status(n), n.name))));
  const baseline = await figures();
  /** What each node logged after the cluster had settled (log level warn: warnings and errors). */
  const loggedSinceStart = async (): Promise<string[]> =>
    (
      await Promise.all(
        nodes.map(async (n) =>
          (await readFile(n.logFile))
            .subarray(startupLogBytes.get(n.name) ?? 0)
            .toString('utf8')
            .trim(),
        ),
      )
    ).filter((text) => text !== '');
  const startupLog = async (): Promise<string[]> =>
    (
      await Promise.all(
        nodes.map(async (n) =>
          (await readFile(n.logFile)).subarray(0, startupLogBytes.get(n.name) ?? 0).toString('utf8'),
        ),
      )
    ).flatMap((text) => text.split('\n').filter((line) => line.trim() !== ''));

  const inboxTable = `"${schema}"."inbox"`;
  /** Resolves once the schema's inbox is empty: every message acknowledged so far is applied. */
  const settle = async (): Promise<void> => {
    const deadline = performance.now() + settleTimeoutMs;
    for (;;) {
      const { rows } = await monitor.query<{ pending: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${inboxTable}) AS pending`,
      );
      if (rows[0]?.pending !== true) return;
      if (performance.now() > deadline) {
        throw new Error(`the cluster still had inbox messages ${settleTimeoutMs} ms after the last 202`);
      }
      await sleep(settlePollMs);
    }
  };

  const client = new ClusterIngressClient(
    nodes.map((n) => n.port),
    concurrency,
  );
  const counts = new KeyCounts(keys);
  let acknowledged = 0;
  let nextKey = 0;
  const add = async (key: number): Promise<void> => {
    await client.add(key);
    counts.next(key);
    acknowledged += 1;
  };
  let last: ClusterFigures | undefined;
  const run = async (size: LoadSize): Promise<WeftClusterRun> => {
    const before = (last ??= await figures());
    const start = performance.now();
    let acked: LoadResult;
    try {
      acked = await runClosedLoop({ concurrency, keys, firstKey: nextKey, ...size }, add);
      nextKey = (nextKey + acked.count) % keys;
      await settle();
    } catch (error) {
      // What the nodes said about it, if anything.
      throw new Error(`weft cluster: ${(error as Error).message}${await logTails(nodes)}`, { cause: error });
    }
    const elapsedMs = performance.now() - start;
    const after = await figures();
    last = after;
    return { acked, appliedOpsPerS: (acked.count * 1000) / elapsedMs, delta: difference(after, before) };
  };

  const valuesTable = `"${schema}"."values"`;
  const check = async (): Promise<number> => {
    await run({ requests: concurrency * 2 });
    const sums = await figures();
    const logged = await loggedSinceStart();
    const leasesLost = sums.leasesLost - baseline.leasesLost;
    const trouble = [
      sums.messagesProcessed !== acknowledged &&
        `the nodes ran ${sums.messagesProcessed} messages, not the ${acknowledged} acknowledged`,
      sums.batchFailures > 0 && `${sums.batchFailures} batches failed`,
      sums.fencedBatches > 0 && `${sums.fencedBatches} batches fenced`,
      sums.forwardFailed > 0 && `${sums.forwardFailed} forwards failed`,
      sums.forwardRefused > 0 && `${sums.forwardRefused} forwards refused`,
      leasesLost > 0 && `${leasesLost} leases lost after the cluster had settled`,
      logged.length > 0 && `${logged.length} node(s) logged warnings or errors`,
    ].filter((line) => line !== false);
    if (trouble.length > 0) {
      throw new Error(`weft cluster: ${trouble.join('; ')}\n${logged.join('\n').slice(-logTailChars)}`);
    }
    const { rows } = await monitor.query<{ id: string; value: Buffer }>(
      `SELECT id, value FROM ${valuesTable} WHERE namespace = $1 AND type = $2 AND name = 'count'`,
      [exampleCounter.namespace, exampleCounter.type],
    );
    const stored = new Map(rows.map((row) => [row.id, sdk.intType.deserialize(row.value)]));
    if (stored.size > keys) throw new Error(`weft cluster: ${stored.size} counters stored for ${keys} keys`);
    for (let key = 0; key < keys; key++) {
      const holds = stored.get(counterKey(key)) ?? 0;
      if (holds !== counts.get(key)) {
        throw new Error(`weft cluster: ${counterKey(key)} holds ${holds}, but had ${counts.get(key)} 202s`);
      }
    }
    return keys;
  };

  return {
    nodes: count,
    schema,
    run,
    check,
    figures,
    baseline,
    startupLog,
    close: async () => {
      client.close();
      await close();
    },
  };
}
