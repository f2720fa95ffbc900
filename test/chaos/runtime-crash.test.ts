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
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { connect, nanos, type JetStreamManager, type NatsConnection } from 'nats';
import pg from 'pg';

import { natsService, postgresService, serviceGate } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';
import {
  STATE_PATH,
  STATS_PATH,
  bumpType,
  keyName,
  seededRandom,
  type ChaosNodeConfig,
  type EgressValue,
  type NodeState,
  type NodeStats,
  type ReadyLine,
} from './chaos-workload.ts';

const KILLS = 20;
const CONCURRENCY = 32;
const KEYS = 200;
/** New messages each life may send, and how long after it serves it is killed. */
const LIFE_MESSAGES = { min: 200, max: 1_200 };
const LIFE_MS = { min: 0, max: 1_000 };
const FINAL_MESSAGES = 500;
const START_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;

const NODE_SCRIPT = fileURLToPath(new URL('./runtime-node.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

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
  const traffic = new Traffic(seededRandom(seed ^ 0x5eed));
  // A node that dies unkilled is a failure: the clients would otherwise retry forever.
  const node = new NodeProcess(
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
    findProblems(traffic.acknowledged, state, records),
    [],
    `seed ${seed}; the node's last log lines:\n${node.logTail()}`,
  );
}

/** Every record in the stream, in stream order. */
async function readStream(
  manager: JetStreamManager,
  nats: NatsConnection,
  name: string,
): Promise<EgressValue[]> {
  const total = (await manager.streams.info(name)).state.messages;
  const consumer = await nats.jetstream().consumers.get(name);
  const records: EgressValue[] = [];
  while (records.length < total) {
    const before = records.length;
    const batch = await consumer.fetch({ max_messages: Math.min(5_000, total - before), expires: 2_000 });
    for await (const message of batch) records.push(message.json<EgressValue>());
    if (records.length === before)
      throw new Error(`read ${before} of the stream's ${total} records, then nothing`);
  }
  return records;
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

/**
 * What contradicts "each acknowledged message applied once": per key, `count` and `delayed` equal
 * the messages acknowledged for it, and its bump and fired records number 1…count once each and
 * name exactly those messages, once each.
 */
function findProblems(
  acknowledged: ReadonlyMap<number, string>,
  state: NodeState,
  records: readonly EgressValue[],
): string[] {
  const problems: string[] = [];
  const expected = new Map<string, Set<number>>();
  for (const [msg, key] of acknowledged) {
    let messages = expected.get(key);
    if (messages === undefined) expected.set(key, (messages = new Set()));
    messages.add(msg);
  }
  const recordsByKey = new Map<string, EgressValue[]>();
  for (const record of records) {
    let list = recordsByKey.get(record.key);
    if (list === undefined) recordsByKey.set(record.key, (list = []));
    list.push(record);
  }
  if (records.length !== 2 * acknowledged.size) {
    problems.push(`${records.length} records in the stream, expected ${2 * acknowledged.size}`);
  }
  for (let i = 0; i < KEYS; i++) {
    const key = keyName(i);
    const messages = expected.get(key) ?? new Set<number>();
    const values = state[key] ?? { count: 0, delayed: 0 };
    if (values.count !== messages.size)
      problems.push(`${key}: count ${values.count}, acknowledged ${messages.size}`);
    if (values.delayed !== messages.size) {
      problems.push(`${key}: delayed ${values.delayed}, acknowledged ${messages.size}`);
    }
    for (const kind of ['bump', 'fired'] as const) {
      const ofKind = (recordsByKey.get(key) ?? []).filter((record) => record.kind === kind);
      const ns = ofKind.map((record) => record.n).sort((a, b) => a - b);
      const wrongNs = ns.filter((n, index) => n !== index + 1);
      if (ns.length !== messages.size || wrongNs.length > 0) {
        problems.push(`${key}: ${kind} records n = ${describeList(ns)}, expected 1…${messages.size}`);
      }
      const seen = new Set<number>();
      for (const { msg } of ofKind) {
        if (seen.has(msg)) problems.push(`${key}: message ${msg} has two ${kind} records`);
        else if (!messages.has(msg))
          problems.push(`${key}: a ${kind} record for message ${msg}, never acknowledged`);
        seen.add(msg);
      }
      const missing = [...messages].filter((msg) => !seen.has(msg));
      if (missing.length > 0)
        problems.push(`${key}: no ${kind} record for messages ${describeList(missing)}`);
    }
  }
  return problems.length > 40 ? [...problems.slice(0, 40), `… and ${problems.length - 40} more`] : problems;
}

function describeList(values: readonly number[]): string {
  return values.length > 12 ? `${values.slice(0, 12).join(',')},… (${values.length})` : values.join(',');
}

/** The node process: one life at a time, each killed with SIGKILL, all on the same data. */
class NodeProcess {
  readonly #config: ChaosNodeConfig;
  readonly #onUnexpectedExit: (error: Error) => void;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #port: number | undefined;
  #killing = false;
  readonly #log: string[] = [];
  /** How often each kind of log line came, across lives (bounded: the first 50 kinds). */
  readonly #logKinds = new Map<string, number>();

  constructor(config: ChaosNodeConfig, onUnexpectedExit: (error: Error) => void) {
    this.#config = config;
    this.#onUnexpectedExit = onUnexpectedExit;
  }

  /** Starts a life; resolves with its port once it serves. */
  async start(): Promise<number> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, JSON.stringify(this.#config)], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#killing = false;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.#killing) {
          this.#remember(`[exited by itself: code ${code}, signal ${signal}]`);
          this.#onUnexpectedExit(
            new Error(`the node exited unkilled; its last log lines:\n${this.logTail()}`),
          );
        }
        resolve();
      });
    });
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      this.#remember(line);
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timeout = AbortSignal.timeout(START_TIMEOUT_MS);
    const ready = new Promise<number>((resolve, reject) => {
      lines.once('line', (line) => {
        const port = (JSON.parse(line) as Partial<ReadyLine> | null)?.port;
        if (typeof port === 'number') resolve(port);
        else reject(new Error(`the node announced ${line}, not {"port": n}`));
      });
      child.once('exit', () => {
        reject(new Error(`the node exited before it served:\n${this.logTail()}`));
      });
      timeout.addEventListener('abort', () => {
        reject(new Error(`the node did not serve within ${START_TIMEOUT_MS} ms:\n${this.logTail()}`));
      });
    });
    this.#port = await ready;
    return this.#port;
  }

  port(): number {
    if (this.#port === undefined) throw new Error('the node is not running');
    return this.#port;
  }

  /** SIGKILL, and waits for the exit: the next life must not overlap this one. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#port = undefined;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      this.#killing = true;
      child.kill('SIGKILL');
    }
    await this.#exited;
    this.#child = undefined;
  }

  logTail(): string {
    return this.#log.join('\n');
  }

  /** Log lines by kind: level and message up to its first number ("retrying in 90 ms"). */
  logSummary(): string {
    return [...this.#logKinds].map(([kind, count]) => `${count}× ${kind}`).join('; ') || 'none';
  }

  #remember(line: string): void {
    this.#log.push(line);
    if (this.#log.length > 40) this.#log.shift();
    const kind = line.replace(/\d.*$/, '…').slice(0, 120);
    if (this.#logKinds.has(kind) || this.#logKinds.size < 50) {
      this.#logKinds.set(kind, (this.#logKinds.get(kind) ?? 0) + 1);
    }
  }
}

/**
 * The 32 clients. Each takes the next message number while the life's budget lasts, picks its
 * key, and sends it until answered 202: a request cut by a kill is sent again, with the same
 * Idempotency-Key, once the next life serves.
 */
class Traffic {
  readonly #random: () => number;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  readonly #run = randomBytes(4).toString('hex');
  /** Each acknowledged message's key. */
  readonly acknowledged = new Map<number, string>();
  duplicates = 0;
  connectionFailures = 0;
  busy = 0;
  acknowledgedInLife = 0;
  #issued = 0;
  #budget = 0;
  #port: number | undefined;
  #stopped = false;
  #failure: Error | undefined;
  #waiters: (() => void)[] = [];

  constructor(random: () => number) {
    this.#random = random;
  }

  start(): Promise<void> {
    return Promise.all(Array.from({ length: CONCURRENCY }, () => this.#client())).then(() => undefined);
  }

  beginLife(port: number, messages: number): void {
    this.#port = port;
    this.#budget += messages;
    this.acknowledgedInLife = 0;
    this.#wake();
  }

  /** What the life did not send of its budget is dropped: each life's load is its own. */
  endLife(): void {
    this.#port = undefined;
    this.#budget = this.#issued;
  }

  /** Resolves when every message of every budget so far is acknowledged. */
  async allAcknowledged(): Promise<void> {
    while (this.acknowledged.size < this.#budget && !this.#stopped) await this.#changed();
    this.throwIfFailed();
  }

  stop(): void {
    this.#stopped = true;
    this.#agent.destroy();
    this.#wake();
  }

  /** Stops the clients; `allAcknowledged` and `throwIfFailed` throw `error`. */
  fail(error: Error): void {
    this.#failure ??= error;
    this.stop();
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #client(): Promise<void> {
    while (!this.#stopped) {
      if (this.#issued >= this.#budget) {
        await this.#changed();
        continue;
      }
      const msg = ++this.#issued;
      const key = keyName(Math.floor(this.#random() * KEYS));
      try {
        await this.#sendUntilAcknowledged(msg, key);
      } catch (error) {
        this.fail(error as Error);
      }
    }
  }

  async #sendUntilAcknowledged(msg: number, key: string): Promise<void> {
    const body = JSON.stringify({ msg });
    while (!this.#stopped) {
      const port = this.#port;
      if (port === undefined) {
        await this.#changed();
        continue;
      }
      const answer = await post(this.#agent, port, `/ingress/chaos/counter/${key}`, body, {
        'Weft-Message-Type': bumpType.typeName.toString(),
        'Idempotency-Key': `${this.#run}-${msg}`,
      });
      if (answer === 'failed') {
        this.connectionFailures += 1;
        await sleep(5);
      } else if (answer.status === 202) {
        if ((JSON.parse(answer.body) as { duplicate: boolean }).duplicate) this.duplicates += 1;
        this.acknowledged.set(msg, key);
        this.acknowledgedInLife += 1;
        this.#wake();
        return;
      } else if (answer.status === 503) {
        this.busy += 1;
        await sleep(20);
      } else {
        throw new Error(`message ${msg} was answered ${answer.status}: ${answer.body}`);
      }
    }
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** POSTs `body`; the answer, or 'failed' when the connection broke (the node was killed). */
function post(
  agent: http.Agent,
  port: number,
  urlPath: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string } | 'failed'> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'POST',
        agent,
        headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        });
        // A kill mid-answer: the answer never completes.
        response.on('close', () => {
          if (!response.complete) resolve('failed');
        });
        response.on('error', () => {
          resolve('failed');
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', () => {
      resolve('failed');
    });
    request.end(body);
  });
}

async function getJson<T>(port: number, urlPath: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  if (!response.ok) throw new Error(`GET ${urlPath}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
