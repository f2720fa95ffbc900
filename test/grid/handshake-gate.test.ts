// Sockets that have not proved who they are: every one has a deadline from its TCP accept,
// pending handshakes are capped per source and in all, and a silent, slow, greedy or
// refused socket is destroyed rather than left to close politely. Throughout, a
// legitimate peer still gets in. Real sockets on loopback; the node's clock is fake.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

import { decodeFrame } from '../../src/grid/frame.ts';
import { sourceOf } from '../../src/grid/handshake-gate.ts';
import { Manager } from '../../src/grid/manager.ts';
import { GRID_PATH, Op } from '../../src/grid/protocol.ts';
import type { GridLimits } from '../../src/grid/config.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { bindLoopback, hostDialling, RawPeer } from './raw-peer.ts';

const SECRET = 'weft-handshake-gate-test-secret';
const ECHO = 64;
const BOUNDED = { timeout: 20_000 };

interface Node {
  readonly clock: FakeClock;
  readonly manager: Manager;
  readonly server: http.Server;
  readonly host: string;
  readonly port: number;
  /** A host that dials the node; `peer()` starts a real Manager as it. */
  readonly peerHost: string;
  peer(): Promise<Manager>;
}

async function startNode(t: TestContext, limits: Partial<GridLimits> = {}): Promise<Node> {
  const clock = new FakeClock();
  // The app the grid shares its server with: ordinary requests must still reach it.
  const { server, host, port } = await bindLoopback(t, {
    onRequest: (_req, res) => res.writeHead(200).end('app'),
  });
  const peerHost = hostDialling(host);
  const manager = new Manager({
    local: host,
    hosts: [host, peerHost],
    auth: { secret: SECRET },
    clock,
    limits,
  });
  manager.registerSingle(ECHO, (payload) => payload);
  manager.attach(server);
  t.after(() => manager.close());
  return {
    clock,
    manager,
    server,
    host,
    port,
    peerHost,
    async peer() {
      const peer = new Manager({ local: peerHost, hosts: [host, peerHost], auth: { secret: SECRET }, clock });
      t.after(() => peer.close());
      peer.start();
      await peer.connection(host).waitForConnect({ signal: AbortSignal.timeout(10_000) });
      const reply = await peer.connection(host).request(ECHO, Buffer.from('hello'));
      assert.equal(Buffer.from(reply ?? []).toString(), 'hello');
      return peer;
    },
  };
}

/** A raw TCP client; resolves once connected. Destroyed after the test. */
async function tcp(t: TestContext, port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  t.after(() => {
    socket.destroy();
  });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

function upgradeRequest(): string {
  return [
    `GET ${GRID_PATH} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    '',
    '',
  ].join('\r\n');
}

/** Sockets upgraded on the grid path that never say a word, from `localAddress`. */
async function silentPeers(
  t: TestContext,
  port: number,
  count: number,
  localAddress: string,
): Promise<RawPeer[]> {
  const peers: RawPeer[] = [];
  for (let i = 0; i < count; i++) peers.push(await RawPeer.open(t, port, { localAddress }));
  return peers;
}

/** Lets the node's event loop run until `check` holds (socket events are real, only the clock is fake). */
/** The opcodes of the WebSocket frames (unmasked, as a server sends them) after an HTTP response. */
function frameOpcodes(bytes: Buffer): number[] {
  const opcodes: number[] = [];
  let at = bytes.indexOf('\r\n\r\n') + 4;
  while (at > 3 && at + 2 <= bytes.length) {
    const first = bytes[at] ?? 0;
    let length = (bytes[at + 1] ?? 0) & 0x7f;
    let header = 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      header = 10;
    }
    opcodes.push(first & 0x0f);
    at += header + length;
  }
  return opcodes;
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

describe('deadlines from the TCP accept', () => {
  test(
    'an upgraded socket that never sends a Connect is destroyed handshakeTimeoutMs after its accept, not after its upgrade',
    BOUNDED,
    async (t) => {
      const node = await startNode(t, { handshakeTimeoutMs: 5_000 });
      const socket = await tcp(t, node.port);
      await until(() => node.manager.stats().socketsAwaitingRequest === 1);
      await node.clock.advanceAsync(3_000);
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.write(upgradeRequest());
      await until(() => Buffer.concat(received).includes(Buffer.from([0x97, 0, 0, 0, 0, Op.Challenge])));
      assert.equal(node.manager.stats().pendingHandshakes, 1);
      await node.clock.advanceAsync(1_999);
      assert.equal(socket.destroyed, false);
      const closed = once(socket, 'close');
      await node.clock.advanceAsync(1);
      await closed;
      assert.equal(node.manager.stats().refused['handshake-timeout'], 1);
      assert.equal(node.manager.stats().pendingHandshakes, 0);
      // No close frame came first: the socket was destroyed, not asked to close. (The frames
      // are read one by one: a 0x88 byte may well occur inside the Challenge's random bytes.)
      const opcodes = frameOpcodes(Buffer.concat(received));
      assert.deepEqual(opcodes, [0x2], 'the Challenge alone, no close frame after it');
      await node.peer();
    },
  );

  test('upgrade requests dribbled a byte at a time are all destroyed at the deadline', BOUNDED, async (t) => {
    const node = await startNode(t, { handshakeTimeoutMs: 5_000 });
    const request = upgradeRequest();
    const sockets = await Promise.all(Array.from({ length: 100 }, () => tcp(t, node.port, '127.0.0.3')));
    for (const [i, socket] of sockets.entries()) socket.write(request.slice(0, 1 + (i % 20)));
    await until(() => node.manager.stats().socketsAwaitingRequest === 100);
    const closed = sockets.map((socket) => once(socket, 'close'));
    await node.clock.advanceAsync(5_000);
    await Promise.all(closed);
    const stats = node.manager.stats();
    assert.equal(stats.refused['handshake-timeout'], 100);
    assert.equal(stats.socketsAwaitingRequest, 0);
    await node.peer();
  });

  test(
    'a socket of the same server that sends an ordinary request is released, never timed out',
    BOUNDED,
    async (t) => {
      const node = await startNode(t, { handshakeTimeoutMs: 5_000 });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => {
        agent.destroy();
      });
      const get = (): Promise<string> =>
        new Promise((resolve, reject) => {
          http
            .get({ port: node.port, host: '127.0.0.1', agent }, (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString()));
              res.on('end', () => {
                resolve(body);
              });
            })
            .on('error', reject);
        });
      assert.equal(await get(), 'app');
      assert.equal(node.manager.stats().socketsAwaitingRequest, 0);
      await node.clock.advanceAsync(60_000);
      // The same kept-alive socket answers again.
      assert.equal(await get(), 'app');
      assert.equal(node.manager.stats().refused['handshake-timeout'], undefined);
    },
  );
});

describe('caps on pending handshakes', () => {
  test(
    'one source holds at most maxPendingHandshakesPerSource; its oldest are dropped, and a peer from elsewhere gets in',
    BOUNDED,
    async (t) => {
      const node = await startNode(t);
      const peers = await silentPeers(t, node.port, 40, '127.0.0.2');
      await until(() => node.manager.stats().refused['too-many-handshakes'] === 24);
      assert.equal(node.manager.stats().pendingHandshakes, 16);
      // The oldest went first: the first 24 are closed, the last 16 are open.
      await Promise.all(peers.slice(0, 24).map((peer) => peer.closed));
      assert.ok(peers.slice(24).every((peer) => peer.isOpen));
      await node.peer();
    },
  );

  test(
    'when all slots are taken, the busiest source gives one up, so a new source always gets in',
    BOUNDED,
    async (t) => {
      const node = await startNode(t, { maxPendingHandshakes: 8, maxPendingHandshakesPerSource: 4 });
      await silentPeers(t, node.port, 4, '127.0.0.4');
      await silentPeers(t, node.port, 4, '127.0.0.5');
      assert.equal(node.manager.stats().pendingHandshakes, 8);
      await silentPeers(t, node.port, 2, '127.0.0.6');
      await until(() => node.manager.stats().refused['too-many-handshakes'] === 2);
      assert.equal(node.manager.stats().pendingHandshakes, 8);
      await node.peer();
    },
  );
});

describe('what an unproven socket may cost', () => {
  test(
    'a socket that sends more than 16 KiB before its handshake is destroyed before the message is complete',
    BOUNDED,
    async (t) => {
      const node = await startNode(t);
      const peer = await RawPeer.open(t, node.port);
      const challenge = await peer.next();
      assert.equal(decodeFrame(challenge ?? Buffer.alloc(0)).op, Op.Challenge);
      // A 1 MiB message: ws would buffer all of it before showing it as the first message.
      peer.send(Buffer.alloc(1024 * 1024));
      await peer.closed;
      assert.equal(node.manager.stats().refused['handshake-too-large'], 1);
      assert.equal(node.manager.stats().refused['bad-handshake'], undefined);
      await node.peer();
    },
  );

  test(
    'a refused socket is destroyed once its refusal is written, whatever it keeps sending',
    BOUNDED,
    async (t) => {
      const node = await startNode(t);
      const peer = await RawPeer.open(t, node.port);
      await peer.next();
      peer.send(Buffer.from('not a handshake'));
      // Less than the 16 KiB an unproven socket may send: only the refusal ends it.
      for (let i = 0; i < 8; i++) peer.send(Buffer.alloc(1024));
      const refusal = await peer.next();
      assert.equal(decodeFrame(refusal ?? Buffer.alloc(0)).op, Op.ConnectResponse);
      const { code } = await peer.closed;
      assert.equal(code, 1006, 'destroyed, without a close handshake');
      assert.equal(node.manager.stats().pendingHandshakes, 0);
      assert.equal(node.manager.stats().refused['bad-handshake'], 1);
      await node.peer();
    },
  );

  test(
    'closing the manager destroys every pending handshake, and leaves the server its other sockets',
    BOUNDED,
    async (t) => {
      const node = await startNode(t);
      const peers = await silentPeers(t, node.port, 3, '127.0.0.7');
      const raw = await tcp(t, node.port);
      await until(() => node.manager.stats().socketsAwaitingRequest === 1);
      await node.manager.close();
      await Promise.all(peers.map((peer) => peer.closed));
      // Not the grid's: it is still served as ordinary HTTP.
      const received: Buffer[] = [];
      raw.on('data', (chunk: Buffer) => received.push(chunk));
      raw.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await once(raw, 'close');
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1.1 200 OK[\s\S]*\r\napp\r\n/);
    },
  );
});

test('a source is an IPv4 address or an IPv6 /64', () => {
  assert.equal(sourceOf('10.1.2.3'), '10.1.2.3');
  assert.equal(sourceOf('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(sourceOf('2001:db8:1:2::9'), sourceOf('2001:0db8:0001:0002:ffff::1'));
  assert.equal(sourceOf('::1'), '0:0:0:0::/64');
  assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(sourceOf(undefined), 'unknown');
});

test(
  'with 1,000 hostile sockets (silent, dribbling, garbage) against a node, a peer that restarts ten times reconnects within a second each time',
  { timeout: 120_000 },
  async (t) => {
    const node = await startNode(t);
    // The hostile clients run in a process of their own, from 20 source addresses.
    const script = fileURLToPath(new URL('./hostile-clients.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, String(node.port), '1000', '20'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.after(() => {
      child.kill('SIGKILL');
    });
    const lines = createInterface({ input: child.stdout });
    interface Report {
      live: number;
      opened: Record<string, number>;
      destroyed: Record<string, number>;
    }
    let last: Report | undefined;
    const reports = (async function* () {
      for await (const line of lines) yield JSON.parse(line) as Report;
    })();
    const waitFor = async (wanted: (report: Report) => boolean): Promise<Report> => {
      for await (const report of reports) {
        last = report;
        if (wanted(report)) return report;
      }
      throw new Error('the hostile clients exited');
    };
    // All 1,000 clients started and the attack in its steady state: silent sockets being
    // evicted and garbage refused as fast as they come back (the dribblers go when the
    // node's clock passes their deadline, below).
    await waitFor(
      (r) =>
        Object.values(r.opened).reduce((a, b) => a + b, 0) >= 1_000 &&
        (r.destroyed['silent'] ?? 0) >= 100 &&
        (r.destroyed['garbage'] ?? 0) >= 666,
    );
    const reconnectMs: number[] = [];
    for (let restart = 0; restart < 10; restart++) {
      const started = performance.now();
      const peer = new Manager({
        local: node.peerHost,
        hosts: [node.host, node.peerHost],
        auth: { secret: SECRET },
        clock: node.clock,
      });
      peer.start();
      try {
        await peer.connection(node.host).waitForConnect({ signal: AbortSignal.timeout(1_000) });
        const reply = await peer.connection(node.host).request(ECHO, Buffer.from(`restart ${restart}`));
        assert.equal(Buffer.from(reply ?? []).toString(), `restart ${restart}`);
      } finally {
        await peer.close();
      }
      reconnectMs.push(Math.round(performance.now() - started));
      // Halfway, time moves on: every unproven socket's deadline passes and the attack renews.
      if (restart === 4) await node.clock.advanceAsync(5_000);
    }
    const stats = node.manager.stats();
    t.diagnostic(`reconnects took ${reconnectMs.join(', ')} ms; refused ${JSON.stringify(stats.refused)}`);
    t.diagnostic(`hostile clients: ${JSON.stringify(last)}`);
    assert.ok((stats.refused['too-many-handshakes'] ?? 0) > 0, 'the silent sockets were capped');
    assert.ok((stats.refused['bad-handshake'] ?? 0) > 0, 'the garbage was refused');
    assert.ok((stats.refused['handshake-timeout'] ?? 0) > 0, 'the dribblers timed out');
    assert.ok(stats.pendingHandshakes <= 256);
    child.stdin.end();
    await once(child, 'exit');
  },
);
