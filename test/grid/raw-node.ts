// A Weft node linked to a raw peer (see raw-peer.ts), for tests that must see every frame the
// node puts on the wire, or send it what a well-behaved node never would. Either the raw peer
// dials the node and plays a caller (`nodeWithRawCaller`), or the node dials the raw peer,
// which plays every handler (`nodeWithRawHandlerSide`).
//
// Every wait ends on a frame the node sends: `ping`'s pong, say, which the node queues after
// whatever it said about the frames the raw peer sent before the ping.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

import type { GridLimits } from '../../src/grid/config.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import type { Frame } from '../../src/grid/frame.ts';
import type { GridConnection } from '../../src/grid/grid-connection.ts';
import type { GridStream } from '../../src/grid/client-stream.ts';
import { Manager } from '../../src/grid/manager.ts';
import { encodePing, encodeWindow } from '../../src/grid/messages.ts';
import { Flag, Op, type Op as OpCode } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { bindLoopback, hostDialling, RawPeer } from './raw-peer.ts';

export const SECRET = 'weft-raw-node-secret';
/** Every wait on a raw node ends on a socket event; this only turns a hang into a failure. */
export const BOUNDED = { timeout: 15_000 };

/** A single handler that answers its payload: the node serves it to a raw caller, a raw handler side plays it. */
export const ECHO = 64;
/** A stream handler that sends back each input item. */
export const ECHO_STREAM = 65;
/** A stream handler that never reads its input nor sends: its buffer holds exactly its window. */
export const HOLD = 66;
export const HOLD_WINDOW = 2;
/** A stream handler on the raw handler side, which takes any. */
export const RAW_STREAM = 91;

export const bytes = (text: string): Buffer => Buffer.from(text);
export const text = (payload: Uint8Array | undefined): string => Buffer.from(payload ?? []).toString();

/** Whether a frame is of `op` on mux `muxId`. */
export const frameIs =
  (op: OpCode, muxId: number) =>
  (frame: Frame): boolean =>
    frame.op === op && frame.muxId === muxId;

function newManager(
  t: TestContext,
  clock: FakeClock,
  local: string,
  peer: string,
  limits: Partial<GridLimits>,
): Manager {
  const manager = new Manager({
    local,
    hosts: [local, peer],
    auth: { secret: SECRET },
    clock,
    random: () => 0.5,
    limits,
  });
  t.after(() => manager.close());
  return manager;
}

export interface RawCaller {
  readonly clock: FakeClock;
  readonly peer: RawPeer;
  /** The node's side of the link to the raw caller. */
  readonly link: GridConnection;
  /** The signal of every HOLD handler started, in order. */
  readonly holding: AbortSignal[];
}

/**
 * A node serving ECHO, ECHO_STREAM and HOLD (and whatever `serve` registers), and a raw
 * client it accepted as a peer: the raw caller.
 */
export async function nodeWithRawCaller(
  t: TestContext,
  options: { readonly limits?: Partial<GridLimits>; readonly serve?: (node: Manager) => void } = {},
): Promise<RawCaller> {
  const clock = new FakeClock();
  const bound = await bindLoopback(t);
  const rawHost = hostDialling(bound.host);
  const node = newManager(t, clock, bound.host, rawHost, options.limits ?? {});
  node.registerSingle(ECHO, (payload) => payload);
  node.registerStream(ECHO_STREAM, {
    inCapacity: 4,
    async handle({ requests, send }) {
      for await (const item of requests) await send(item);
    },
  });
  const holding: AbortSignal[] = [];
  node.registerStream(HOLD, {
    inCapacity: HOLD_WINDOW,
    handle: ({ signal }) =>
      new Promise<void>((resolve) => {
        holding.push(signal);
        signal.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
      }),
  });
  options.serve?.(node);
  node.attach(bound.server);
  const peer = await RawPeer.dial(t, bound.port, { host: rawHost, clock, secret: SECRET });
  return { clock, peer, link: node.connection(rawHost), holding };
}

export interface RawHandlerSide {
  readonly clock: FakeClock;
  /** The raw peer: it sees every frame the node sends, and answers only when told. */
  readonly peer: RawPeer;
  /** The node's link to the raw handler side, which the node dialled. */
  readonly link: GridConnection;
}

/** A node that dials a raw acceptor, which plays every handler. */
export async function nodeWithRawHandlerSide(
  t: TestContext,
  limits: Partial<GridLimits> = {},
): Promise<RawHandlerSide> {
  const clock = new FakeClock();
  const nodeBound = await bindLoopback(t);
  const rawBound = await bindLoopback(t, { wanted: (host) => shouldDial(nodeBound.host, host) });
  const accepted = RawPeer.accept(t, rawBound.server, { host: rawBound.host, clock, secret: SECRET });
  const node = newManager(t, clock, nodeBound.host, rawBound.host, limits);
  node.attach(nodeBound.server);
  const link = node.connection(rawBound.host);
  const [peer] = await Promise.all([accepted, link.waitForConnect()]);
  return { clock, peer, link };
}

/**
 * A probe from the raw side: every frame the node sent before its pong. The node queues the
 * pong after everything it queued before, so whatever it sent is among these.
 */
export async function ping(peer: RawPeer): Promise<Frame[]> {
  peer.sendFrame(Op.Ping, { payload: encodePing(0) });
  return peer.readFramesUntil(frameIs(Op.Pong, 0));
}

/** The next request the node put on the wire. */
export async function nextRequest(peer: RawPeer): Promise<Frame> {
  return (await peer.readFramesUntil((frame) => frame.op === Op.Request)).at(-1) as Frame;
}

/** Answers `request` from the raw handler side: its own payload, unless `fields` say otherwise. */
export function respond(peer: RawPeer, request: Frame, fields: Partial<Frame> = {}): void {
  peer.sendFrame(Op.Response, {
    muxId: request.muxId,
    seq: request.seq,
    flags: Flag.EOF,
    payload: request.payload,
    ...fields,
  });
}

/** A request from the node to ECHO, answered by the raw handler side. */
export async function answerRequest(peer: RawPeer, link: GridConnection, payload: string): Promise<void> {
  const reply = link.request(ECHO, bytes(payload));
  const asked = await nextRequest(peer);
  assert.equal(text(asked.payload), payload);
  respond(peer, asked);
  assert.equal(text(await reply), payload);
}

/** Opens RAW_STREAM from the node to the raw handler side, which acks it with no input window. */
export async function openFromNode(
  peer: RawPeer,
  link: GridConnection,
  outCapacity: number,
): Promise<GridStream> {
  const stream = link.openStream(RAW_STREAM, { outCapacity });
  await peer.readFramesUntil(frameIs(Op.ConnectMux, stream.muxId));
  peer.sendFrame(Op.AckMux, { muxId: stream.muxId, seq: 0, payload: encodeWindow(0) });
  return stream;
}
