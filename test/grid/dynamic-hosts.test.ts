// A running node's host list changes: a host added on both sides connects and serves calls
// without either node restarting; a host removed is closed, its calls fail and its handshakes
// are refused; the list is bounded.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { Manager, MAX_GRID_HOSTS } from '../../src/grid/manager.ts';
import { DisconnectedError } from '../../src/grid/errors.ts';
import { ConfigError } from '../../src/internal/errors.ts';

const auth = { secret: 'weft-dynamic-hosts-secret' };
const ECHO = 64;
const BOUNDED = { timeout: 15_000 };

async function node(t: TestContext): Promise<{ manager: Manager; url: string }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const manager = new Manager({ local: url, hosts: [url], auth });
  manager.registerSingle(ECHO, (payload) => payload);
  manager.attach(server);
  t.after(async () => {
    await manager.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { manager, url };
}

describe('grid: hosts added and removed while running', () => {
  test(
    'a host added on both nodes connects and serves calls; removed, its calls fail',
    BOUNDED,
    async (t) => {
      const a = await node(t);
      const b = await node(t);
      assert.deepEqual(a.manager.targets(), []);

      assert.equal(a.manager.addHost(b.url), true);
      assert.equal(b.manager.addHost(a.url), true);
      assert.equal(a.manager.addHost(b.url), false, 'adding twice changes nothing');
      assert.deepEqual(a.manager.hosts().sort(), [a.url, b.url].sort());

      const toB = a.manager.connection(b.url);
      await toB.waitForConnect({ timeoutMs: 10_000 });
      const answer = await toB.request(ECHO, new Uint8Array([7]), { timeoutMs: 5_000 });
      assert.deepEqual([...(answer ?? [])], [7]);
      const toA = b.manager.connection(a.url);
      assert.deepEqual(
        [...((await toA.request(ECHO, new Uint8Array([8]), { timeoutMs: 5_000 })) ?? [])],
        [8],
      );

      assert.equal(b.manager.removeHost(a.url), true);
      assert.equal(b.manager.removeHost(a.url), false);
      assert.throws(() => b.manager.connection(a.url), ConfigError);
      await assert.rejects(toA.request(ECHO, new Uint8Array([9]), { timeoutMs: 5_000 }), DisconnectedError);
      assert.deepEqual(b.manager.hosts(), [b.url]);
    },
  );

  test('a node cannot remove itself, and the list is bounded with refusals counted', async (t) => {
    const a = await node(t);
    assert.throws(() => a.manager.removeHost(a.url), ConfigError);
    assert.throws(() => a.manager.addHost('not a url'), ConfigError);
    // Never attached, so its connections never dial.
    const unstarted = new Manager({ local: 'http://127.0.0.1:1', hosts: ['http://127.0.0.1:1'], auth });
    t.after(() => unstarted.close());
    for (let i = 1; i < MAX_GRID_HOSTS; i++) unstarted.addHost(`http://10.255.${i >> 8}.${i & 255}:9000`);
    assert.equal(unstarted.hosts().length, MAX_GRID_HOSTS);
    assert.throws(() => unstarted.addHost('http://10.254.0.1:9000'), ConfigError);
    assert.equal(unstarted.stats().refused['too-many-hosts'], 1);
  });
});
