import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';

import { natsService, postgresService, serviceGate } from '../../src/testing/index.ts';

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

// The machine's own services. Where WEFT_REQUIRE_SERVICES=1 (CI), they must answer.
describe('the services this project tests against', async () => {
  const pg = await serviceGate(postgresService);
  const nats = await serviceGate(natsService);
  test('PostgreSQL answers the SSLRequest', { skip: pg.skip }, () => {
    assert.equal(pg.skip, false);
  });
  test('NATS greets with INFO', { skip: nats.skip }, () => {
    assert.equal(nats.skip, false);
  });
});
