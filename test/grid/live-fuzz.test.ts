// Fuzzing a live Manager over real sockets: random bytes, valid frames of every op with
// random fields, and those frames bit-flipped, cut short or extended, sent first as a
// handshake and then over an authenticated connection. Whatever arrives, the node must
// not crash (node:test reports any uncaught exception or unhandled rejection), must
// answer every handshake, must only ever send frames that decode, and must go on
// serving: after each batch a probe request gets its echo, or the socket was reset.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';

import fc from 'fast-check';

import { hmacAuth } from '../../src/grid/auth.ts';
import { defaultGridLimits } from '../../src/grid/config.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import type { RefusalReason } from '../../src/grid/errors.ts';
import { decodeFrame, encodeFrame, encodeMerged, type Frame } from '../../src/grid/frame.ts';
import { Manager } from '../../src/grid/manager.ts';
import {
  decodeConnect,
  decodeConnectResponse,
  encodeConnect,
  encodeError,
  encodePing,
  encodePong,
  encodeStreamOpen,
  encodeWindow,
  pack,
  type ConnectResponse,
} from '../../src/grid/messages.ts';
import { Op, PROTOCOL_VERSION } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { frameOf, RawPeer } from './raw-peer.ts';

const SECRET = 'weft-live-fuzz-cluster-secret';
const ECHO = 64;
const ECHO_STREAM = 65;
const THROWS = 66;
const WAITS = 67;
const MAX_FRAME_BYTES = 64 * 1024;
/** Probe mux ids sit far above what the fuzz usually picks. */
const PROBE_BASE = 2 ** 40;

// ---------------------------------------------------------------------------------------
// The node under test

interface Target {
  readonly clock: FakeClock;
  readonly manager: Manager;
  readonly host: string;
  readonly port: number;
  /** A host in the list that dials the target: the raw client poses as it. */
  readonly dialler: string;
}

async function startTarget(t: TestContext): Promise<Target> {
  const clock = new FakeClock();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  // Upgraded sockets leave the server's HTTP bookkeeping, so they are tracked here.
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = `http://127.0.0.1:${port}`;
  let dialler: string | undefined;
  for (let i = 2; i < 255 && dialler === undefined; i++) {
    // Nobody listens there, and the target never dials it: it is the dialling side.
    const candidate = `http://127.0.0.${i}:1`;
    if (shouldDial(candidate, host)) dialler = candidate;
  }
  assert.ok(dialler !== undefined);
  const manager = new Manager({
    local: host,
    hosts: [host, dialler],
    auth: { secret: SECRET },
    clock,
    limits: { maxFrameBytes: MAX_FRAME_BYTES },
  });
  manager.registerSingle(ECHO, (payload) => payload);
  manager.registerSingle(THROWS, () => {
    throw new Error('handler failure');
  });
  manager.registerSingle(
    WAITS,
    (_payload, { signal }) =>
      new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          resolve(undefined);
        });
      }),
  );
  manager.registerStream(ECHO_STREAM, {
    inCapacity: 2,
    async handle({ requests, send }) {
      for await (const item of requests) await send(item);
    },
  });
  manager.attach(server);
  t.after(async () => {
    await manager.close();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
      for (const socket of sockets) socket.destroy();
    });
  });
  return { clock, manager, host, port, dialler };
}

// ---------------------------------------------------------------------------------------
// A raw grid client

/**
 * The replay rule as the wire document states it: per dialling process (node id), each
 * accepted Connect must be newer than the last; processes last heard from before the skew
 * window are forgotten, and at most 16 are remembered per host (the least recent go first).
 */
const acceptedByProcess = new WeakMap<Target, Map<string, number>>();

function processes(target: Target): Map<string, number> {
  let seen = acceptedByProcess.get(target);
  if (seen === undefined) {
    seen = new Map();
    acceptedByProcess.set(target, seen);
  }
  const now = target.clock.wallTimeMs();
  for (const [id, last] of seen) if (last < now - defaultGridLimits.maxClockSkewMs) seen.delete(id);
  return seen;
}

/** A time for a legitimate Connect from process `nodeId`: now, or just after its last accepted one. */
function freshConnectTime(target: Target, nodeId: Uint8Array): number {
  const last = processes(target).get(Buffer.from(nodeId).toString('hex'));
  return Math.max(target.clock.wallTimeMs(), last === undefined ? Number.NEGATIVE_INFINITY : last + 1);
}

function noteAccepted(target: Target, nodeId: Uint8Array, timeMs: number): void {
  const seen = processes(target);
  const id = Buffer.from(nodeId).toString('hex');
  seen.delete(id);
  seen.set(id, timeMs);
  if (seen.size > 16) seen.delete(seen.keys().next().value as string);
}

function isReplay(target: Target, nodeId: Uint8Array, timeMs: number): boolean {
  const last = processes(target).get(Buffer.from(nodeId).toString('hex'));
  return last !== undefined && timeMs <= last;
}

function connectFrame(target: Target, fields: Partial<ConnectInput> = {}): Buffer {
  const nodeId = fields.nodeId ?? randomBytes(16);
  const timeMs = fields.timeMs ?? freshConnectTime(target, nodeId);
  const payload = encodeConnect({
    version: fields.version ?? PROTOCOL_VERSION,
    nodeId,
    host: fields.host ?? target.dialler,
    timeMs,
    token: fields.token ?? hmacAuth(SECRET).authToken(target.host, timeMs),
  });
  return encodeFrame(frameOf(Op.Connect, { payload }), false);
}

async function handshake(peer: RawPeer, first: Uint8Array): Promise<ConnectResponse | undefined> {
  peer.send(first);
  const reply = await peer.next();
  if (reply === undefined) return undefined;
  const frame = decodeFrame(reply);
  assert.equal(frame.op, Op.ConnectResponse, 'the answer to a handshake is a ConnectResponse');
  return decodeConnectResponse(frame.payload);
}

/** A raw client that completed a legitimate handshake as the target's dialler. */
async function legitimatePeer(t: TestContext, target: Target): Promise<RawPeer> {
  const peer = await RawPeer.open(t, target.port);
  const first = connectFrame(target);
  const response = await handshake(peer, first);
  assert.equal(response?.accepted, true, `a legitimate handshake was refused: ${response?.detail ?? ''}`);
  const accepted = decodeConnect(decodeFrame(first).payload);
  noteAccepted(target, accepted.nodeId, accepted.timeMs);
  return peer;
}

/** Echo request over `peer`: the echoed payload, or undefined if the socket closed first. */
async function probe(peer: RawPeer, muxId: number): Promise<Buffer | undefined> {
  const nonce = randomBytes(8);
  peer.send(encodeFrame(frameOf(Op.Request, { muxId, handler: ECHO, payload: nonce }), true));
  const response = await peer.nextFrame((frame) => frame.op === Op.Response && frame.muxId === muxId);
  if (response === undefined) return undefined;
  assert.deepEqual(Buffer.from(response.payload ?? []), nonce, 'the probe gets its own payload back');
  return nonce;
}

// ---------------------------------------------------------------------------------------
// Inputs

// encodeFrame writes known ops and flags only (Merged comes from encodeMerged); the
// mutations below reach the rest.
const frameOps = Object.values(Op).filter((op) => op !== Op.Merged);

/** Payloads that the node's decoders accept, or nearly do, for each kind of control frame. */
const payloadArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 48 }),
  fc.double().map((t) => encodePing(t)),
  fc.record({ sentAt: fc.double(), notFound: fc.boolean() }).map((pong) => encodePong(pong)),
  fc
    .record({
      outWindow: fc.nat(8),
      initial: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }),
    })
    .map((open) => encodeStreamOpen(open)),
  fc.nat(8).map((window) => encodeWindow(window)),
  fc.string({ maxLength: 24 }).map((message) => encodeError(new Error(message))),
  fc.jsonValue({ maxDepth: 2 }).map((value) => pack(value)),
);

interface FuzzFrame {
  readonly frame: Frame;
  readonly crc: boolean;
}

const frameArb: fc.Arbitrary<FuzzFrame> = fc.record({
  frame: fc.record({
    muxId: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.maxSafeNat()),
    seq: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.nat({ max: 0xffff_ffff })),
    deadlineMs: fc.oneof(fc.constant(0), fc.nat({ max: 0xffff_ffff })),
    handler: fc.oneof(fc.constantFrom(ECHO, ECHO_STREAM, THROWS, WAITS), fc.nat({ max: 255 })),
    op: fc.constantFrom(...frameOps),
    flags: fc.oneof(fc.constant(0), fc.nat({ max: 0x3f })),
    payload: payloadArb,
    subroute: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
  }),
  crc: fc.boolean(),
});

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'extend'; readonly bytes: Uint8Array }
  | { readonly kind: 'set'; readonly at: number; readonly value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
);

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    if (out.length === 0) break;
    switch (m.kind) {
      case 'flip':
        out[m.at % out.length] = (out[m.at % out.length] as number) ^ (1 << m.bit);
        break;
      case 'truncate':
        out = out.subarray(0, m.at % out.length);
        break;
      case 'extend':
        out = Buffer.concat([out, m.bytes]);
        break;
      case 'set':
        out[m.at % out.length] = m.value;
        break;
    }
  }
  return out;
}

function encodeFuzzFrame({ frame, crc }: FuzzFrame): Buffer {
  return encodeFrame(frame, crc);
}

/**
 * One WebSocket message of the fuzz: junk, a valid frame or batch, or one of those
 * damaged. Intact frames are the likeliest, so that batches often leave the socket up
 * and later ones meet streams and requests already open.
 */
const messageArb: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 96 }).map((bytes) => Buffer.from(bytes)), weight: 1 },
  { arbitrary: frameArb.map(encodeFuzzFrame), weight: 6 },
  {
    arbitrary: fc
      .record({ frame: frameArb, mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) })
      .map(({ frame, mutations }) => mutate(encodeFuzzFrame(frame), mutations)),
    weight: 1,
  },
  {
    arbitrary: fc
      .record({
        frames: fc.array(frameArb, { minLength: 1, maxLength: 5 }),
        mutations: fc.array(mutationArb, { maxLength: 1 }),
      })
      .map(({ frames, mutations }) => mutate(encodeMerged(frames.map(encodeFuzzFrame)), mutations)),
    weight: 2,
  },
);

interface ConnectInput {
  readonly version: number;
  readonly nodeId: Uint8Array;
  readonly host: string;
  readonly timeMs: number;
  readonly token: string;
}

// ---------------------------------------------------------------------------------------

/**
 * Runs `check` as a fast-check property until the time limit. fast-check stops waiting
 * for a run at the limit but does not stop it, so the run in progress is awaited here:
 * nothing of the fuzz is still talking to the node when the final checks start.
 */
async function fuzzFor<T>(timeLimitMs: number, arb: fc.Arbitrary<T>, check: (input: T) => Promise<void>) {
  let current: Promise<void> = Promise.resolve();
  await fc.assert(
    fc.asyncProperty(arb, (input) => {
      current = check(input);
      return current;
    }),
    { interruptAfterTimeLimit: timeLimitMs, numRuns: 1_000_000 },
  );
  await current;
}

/**
 * The refusal an intact Connect must get, checked in the acceptor's order: a malformed
 * field, the version, the host, the clock, the token. Undefined means accepted.
 */
function expectedRefusal(target: Target, c: ConnectInput): RefusalReason | undefined {
  if (c.nodeId.length !== 16 || !Number.isFinite(c.timeMs)) return 'bad-handshake';
  if (c.version !== PROTOCOL_VERSION) return 'version-mismatch';
  if (c.host !== target.dialler) return 'unknown-host';
  if (Math.abs(target.clock.wallTimeMs() - c.timeMs) > defaultGridLimits.maxClockSkewMs) return 'clock-skew';
  if (c.token !== hmacAuth(SECRET).authToken(target.host, c.timeMs)) return 'bad-token';
  if (isReplay(target, c.nodeId, c.timeMs)) return 'replayed-token';
  return undefined;
}

test(
  'every handshake, however damaged, is answered with a ConnectResponse and never crashes the node',
  { timeout: 30_000 },
  async (t) => {
    const target = await startTarget(t);
    const now = target.clock.wallTimeMs();
    const skew = defaultGridLimits.maxClockSkewMs;
    // Each field is left out (valid) about half the time, so every check gets its turn.
    const connectArb: fc.Arbitrary<Partial<ConnectInput>> = fc.record(
      {
        version: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.nat()),
        nodeId: fc.uint8Array({ minLength: 15, maxLength: 17 }),
        host: fc.oneof(
          fc.constantFrom(target.dialler, target.host, 'http://10.1.1.1:9'),
          fc.string({ maxLength: 24 }),
        ),
        timeMs: fc.oneof(
          fc.integer({ min: now - skew - 1_000, max: now + skew + 1_000 }),
          fc.constantFrom(now - skew, now + skew, now - skew - 1, now + skew + 1),
          fc.double(),
        ),
        token: fc.string({ maxLength: 44 }),
      },
      { requiredKeys: [] },
    );
    const inputArb = fc.record({
      // A quarter are left entirely valid, so acceptance is exercised too.
      connect: fc.oneof(
        { arbitrary: fc.constant<Partial<ConnectInput>>({}), weight: 1 },
        { arbitrary: connectArb, weight: 3 },
      ),
      mutations: fc.oneof(fc.constant([]), fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
    });
    let tried = 0;
    let accepted = 0;
    let refused = 0;
    let checkedAgainstModel = 0;
    await fuzzFor(1_500, inputArb, async ({ connect, mutations }) => {
      tried += 1;
      const nodeId = connect.nodeId ?? randomBytes(16);
      const timeMs = connect.timeMs ?? freshConnectTime(target, nodeId);
      const input: ConnectInput = {
        version: connect.version ?? PROTOCOL_VERSION,
        nodeId,
        host: connect.host ?? target.dialler,
        timeMs,
        token: connect.token ?? hmacAuth(SECRET).authToken(target.host, timeMs),
      };
      const peer = await RawPeer.open(t, target.port);
      const sent = mutate(connectFrame(target, input), mutations);
      const response = await handshake(peer, sent);
      assert.ok(response !== undefined, 'the node closed the socket without saying why');
      if (mutations.length === 0) {
        checkedAgainstModel += 1;
        const expected = expectedRefusal(target, input);
        assert.equal(response.accepted, expected === undefined, response.detail);
        assert.equal(response.reason, expected, response.detail);
      }
      if (response.accepted) {
        accepted += 1;
        // What was accepted decodes, mutated or not; its time is now the one to beat.
        const connect = decodeConnect(decodeFrame(Buffer.from(sent)).payload);
        noteAccepted(target, connect.nodeId, connect.timeMs);
        peer.ws.terminate();
      } else {
        refused += 1;
        assert.equal((await peer.closed).code, 1008, 'a refused socket is closed');
      }
      await peer.closed;
    });
    t.diagnostic(
      `${tried} handshakes tried (${checkedAgainstModel} intact, checked against the model): ` +
        `${accepted} accepted, ${refused} refused`,
    );
    assert.ok(refused > 0 && accepted > 0, 'the fuzz reached both outcomes');
    const stats = target.manager.stats().refused;
    assert.equal(
      Object.values(stats).reduce((sum, n) => sum + n, 0),
      refused,
      `every refusal is counted: ${JSON.stringify(stats)}`,
    );

    const peer = await legitimatePeer(t, target);
    assert.ok((await probe(peer, 1)) !== undefined, 'a legitimate peer is served after the fuzz');
  },
);

test(
  'random and damaged frames over an authenticated connection never crash the node or stop it serving',
  { timeout: 30_000 },
  async (t) => {
    const target = await startTarget(t);
    let peer = await legitimatePeer(t, target);
    let inputs = 0;
    let batches = 0;
    let resets = 0;
    let probesAnswered = 0;
    let nextProbe = PROBE_BASE;

    await fuzzFor(3_000, fc.array(messageArb, { minLength: 1, maxLength: 4 }), async (messages) => {
      batches += 1;
      if (!peer.isOpen) {
        resets += 1;
        peer = await legitimatePeer(t, target);
      }
      for (const message of messages) {
        inputs += 1;
        peer.send(message);
      }
      // Either the node answers the probe (after everything sent before it), or it has
      // reset the socket; it must not leave it open and silent.
      const echoed = await probe(peer, nextProbe++);
      if (echoed === undefined) assert.equal(peer.isOpen, false);
      else probesAnswered += 1;
    });
    if (!peer.isOpen) resets += 1;

    t.diagnostic(
      `${inputs} messages in ${batches} batches; ${probesAnswered} probes answered, ${resets} sockets reset`,
    );
    assert.ok(probesAnswered > 0, 'some batches left the connection usable');
    assert.ok(resets > 0, 'some input was bad enough to reset the socket');
    const stats = target.manager.connection(target.dialler).stats();
    assert.ok(stats.protocolErrors > 0, 'the node counted the frames it could not take');

    const fresh = await legitimatePeer(t, target);
    assert.ok(
      (await probe(fresh, 1)) !== undefined,
      'a fresh legitimate connection is served after the fuzz',
    );
  },
);
