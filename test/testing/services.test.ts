import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import * as nats from 'nats';
import pg from 'pg';

import { postgresConnection } from '../postgres-connection.ts';

import { natsService, postgresService, serviceGate, type ServiceProbe } from '../../src/testing/index.ts';

/** A loopback server that answers each connection with `respond`; closed after the test. */
async function fakeServer(t: { after(fn: () => unknown): void }, respond: (socket: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    respond(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.close();
    for (const socket of sockets) socket.destroy();
  });
  return (server.address() as net.AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('serviceGate', () => {
  test('an absent service skips the test with a reason naming what was tried', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const gate = await serviceGate(natsService, { env: { WEFT_TEST_NATS_URL: url } });
    assert.equal(gate.url, url);
    assert.ok(typeof gate.skip === 'string');
    assert.match(gate.skip, /NATS not reachable at nats:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\)/);
    assert.match(gate.skip, /WEFT_TEST_NATS_URL/);
  });

  test('with WEFT_REQUIRE_SERVICES=1 an absent service is a failure, not a skip', async () => {
    const url = `postgres://127.0.0.1:${await closedPort()}/test`;
    await assert.rejects(
      serviceGate(postgresService, { env: { WEFT_TEST_PG_URL: url, WEFT_REQUIRE_SERVICES: '1' } }),
      /PostgreSQL not reachable .* WEFT_REQUIRE_SERVICES=1, so this is a failure/,
    );
  });

  test('a port that answers with another protocol is not taken for the service', async (t) => {
    const port = await fakeServer(t, (socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const gate = await serviceGate(natsService, { env: { WEFT_TEST_NATS_URL: `nats://127.0.0.1:${port}` } });
    assert.match(String(gate.skip), /not INFO/);
    const pg = await serviceGate(postgresService, {
      env: { WEFT_TEST_PG_URL: `postgres://127.0.0.1:${port}/x` },
    });
    assert.match(String(pg.skip), /answered "H" to an SSLRequest/);
  });

  test('a peer that speaks the protocol opens the gate', async (t) => {
    const pgPort = await fakeServer(t, (socket) => socket.once('data', () => socket.end('N')));
    const pg = await serviceGate(postgresService, {
      env: { WEFT_TEST_PG_URL: `postgres://127.0.0.1:${pgPort}/t` },
    });
    assert.equal(pg.skip, false);
    const natsPort = await fakeServer(t, (socket) => socket.end('INFO {"server_id":"x"}\r\n'));
    const nats = await serviceGate(natsService, {
      env: { WEFT_TEST_NATS_URL: `nats://127.0.0.1:${natsPort}` },
    });
    assert.equal(nats.skip, false);
  });

  test('a URL that cannot be parsed is reported, not thrown', async () => {
    const gate = await serviceGate(natsService, { env: { WEFT_TEST_NATS_URL: 'not a url' } });
    assert.match(String(gate.skip), /cannot parse WEFT_TEST_NATS_URL/);
  });
});

// ---------------------------------------------------------------------------------------
// The machine's own services

/**
 * Runs `check` against a live service. Where the gate finds it absent, the test is skipped
 * with the gate's reason, or, where WEFT_REQUIRE_SERVICES=1, fails with it (the gate throws).
 */
async function withService(
  t: Pick<TestContext, 'skip'>,
  service: ServiceProbe,
  check: (url: string) => Promise<void>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const gate = await serviceGate(service, { env });
  if (gate.skip !== false) {
    t.skip(gate.skip);
    return;
  }
  await check(gate.url);
}

/** Runs one query with the `pg` client and returns its rows as arrays. */
async function postgresQuery(url: string, sql: string): Promise<unknown[][]> {
  const client = new pg.Client({ ...postgresConnection(url), connectionTimeoutMillis: 5_000 });
  // An impostor that closes the socket makes the client emit 'error' as well as reject.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const result = await client.query<unknown[]>({ text: sql, rowMode: 'array' });
    return result.rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * With the `nats` client: subscribes to a subject of its own, publishes `payload` to it, and
 * returns what came back, along with whether the server has JetStream enabled.
 */
async function natsRoundTrip(url: string, payload: string): Promise<{ echoed: string; jetstream: boolean }> {
  const connection = await nats.connect({ servers: url, timeout: 5_000 });
  try {
    const subject = `weft.test.${process.pid}.${Date.now()}`;
    const subscription = connection.subscribe(subject, { max: 1, timeout: 5_000 });
    connection.publish(subject, new TextEncoder().encode(payload));
    let echoed = '';
    for await (const message of subscription) echoed = message.string();
    // Both throw ("JetStream not enabled") on a server without JetStream.
    const account = await (await connection.jetstreamManager()).getAccountInfo();
    return { echoed, jetstream: Number.isInteger(account.streams) };
  } finally {
    await connection.close();
  }
}

describe('live service tests', () => {
  test('where WEFT_REQUIRE_SERVICES=1, an absent service fails the test instead of skipping it', async () => {
    const url = `postgres://127.0.0.1:${await closedPort()}/test`;
    const skipped: unknown[] = [];
    let checked = false;
    await assert.rejects(
      withService(
        { skip: (reason) => skipped.push(reason) },
        postgresService,
        () => {
          checked = true;
          return Promise.resolve();
        },
        { WEFT_TEST_PG_URL: url, WEFT_REQUIRE_SERVICES: '1' },
      ),
      /PostgreSQL not reachable .* so this is a failure, not a skip/,
    );
    assert.deepEqual([skipped, checked], [[], false]);
  });

  test('elsewhere, an absent service skips the test with the reason, and nothing runs against it', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const skipped: unknown[] = [];
    let checked = false;
    await withService(
      { skip: (reason) => skipped.push(reason) },
      natsService,
      () => {
        checked = true;
        return Promise.resolve();
      },
      { WEFT_TEST_NATS_URL: url },
    );
    assert.equal(checked, false);
    assert.equal(skipped.length, 1);
    assert.match(String(skipped[0]), /NATS not reachable at nats:\/\/127\.0\.0\.1:\d+ .*ECONNREFUSED/);
  });

  test('a peer that only mimics the greeting opens the gate, but fails a live test', async (t) => {
    // The gate reads the first bytes; a live test does real work, so an impostor is caught.
    const port = await fakeServer(t, (socket) => socket.once('data', () => socket.end('N')));
    const url = `postgres://127.0.0.1:${port}/test`;
    await assert.rejects(
      withService(t, postgresService, (live) => postgresQuery(live, 'SELECT 1').then(() => undefined), {
        WEFT_TEST_PG_URL: url,
      }),
      /Connection terminated|closed|ECONNRESET/,
    );
  });
});

// The services on this machine. Where WEFT_REQUIRE_SERVICES=1 (CI), an absent one fails.
describe('the services this project tests against', () => {
  test('PostgreSQL runs a query in the test database', async (t) => {
    await withService(t, postgresService, async (url) => {
      const database = new URL(url).pathname.slice(1);
      const rows = await postgresQuery(url, 'SELECT current_database(), 6 * 7');
      assert.deepEqual(rows, [[database, 42]]);
    });
  });

  test('NATS delivers a published message to a subscriber, and has JetStream', async (t) => {
    await withService(t, natsService, async (url) => {
      const payload = `hello ${process.pid}`;
      assert.deepEqual(await natsRoundTrip(url, payload), { echoed: payload, jetstream: true });
    });
  });
});
