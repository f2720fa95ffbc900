// The cluster under chaos: three Weft nodes (cluster-node.ts, each its own process) share one
// PostgreSQL schema and take HTTP ingress on all of them from 32 concurrent clients. Twenty rounds,
// each: kill -9 one node and restart it, kill -9 another and restart it, add a fourth node, and
// stop one gracefully (it leaves), so every round ends with three nodes again and ownership of the
// partitions moves four times. Afterwards every acknowledged message was applied exactly once
// (each key's count is the number of messages acknowledged for it), each fired exactly one delayed
// message, and each egress record is in the JetStream stream exactly once (the stream drops a
// redelivery by its message id, the outbox seq: duplicates past the dedup id are what is counted).
//
// A client retries a message with the same Idempotency-Key on another node until it is answered
// 202, so no acknowledged message is abandoned and none is stored twice.
//
// Real processes and real time; the schedule comes from a seeded random source (the seed is
// printed; WEFT_CHAOS_SEED=<seed> reruns the same schedule, though not the same interleaving).
// Needs PostgreSQL and NATS with JetStream (skipped with a reason when absent).
//
// Twenty rounds of node starts take minutes: @weft-test-timeout 900000 (scripts/test.mjs).

import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { connect, nanos } from 'nats';
import pg from 'pg';

import { PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import { natsService, postgresService, serviceGate } from '../../src/testing/index.ts';
import { freePort } from '../e2e/node-process.ts';
import { postgresConnection } from '../postgres-connection.ts';
import { NodeProcess } from './chaos-process.ts';
import {
  counterAddress,
  countSpec,
  delayedSpec,
  keyName,
  seededRandom,
  type EgressValue,
  type NodeState,
} from './chaos-workload.ts';
import type { ClusterNodeConfig } from './cluster-node.ts';
import { findProblems, readStream } from './crash-checks.ts';
import { getJson, Traffic } from './crash-traffic.ts';

const ROUNDS = Number(process.env['WEFT_CLUSTER_CHAOS_ROUNDS'] ?? 20);
const CONCURRENCY = 32;
const KEYS = 200;
/** Messages added to the load at each step of a round, and at the end. */
const STEP_MESSAGES = { min: 100, max: 300 };
const FINAL_MESSAGES = 500;
/** How long the load runs between two steps. */
const PAUSE_MS = { min: 100, max: 600 };
const SETTLE_TIMEOUT_MS = 60_000;

const NODE_SCRIPT = fileURLToPath(new URL('./cluster-node.ts', import.meta.url));

const natsGate = await serviceGate(natsService);
const postgresGate = await serviceGate(postgresService);

interface ClusterMember {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly process: NodeProcess;
}

test(
  'three nodes on one PostgreSQL, 20 rounds of kill -9, restart, add and remove under load: every acknowledged message applied once, delayed messages fire once, egress once past its dedup id',
  { skip: natsGate.skip || postgresGate.skip, timeout: 900_000 },
  async (t) => {
    const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? randomInt(2 ** 31));
    if (!Number.isSafeInteger(seed)) throw new Error('WEFT_CHAOS_SEED must be an integer');
    t.diagnostic(`seed ${seed} (WEFT_CHAOS_SEED=${seed} reruns this schedule)`);
    const random = seededRandom(seed);
    const between = (range: { min: number; max: number }): number =>
      range.min + Math.floor(random() * (range.max - range.min + 1));
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

    const run = randomBytes(4).toString('hex');
    const schema = `weft_cluster_chaos_${run}`;
    const streamName = `WEFT_CLUSTER_CHAOS_${run}`;
    const subject = `weft.cluster-chaos.${run}`;
    const secret = randomBytes(24).toString('base64url');
    const dataRoot = await mkdtemp(path.join(tmpdir(), 'weft-cluster-chaos-'));
    const pool = new pg.Pool({ ...postgresConnection(postgresGate.url), max: 2 });
    const traffic = new Traffic(seededRandom(seed ^ 0x5eed), {
      concurrency: CONCURRENCY,
      keys: KEYS,
      ingressPrefix: '/v1/ingress',
    });
    const members: ClusterMember[] = [];
    const everyProcess: NodeProcess[] = [];
    t.after(async () => {
      traffic.stop();
      await Promise.all(everyProcess.map((node) => node.kill()));
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
      await rm(dataRoot, { recursive: true, force: true });
    });
    const nats = await connect({ servers: natsGate.url });
    t.after(async () => {
      await (await nats.jetstreamManager()).streams.delete(streamName).catch(() => undefined);
      await nats.close();
    });
    const streams = await nats.jetstreamManager();
    await streams.streams.add({
      name: streamName,
      subjects: [subject],
      duplicate_window: nanos(30 * 60_000),
    });

    let nodeCount = 0;
    const newMember = async (): Promise<ClusterMember> => {
      nodeCount += 1;
      const name = `node-${nodeCount}`;
      const port = await freePort();
      const config: ClusterNodeConfig = {
        name,
        port,
        seeds: members.map((member) => member.url),
        dataDir: path.join(dataRoot, name),
        secret,
        postgresUrl: postgresGate.url,
        schema,
        natsUrl: natsGate.url,
        subject,
        msgIdPrefix: `cluster-chaos-${run}-`,
      };
      const node = new NodeProcess(NODE_SCRIPT, config, (error) => {
        traffic.fail(error);
      });
      everyProcess.push(node);
      await node.start();
      const member = { name, port, url: `http://127.0.0.1:${port}`, process: node };
      members.push(member);
      return member;
    };
    const serveOnAll = (): void => {
      traffic.serveOn(members.map((member) => member.port));
    };
    const killAndRestart = async (member: ClusterMember): Promise<void> => {
      traffic.serveOn(members.filter((m) => m !== member).map((m) => m.port));
      await member.process.kill();
      await sleep(between(PAUSE_MS));
      await member.process.start();
      serveOnAll();
    };
    const stopGracefully = async (member: ClusterMember): Promise<void> => {
      members.splice(members.indexOf(member), 1);
      serveOnAll();
      await member.process.stop();
    };

    for (let i = 0; i < 3; i++) await newMember();
    await ownershipSettled(members);
    serveOnAll();
    const workers = traffic.start();
    const steps: string[] = [];
    const started = performance.now();
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        traffic.addBudget(between(STEP_MESSAGES));
        await sleep(between(PAUSE_MS));
        const first = pick(members);
        await killAndRestart(first);
        traffic.addBudget(between(STEP_MESSAGES));
        await sleep(between(PAUSE_MS));
        const second = pick(members.filter((m) => m !== first));
        await killAndRestart(second);
        traffic.addBudget(between(STEP_MESSAGES));
        await sleep(between(PAUSE_MS));
        const added = await newMember();
        serveOnAll();
        traffic.addBudget(between(STEP_MESSAGES));
        await sleep(between(PAUSE_MS));
        const removed = pick(members);
        await stopGracefully(removed);
        steps.push(
          `${round}: kill ${first.name}, kill ${second.name}, add ${added.name}, remove ${removed.name} (${traffic.acknowledged.size} acked)`,
        );
        traffic.throwIfFailed();
      }
      traffic.addBudget(FINAL_MESSAGES);
      await traffic.allAcknowledged();
    } finally {
      traffic.stop();
    }
    await workers;
    traffic.throwIfFailed();
    const sending = performance.now();

    let state: NodeState;
    let records: EgressValue[];
    try {
      await settle(pool, schema);
      state = await readCounts(pool, schema);
      records = await readStream(streams, nats, streamName);
    } catch (error) {
      throw new Error(`settling failed; the last log lines:\n${logTails(members)}`, { cause: error });
    }
    const fenced = await Promise.all(
      members.map(async (member) => {
        const status = await getJson<{ cluster?: { fencedBatches: number; leasesAcquired: number } }>(
          member.port,
          '/v1/status',
        );
        return `${member.name}: ${status.cluster?.leasesAcquired ?? 0} leases taken, ${status.cluster?.fencedBatches ?? 0} batches fenced`;
      }),
    );
    t.diagnostic(`rounds: ${steps.join('; ')}`);
    t.diagnostic(
      `${traffic.acknowledged.size} messages acknowledged (${traffic.duplicates} as duplicates of a send stored ` +
        `before its answer was lost), ${traffic.connectionFailures} requests cut by a kill, ${traffic.busy} answered 503; ` +
        `${records.length} records in the stream; ${fenced.join(', ')}`,
    );
    t.diagnostic(
      `sending with chaos ${Math.round(sending - started)} ms, settling ${Math.round(performance.now() - sending)} ms`,
    );
    assert.deepEqual(
      findProblems(KEYS, traffic.acknowledged, state, records),
      [],
      `seed ${seed}; the last log lines:\n${logTails(members)}`,
    );
  },
);

/** Waits until the live members hold every partition between them, none moving. */
async function ownershipSettled(members: readonly ClusterMember[]): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const held = await Promise.all(
      members.map(async (member) => {
        const status = await getJson<{ cluster?: { partitionsHeld: number; partitionsMoving: number } }>(
          member.port,
          '/v1/status',
        );
        return status.cluster;
      }),
    );
    const total = held.reduce((sum, cluster) => sum + (cluster?.partitionsHeld ?? 0), 0);
    if (total === 1024 && held.every((cluster) => cluster?.partitionsMoving === 0)) return;
    if (performance.now() > deadline) throw new Error(`ownership did not settle: ${JSON.stringify(held)}`);
    await sleep(100);
  }
}

/** Waits until nothing waits in the store: no inbox message, delayed message or outbox record. */
async function settle(pool: pg.Pool, schema: string): Promise<void> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let quietPolls = 0;
  let counts: unknown;
  while (quietPolls < 3) {
    if (performance.now() > deadline) {
      throw new Error(`the cluster did not settle within ${SETTLE_TIMEOUT_MS} ms: ${JSON.stringify(counts)}`);
    }
    await sleep(200);
    const { rows } = await pool.query<{ inbox: string; timers: string; outbox: string }>(
      `SELECT (SELECT count(*) FROM "${schema}".inbox) AS inbox,
              (SELECT count(*) FROM "${schema}".timers) AS timers,
              (SELECT count(*) FROM "${schema}".outbox) AS outbox`,
    );
    counts = rows[0];
    const quiet = rows[0]?.inbox === '0' && rows[0].timers === '0' && rows[0].outbox === '0';
    quietPolls = quiet ? quietPolls + 1 : 0;
  }
}

/** Each key's count and delayed count, read from the cluster's store. */
async function readCounts(pool: pg.Pool, schema: string): Promise<NodeState> {
  const store = await PostgresStateStore.open({ pool, schema });
  const state: Record<string, { count: number; delayed: number }> = {};
  for (let i = 0; i < KEYS; i++) {
    const key = keyName(i);
    const values = await store.readState(counterAddress(key), Date.now());
    const read = (name: string): number => {
      const entry = values.get(name);
      return entry === undefined ? 0 : countSpec.type.deserialize(entry.value);
    };
    state[key] = { count: read(countSpec.name), delayed: read(delayedSpec.name) };
  }
  return state;
}

function logTails(members: readonly ClusterMember[]): string {
  return members.map((member) => `--- ${member.name}\n${member.process.logTail()}`).join('\n');
}
