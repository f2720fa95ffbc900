// A runtime node for the crash test, run as its own process so that it can be killed with
// SIGKILL: `node --import tsx test/chaos/runtime-node.ts '<ChaosNodeConfig as JSON>'`.
//
// It opens the runtime on lmdb or PostgreSQL with the workload of chaos-workload.ts, egress
// `chaos/out` going to JetStream, serves the HTTP ingress on a free loopback port, and prints
// {"port": n} on stdout once it does. Besides the ingress it answers GET /chaos/stats and
// GET /chaos/state for the test. It runs until killed, or until its stdin closes (the test is
// gone). Its logs go to stderr as JSON lines.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { connect } from 'nats';
import pg from 'pg';

import { JetStreamSink } from '../../src/runtime/egress/jetstream-sink.ts';
import { httpIngressHandler } from '../../src/runtime/ingress/http-ingress.ts';
import { Runtime, type RuntimeLogger } from '../../src/runtime/runtime.ts';
import { LmdbStateStore } from '../../src/runtime/store/lmdb-store.ts';
import { PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { StateStore } from '../../src/runtime/store/state-store.ts';
import { postgresConnection } from '../postgres-connection.ts';
import {
  EGRESS_ID,
  STATE_PATH,
  STATS_PATH,
  counterAddress,
  counterFunctions,
  countSpec,
  delayedSpec,
  keyName,
  type ChaosNodeConfig,
  type NodeState,
  type NodeStats,
  type ReadyLine,
} from './chaos-workload.ts';

const logger: RuntimeLogger = {
  warn: (message, details) => {
    log('warn', message, details);
  },
  error: (message, details) => {
    log('error', message, details);
  },
};

function log(level: string, message: string, details?: Record<string, unknown>): void {
  const error = details?.['error'];
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : error;
  process.stderr.write(`${JSON.stringify({ level, message, reason })}\n`);
}

function parseConfig(text: string | undefined): ChaosNodeConfig {
  if (text === undefined) throw new Error('usage: runtime-node.ts <config json>');
  const config = JSON.parse(text) as Partial<ChaosNodeConfig> | null;
  const store = config?.store;
  const storeValid =
    (store?.kind === 'lmdb' && typeof store.dataDir === 'string') ||
    (store?.kind === 'postgres' && typeof store.url === 'string' && typeof store.schema === 'string');
  if (
    config === null ||
    !storeValid ||
    typeof config.natsUrl !== 'string' ||
    typeof config.subject !== 'string' ||
    typeof config.msgIdPrefix !== 'string' ||
    !Number.isSafeInteger(config.keys) ||
    (config.keys ?? 0) < 1
  ) {
    throw new Error(`not a ChaosNodeConfig: ${text}`);
  }
  return config as ChaosNodeConfig;
}

/** The store the node runs on; it is never closed: the node only ever ends by SIGKILL. */
async function openStore(config: ChaosNodeConfig): Promise<StateStore> {
  if (config.store.kind === 'lmdb') return LmdbStateStore.open({ path: config.store.dataDir });
  const pool = new pg.Pool({ ...postgresConnection(config.store.url), max: 8 });
  return PostgresStateStore.open({ pool, schema: config.store.schema });
}

async function nodeStats(store: StateStore, runtime: Runtime): Promise<NodeStats> {
  const counts = await store.counts();
  const stats = runtime.stats();
  return { ...counts, runningBatches: stats.runningBatches, batchFailures: stats.batchFailures };
}

async function nodeState(store: StateStore, keys: number): Promise<NodeState> {
  const state: NodeState = {};
  for (let i = 0; i < keys; i++) {
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

function answerJson(response: http.ServerResponse, body: Promise<unknown>): void {
  body.then(
    (value) => {
      response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
    },
    (error: unknown) => {
      response.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(error));
    },
  );
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv[2]);
  // The test is gone: nothing will kill this process, so it ends itself.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();

  const store = await openStore(config);
  const nats = await connect({ servers: config.natsUrl });
  const sink = new JetStreamSink({
    connection: nats,
    subject: config.subject,
    msgIdPrefix: config.msgIdPrefix,
  });
  const runtime = await Runtime.open({
    store,
    functions: counterFunctions(),
    egress: { [EGRESS_ID]: sink },
    logger,
  });
  const ingress = httpIngressHandler(runtime, { logger });
  const server = http.createServer((request, response) => {
    ingress(request, response, () => {
      if (request.method === 'GET' && request.url === STATS_PATH)
        answerJson(response, nodeStats(store, runtime));
      else if (request.method === 'GET' && request.url === STATE_PATH)
        answerJson(response, nodeState(store, config.keys));
      else response.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ready: ReadyLine = { port: (server.address() as AddressInfo).port };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((error: unknown) => {
  log('error', 'the runtime node failed to start', { error });
  process.exit(1);
});
