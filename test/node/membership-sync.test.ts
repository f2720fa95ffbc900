// Members exchange their lists when they connect, so an announcement a member missed is made up
// for; a member that left is not brought back by an older list.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { Manager } from '../../src/grid/manager.ts';
import { systemClock } from '../../src/internal/clock.ts';
import { createNodeLogger } from '../../src/node/logger.ts';
import { Membership, MEMBERSHIP_HANDLER } from '../../src/node/membership.ts';
import { EventPublisher } from '../../src/views/publisher.ts';

const secret = 'the membership sync test secret';
const absent = { host: 'http://127.0.0.1:9', name: 'absent' };

async function member(
  t: TestContext,
  name: string,
): Promise<{ grid: Manager; membership: Membership; url: string }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const grid = new Manager({ local: url, hosts: [url], auth: { secret } });
  const membership = new Membership({
    grid,
    self: { host: url, name },
    secret,
    publisher: new EventPublisher(),
    clock: systemClock,
    logger: createNodeLogger({ level: 'silent', name }),
  });
  grid.attach(server);
  t.after(async () => {
    membership.close();
    await grid.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { grid, membership, url };
}

/** Resolves once `done` holds, checking as the event loop turns (real sockets), at most 10 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const hosts = (m: Membership): string[] =>
  m
    .members()
    .map((x) => x.host)
    .sort();

describe('membership: lists exchanged on connect', () => {
  test(
    'a member learns, when it connects, of a member added while it was not linked',
    { timeout: 20_000 },
    async (t) => {
      const a = await member(t, 'a');
      const b = await member(t, 'b');
      a.membership.add(absent); // b hears no announcement of it
      a.membership.add({ host: b.url, name: 'b' });
      b.membership.add({ host: a.url, name: 'a' });
      await until(() => hosts(b.membership).includes(absent.host), 'b never learned of the absent member');
      assert.deepEqual(hosts(b.membership), [a.url, b.url, absent.host].sort());
    },
  );

  test(
    'a member that left is not brought back by a list that still names it',
    { timeout: 20_000 },
    async (t) => {
      const a = await member(t, 'a');
      const b = await member(t, 'b');
      a.membership.add({ host: b.url, name: 'b' });
      b.membership.add({ host: a.url, name: 'a' });
      await until(
        () => b.membership.members().find((m) => m.host === a.url)?.state === 'connected',
        'never linked',
      );
      // Each side's link comes up on its own: the one that sends must be up too.
      await a.grid.connection(b.url).waitForConnect({ timeoutMs: 10_000 });
      const send = (body: unknown): Promise<Uint8Array | undefined> =>
        a.grid
          .connection(b.url)
          .request(MEMBERSHIP_HANDLER, Buffer.from(JSON.stringify(body)), { timeoutMs: 5_000 });
      await send({ op: 'join', ...absent });
      assert.ok(hosts(b.membership).includes(absent.host));
      await send({ op: 'leave', ...absent });
      assert.ok(!hosts(b.membership).includes(absent.host));
      await send({ op: 'sync', members: [absent] });
      assert.ok(!hosts(b.membership).includes(absent.host), 'a stale list did not bring it back');
      await send({ op: 'join', ...absent });
      assert.ok(hosts(b.membership).includes(absent.host), 'a real join does');
      await assert.rejects(send({ op: 'sync', members: 'everyone' }));
      await assert.rejects(send({ op: 'evict', host: absent.host, name: 'x' }));
    },
  );
});
