// The first exchange on a new socket, three messages:
//
//   acceptor → Challenge        {v, id, host, t, n}: who it is and a fresh nonce
//   dialler  → Connect          {v, id, host, t, n, token}: who it is, its nonce, its proof
//   acceptor → ConnectResponse  {ok, token}: its own proof, or a refusal with a reason
//
// Both tokens cover every field of both sides (auth.ts), so each proof is bound to this
// exchange by the other side's nonce: a captured Connect or ConnectResponse is worthless
// on any other socket, and changing any field of it breaks its token. Nothing else is
// read before the exchange ends, and the whole of it has one deadline.

import type WebSocket from 'ws';

import { onAbort } from '../internal/abort.ts';
import type { Clock } from '../internal/clock.ts';
import type { GridAuth, HandshakeClaims } from './auth.ts';
import { shouldDial } from './dial-direction.ts';
import { HandshakeRefusedError, ProtocolError, type RefusalReason } from './errors.ts';
import { decodeFrame, encodeFrame } from './frame.ts';
import {
  connectVersion,
  decodeChallenge,
  decodeConnect,
  decodeConnectResponse,
  encodeChallenge,
  encodeConnect,
  encodeConnectResponse,
} from './messages.ts';
import { Op, PROTOCOL_VERSION } from './protocol.ts';

export interface HandshakeParties {
  readonly clock: Clock;
  readonly auth: GridAuth;
  /** This node's host URL. */
  readonly local: string;
  readonly nodeId: Uint8Array;
  /** The whole exchange must end within this. */
  readonly timeoutMs: number;
  readonly maxClockSkewMs: number;
  /** Fresh random bytes for nonces. */
  readonly randomBytes: (size: number) => Uint8Array;
}

/**
 * What a dialler may hold for its connection between the ConnectResponse and the moment
 * the connection takes the socket: only what arrived in the same read, from a peer that
 * has just proved itself. More means a broken peer.
 */
const MAX_EARLY_MESSAGES = 1_024;
const MAX_EARLY_BYTES = 1024 * 1024;

/**
 * The handshake's view of a socket: messages in order, one deadline for the whole
 * exchange, and every listener and timer gone once it is over. A message that arrives
 * when none is expected is refused, except on the dialler after the last handshake
 * message, where the peer may legitimately start talking (`allowEarly`).
 */
class HandshakeInbox {
  readonly #ws: WebSocket;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #waiter: { resolve: (message: Buffer) => void; reject: (error: unknown) => void } | undefined;
  #failure: Error | undefined;
  #allowEarly = false;
  readonly #stopTimer: () => void;
  readonly #stopListening: () => void;

  constructor(ws: WebSocket, clock: Clock, timeoutMs: number, signal: AbortSignal | undefined) {
    this.#ws = ws;
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (!isBinary || this.#failure !== undefined) return;
      const message = toBuffer(data);
      const waiter = this.#waiter;
      if (waiter !== undefined) {
        this.#waiter = undefined;
        waiter.resolve(message);
        return;
      }
      this.#queue.push(message);
      this.#queuedBytes += message.length;
      if (!this.#allowEarly) this.#fail(new HandshakeRefusedError('bad-handshake', 'a message out of turn'));
      else if (this.#queue.length > MAX_EARLY_MESSAGES || this.#queuedBytes > MAX_EARLY_BYTES)
        this.#fail(new ProtocolError('too much sent before the connection was ready'));
    };
    const onClose = (code: number, reason: Buffer): void => {
      this.#fail(new ProtocolError(`socket closed during the handshake (${code} ${reason.toString()})`));
    };
    const onError = (error: Error): void => {
      this.#fail(error);
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    const timer = clock.setTimeout(() => {
      this.#fail(new HandshakeRefusedError('handshake-timeout', `no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const stopAbort = onAbort(signal, (reason) => {
      this.#fail(reason);
    });
    this.#stopTimer = () => {
      timer.cancel();
      stopAbort();
    };
    this.#stopListening = () => {
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
  }

  /** The next binary message, or a rejection on close, error, timeout, abort or misbehaviour. */
  next(): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      this.#queuedBytes -= queued.length;
      return Promise.resolve(queued);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** From now on, messages may arrive unasked; they are kept for `take`. */
  allowEarly(): void {
    this.#allowEarly = true;
  }

  /** Ends the handshake: stops the deadline and the listeners, and hands over what arrived early. */
  take(): Buffer[] {
    this.#stopTimer();
    this.#stopListening();
    return this.#queue.splice(0);
  }

  /** Ends the handshake after a failure. */
  dispose(): void {
    this.#stopTimer();
    this.#stopListening();
    this.#queue.length = 0;
  }

  #fail(reason: unknown): void {
    if (this.#failure !== undefined) return;
    const error =
      reason instanceof Error ? reason : new ProtocolError(`handshake aborted: ${String(reason)}`);
    this.#failure = error;
    this.#stopTimer();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
    // Nothing more is read from a socket whose handshake has failed.
    stopReading(this.#ws);
  }
}

/** Pauses an open socket (ws's pause throws once the socket is gone). */
function stopReading(ws: WebSocket): void {
  if (ws.readyState === ws.OPEN) ws.pause();
}

/** A message's bytes without copying them (`Buffer.from(buffer)` would copy). */
export function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export interface Handshaken {
  readonly remoteNodeId: Uint8Array;
  /** Messages that followed the handshake, in order; the connection processes them first. */
  readonly early: readonly Buffer[];
}

/** Dialler's side: answers `remote`'s Challenge and checks its proof. */
export async function dialHandshake(
  ws: WebSocket,
  parties: HandshakeParties,
  remote: string,
  signal?: AbortSignal,
): Promise<Handshaken> {
  const { clock, auth, local, nodeId } = parties;
  const inbox = new HandshakeInbox(ws, clock, parties.timeoutMs, signal);
  try {
    const challenge = decodeChallenge(expectFrame(await inbox.next(), Op.Challenge));
    if (challenge.version !== PROTOCOL_VERSION) {
      throw new HandshakeRefusedError(
        'version-mismatch',
        `${remote} speaks version ${challenge.version}, this node ${PROTOCOL_VERSION}`,
      );
    }
    if (challenge.host !== remote) {
      throw new HandshakeRefusedError('unknown-host', `dialled ${remote}, but ${challenge.host} answered`);
    }
    checkSkew(clock, challenge.timeMs, parties.maxClockSkewMs, remote);
    const claims: HandshakeClaims = {
      version: PROTOCOL_VERSION,
      dialler: { host: local, nodeId, timeMs: wallTime(clock), nonce: parties.randomBytes(16) },
      acceptor: challenge,
    };
    sendHandshakeFrame(
      ws,
      Op.Connect,
      encodeConnect({
        version: PROTOCOL_VERSION,
        ...claims.dialler,
        token: auth.authToken('dialler', claims),
      }),
    );
    // The acceptor may start talking as soon as its ConnectResponse is out.
    const reply = inbox.next();
    inbox.allowEarly();
    const response = decodeConnectResponse(expectFrame(await reply, Op.ConnectResponse));
    if (!response.accepted)
      throw new HandshakeRefusedError(response.reason, `${remote} says: ${response.detail}`);
    // The acceptor proves the secret too, over our nonce: no replayed answer passes.
    if (!auth.verifyToken(response.token, 'acceptor', claims)) {
      throw new HandshakeRefusedError('bad-token', `${remote} did not prove it holds the cluster secret`);
    }
    return { remoteNodeId: challenge.nodeId, early: inbox.take() };
  } catch (error) {
    inbox.dispose();
    throw error;
  }
}

export interface AcceptedPeer extends Handshaken {
  readonly host: string;
}

/**
 * Acceptor's side: sends the Challenge, reads the Connect, checks it, answers. Resolves
 * with the peer when accepted. On refusal it sends the reason, destroys the socket once
 * that is written, and rejects with `HandshakeRefusedError`; on any other failure it
 * destroys the socket at once.
 */
export async function acceptHandshake(
  ws: WebSocket,
  parties: HandshakeParties,
  isKnownHost: (host: string) => boolean,
  signal?: AbortSignal,
): Promise<AcceptedPeer> {
  const { clock, auth, local, nodeId } = parties;
  const inbox = new HandshakeInbox(ws, clock, parties.timeoutMs, signal);
  const refuse = (reason: RefusalReason, detail: string): never => {
    throw new HandshakeRefusedError(reason, detail);
  };
  try {
    const acceptor = { host: local, nodeId, timeMs: wallTime(clock), nonce: parties.randomBytes(16) };
    sendHandshakeFrame(ws, Op.Challenge, encodeChallenge({ version: PROTOCOL_VERSION, ...acceptor }));
    const first = await inbox.next();
    let payload: Uint8Array | undefined;
    try {
      payload = expectFrame(first, Op.Connect);
    } catch (error) {
      return refuse('bad-handshake', error instanceof Error ? error.message : 'not a Connect');
    }
    const version = connectVersion(payload);
    if (version !== undefined && version !== PROTOCOL_VERSION) {
      refuse('version-mismatch', `peer speaks version ${version}, this node ${PROTOCOL_VERSION}`);
    }
    let connect: ReturnType<typeof decodeConnect>;
    try {
      connect = decodeConnect(payload);
    } catch (error) {
      return refuse('bad-handshake', error instanceof Error ? error.message : 'malformed Connect');
    }
    if (!isKnownHost(connect.host) || connect.host === local)
      refuse('unknown-host', `${connect.host} is not a peer`);
    const skew = Math.abs(wallTime(clock) - connect.timeMs);
    if (skew > parties.maxClockSkewMs) {
      refuse('clock-skew', `clocks differ by ${skew} ms, more than ${parties.maxClockSkewMs} ms`);
    }
    const claims: HandshakeClaims = {
      version: PROTOCOL_VERSION,
      dialler: { host: connect.host, nodeId: connect.nodeId, timeMs: connect.timeMs, nonce: connect.nonce },
      acceptor,
    };
    if (!auth.verifyToken(connect.token, 'dialler', claims)) refuse('bad-token', 'token does not verify');
    if (!shouldDial(connect.host, local))
      refuse('wrong-direction', `${local} dials ${connect.host}, not the reverse`);
    sendHandshakeFrame(
      ws,
      Op.ConnectResponse,
      encodeConnectResponse({ accepted: true, token: auth.authToken('acceptor', claims) }),
    );
    // A dialler waits for the ConnectResponse before it sends more, so nothing came early.
    return { host: connect.host, remoteNodeId: connect.nodeId, early: inbox.take() };
  } catch (error) {
    inbox.dispose();
    // Nothing more is read; the peer hears why (if it can), and the socket is destroyed
    // once that is written, not closed politely: a hostile peer would never answer a close.
    stopReading(ws);
    if (error instanceof HandshakeRefusedError && ws.readyState === ws.OPEN) {
      const refusal = encodeConnectResponse({ accepted: false, reason: error.reason, detail: error.detail });
      sendHandshakeFrame(ws, Op.ConnectResponse, refusal, () => {
        ws.terminate();
      });
    } else {
      ws.terminate();
    }
    throw error;
  }
}

/** The payload of `message` if it is one frame of op `op`; otherwise a `ProtocolError`. */
function expectFrame(
  message: Buffer,
  op: typeof Op.Challenge | typeof Op.Connect | typeof Op.ConnectResponse,
) {
  const frame = decodeFrame(message);
  if (frame.op !== op) throw new ProtocolError(`expected op ${op} in the handshake, got op ${frame.op}`);
  return frame.payload;
}

function checkSkew(clock: Clock, timeMs: number, maxClockSkewMs: number, remote: string): void {
  const skew = Math.abs(wallTime(clock) - timeMs);
  if (skew > maxClockSkewMs) {
    throw new HandshakeRefusedError('clock-skew', `${remote}'s clock differs by ${skew} ms`);
  }
}

/** Whole ms: times are written as integers, and the tokens cover their decimal spelling. */
function wallTime(clock: Clock): number {
  return Math.floor(clock.wallTimeMs());
}

/** Handshake frames go out directly (there is no writer yet) and carry no CRC. */
function sendHandshakeFrame(
  ws: WebSocket,
  op: typeof Op.Challenge | typeof Op.Connect | typeof Op.ConnectResponse,
  payload: Buffer,
  sent?: () => void,
): void {
  ws.send(encodeFrame({ muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op, flags: 0, payload }, false), sent);
}
