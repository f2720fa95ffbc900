// Crash tests: a runtime node (runtime-node.ts, its own process) on lmdb or PostgreSQL takes
// HTTP ingress from 32 concurrent clients and is killed with SIGKILL at random moments, 20 times,
// each time restarted on the same data. Afterwards every acknowledged message was applied once
// (each key's count is the number of messages acknowledged for it), each fired exactly one
// delayed message, and each egress record is in the JetStream stream exactly once.
//
// A client retries a message with the same Idempotency-Key until it is answered 202, across
// restarts: a message the node stored but died before acknowledging comes back as a duplicate,
// so every message sent is acknowledged exactly once in the end and none is abandoned.
//
// Real processes and real time: the kill moments come from a seeded random source (the seed is
// printed; WEFT_CHAOS_SEED=<seed> reruns the same schedule, though not the same interleaving).
// Needs NATS with JetStream, and PostgreSQL for the second test (skipped with a reason when
// absent).

import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { connect, nanos } from 'nats';
import pg from 'pg';

import { natsService, postgresService, serviceGate } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';
import { NodeProcess } from './chaos-process.ts';
import {
  STATE_PATH,
  STATS_PATH,
  seededRandom,
  type ChaosNodeConfig,
  type EgressValue,
  type NodeState,
  type NodeStats,
} from './chaos-workload.ts';
import { findProblems, readStream } from './crash-checks.ts';
import { getJson, Traffic } from './crash-traffic.ts';

const KILLS = 20;
const CONCURRENCY = 32;
const KEYS = 200;
/** New messages each life may send, and how long after it serves it is killed. */
const LIFE_MESSAGES = { min: 200, max: 1_200 };
const LIFE_MS = { min: 0, max: 1_000 };
const FINAL_MESSAGES = 500;
const SETTLE_TIMEOUT_MS = 30_000;

const NODE_SCRIPT = fileURLToPath(new URL('./runtime-node.ts', import.meta.url));

const natsGate = await serviceGate(natsService);
const postgresGate = await serviceGate(postgresService);

describe('runtime crash recovery', () => {
  test(
    'on lmdb, killed 20 times under HTTP load: acknowledged messages apply once, delayed messages fire once, egress reaches JetStream once',
    { skip: natsGate.skip, timeout: 180_000 },
    async (t) => {
      // No dot in the name: lmdb-js takes a path with an extension for a file.
      const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-chaos-'));
      await crashTest(t, { kind: 'lmdb', dataDir }, () => rm(dataDir, { recursive: true, force: true }));
    },
  );

  test(
    'on PostgreSQL, killed 20 times under HTTP load: acknowledged messages apply once, delayed messages fire once, egress reaches JetStream once',
    { skip: natsGate.skip || postgresGate.skip, timeout: 180_000 },
    async (t) => {
      const schema = `weft_chaos_${randomBytes(6).toString('hex')}`;
      await crashTest(t, { kind: 'postgres', url: postgresGate.url, schema }, async () => {
        const pool = new pg.Pool({ ...postgresConnection(postgresGate.url), max: 1 });
        try {
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await pool.end();
        }
      });
    },
  );
});

/** Runs the crash test on `store`; `removeStore` deletes its data once no node runs on it. */
async function crashTest(
  t: TestContext,
  store: ChaosNodeConfig['store'],
  removeStore: () => Promise<void>,
): Promise<void> {
  const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? randomInt(2 ** 31));
  if (!Number.isSafeInteger(seed)) throw new Error('WEFT_CHAOS_SEED must be an integer');
  t.diagnostic(`seed ${seed} (WEFT_CHAOS_SEED=${seed} reruns this kill schedule)`);
  const random = seededRandom(seed);
  const between = (range: { min: number; max: number }): number =>
    range.min + Math.floor(random() * (range.max - range.min + 1));
  const started = performance.now();

  const run = randomBytes(4).toString('hex');
  const streamName = `WEFT_CHAOS_${run}`;
  const subject = `weft.chaos.${run}`;
  const traffic = new Traffic(seededRandom(seed ^ 0x5eed), {
    concurrency: CONCURRENCY,
    keys: KEYS,
    ingressPrefix: '/ingress',
  });
  // A node that dies unkilled is a failure: the clients would otherwise retry forever.
  const node = new NodeProcess(
    NODE_SCRIPT,
    { store, natsUrl: natsGate.url, subject, msgIdPrefix: `chaos-${run}-`, keys: KEYS },
    (error) => {
      traffic.fail(error);
    },
  );
  // Hooks run in the order registered: no node outlives the test, and its data goes after it.
  t.after(async () => {
    traffic.stop();
    await node.kill();
    await removeStore();
  });
  const nats = await connect({ servers: natsGate.url });
  t.after(async () => {
    await (await nats.jetstreamManager()).streams.delete(streamName).catch(() => undefined);
    await nats.close();
  });
  const streams = await nats.jetstreamManager();
  // The duplicate window outlasts the test: every redelivery of a record is recognised.
  await streams.streams.add({ name: streamName, subjects: [subject], duplicate_window: nanos(10 * 60_000) });
  const workers = traffic.start();

  const lives: string[] = [];
  try {
    for (let life = 0; life < KILLS; life++) {
      const port = await node.start();
      const messages = between(LIFE_MESSAGES);
      const killAfterMs = between(LIFE_MS);
      traffic.beginLife(port, messages);
      await sleep(killAfterMs);
      traffic.endLife();
      await node.kill();
      lives.push(`${killAfterMs} ms/${traffic.acknowledgedInLife} acks`);
      traffic.throwIfFailed();
    }
    const port = await node.start();
    traffic.beginLife(port, FINAL_MESSAGES);
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
    const port = node.port();
    await settle(port);
    state = await getJson<NodeState>(port, STATE_PATH);
    records = await readStream(streams, nats, streamName);
  } catch (error) {
    throw new Error(`settling failed; the node's last log lines:\n${node.logTail()}`, { cause: error });
  }
  const finished = performance.now();
  t.diagnostic(`lives (kill moment / messages acknowledged in it): ${lives.join(', ')}`);
  t.diagnostic(
    `${traffic.acknowledged.size} messages acknowledged (${traffic.duplicates} as duplicates of a send the node stored ` +
      `but died before answering), ${traffic.connectionFailures} requests cut by a kill, ${traffic.busy} answered 503; ` +
      `${records.length} records in the stream`,
  );
  t.diagnostic(`the node's log: ${node.logSummary()}`);
  t.diagnostic(
    `sending with kills ${Math.round(sending - started)} ms, settling and reading ${Math.round(finished - sending)} ms`,
  );
  assert.deepEqual(
    findProblems(KEYS, traffic.acknowledged, state, records),
    [],
    `seed ${seed}; the node's last log lines:\n${node.logTail()}`,
  );
}

/** Waits until the node has run every message, fired every delayed one and emptied its outbox. */
async function settle(port: number): Promise<void> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let quietPolls = 0;
  let stats: NodeStats | undefined;
  while (quietPolls < 2) {
    if (performance.now() > deadline) {
      throw new Error(`the node did not settle within ${SETTLE_TIMEOUT_MS} ms: ${JSON.stringify(stats)}`);
    }
    await sleep(100);
    stats = await getJson<NodeStats>(port, STATS_PATH);
    const quiet =
      stats.inboxMessages === 0 &&
      stats.delayedMessages === 0 &&
      stats.outboxRecords === 0 &&
      stats.runningBatches === 0;
    quietPolls = quiet ? quietPolls + 1 : 0;
  }
}
