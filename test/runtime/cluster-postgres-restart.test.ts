// PostgreSQL restarted under load: two cluster runtimes share one schema and take ingress on
// both while the test restarts the server on this machine (`pg_ctlcluster … restart`). While it
// is down, appends and commits fail: ingress is refused (the sender retries with the same ingress
// id), batches fail and their addresses wait to run again. Once it is back, the runtimes resume
// by themselves: every acknowledged message is applied exactly once, nothing is left in an inbox.
//
// Restarting the server needs root and Debian's pg_ctlcluster; without them the test is skipped
// with the reason, and under WEFT_REQUIRE_SERVICES=1 (as in CI) it fails instead. Timers of the
// runtimes are on a fake clock; the test advances it while it waits.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

import pg from 'pg';

import { WeftError } from '../../src/internal/errors.ts';
import { ClusterRuntime } from '../../src/runtime/cluster/cluster-runtime.ts';
import { PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { Envelope, StoredAddress } from '../../src/runtime/store/state-store.ts';
import { intType, StatefulFunctions, valueSpec } from '../../src/statefun/index.ts';
import { FakeClock, postgresService, serviceGate, TestGrid } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';

const run = promisify(execFile);
const gate = await serviceGate(postgresService);
const count = valueSpec({ name: 'count', type: intType });
const quiet = { warn: () => undefined, error: () => undefined };
const KEYS = 50;
const MESSAGES = 1_500;

/** The local cluster's version (Debian's layout, /etc/postgresql/<version>/main), when it can be restarted. */
function restartable(): { version: string } | string {
  if (process.getuid?.() !== 0) return 'restarting PostgreSQL needs root';
  let versions: string[];
  try {
    versions = readdirSync('/etc/postgresql');
  } catch {
    return 'no /etc/postgresql: not a Debian PostgreSQL that pg_ctlcluster can restart';
  }
  const version = versions.sort().at(-1);
  return version === undefined ? 'no cluster in /etc/postgresql' : { version };
}

const server = restartable();
const skip =
  gate.skip !== false
    ? gate.skip
    : typeof server === 'string'
      ? process.env['WEFT_REQUIRE_SERVICES'] === '1'
        ? false
        : server
      : false;

test(
  'PostgreSQL restarted under load: the nodes pause and resume, every acknowledged message applied once',
  { skip, timeout: 120_000 },
  async (t) => {
    if (typeof server === 'string') throw new Error(`WEFT_REQUIRE_SERVICES=1, and ${server}`);
    const url = gate.skip === false ? gate.url : '';
    const schema = `weft_test_${randomBytes(6).toString('hex')}`;
    const pool = new pg.Pool({ ...postgresConnection(url), max: 10, connectionTimeoutMillis: 2_000 });
    // A connection that breaks while idle (the restart) is reported here; unheard, it would end the process.
    let brokenIdle = 0;
    pool.on('error', () => {
      brokenIdle += 1;
    });
    const clock = new FakeClock({ wallStartMs: Date.now() });
    const grid = await TestGrid.start(2, { clock, logger: quiet });
    const store = await PostgresStateStore.open({ pool, schema });
    const nodes: ClusterRuntime[] = [];
    t.after(async () => {
      // Whatever happened, the server is left running.
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', server.version, 'main', 'start']).catch(
        () => undefined,
      );
      for (const node of nodes) await node.close();
      await grid.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    });
    await grid.waitAllConnected();
    for (let i = 0; i < 2; i++) {
      nodes.push(
        await ClusterRuntime.open({
          store,
          grid: grid.manager(i),
          view: { self: grid.hosts[i] as string, live: () => grid.hosts, known: () => 2 },
          functions: new StatefulFunctions().withSpec({
            typeName: 'test/counter',
            specs: [count],
            fn(context) {
              context.storage.set(count, (context.storage.get(count) ?? 0) + 1);
            },
          }),
          clock,
          logger: quiet,
        }),
      );
    }

    // The load: each message sent until acknowledged, with its ingress id, to either node.
    const acknowledged = new Map<number, string>();
    let refusals = 0;
    const send = async (msg: number): Promise<void> => {
      const key = `k${msg % KEYS}`;
      const envelope: Envelope = {
        target: ['test', 'counter', key],
        argument: { typename: 'test/int', value: new Uint8Array([1]) },
        ingressId: `restart-${msg}`,
      };
      for (let attempt = 0; ; attempt++) {
        try {
          await (nodes[(msg + attempt) % 2] as ClusterRuntime).input.send([envelope]);
          acknowledged.set(msg, key);
          return;
        } catch (error) {
          // Backpressure, an unreachable owner, or the database gone (pg's own errors): again.
          if (error instanceof WeftError && !error.retryable) throw error;
          refusals += 1;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    let next = 0;
    const workers = Array.from({ length: 16 }, async () => {
      while (next < MESSAGES) await send(next++);
    });
    const ticking = setInterval(() => {
      clock.advance(500);
    }, 20);
    try {
      while (acknowledged.size < MESSAGES / 3) await new Promise((resolve) => setTimeout(resolve, 10));
      await run('pg_ctlcluster', [
        '--skip-systemctl-redirect',
        server.version,
        'main',
        'restart',
        '-m',
        'fast',
      ]);
      await Promise.all(workers);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".inbox`);
        if (rows[0]?.n === '0') break;
        if (Date.now() > deadline) assert.fail(`${rows[0]?.n} messages still wait in the inbox`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      clearInterval(ticking);
    }
    assert.ok(
      refusals > 0 || brokenIdle > 0,
      'the restart was felt: sends were refused or connections broke',
    );

    const expected = new Map<string, number>();
    for (const key of acknowledged.values()) expected.set(key, (expected.get(key) ?? 0) + 1);
    const wrong: string[] = [];
    for (const [key, n] of expected) {
      const address: StoredAddress = ['test', 'counter', key];
      const entry = (await store.readState(address, clock.wallTimeMs())).get('count');
      const applied = entry === undefined ? 0 : count.type.deserialize(entry.value);
      if (applied !== n) wrong.push(`${key}: applied ${applied}, acknowledged ${n}`);
    }
    t.diagnostic(
      `${acknowledged.size} acknowledged, ${refusals} sends refused and retried, ${brokenIdle} idle connections broken; ` +
        `batch failures ${nodes.map((node) => node.runtime.stats().batchFailures).join(' + ')}`,
    );
    assert.deepEqual(wrong, [], 'every acknowledged message applied exactly once');
  },
);
