// What the grid does with peers that are not who they say, send what they should not,
// or ask for more than they may: every refusal has a reason on both ends, and none of
// it takes the node down or stops it serving legitimate peers.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import { hmacAuth, type HandshakeClaims } from '../../src/grid/auth.ts';
import type { GridLimits } from '../../src/grid/config.ts';
import type { ConnectionState, FrameChecksum } from '../../src/grid/grid-connection.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import {
  DisconnectedError,
  FrameTooLargeError,
  HandshakeRefusedError,
  IncorrectSequenceError,
  RemoteError,
  type RefusalReason,
} from '../../src/grid/errors.ts';
import { decodeFrame, decodeMessage, encodeFrame, type Frame } from '../../src/grid/frame.ts';
import { Manager } from '../../src/grid/manager.ts';
import {
  decodeChallenge,
  decodeConnectResponse,
  decodeError,
  encodeConnect,
  encodeStreamOpen,
  encodeWindow,
  type Challenge,
  type ConnectRequest,
  type ConnectResponse,
} from '../../src/grid/messages.ts';
import { Flag, GRID_PATH, Op, PROTOCOL_VERSION, type Op as OpCode } from '../../src/grid/protocol.ts';
import { subrouteId } from '../../src/grid/subroute.ts';
import { CapacityExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { bindLoopback, frameOf, hostDialledBy, hostDialling, playAcceptor, RawPeer } from './raw-peer.ts';

const SECRET = 'weft-security-test-cluster-secret';
const ECHO = 64;
const ECHO_STREAM = 65;
/** Every test here ends on socket events; this only turns a hang into a failure. */
const BOUNDED = { timeout: 15_000 };

// ---------------------------------------------------------------------------------------
// Nodes

interface NodeOptions {
  readonly clock: FakeClock;
  readonly secret?: string | undefined;
  readonly limits?: Partial<GridLimits> | undefined;
  readonly frameChecksum?: FrameChecksum | undefined;
}

/** A manager serving an echo request handler and an echo stream handler, closed after the test. */
function makeManager(t: TestContext, local: string, hosts: string[], options: NodeOptions): Manager {
  const manager = new Manager({
    local,
    hosts,
    auth: { secret: options.secret ?? SECRET },
    clock: options.clock,
    limits: options.limits,
    frameChecksum: options.frameChecksum,
    random: () => 0.5,
  });
  manager.registerSingle(ECHO, (payload) => payload);
  manager.registerStream(ECHO_STREAM, {
    inCapacity: 4,
    async handle({ requests, send }) {
      for await (const item of requests) await send(item);
    },
  });
  t.after(() => manager.close());
  return manager;
}

/**
 * Node A on a real port, with a host list naming: a real peer that dials A (attached on
 * demand), a fake host that dials A (the raw clients pose as it), and a fake host that
 * A dials (so a Connect from it comes from the wrong side).
 */
interface Acceptor {
  readonly clock: FakeClock;
  readonly a: Manager;
  readonly host: string;
  readonly port: number;
  /** A host that dials A: a raw client posing as it is a legitimate dialler. */
  readonly dialler: string;
  /** A host that A dials: a Connect claiming to be it comes from the wrong side. */
  readonly dialled: string;
  /** Brings up a real second node (once) and resolves when it is connected to A. */
  peer(): Promise<Manager>;
}

async function startAcceptor(
  t: TestContext,
  options: { limits?: Partial<GridLimits>; clock?: FakeClock; frameChecksum?: FrameChecksum } = {},
): Promise<Acceptor> {
  const clock = options.clock ?? new FakeClock();
  const aBound = await bindLoopback(t);
  const peerBound = await bindLoopback(t, { wanted: (host) => shouldDial(host, aBound.host) });
  const dialler = hostDialling(aBound.host);
  const dialled = hostDialledBy(aBound.host);
  const a = makeManager(t, aBound.host, [aBound.host, peerBound.host, dialler, dialled], {
    clock,
    limits: options.limits,
    frameChecksum: options.frameChecksum,
  });
  a.attach(aBound.server);
  const peer = makeManager(t, peerBound.host, [aBound.host, peerBound.host], { clock });
  let attached = false;
  return {
    clock,
    a,
    host: aBound.host,
    port: aBound.port,
    dialler,
    dialled,
    async peer() {
      if (!attached) {
        attached = true;
        peer.attach(peerBound.server);
      }
      await peer.connection(aBound.host).waitForConnect();
      return peer;
    },
  };
}

/** The proof that bad input did no lasting harm: a real node connects and is served. */
async function assertServesPeers(node: Acceptor): Promise<void> {
  const peer = await node.peer();
  const payload = randomBytes(32);
  const reply = await peer.connection(node.host).request(ECHO, payload);
  assert.deepEqual(Buffer.from(reply ?? []), payload);
}

interface Pair {
  readonly clock: FakeClock;
  readonly a: Manager;
  readonly b: Manager;
  readonly aHost: string;
  readonly bHost: string;
}

/** Two managers that know each other, each with its own secret and limits, attached at once. */
async function startPair(
  t: TestContext,
  options: { a?: Partial<NodeOptions>; b?: Partial<NodeOptions> } = {},
): Promise<Pair> {
  const clock = new FakeClock();
  const aBound = await bindLoopback(t);
  const bBound = await bindLoopback(t);
  const hosts = [aBound.host, bBound.host];
  const a = makeManager(t, aBound.host, hosts, { clock, ...options.a });
  const b = makeManager(t, bBound.host, hosts, { clock, ...options.b });
  a.attach(aBound.server);
  b.attach(bBound.server);
  return { clock, a, b, aHost: aBound.host, bHost: bBound.host };
}

async function connected(pair: Pair): Promise<void> {
  await Promise.all([
    pair.a.connection(pair.bHost).waitForConnect(),
    pair.b.connection(pair.aHost).waitForConnect(),
  ]);
}

// ---------------------------------------------------------------------------------------
// Raw handshakes

interface ConnectFields {
  readonly host: string;
  readonly version?: number;
  readonly timeMs?: number;
  readonly token?: string;
  readonly secret?: string;
}

/** The acceptor's Challenge, the first message a raw client receives. */
async function readChallenge(peer: RawPeer): Promise<Challenge> {
  const message = await peer.next();
  assert.ok(message !== undefined, 'the socket closed before the Challenge');
  const frame = decodeFrame(message);
  assert.equal(frame.op, Op.Challenge);
  return decodeChallenge(frame.payload);
}

/** What a dialler answers to `challenge`, with a valid token unless told otherwise. */
function connectTo(
  challenge: Challenge,
  clock: FakeClock,
  fields: ConnectFields,
): {
  readonly frame: Buffer;
  readonly connect: ConnectRequest;
  readonly claims: HandshakeClaims;
} {
  const dialler = {
    host: fields.host,
    nodeId: randomBytes(16),
    timeMs: fields.timeMs ?? Math.floor(clock.wallTimeMs()),
    nonce: randomBytes(16),
  };
  const claims: HandshakeClaims = { version: PROTOCOL_VERSION, dialler, acceptor: challenge };
  const connect: ConnectRequest = {
    version: fields.version ?? PROTOCOL_VERSION,
    ...dialler,
    token: fields.token ?? hmacAuth(fields.secret ?? SECRET).authToken('dialler', claims),
  };
  return {
    frame: encodeFrame(frameOf(Op.Connect, { payload: encodeConnect(connect) }), false),
    connect,
    claims,
  };
}

/** The first message a raw client sends: fixed bytes, or built from the Challenge. */
type FirstMessage = Uint8Array | ((challenge: Challenge) => Uint8Array);

/** Reads the Challenge, sends `first`, and returns the acceptor's ConnectResponse. */
async function handshake(peer: RawPeer, first: FirstMessage): Promise<ConnectResponse> {
  const challenge = await readChallenge(peer);
  peer.send(typeof first === 'function' ? first(challenge) : first);
  const reply = await peer.next();
  assert.ok(reply !== undefined, 'the socket closed without a ConnectResponse');
  const frame = decodeFrame(reply);
  assert.equal(frame.op, Op.ConnectResponse);
  return decodeConnectResponse(frame.payload);
}

/** A Connect answering the Challenge, as the dialler host of `node` would send it. */
function asDialler(node: Acceptor, fields: Partial<ConnectFields> = {}): (challenge: Challenge) => Buffer {
  return (challenge) => connectTo(challenge, node.clock, { host: node.dialler, ...fields }).frame;
}

/** A raw client that has completed a legitimate handshake with `node` as its dialler host. */
async function rawDialler(t: TestContext, node: Acceptor): Promise<RawPeer> {
  const peer = await RawPeer.open(t, node.port);
  const response = await handshake(peer, asDialler(node));
  assert.ok(
    response.accepted,
    `a legitimate handshake was refused: ${response.accepted ? '' : response.detail}`,
  );
  return peer;
}

/** Sends one Request over a raw client and returns the Response frame. */
async function rawRequest(peer: RawPeer, muxId: number, payload: Buffer): Promise<Frame | undefined> {
  peer.send(encodeFrame(frameOf(Op.Request, { muxId, handler: ECHO, payload }), true));
  return peer.nextFrame((frame) => frame.op === Op.Response && frame.muxId === muxId);
}

/**
 * Expects `first` to be refused for `reason`: said in the ConnectResponse, counted, and
 * the socket destroyed (no close frame: a hostile client need not answer one).
 */
async function assertRefused(
  t: TestContext,
  node: Acceptor,
  first: FirstMessage,
  reason: RefusalReason,
): Promise<void> {
  const before = node.a.stats().refused[reason] ?? 0;
  const peer = await RawPeer.open(t, node.port);
  const response = await handshake(peer, first);
  assert.equal(response.accepted, false);
  assert.ok(!response.accepted);
  assert.equal(response.reason, reason, `refused for ${response.reason}: ${response.detail}`);
  const { code } = await peer.closed;
  assert.equal(code, 1006, 'a refused socket is destroyed, without a close handshake');
  assert.equal(node.a.stats().refused[reason], before + 1);
}

// ---------------------------------------------------------------------------------------
// Small utilities

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function isRemote(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof RemoteError, `expected a RemoteError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

interface StateMessage {
  readonly local: string;
  readonly remote: string;
  readonly state: ConnectionState;
  readonly error?: unknown;
}

/** Records `weft:grid:connection-state` for the test and lets it wait for a matching message. */
function watchStates(t: TestContext): {
  readonly seen: StateMessage[];
  next(wanted: (message: StateMessage) => boolean): Promise<StateMessage>;
} {
  const seen: StateMessage[] = [];
  let cursor = 0;
  let waiter: { wanted: (m: StateMessage) => boolean; resolve: (m: StateMessage) => void } | undefined;
  const listener = (message: unknown): void => {
    seen.push(message as StateMessage);
    if (waiter !== undefined && waiter.wanted(message as StateMessage)) {
      cursor = seen.length;
      const { resolve } = waiter;
      waiter = undefined;
      resolve(message as StateMessage);
    }
  };
  diagnosticsChannel.subscribe('weft:grid:connection-state', listener);
  t.after(() => {
    diagnosticsChannel.unsubscribe('weft:grid:connection-state', listener);
  });
  return {
    seen,
    next(wanted) {
      for (let i = cursor; i < seen.length; i++) {
        const message = seen[i] as StateMessage;
        if (wanted(message)) {
          cursor = i + 1;
          return Promise.resolve(message);
        }
      }
      cursor = seen.length;
      return new Promise((resolve) => {
        waiter = { wanted, resolve };
      });
    },
  };
}

// ---------------------------------------------------------------------------------------

describe('handshake refusals', () => {
  test('a token that is not an HMAC of the secret is refused as bad-token', BOUNDED, async (t) => {
    const node = await startAcceptor(t);
    await assertRefused(t, node, asDialler(node, { token: 'not-a-token' }), 'bad-token');
    await assertServesPeers(node);
  });

  test('a token made with another secret is refused as bad-token', BOUNDED, async (t) => {
    const node = await startAcceptor(t);
    await assertRefused(t, node, asDialler(node, { secret: 'some-other-cluster-secret' }), 'bad-token');
    await assertServesPeers(node);
  });

  test(
    'a Connect stamped further than maxClockSkewMs from our clock is refused as clock-skew, either way',
    BOUNDED,
    async (t) => {
      const maxClockSkewMs = 60_000;
      const node = await startAcceptor(t, { limits: { maxClockSkewMs } });
      const now = node.clock.wallTimeMs();
      for (const timeMs of [now - maxClockSkewMs - 1, now + maxClockSkewMs + 1]) {
        // The token is valid for the time it carries: only the time is wrong.
        await assertRefused(t, node, asDialler(node, { timeMs }), 'clock-skew');
      }
      const atTheBound = await RawPeer.open(t, node.port);
      const response = await handshake(atTheBound, asDialler(node, { timeMs: now - maxClockSkewMs }));
      assert.equal(response.accepted, true, 'a skew of exactly maxClockSkewMs is allowed');
      await assertServesPeers(node);
    },
  );

  test(
    'a host that is not in the host list, or that claims to be the acceptor itself, is refused as unknown-host',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      await assertRefused(t, node, asDialler(node, { host: 'http://10.9.9.9:9000' }), 'unknown-host');
      await assertRefused(t, node, asDialler(node, { host: node.host }), 'unknown-host');
      assert.equal(node.a.stats().refused['unknown-host'], 2);
      await assertServesPeers(node);
    },
  );

  test('a peer speaking another protocol version is refused as version-mismatch', BOUNDED, async (t) => {
    const node = await startAcceptor(t);
    await assertRefused(t, node, asDialler(node, { version: PROTOCOL_VERSION + 1 }), 'version-mismatch');
    await assertServesPeers(node);
  });

  test('a node of protocol version 1 (the old path) gets 404 at the upgrade', BOUNDED, async (t) => {
    const node = await startAcceptor(t);
    const old = new WebSocket(`ws://127.0.0.1:${node.port}/weft/grid/v1`);
    t.after(() => {
      old.terminate();
    });
    old.on('error', () => {
      // Expected: the upgrade is refused.
    });
    const [, response] = (await once(old, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(response.statusCode, 404);
    response.resume();
    await assertServesPeers(node);
  });

  test(
    'a Connect from a host that this node should dial, not be dialled by, is refused as wrong-direction',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      assert.equal(shouldDial(node.dialled, node.host), false);
      await assertRefused(t, node, asDialler(node, { host: node.dialled }), 'wrong-direction');
      await assertServesPeers(node);
    },
  );

  test(
    'a first message that is not a well-formed Connect is refused as bad-handshake',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      const garbage = Buffer.from('GET / HTTP/1.1\r\n\r\n');
      const ping = encodeFrame(frameOf(Op.Ping, { payload: Buffer.from([0x80]) }), false);
      const notAMap = encodeFrame(frameOf(Op.Connect, { payload: Buffer.from([0x93, 1, 2, 3]) }), false);
      const noPayload = encodeFrame(frameOf(Op.Connect), false);
      // Claim a CRC (flags are the 7th byte of this header) that is not there.
      const withCrcFlag = (challenge: Challenge): Buffer => {
        const bytes = Buffer.from(connectTo(challenge, node.clock, { host: node.dialler }).frame);
        assert.equal(bytes[6], 0);
        bytes[6] = 0x01;
        return bytes;
      };
      const fractionalTime = (challenge: Challenge): Buffer => {
        const { connect } = connectTo(challenge, node.clock, { host: node.dialler });
        return encodeFrame(
          frameOf(Op.Connect, { payload: encodeConnect({ ...connect, timeMs: 0.5 }) }),
          false,
        );
      };
      for (const first of [garbage, ping, notAMap, noPayload, withCrcFlag, fractionalTime]) {
        await assertRefused(t, node, first, 'bad-handshake');
      }
      assert.equal(node.a.stats().refused['bad-handshake'], 6);
      await assertServesPeers(node);
    },
  );
});

describe('captured handshakes', () => {
  test(
    'a captured Connect is refused on another socket, verbatim, with its node id changed or its host changed',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      // A second host that also dials A: the one a thief would claim to be.
      const real = await node.peer();
      const realSocket = real.connection(node.host).stats();
      // The dialler's own exchange, as an eavesdropper sees it.
      const eavesdropped = await RawPeer.open(t, node.port);
      let captured: ReturnType<typeof connectTo> | undefined;
      const accepted = await handshake(eavesdropped, (challenge) => {
        captured = connectTo(challenge, node.clock, { host: node.dialler });
        return captured.frame;
      });
      assert.equal(accepted.accepted, true);
      assert.ok(captured !== undefined);
      const { connect } = captured;
      const reencode = (changed: ConnectRequest): Buffer =>
        encodeFrame(frameOf(Op.Connect, { payload: encodeConnect(changed) }), false);
      const realHost = [...node.a.targets()].find((host) => host !== node.dialler && host !== node.dialled);
      assert.ok(realHost !== undefined);
      for (const first of [
        captured.frame,
        reencode({ ...connect, nodeId: randomBytes(16) }),
        reencode({ ...connect, host: realHost }),
      ]) {
        await assertRefused(t, node, first, 'bad-token');
      }
      // Within its own exchange, a Connect with one field changed in flight fails the same way.
      await assertRefused(
        t,
        node,
        (challenge) => {
          const honest = connectTo(challenge, node.clock, { host: node.dialler }).connect;
          return reencode({ ...honest, nodeId: randomBytes(16) });
        },
        'bad-token',
      );
      // The real node was never displaced.
      const after = real.connection(node.host).stats();
      assert.equal(after.state, 'connected');
      assert.equal(after.reconnects, realSocket.reconnects);
      await assertServesPeers(node);
    },
  );

  test(
    'a ConnectResponse replayed by an impostor is refused by the dialler, which never sends it a request',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const aBound = await bindLoopback(t);
      const dialler = hostDialling(aBound.host);
      const a = makeManager(t, aBound.host, [aBound.host, dialler], { clock });
      a.attach(aBound.server);
      // An eavesdropper records one exchange between the dialler and A.
      const eavesdropped = await RawPeer.open(t, aBound.port);
      const challengeBytes = await eavesdropped.next();
      assert.ok(challengeBytes !== undefined);
      const challenge = decodeChallenge(decodeFrame(challengeBytes).payload);
      eavesdropped.send(connectTo(challenge, clock, { host: dialler }).frame);
      const responseBytes = await eavesdropped.next();
      assert.ok(responseBytes !== undefined);
      assert.equal(decodeConnectResponse(decodeFrame(responseBytes).payload).accepted, true);
      await a.close();
      await new Promise<void>((resolve) => {
        aBound.server.close(() => {
          resolve();
        });
        aBound.server.closeAllConnections();
      });

      // The impostor takes A's address and plays the recording to the real dialler.
      const impostor = http.createServer();
      const wss = new WebSocketServer({ server: impostor, path: GRID_PATH });
      const afterConnect: Buffer[] = [];
      wss.on('connection', (ws) => {
        ws.send(challengeBytes);
        let connectSeen = false;
        ws.on('message', (data: Buffer) => {
          if (connectSeen) afterConnect.push(data);
          else ws.send(responseBytes);
          connectSeen = true;
        });
      });
      await new Promise<void>((resolve) => impostor.listen(aBound.port, '127.0.0.1', resolve));
      t.after(
        () =>
          new Promise<void>((resolve) => {
            for (const client of wss.clients) client.terminate();
            impostor.close(() => {
              resolve();
            });
          }),
      );
      const states = watchStates(t);
      const victim = makeManager(t, dialler, [aBound.host, dialler], { clock });
      victim.start();
      const failed = await states.next(
        (m) => m.local === dialler && m.remote === aBound.host && m.state === 'connection-error',
      );
      assert.ok(failed.error instanceof HandshakeRefusedError, String(failed.error));
      assert.equal(failed.error.reason, 'bad-token');
      assert.ok(!states.seen.some((m) => m.local === dialler && m.state === 'connected'));
      await assert.rejects(
        victim.connection(aBound.host).request(ECHO, Buffer.from('secret')),
        DisconnectedError,
      );
      assert.deepEqual(afterConnect, [], 'the dialler sent the impostor nothing after its Connect');
    },
  );
});

describe('authentication between managers', () => {
  test(
    'managers with different secrets never connect: the dialler sees bad-token, the acceptor counts it',
    BOUNDED,
    async (t) => {
      const states = watchStates(t);
      const pair = await startPair(t, {
        a: { secret: 'cluster-secret-number-one' },
        b: { secret: 'cluster-secret-number-two' },
      });
      const [dialler, acceptor, diallerHost, acceptorHost] = shouldDial(pair.aHost, pair.bHost)
        ? [pair.a, pair.b, pair.aHost, pair.bHost]
        : [pair.b, pair.a, pair.bHost, pair.aHost];
      for (let attempt = 1; attempt <= 3; attempt++) {
        if (attempt > 1) await pair.clock.advanceAsync(2_000); // past redialMaxMs
        const failed = await states.next(
          (m) => m.local === diallerHost && m.remote === acceptorHost && m.state === 'connection-error',
        );
        assert.ok(
          failed.error instanceof HandshakeRefusedError,
          `attempt ${attempt}: ${String(failed.error)}`,
        );
        assert.equal(failed.error.reason, 'bad-token');
        assert.equal(acceptor.stats().refused['bad-token'], attempt);
      }
      assert.equal(dialler.connection(acceptorHost).state(), 'connection-error');
      assert.equal(acceptor.connection(diallerHost).state(), 'unconnected');
      assert.ok(
        !states.seen.some(
          (m) => m.state === 'connected' && (m.local === pair.aHost || m.local === pair.bHost),
        ),
        'no side ever reached connected',
      );
    },
  );
});

describe('frame size', () => {
  test(
    'a message larger than maxFrameBytes closes the socket with 1009, counted once in messagesTooLargeIn, and the host can handshake again',
    BOUNDED,
    async (t) => {
      const maxFrameBytes = 64 * 1024;
      const node = await startAcceptor(t, { limits: { maxFrameBytes } });
      const peer = await rawDialler(t, node);
      const link = node.a.connection(node.dialler);
      assert.ok(await rawRequest(peer, 1, Buffer.from('before')));
      assert.equal(link.stats().messagesTooLargeIn, 0);
      peer.send(Buffer.alloc(maxFrameBytes + 1));
      assert.equal((await peer.closed).code, 1009);
      assert.equal(link.state(), 'connection-error');
      assert.equal(link.stats().messagesTooLargeIn, 1, 'the message is counted, once');
      assert.equal(link.stats().protocolErrors, 0, 'apart from the protocol errors');
      const again = await rawDialler(t, node);
      const response = await rawRequest(again, 1, Buffer.from('after the reset'));
      assert.deepEqual(Buffer.from(response?.payload ?? []), Buffer.from('after the reset'));
      await assertServesPeers(node);
      assert.equal(link.stats().messagesTooLargeIn, 1);
    },
  );

  test(
    'a peer that sends an oversized message is disconnected, reconnects, and the link works again',
    BOUNDED,
    async (t) => {
      // B's limit is larger than A's, so B sends what A refuses.
      const pair = await startPair(t, {
        a: { limits: { maxFrameBytes: 64 * 1024 } },
        b: { limits: { maxFrameBytes: 1024 * 1024 } },
      });
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      await assert.rejects(link.request(ECHO, Buffer.alloc(100 * 1024)), (error: unknown) => {
        assert.ok(error instanceof DisconnectedError, String(error));
        assert.match(error.message, /1009/);
        return true;
      });
      await connected(pair);
      const reply = await link.request(ECHO, Buffer.from('small again'));
      assert.deepEqual(Buffer.from(reply ?? []), Buffer.from('small again'));
      assert.equal(link.stats().reconnects, 1);
      // The side that refused counts it; the sender only saw its socket close.
      const refusing = pair.a.connection(pair.bHost).stats();
      assert.equal(refusing.messagesTooLargeIn, 1);
      assert.equal(refusing.protocolErrors, 0);
      assert.equal(link.stats().messagesTooLargeIn, 0);
    },
  );

  test(
    'a request or stream open too large to send fails at once with FrameTooLargeError and the link stays up',
    BOUNDED,
    async (t) => {
      const maxFrameBytes = 64 * 1024;
      const pair = await startPair(t, { a: { limits: { maxFrameBytes } }, b: { limits: { maxFrameBytes } } });
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      await assert.rejects(link.request(ECHO, Buffer.alloc(maxFrameBytes)), (error: unknown) => {
        assert.ok(error instanceof FrameTooLargeError, String(error));
        assert.equal(error.limitBytes, maxFrameBytes);
        return true;
      });
      assert.throws(
        () => link.openStream(ECHO_STREAM, { initial: Buffer.alloc(maxFrameBytes) }),
        FrameTooLargeError,
      );
      assert.equal(link.state(), 'connected');
      assert.equal(link.stats().requestsOut, 0);
      assert.equal(link.stats().streamsOut, 0);
      const reply = await link.request(ECHO, Buffer.from('fits'));
      assert.deepEqual(Buffer.from(reply ?? []), Buffer.from('fits'));
      assert.equal(link.stats().reconnects, 0);
    },
  );

  test(
    'a handler result too large to send reaches the caller as an error, not as a wait for the deadline',
    BOUNDED,
    async (t) => {
      const maxFrameBytes = 64 * 1024;
      const pair = await startPair(t, { a: { limits: { maxFrameBytes } }, b: { limits: { maxFrameBytes } } });
      pair.a.registerSingle(70, () => Buffer.alloc(maxFrameBytes));
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      let outcome: unknown = 'pending';
      const big = link.request(70, undefined).then(
        () => 'resolved',
        (error: unknown) => error,
      );
      void big.then((result) => {
        outcome = result;
      });
      // Frames on one socket arrive in order: once this echo is back, the big call's
      // answer (if one was sent) has arrived before it.
      await link.request(ECHO, Buffer.from('after'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.notEqual(outcome, 'pending', 'the caller is left waiting for its deadline');
      assert.ok(isRemote('WEFT_GRID_FRAME_TOO_LARGE')(outcome));
      assert.equal(pair.clock.now(), 0);
    },
  );

  test('a stream input item too large to send fails alone, and the stream carries on', BOUNDED, async (t) => {
    const maxFrameBytes = 64 * 1024;
    const pair = await startPair(t, { a: { limits: { maxFrameBytes } }, b: { limits: { maxFrameBytes } } });
    await connected(pair);
    const stream = pair.b.connection(pair.aHost).openStream(ECHO_STREAM, { outCapacity: 4 });
    const responses = stream[Symbol.asyncIterator]();
    await stream.send(Buffer.from('one'));
    assert.deepEqual(Buffer.from((await responses.next()).value ?? []), Buffer.from('one'));
    await assert.rejects(stream.send(Buffer.alloc(maxFrameBytes)), FrameTooLargeError);
    await stream.send(Buffer.from('two'));
    const next = await responses.next();
    assert.deepEqual(Buffer.from(next.value ?? []), Buffer.from('two'));
    stream.end();
    assert.equal((await responses.next()).done, true);
  });

  test(
    'a stream response too large to send fails alone in the handler, and the stream carries on',
    BOUNDED,
    async (t) => {
      const maxFrameBytes = 64 * 1024;
      const pair = await startPair(t, { a: { limits: { maxFrameBytes } }, b: { limits: { maxFrameBytes } } });
      const handlerErrors: unknown[] = [];
      pair.a.registerStream(71, {
        inCapacity: 1,
        async handle({ requests, send }) {
          for await (const item of requests) {
            await send(Buffer.alloc(maxFrameBytes)).catch((error: unknown) => handlerErrors.push(error));
            await send(item);
          }
        },
      });
      await connected(pair);
      const stream = pair.b.connection(pair.aHost).openStream(71, { outCapacity: 4 });
      const responses = stream[Symbol.asyncIterator]();
      await stream.send(Buffer.from('small'));
      const first = await responses.next();
      assert.deepEqual(Buffer.from(first.value ?? []), Buffer.from('small'));
      assert.equal(handlerErrors.length, 1);
      assert.ok(handlerErrors[0] instanceof FrameTooLargeError);
      stream.end();
      assert.equal((await responses.next()).done, true);
    },
  );

  test(
    // That they were merged, and into messages within the limit, is shown on the wire by
    // frame.test.ts; this is the same traffic end to end, between two nodes.
    'requests that each fit maxFrameBytes but together exceed it all arrive, without a reconnect',
    BOUNDED,
    async (t) => {
      const maxFrameBytes = 8 * 1024;
      const pair = await startPair(t, { a: { limits: { maxFrameBytes } }, b: { limits: { maxFrameBytes } } });
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      // Ten 2 KiB requests queued in one turn: each fits, together they do not.
      const payloads = Array.from({ length: 10 }, (_, i) => Buffer.alloc(2_000, i));
      const replies = await Promise.all(payloads.map((payload) => link.request(ECHO, payload)));
      replies.forEach((reply, i) => {
        assert.deepEqual(Buffer.from(reply ?? []), payloads[i]);
      });
      assert.equal(link.stats().reconnects, 0);
    },
  );
});

describe('WebSocket frames the grid never sends', () => {
  test(
    'a text message that is not UTF-8 breaks the WebSocket protocol: the socket closes with 1007, counted once in protocolErrors; a UTF-8 one is ignored and counted in ignoredMessages',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      const peer = await rawDialler(t, node);
      const link = node.a.connection(node.dialler);
      peer.ws.send('a text message', { binary: false });
      assert.ok(await rawRequest(peer, 1, Buffer.from('after the text')), 'the socket carries on');
      assert.equal(link.stats().ignoredMessages, 1);
      assert.equal(link.stats().protocolErrors, 0);

      // ws sends a Buffer as it is, unchecked: the node's ws is the one that refuses it.
      peer.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
      assert.equal((await peer.closed).code, 1007);
      assert.equal(link.state(), 'connection-error');
      const stats = link.stats();
      assert.equal(stats.protocolErrors, 1, 'counted, once');
      assert.equal(stats.messagesTooLargeIn, 0, 'and not as a message too large');
      assert.equal(stats.ignoredMessages, 1);
      await assertServesPeers(node);
    },
  );
});

describe('capacity', () => {
  test(
    'with maxStreams 2 a third incoming stream is refused with WEFT_CAPACITY_EXCEEDED and the first two keep working',
    BOUNDED,
    async (t) => {
      const pair = await startPair(t, { a: { limits: { maxStreams: 2 } } });
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      const streams = [1, 2, 3].map(() => link.openStream(ECHO_STREAM, { outCapacity: 2 }));
      const [first, second, third] = streams.map((stream) => ({
        stream,
        responses: stream[Symbol.asyncIterator](),
      }));
      assert.ok(first !== undefined && second !== undefined && third !== undefined);
      await assert.rejects(third.responses.next(), (error: unknown) => {
        isRemote('WEFT_CAPACITY_EXCEEDED')(error);
        assert.equal((error as RemoteError).retryable, true);
        return true;
      });
      for (const { stream, responses } of [first, second]) {
        await stream.send(Buffer.from(`on ${stream.muxId}`));
        assert.deepEqual(
          Buffer.from((await responses.next()).value ?? []),
          Buffer.from(`on ${stream.muxId}`),
        );
      }
      // Ending one gives its place back.
      first.stream.end();
      assert.equal((await first.responses.next()).done, true);
      const fourth = link.openStream(ECHO_STREAM);
      const fourthResponses = fourth[Symbol.asyncIterator]();
      await fourth.send(Buffer.from('fourth'));
      assert.deepEqual(Buffer.from((await fourthResponses.next()).value ?? []), Buffer.from('fourth'));
      fourth.end();
      second.stream.end();
      assert.equal((await fourthResponses.next()).done, true);
      assert.equal((await second.responses.next()).done, true);
    },
  );

  test('openStream beyond maxStreams throws CapacityExceededError on the caller', BOUNDED, async (t) => {
    const pair = await startPair(t, { b: { limits: { maxStreams: 2 } } });
    await connected(pair);
    const link = pair.b.connection(pair.aHost);
    const open = [link.openStream(ECHO_STREAM), link.openStream(ECHO_STREAM)];
    assert.throws(
      () => link.openStream(ECHO_STREAM),
      (error: unknown) => {
        assert.ok(error instanceof CapacityExceededError, String(error));
        assert.equal(error.limit, 2);
        return true;
      },
    );
    for (const stream of open) stream.cancel();
    assert.equal(link.stats().streamsOut, 0);
    const again = link.openStream(ECHO_STREAM);
    again.cancel();
  });

  test(
    'with maxIncomingRequests 2 a third concurrent request is refused as retryable, and the first two complete',
    BOUNDED,
    async (t) => {
      const pair = await startPair(t, { a: { limits: { maxIncomingRequests: 2 } } });
      const gate = deferred();
      const twoRunning = deferred();
      let running = 0;
      pair.a.registerSingle(72, async (payload) => {
        running += 1;
        if (running === 2) twoRunning.resolve();
        await gate.promise;
        return payload;
      });
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      const held = [link.request(72, Buffer.from('first')), link.request(72, Buffer.from('second'))];
      await twoRunning.promise;
      await assert.rejects(link.request(72, Buffer.from('third')), (error: unknown) => {
        isRemote('WEFT_CAPACITY_EXCEEDED')(error);
        assert.equal((error as RemoteError).retryable, true);
        return true;
      });
      gate.resolve();
      const replies = await Promise.all(held);
      assert.deepEqual(
        replies.map((reply) => Buffer.from(reply ?? []).toString()),
        ['first', 'second'],
      );
      assert.equal(pair.a.connection(pair.bHost).stats().requestsIn, 0);
      assert.deepEqual(
        Buffer.from((await link.request(72, Buffer.from('fourth'))) ?? []),
        Buffer.from('fourth'),
      );
    },
  );

  test(
    'a stream item refused by a full send queue fails its send instead of vanishing',
    BOUNDED,
    async (t) => {
      const pair = await startPair(t, { b: { limits: { maxQueuedBytes: 1_024 } } });
      await connected(pair);
      const stream = pair.b.connection(pair.aHost).openStream(ECHO_STREAM, { outCapacity: 4 });
      const responses = stream[Symbol.asyncIterator]();
      await stream.send(Buffer.from('first'));
      assert.deepEqual(Buffer.from((await responses.next()).value ?? []), Buffer.from('first'));
      // Four 400-byte items in one turn: the handler has room for all, the queue for two.
      const link = pair.b.connection(pair.aHost);
      const refusedBefore = link.stats().framesRefused;
      const items = [1, 2, 3, 4].map((i) => Buffer.alloc(400, i));
      const outcomes = await Promise.allSettled(items.map((item) => stream.send(item)));
      const refusedFrames = link.stats().framesRefused - refusedBefore;
      assert.ok(refusedFrames > 0, 'the queue refused something (else this test proves nothing)');
      const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
      assert.equal(failed.length, refusedFrames, 'every item the queue refused failed its send');
      for (const outcome of failed) assert.ok(outcome.reason instanceof CapacityExceededError);
      const sent = items.filter((_, i) => outcomes[i]?.status === 'fulfilled');
      for (const item of sent) {
        const echoed = await responses.next();
        assert.deepEqual(Buffer.from(echoed.value ?? []), item, 'a send that resolved was delivered');
      }
      stream.end();
      assert.equal((await responses.next()).done, true);
    },
  );
});

describe('unknown handlers', () => {
  test(
    'a request to an unregistered handler fails with WEFT_GRID_UNKNOWN_HANDLER without waiting for its deadline, and the serving side counts each one in requestsUnknownHandler',
    BOUNDED,
    async (t) => {
      const pair = await startPair(t);
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      const serving = pair.a.connection(pair.bHost);
      const refusedOnce = async (
        what: string,
        call: () => Promise<unknown>,
        expected: number,
      ): Promise<void> => {
        // The clock never moves, so no deadline can end this call.
        await assert.rejects(call(), (error: unknown) => {
          isRemote('WEFT_GRID_UNKNOWN_HANDLER')(error);
          assert.equal((error as RemoteError).retryable, false);
          return true;
        });
        assert.equal(serving.stats().requestsUnknownHandler, expected, `${what}: counted, once`);
      };
      await refusedOnce('an unregistered id', () => link.request(99, Buffer.from('x')), 1);
      await refusedOnce('a stream handler’s id', () => link.request(ECHO_STREAM, Buffer.from('x')), 2);
      await refusedOnce(
        'a subroute nobody registered',
        () => link.request(ECHO, Buffer.from('x'), { subroute: subrouteId(ECHO, 'nowhere') }),
        3,
      );
      assert.equal(pair.clock.now(), 0);

      // A request that is served is not counted, and neither side counted anything else.
      assert.deepEqual(
        Buffer.from((await link.request(ECHO, Buffer.from('known'))) ?? []),
        Buffer.from('known'),
      );
      const stats = serving.stats();
      assert.equal(stats.requestsUnknownHandler, 3);
      assert.equal(stats.streamsUnknownHandler, 0);
      assert.equal(stats.requestsRefusedIn, 0, 'an unknown handler is no lack of capacity');
      assert.equal(link.stats().requestsUnknownHandler, 0, 'the calling side counts nothing');
    },
  );

  test(
    'a stream or stateless stream to an unregistered handler fails with WEFT_GRID_UNKNOWN_HANDLER without waiting for its deadline, and the serving side counts each one in streamsUnknownHandler',
    BOUNDED,
    async (t) => {
      const pair = await startPair(t);
      await connected(pair);
      const link = pair.b.connection(pair.aHost);
      const serving = pair.a.connection(pair.bHost);
      const refusedOnce = async (
        what: string,
        open: () => AsyncIterable<Uint8Array>,
        expected: number,
      ): Promise<void> => {
        const stream = open();
        await assert.rejects(stream[Symbol.asyncIterator]().next(), isRemote('WEFT_GRID_UNKNOWN_HANDLER'));
        assert.equal(serving.stats().streamsUnknownHandler, expected, `${what}: counted, once`);
      };
      await refusedOnce(
        'a stream to an unregistered id',
        () => link.openStream(99, { initial: Buffer.from('x'), timeoutMs: 60_000 }),
        1,
      );
      await refusedOnce('a stream to a single handler’s id', () => link.openStream(ECHO), 2);
      await refusedOnce('a stateless stream to an unregistered id', () => link.openStatelessStream(99), 3);
      assert.equal(pair.clock.now(), 0);
      assert.equal(link.stats().streamsOut, 0);
      assert.equal(link.stats().statelessStreamsOut, 0, 'the refused stateless stream is over, not reopened');

      // A stream that is served is not counted, and neither side counted anything else.
      const served = link.openStream(ECHO_STREAM);
      await served.send(Buffer.from('known'));
      const responses = served[Symbol.asyncIterator]();
      assert.deepEqual(Buffer.from((await responses.next()).value ?? []), Buffer.from('known'));
      served.end();
      assert.equal((await responses.next()).done, true);
      const stats = serving.stats();
      assert.equal(stats.streamsUnknownHandler, 3);
      assert.equal(stats.requestsUnknownHandler, 0);
      assert.equal(stats.streamsRefusedIn, 0, 'an unknown handler is no lack of capacity');
      assert.equal(stats.streamProtocolErrors, 0, 'nor a protocol error');
      assert.equal(link.stats().streamsUnknownHandler, 0, 'the calling side counts nothing');
    },
  );
});

describe('sequence numbers', () => {
  const streamFrame = (op: OpCode, muxId: number, seq: number, payload?: Uint8Array): Buffer =>
    encodeFrame(frameOf(op, { muxId, seq, handler: op === Op.ConnectMux ? ECHO_STREAM : 0, payload }), true);

  test(
    'a duplicated or skipped input frame ends that stream with IncorrectSequenceError, cleans it up, and leaves the link up',
    BOUNDED,
    async (t) => {
      const node = await startAcceptor(t);
      const peer = await rawDialler(t, node);
      for (const [muxId, badSeq] of [
        [9, 1], // the first item's number again: a duplicate
        [10, 3], // jumps over 2: a lost or reordered frame
      ] as const) {
        peer.send(
          streamFrame(Op.ConnectMux, muxId, 0, encodeStreamOpen({ outWindow: 4, initial: undefined })),
        );
        assert.ok(await peer.nextFrame((f) => f.op === Op.AckMux && f.muxId === muxId));
        peer.send(streamFrame(Op.MuxClientMsg, muxId, 1, Buffer.from('first')));
        const echo = await peer.nextFrame((f) => f.op === Op.MuxServerMsg && f.muxId === muxId);
        assert.equal(Buffer.from(echo?.payload ?? []).toString(), 'first');
        peer.send(streamFrame(Op.MuxClientMsg, muxId, badSeq, Buffer.from('second')));
        const gone = await peer.nextFrame((f) => f.op === Op.DisconnectClientMux && f.muxId === muxId);
        assert.ok(gone !== undefined, 'the caller is told the stream is gone');
        assert.equal(decodeError(gone.payload).code, IncorrectSequenceError.code);
        assert.equal(node.a.connection(node.dialler).stats().streamsIn, 0, 'the stream is cleaned up');
      }
      const reply = await rawRequest(peer, 77, Buffer.from('still here'));
      assert.equal(Buffer.from(reply?.payload ?? []).toString(), 'still here');
    },
  );

  test(
    'a response frame out of sequence fails the caller’s stream with IncorrectSequenceError and cancels it on the other side',
    BOUNDED,
    async (t) => {
      // A raw acceptor that completes the handshake, then answers a stream open out of order.
      const clock = new FakeClock();
      const aBound = await bindLoopback(t);
      const rawBound = await bindLoopback(t, { wanted: (host) => shouldDial(aBound.host, host) });
      const wss = new WebSocketServer({ server: rawBound.server, path: GRID_PATH });
      t.after(() => {
        wss.close();
      });
      const cancelled = new Promise<Frame>((resolve) => {
        wss.on('connection', (ws) => {
          const answer = playAcceptor(ws, clock, rawBound.host, SECRET);
          ws.on('message', (data: Buffer) => {
            for (const frame of decodeMessage(data)) {
              if (frame.op === Op.Connect) {
                ws.send(answer(data));
              } else if (frame.op === Op.ConnectMux) {
                ws.send(streamFrame(Op.AckMux, frame.muxId, 0, encodeWindow(4)));
                ws.send(streamFrame(Op.MuxServerMsg, frame.muxId, 2, Buffer.from('skipped 1')));
              } else if (frame.op === Op.DisconnectServerMux) {
                resolve(frame);
              }
            }
          });
        });
      });
      const a = makeManager(t, aBound.host, [aBound.host, rawBound.host], { clock });
      a.attach(aBound.server);
      const link = a.connection(rawBound.host);
      await link.waitForConnect();
      const stream = link.openStream(90, { outCapacity: 4 });
      await assert.rejects(
        (async () => {
          for await (const item of stream) assert.fail(`an item arrived: ${Buffer.from(item).toString()}`);
        })(),
        IncorrectSequenceError,
      );
      assert.equal((await cancelled).muxId, stream.muxId, 'the handler side is told to stop');
      assert.equal(link.stats().streamsOut, 0);
      assert.equal(link.state(), 'connected');
    },
  );
});

describe('hostile or broken peers at the edges of the handshake', () => {
  test(
    'a peer that answers the upgrade with a broken frame fails the dial, not the process',
    BOUNDED,
    async (t) => {
      // A raw server: 101 Switching Protocols, then at once a masked frame, which a server
      // must never send. ws reports it as an 'error' event on the dialling socket.
      const raw = net.createServer((socket) => {
        socket.once('data', (request) => {
          const key = /sec-websocket-key: (.*)\r\n/i.exec(request.toString())?.[1] ?? '';
          const accept = createHash('sha1')
            .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
            .digest('base64');
          socket.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
              ),
              Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]),
            ]),
          );
        });
      });
      await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
      t.after(() => {
        raw.close();
      });
      const rawHost = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
      const aBound = await bindLoopback(t, { wanted: (host) => shouldDial(host, rawHost) });
      const states = watchStates(t);
      const a = makeManager(t, aBound.host, [aBound.host, rawHost], { clock: new FakeClock() });
      a.attach(aBound.server);
      // Reaching the failed state at all means the process survived the bad frame.
      const failed = await states.next((m) => m.remote === rawHost && m.state === 'connection-error');
      assert.match(String((failed.error as Error | undefined)?.message), /MASK|mask|closed/);
    },
  );

  test('upgrade requests that ws rejects never use up the handshake slots', BOUNDED, async (t) => {
    const node = await startAcceptor(t);
    // 300 upgrades without a Sec-WebSocket-Key: more than the 256 handshakes allowed at once.
    for (let i = 0; i < 300; i++) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(node.port, '127.0.0.1', () => {
          socket.write(
            `GET ${GRID_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
          );
        });
        socket.on('data', () => undefined);
        socket.once('close', () => {
          resolve();
        });
        socket.once('error', () => {
          resolve();
        });
      });
    }
    await assertServesPeers(node);
    assert.equal(node.a.stats().refused['too-many-handshakes'], undefined);
  });
});

test(
  'a peer that says Disconnect together with its handshake answer is dialled again later',
  BOUNDED,
  async (t) => {
    const clock = new FakeClock();
    const aBound = await bindLoopback(t);
    const rawBound = await bindLoopback(t, { wanted: (host) => shouldDial(aBound.host, host) });
    const wss = new WebSocketServer({ server: rawBound.server, path: GRID_PATH });
    t.after(() => {
      wss.close();
    });
    let dials = 0;
    wss.on('connection', (ws) => {
      dials += 1;
      const answer = playAcceptor(ws, clock, rawBound.host, SECRET);
      ws.once('message', (data: Buffer) => {
        const response = answer(data);
        if (dials > 1) {
          ws.send(response);
          return;
        }
        // The first time, both in one TCP segment: the answer and "I am going away".
        const socket = (ws as unknown as { _socket: Socket })._socket;
        socket.cork();
        ws.send(response);
        ws.send(encodeFrame(frameOf(Op.Disconnect), true));
        process.nextTick(() => {
          socket.uncork();
        });
      });
    });
    const states = watchStates(t);
    const a = makeManager(t, aBound.host, [aBound.host, rawBound.host], { clock });
    a.attach(aBound.server);
    await states.next((m) => m.remote === rawBound.host && m.state === 'connection-error');
    // The redial waits its jittered delay (1.5 s with this node's random source) on the fake clock.
    await clock.advanceAsync(2_000);
    await a.connection(rawBound.host).waitForConnect();
    assert.equal(dials, 2);
  },
);

describe('frame checksums', () => {
  for (const [setting, expected] of [
    ['auto', true],
    ['never', false],
  ] as const) {
    test(
      `with frameChecksum '${setting}' over plain http, frames ${expected ? 'carry' : 'omit'} the CRC, and a peer with another setting is still understood`,
      BOUNDED,
      async (t) => {
        const node = await startAcceptor(t, { frameChecksum: setting });
        const peer = await rawDialler(t, node);
        // The raw peer always sends a CRC; the node checks it whatever its own setting.
        peer.send(
          encodeFrame(frameOf(Op.Request, { muxId: 5, handler: ECHO, payload: Buffer.from('sum') }), true),
        );
        let message: Buffer = Buffer.alloc(0);
        let reply: Frame | undefined;
        while (reply === undefined) {
          const next = await peer.next();
          assert.ok(next !== undefined, 'the socket stays open');
          message = next;
          reply = decodeMessage(message).find((frame) => frame.op === Op.Response && frame.muxId === 5);
        }
        // The node sends its frames in Merged batches with one CRC for the batch (the flags of
        // the outer tuple, byte 6), none of their own.
        assert.equal(message[5], Op.Merged);
        assert.equal(((message[6] ?? 0) & Flag.CRC) !== 0, expected);
        assert.equal(reply.flags & Flag.CRC, 0);
        assert.equal(Buffer.from(reply.payload ?? []).toString(), 'sum');
        // And it reads frames without one.
        peer.send(
          encodeFrame(frameOf(Op.Request, { muxId: 6, handler: ECHO, payload: Buffer.from('plain') }), false),
        );
        const plain = await peer.nextFrame((frame) => frame.op === Op.Response && frame.muxId === 6);
        assert.equal(Buffer.from(plain?.payload ?? []).toString(), 'plain');
      },
    );
  }

  test('an unknown frameChecksum setting is refused with the field named', () => {
    assert.throws(
      () =>
        new Manager({
          local: 'http://127.0.0.1:1',
          hosts: ['http://127.0.0.1:1'],
          auth: { secret: SECRET },
          frameChecksum: 'sometimes' as FrameChecksum,
        }),
      /grid.frameChecksum/,
    );
  });
});
