// Fuzzing a live Manager over real sockets: random bytes, valid frames of every op with
// random fields, and those frames bit-flipped, cut short or extended, sent first as a
// handshake (a Connect in answer to the node's Challenge) and then over an authenticated
// connection. Whatever arrives, the node must not crash (node:test reports any uncaught
// exception or unhandled rejection), must answer every handshake as the model of its
// checks says, must only ever send frames that decode, and must go on serving: after
// each batch a probe request gets its echo, or the socket was reset. Each fuzz runs for
// a fixed time and must reach a minimum number of runs in it.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';

import fc from 'fast-check';

import { hmacAuth, type HandshakeClaims, type HandshakeRole } from '../../src/grid/auth.ts';
import { defaultGridLimits } from '../../src/grid/config.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import type { RefusalReason } from '../../src/grid/errors.ts';
import { decodeFrame, encodeFrame, encodeMerged, type Frame } from '../../src/grid/frame.ts';
import { Manager } from '../../src/grid/manager.ts';
import {
  decodeChallenge,
  decodeConnect,
  decodeConnectResponse,
  encodeConnect,
  encodeError,
  encodePing,
  encodePong,
  encodeStreamOpen,
  encodeWindow,
  pack,
  type Challenge,
  type ConnectResponse,
} from '../../src/grid/messages.ts';
import { Op, PROTOCOL_VERSION } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { fuzzAsync, type FuzzBudget } from '../fuzz-budget.ts';

import { bindLoopback, frameOf, hostDialledBy, hostDialling, RawPeer } from './raw-peer.ts';

const SECRET = 'weft-live-fuzz-cluster-secret';
const ECHO = 64;
const ECHO_STREAM = 65;
const THROWS = 66;
const WAITS = 67;
const MAX_FRAME_BYTES = 64 * 1024;
/** Probe mux ids sit far above what the fuzz usually picks. */
const PROBE_BASE = 2 ** 40;
/** The longest host and token a Connect may carry (messages.ts). */
const MAX_HOST = 2_048;
const MAX_TOKEN = 1_024;

// ---------------------------------------------------------------------------------------
// The node under test

interface Target {
  readonly clock: FakeClock;
  readonly manager: Manager;
  readonly host: string;
  readonly port: number;
  /** A host in the list that dials the target: the raw client poses as it. */
  readonly dialler: string;
  /** A host in the list that the target dials: a Connect from it comes the wrong way. */
  readonly dialled: string;
  /** The nonce of every Challenge the target sent, in hex: none may come twice. */
  readonly nonces: Set<string>;
}

async function startTarget(t: TestContext): Promise<Target> {
  const clock = new FakeClock();
  const { server, host, port } = await bindLoopback(t);
  // Nobody listens at these. The target never dials the dialler: it is the dialling side.
  // The target's dials to the other fail, and it waits to redial on the fake clock, which
  // never moves here.
  const dialler = hostDialling(host);
  const dialled = hostDialledBy(host);
  const manager = new Manager({
    local: host,
    hosts: [host, dialler, dialled],
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
  t.after(() => manager.close());
  return { clock, manager, host, port, dialler, dialled, nonces: new Set() };
}

// ---------------------------------------------------------------------------------------
// A raw grid client

/** The target's wall time in whole ms, as its handshake reads it. */
function wallTime(target: Target): number {
  return Math.floor(target.clock.wallTimeMs());
}

/**
 * A raw socket and the target's Challenge, which must come first and unasked, name the
 * target, its time and version, and carry a nonce the target never sent before.
 */
async function challenged(t: TestContext, target: Target): Promise<{ peer: RawPeer; challenge: Challenge }> {
  const peer = await RawPeer.open(t, target.port);
  const first = await peer.next();
  assert.ok(first !== undefined, 'the node closed the socket without sending its Challenge');
  const frame = decodeFrame(first);
  assert.equal(frame.op, Op.Challenge, 'the first frame on a grid socket is the Challenge');
  const challenge = decodeChallenge(frame.payload);
  assert.equal(challenge.version, PROTOCOL_VERSION);
  assert.equal(challenge.host, target.host);
  assert.deepEqual(Buffer.from(challenge.nodeId), Buffer.from(target.manager.nodeId));
  assert.equal(challenge.timeMs, wallTime(target));
  const nonce = Buffer.from(challenge.nonce).toString('hex');
  assert.ok(!target.nonces.has(nonce), `Challenge nonce ${nonce} sent twice`);
  target.nonces.add(nonce);
  return { peer, challenge };
}

/** What both tokens of a handshake cover: the dialler's side as the Connect states it, and the Challenge. */
function claimsOf(c: Omit<ConnectInput, 'version' | 'token'>, challenge: Challenge): HandshakeClaims {
  return {
    version: PROTOCOL_VERSION,
    dialler: { host: c.host, nodeId: c.nodeId, timeMs: c.timeMs, nonce: c.nonce },
    acceptor: {
      host: challenge.host,
      nodeId: challenge.nodeId,
      timeMs: challenge.timeMs,
      nonce: challenge.nonce,
    },
  };
}

function token(role: HandshakeRole, claims: HandshakeClaims, secret = SECRET): string {
  return hmacAuth(secret).authToken(role, claims);
}

/** The Connect a legitimate dialler sends in answer to `challenge`. */
function legitimateConnect(target: Target, challenge: Challenge): ConnectInput {
  const fields = {
    nodeId: randomBytes(16),
    host: target.dialler,
    timeMs: wallTime(target),
    nonce: randomBytes(16),
  };
  return { version: PROTOCOL_VERSION, ...fields, token: token('dialler', claimsOf(fields, challenge)) };
}

function connectFrame(c: ConnectInput): Buffer {
  return encodeFrame(frameOf(Op.Connect, { payload: encodeConnect(c) }), false);
}

/** Sends `connect` (the bytes of a Connect frame, maybe damaged) and reads the answer. */
async function handshake(peer: RawPeer, connect: Uint8Array): Promise<ConnectResponse | undefined> {
  peer.send(connect);
  const reply = await peer.next();
  if (reply === undefined) return undefined;
  const frame = decodeFrame(reply);
  assert.equal(frame.op, Op.ConnectResponse, 'the answer to a Connect is a ConnectResponse');
  return decodeConnectResponse(frame.payload);
}

/** A raw client that completed a legitimate handshake as the target's dialler. */
async function legitimatePeer(t: TestContext, target: Target): Promise<RawPeer> {
  const { peer, challenge } = await challenged(t, target);
  const connect = legitimateConnect(target, challenge);
  const response = await handshake(peer, connectFrame(connect));
  assert.ok(response?.accepted, `a legitimate handshake was refused: ${JSON.stringify(response)}`);
  assert.ok(
    hmacAuth(SECRET).verifyToken(response.token, 'acceptor', claimsOf(connect, challenge)),
    'the node proves it holds the secret, over this exchange',
  );
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

/**
 * Real time a node on loopback may take to answer a probe or close the socket. The echo
 * handler answers at once and nothing here waits on the fake clock, so a loaded machine
 * answers in milliseconds; this is far above that and far below the test's own timeout.
 */
const SILENCE_LIMIT_MS = 5_000;

/**
 * `probe`, failing if neither its answer nor the socket's close comes within
 * SILENCE_LIMIT_MS: a node that keeps the socket open but stops answering fails here,
 * by name, rather than hanging the test until the runner's timeout.
 */
async function probeOrClose(peer: RawPeer, muxId: number): Promise<Buffer | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new Error(
          `the node left the socket open and silent: no answer to probe ${muxId} and no close ` +
            `within ${SILENCE_LIMIT_MS} ms`,
        ),
      );
    }, SILENCE_LIMIT_MS);
  });
  try {
    return await Promise.race([probe(peer, muxId), silent]);
  } finally {
    clearTimeout(timer);
  }
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
  readonly nonce: Uint8Array;
  readonly token: string;
}

/** One field of the claims, changed in `changeClaim`. */
type ClaimField = 'version' | `${'dialler' | 'acceptor'}.${'host' | 'nodeId' | 'timeMs' | 'nonce'}`;

const claimFields: readonly ClaimField[] = [
  'version',
  ...(['dialler', 'acceptor'] as const).flatMap((side) =>
    (['host', 'nodeId', 'timeMs', 'nonce'] as const).map((key): ClaimField => `${side}.${key}`),
  ),
];

function changeClaim(claims: HandshakeClaims, field: ClaimField): HandshakeClaims {
  if (field === 'version') return { ...claims, version: claims.version + 1 };
  const [side, key] = field.split('.') as ['dialler' | 'acceptor', 'host' | 'nodeId' | 'timeMs' | 'nonce'];
  const party = claims[side];
  const flipped = (bytes: Uint8Array): Uint8Array => Uint8Array.from(bytes, (b, i) => (i === 0 ? b ^ 1 : b));
  const changed =
    key === 'host'
      ? { ...party, host: `${party.host}/` }
      : key === 'timeMs'
        ? { ...party, timeMs: party.timeMs + 1 }
        : { ...party, [key]: flipped(party[key]) };
  return { ...claims, [side]: changed };
}

/**
 * The token a fuzzed Connect carries: the right one, text, or a genuine token that belongs
 * to something else (the other role, another secret, claims that differ in one field).
 */
type TokenChoice =
  | { readonly kind: 'valid' }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'reflected' }
  | { readonly kind: 'other-secret' }
  | { readonly kind: 'other-claims'; readonly field: ClaimField };

const tokenChoiceArb: fc.Arbitrary<TokenChoice> = fc.oneof(
  fc.constant({ kind: 'valid' } as const),
  fc.string({ maxLength: 44 }).map((text) => ({ kind: 'text', text }) as const),
  fc.constant({ kind: 'text', text: 'x'.repeat(MAX_TOKEN + 1) } as const),
  fc.constant({ kind: 'reflected' } as const),
  fc.constant({ kind: 'other-secret' } as const),
  fc.constantFrom(...claimFields).map((field) => ({ kind: 'other-claims', field }) as const),
);

/** Fields of a fuzzed Connect; a field left out is the legitimate value. */
type ConnectFields = Partial<Omit<ConnectInput, 'token'>> & { readonly token?: TokenChoice };

function connectInput(target: Target, challenge: Challenge, fields: ConnectFields): ConnectInput {
  const legitimate = legitimateConnect(target, challenge);
  const c = {
    version: fields.version ?? legitimate.version,
    nodeId: fields.nodeId ?? legitimate.nodeId,
    host: fields.host ?? legitimate.host,
    timeMs: fields.timeMs ?? legitimate.timeMs,
    nonce: fields.nonce ?? legitimate.nonce,
  };
  const claims = claimsOf(c, challenge);
  const choice = fields.token ?? { kind: 'valid' };
  switch (choice.kind) {
    case 'valid':
      return { ...c, token: token('dialler', claims) };
    case 'text':
      return { ...c, token: choice.text };
    case 'reflected':
      return { ...c, token: token('acceptor', claims) };
    case 'other-secret':
      return { ...c, token: token('dialler', claims, `${SECRET}-other`) };
    case 'other-claims':
      return { ...c, token: token('dialler', changeClaim(claims, choice.field)) };
  }
}

// ---------------------------------------------------------------------------------------

/**
 * The refusal an intact Connect must get, checked in the acceptor's order: the version
 * (read even from a Connect that does not decode), a malformed field, the host, the
 * clock, the token over the whole exchange, the dial direction. Undefined means accepted.
 */
function expectedRefusal(target: Target, challenge: Challenge, c: ConnectInput): RefusalReason | undefined {
  if (c.version !== PROTOCOL_VERSION) return 'version-mismatch';
  if (
    c.nodeId.length !== 16 ||
    c.nonce.length !== 16 ||
    !Number.isSafeInteger(c.timeMs) ||
    c.timeMs < 0 ||
    c.host.length > MAX_HOST ||
    c.token.length > MAX_TOKEN
  ) {
    return 'bad-handshake';
  }
  if (c.host !== target.dialler && c.host !== target.dialled) return 'unknown-host';
  if (Math.abs(wallTime(target) - c.timeMs) > defaultGridLimits.maxClockSkewMs) return 'clock-skew';
  if (c.token !== token('dialler', claimsOf(c, challenge))) return 'bad-token';
  if (!shouldDial(c.host, target.host)) return 'wrong-direction';
  return undefined;
}

type Outcome = RefusalReason | 'accepted';

/** Every outcome the model knows; each must be reached by the handshake fuzz. */
const outcomes: readonly Outcome[] = [
  'accepted',
  'version-mismatch',
  'bad-handshake',
  'unknown-host',
  'clock-skew',
  'bad-token',
  'wrong-direction',
];

const outcomeOf = (response: ConnectResponse): Outcome => (response.accepted ? 'accepted' : response.reason);

interface HandshakeInput {
  readonly connect: ConnectFields;
  /** Send the last accepted Connect again, as captured, instead. */
  readonly replay: boolean;
  readonly mutations: readonly Mutation[];
  /** For the hand-written examples: the outcome the model must predict. */
  readonly expect?: Outcome;
}

test(
  'every handshake, however damaged, is answered with a ConnectResponse and never crashes the node',
  { timeout: 30_000 },
  async (t) => {
    const target = await startTarget(t);
    const now = wallTime(target);
    const skew = defaultGridLimits.maxClockSkewMs;
    const field = {
      version: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.constant(1), fc.nat()),
      nodeId: fc.uint8Array({ minLength: 15, maxLength: 17 }),
      nonce: fc.uint8Array({ minLength: 15, maxLength: 17 }),
      host: fc.oneof(
        { arbitrary: fc.constant(target.dialled), weight: 2 },
        { arbitrary: fc.constantFrom(target.dialler, target.host, 'http://10.1.1.1:9'), weight: 2 },
        { arbitrary: fc.string({ maxLength: 24 }), weight: 1 },
        { arbitrary: fc.constant(`http://${'h'.repeat(MAX_HOST)}`), weight: 1 },
      ),
      timeMs: fc.oneof(
        fc.integer({ min: now - skew - 1_000, max: now + skew + 1_000 }),
        fc.constantFrom(now - skew, now + skew, now - skew - 1, now + skew + 1),
        fc.oneof(
          fc.nat({ max: now - skew - 1 }),
          fc.integer({ min: now + skew + 1, max: Number.MAX_SAFE_INTEGER }),
        ),
        fc.double(),
      ),
      token: tokenChoiceArb,
    };
    // Some Connects are left entirely valid, so acceptance is exercised too; some change
    // one field, so that each check is reached; the rest change any number of fields, to
    // test the order of the checks.
    const connectArb: fc.Arbitrary<ConnectFields> = fc.oneof(
      { arbitrary: fc.constant({}), weight: 1 },
      {
        arbitrary: fc.oneof(
          field.version.map((version) => ({ version })),
          field.nodeId.map((nodeId) => ({ nodeId })),
          field.nonce.map((nonce) => ({ nonce })),
          field.host.map((host) => ({ host })),
          field.timeMs.map((timeMs) => ({ timeMs })),
          field.token.map((token) => ({ token })),
        ),
        weight: 3,
      },
      { arbitrary: fc.record(field, { requiredKeys: [] }), weight: 2 },
    );
    const inputArb: fc.Arbitrary<HandshakeInput> = fc.record({
      connect: connectArb,
      // Sends again, on the new socket, the last Connect that was accepted (as captured).
      replay: fc.oneof(
        { arbitrary: fc.constant(false), weight: 9 },
        { arbitrary: fc.constant(true), weight: 1 },
      ),
      mutations: fc.oneof(fc.constant([]), fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
    });
    let tried = 0;
    let accepted = 0;
    let refused = 0;
    let replayed = 0;
    const modelOutcomes = new Map<string, number>();
    /** The last intact Connect that was accepted: what an eavesdropper would capture. */
    let captured: ConnectInput | undefined;
    // First one of each outcome, and inputs that fail two checks, to pin down their order.
    const intact = (connect: ConnectFields, expect: Outcome, replay = false): HandshakeInput => ({
      connect,
      replay,
      mutations: [],
      expect,
    });
    const examples: HandshakeInput[] = [
      intact({}, 'accepted'),
      intact({}, 'bad-token', true),
      intact({ version: 1 }, 'version-mismatch'),
      intact({ version: PROTOCOL_VERSION + 1, nodeId: new Uint8Array(15) }, 'version-mismatch'),
      intact({ nonce: new Uint8Array(17) }, 'bad-handshake'),
      intact({ timeMs: now + 0.5 }, 'bad-handshake'),
      intact({ host: `http://${'h'.repeat(MAX_HOST)}` }, 'bad-handshake'),
      intact({ token: { kind: 'text', text: 'x'.repeat(MAX_TOKEN + 1) } }, 'bad-handshake'),
      intact({ host: 'http://10.1.1.1:9', nodeId: new Uint8Array(17) }, 'bad-handshake'),
      intact({ host: target.host }, 'unknown-host'),
      intact({ host: 'http://10.1.1.1:9', timeMs: 0 }, 'unknown-host'),
      intact({ timeMs: now - skew }, 'accepted'),
      intact({ timeMs: now + skew + 1 }, 'clock-skew'),
      intact({ timeMs: 0, token: { kind: 'reflected' } }, 'clock-skew'),
      intact({ token: { kind: 'reflected' } }, 'bad-token'),
      intact({ token: { kind: 'other-secret' } }, 'bad-token'),
      intact({ token: { kind: 'other-claims', field: 'acceptor.nonce' } }, 'bad-token'),
      intact({ host: target.dialled, token: { kind: 'text', text: '' } }, 'bad-token'),
      intact({ host: target.dialled }, 'wrong-direction'),
    ];
    // A quiet 2-core machine tries about 550 handshakes in the time, and about 150 while
    // another test run loads it; the floor of 60 is tried however long it takes.
    const budget: FuzzBudget = { timeLimitMs: 1_500, minRuns: 60 };
    const check = async ({ connect, replay, mutations, expect }: HandshakeInput): Promise<void> => {
      tried += 1;
      const { peer, challenge } = await challenged(t, target);
      const input = replay && captured !== undefined ? captured : connectInput(target, challenge, connect);
      const sent = mutate(connectFrame(input), mutations);
      const response = await handshake(peer, sent);
      assert.ok(response !== undefined, 'the node closed the socket without saying why');
      const detail = response.accepted ? 'accepted' : response.detail;
      if (mutations.length === 0) {
        const expected = expectedRefusal(target, challenge, input) ?? 'accepted';
        if (expect !== undefined) assert.equal(expected, expect, 'the model disagrees with the example');
        modelOutcomes.set(expected, (modelOutcomes.get(expected) ?? 0) + 1);
        assert.equal(outcomeOf(response), expected, detail);
        if (input === captured) {
          replayed += 1;
          assert.equal(outcomeOf(response), 'bad-token', 'a captured Connect is worthless on another socket');
        }
      }
      if (response.accepted) {
        accepted += 1;
        // Whatever was accepted, damaged or not, decodes as a Connect the model accepts,
        // and the node's own token covers that exchange.
        const decoded = decodeConnect(decodeFrame(sent).payload);
        assert.equal(expectedRefusal(target, challenge, decoded), undefined);
        assert.ok(
          hmacAuth(SECRET).verifyToken(response.token, 'acceptor', claimsOf(decoded, challenge)),
          "the node's token does not cover the exchange",
        );
        if (mutations.length === 0) captured = input;
        peer.ws.terminate();
      } else {
        refused += 1;
        // Destroyed once the refusal is written: no close handshake with a peer not trusted.
        assert.equal((await peer.closed).code, 1006, 'a refused socket is destroyed');
      }
      await peer.closed;
    };
    await fuzzAsync(t, budget, inputArb, check, examples);
    const seen = [...modelOutcomes].map(([outcome, n]) => `${outcome} ${n}`).join(', ');
    t.diagnostic(
      `${tried} handshakes tried: ${accepted} accepted, ${refused} refused; ` +
        `intact ones checked against the model: ${seen}; ${replayed} captured Connects replayed`,
    );
    assert.ok(refused > 0 && accepted > 0, 'the fuzz reached both outcomes');
    for (const outcome of outcomes) assert.ok(modelOutcomes.has(outcome), `no intact Connect got ${outcome}`);
    assert.ok(replayed > 0, 'a captured Connect was replayed');
    const stats = target.manager.stats().refused;
    assert.equal(
      Object.values(stats).reduce((sum, n) => sum + n, 0),
      refused,
      `every refusal is counted: ${JSON.stringify(stats)}`,
    );

    const peer = await legitimatePeer(t, target);
    assert.ok((await probeOrClose(peer, 1)) !== undefined, 'a legitimate peer is served after the fuzz');
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

    // A quiet 2-core machine sends about 1 300 batches in the time, and about 500 while
    // another test run loads it; the floor of 200 is sent however long it takes.
    const budget: FuzzBudget = { timeLimitMs: 3_000, minRuns: 200 };
    await fuzzAsync(t, budget, fc.array(messageArb, { minLength: 1, maxLength: 4 }), async (messages) => {
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
      const echoed = await probeOrClose(peer, nextProbe++);
      if (echoed !== undefined) probesAnswered += 1;
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
      (await probeOrClose(fresh, 1)) !== undefined,
      'a fresh legitimate connection is served after the fuzz',
    );
  },
);
