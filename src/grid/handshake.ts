// The first exchange on a new socket. The dialler sends Connect (version, node id, its
// host, its wall time, a token for the acceptor's host); the acceptor checks each in
// turn and answers ConnectResponse, accepted or refused with a reason. Nothing else is
// read before that, and a socket that stays silent is closed after the handshake timeout.

import type WebSocket from 'ws';

import { onAbort } from '../internal/abort.ts';
import type { Clock } from '../internal/clock.ts';
import type { GridAuth } from './auth.ts';
import { shouldDial } from './dial-direction.ts';
import { HandshakeRefusedError, ProtocolError, type RefusalReason } from './errors.ts';
import { decodeFrame, encodeFrame } from './frame.ts';
import { decodeConnect, decodeConnectResponse, encodeConnect, encodeConnectResponse } from './messages.ts';
import { Op, PROTOCOL_VERSION } from './protocol.ts';

export interface HandshakeParties {
  readonly clock: Clock;
  readonly auth: GridAuth;
  /** This node's host URL. */
  readonly local: string;
  readonly nodeId: Uint8Array;
  readonly timeoutMs: number;
  readonly maxClockSkewMs: number;
}

/** Most messages buffered between the handshake and the connection taking the socket. */
const MAX_EARLY_MESSAGES = 1_024;

/**
 * Messages that arrive after the handshake frame and before the connection takes the
 * socket. The peer may send right after the handshake, in the same TCP segment, and
 * `ws` emits both messages in one tick: without a listener in between, the second is lost.
 */
export class EarlyMessages {
  readonly #ws: WebSocket;
  readonly #messages: Buffer[] = [];
  readonly #listener = (data: WebSocket.RawData, isBinary: boolean): void => {
    if (!isBinary) return;
    // A peer that floods before the connection exists is broken; the handshake ends it.
    if (this.#messages.length >= MAX_EARLY_MESSAGES) this.#ws.terminate();
    else this.#messages.push(toBuffer(data));
  };

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', this.#listener);
  }

  /** Stops buffering and hands over what arrived, in order. */
  take(): Buffer[] {
    this.#ws.off('message', this.#listener);
    return this.#messages.splice(0);
  }
}

export interface Handshaken {
  /** Messages that followed the handshake; the connection processes them first. */
  readonly early: EarlyMessages;
}

/** A message's bytes without copying them (`Buffer.from(buffer)` would copy). */
export function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Resolves with the first binary message on `ws` (and starts buffering the ones after
 * it), or rejects on close, error, timeout or abort. Every listener and the timer are
 * gone by the time it settles.
 */
function firstMessage(
  ws: WebSocket,
  clock: Clock,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ message: Buffer; early: EarlyMessages }> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      timer.cancel();
      stopListening();
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const fail = (error: unknown): void => {
      cleanup();
      reject(error);
    };
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (!isBinary) return;
      cleanup();
      // Installed before this callback returns, so nothing sent after the handshake is missed.
      resolve({ message: toBuffer(data), early: new EarlyMessages(ws) });
    };
    const onClose = (code: number, reason: Buffer): void => {
      fail(new ProtocolError(`socket closed during the handshake (${code} ${reason.toString()})`));
    };
    const onError = (error: Error): void => {
      fail(error);
    };
    const timer = clock.setTimeout(() => {
      fail(new HandshakeRefusedError('handshake-timeout', `no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const stopListening = onAbort(signal, fail);
    ws.on('message', onMessage);
    ws.once('close', onClose);
    ws.once('error', onError);
  });
}

/** Dialler's side: sends Connect to `remote`, resolves with the remote node id once accepted. */
export async function dialHandshake(
  ws: WebSocket,
  parties: HandshakeParties,
  remote: string,
  /** The Connect's time: strictly later than the last one sent to `remote` (acceptors refuse replays). */
  timeMs: number,
  signal?: AbortSignal,
): Promise<Handshaken & { readonly remoteNodeId: Uint8Array }> {
  const { clock, auth, local, nodeId, timeoutMs } = parties;
  const connect = encodeConnect({
    version: PROTOCOL_VERSION,
    nodeId,
    host: local,
    timeMs,
    token: auth.authToken(remote, timeMs),
  });
  const reply = firstMessage(ws, clock, timeoutMs, signal);
  sendHandshakeFrame(ws, Op.Connect, connect);
  const { message, early } = await reply;
  const frame = decodeFrame(message);
  if (frame.op !== Op.ConnectResponse)
    throw new ProtocolError(`expected ConnectResponse, got op ${frame.op}`);
  const response = decodeConnectResponse(frame.payload);
  if (!response.accepted) {
    throw new HandshakeRefusedError(
      response.reason ?? 'bad-handshake',
      `${remote} says: ${response.detail ?? ''}`,
    );
  }
  // The acceptor proves the secret too, so a dialler never talks to an impostor.
  const answeredAt = response.timeMs ?? Number.NaN;
  const skew = Math.abs(clock.wallTimeMs() - answeredAt);
  if (!(skew <= parties.maxClockSkewMs)) {
    throw new HandshakeRefusedError('clock-skew', `${remote}'s clock differs by ${Math.round(skew)} ms`);
  }
  if (!auth.verifyToken(response.token ?? '', local, answeredAt)) {
    throw new HandshakeRefusedError('bad-token', `${remote} did not prove it holds the cluster secret`);
  }
  return { remoteNodeId: response.nodeId, early };
}

export interface AcceptedPeer extends Handshaken {
  readonly host: string;
  readonly nodeId: Uint8Array;
}

/**
 * Acceptor's side: reads Connect, checks it, answers. Resolves with the peer when
 * accepted; on refusal sends the reason, then rejects with `HandshakeRefusedError`.
 */
export async function acceptHandshake(
  ws: WebSocket,
  parties: HandshakeParties,
  isKnownHost: (host: string) => boolean,
  claimFreshTime: (host: string, nodeId: Uint8Array, timeMs: number) => boolean,
  signal?: AbortSignal,
): Promise<AcceptedPeer> {
  const { clock, auth, local, nodeId, timeoutMs } = parties;
  const refuse = (reason: RefusalReason, detail: string): never => {
    sendHandshakeFrame(
      ws,
      Op.ConnectResponse,
      encodeConnectResponse({ nodeId, accepted: false, reason, detail }),
    );
    throw new HandshakeRefusedError(reason, detail);
  };
  let connect: ReturnType<typeof decodeConnect>;
  let early: EarlyMessages;
  try {
    const first = await firstMessage(ws, clock, timeoutMs, signal);
    early = first.early;
    const frame = decodeFrame(first.message);
    if (frame.op !== Op.Connect) throw new ProtocolError(`expected Connect, got op ${frame.op}`);
    connect = decodeConnect(frame.payload);
  } catch (error) {
    if (error instanceof ProtocolError) refuse('bad-handshake', error.message);
    throw error;
  }
  if (connect.version !== PROTOCOL_VERSION) {
    refuse('version-mismatch', `peer speaks version ${connect.version}, this node ${PROTOCOL_VERSION}`);
  }
  if (!isKnownHost(connect.host) || connect.host === local)
    refuse('unknown-host', `${connect.host} is not a peer`);
  const skew = Math.abs(clock.wallTimeMs() - connect.timeMs);
  if (skew > parties.maxClockSkewMs) {
    refuse('clock-skew', `clocks differ by ${Math.round(skew)} ms, more than ${parties.maxClockSkewMs} ms`);
  }
  if (!auth.verifyToken(connect.token, local, connect.timeMs)) refuse('bad-token', 'token does not verify');
  if (!shouldDial(connect.host, local))
    refuse('wrong-direction', `${local} dials ${connect.host}, not the reverse`);
  // A token is good for the whole skew window, so a captured Connect could be replayed
  // within it; each accepted Connect must be newer than the last one from that process.
  if (!claimFreshTime(connect.host, connect.nodeId, connect.timeMs)) {
    refuse('replayed-token', `a Connect from ${connect.host} no newer than one already accepted`);
  }
  const answeredAt = clock.wallTimeMs();
  const token = auth.authToken(connect.host, answeredAt);
  sendHandshakeFrame(
    ws,
    Op.ConnectResponse,
    encodeConnectResponse({ nodeId, accepted: true, timeMs: answeredAt, token }),
  );
  return { host: connect.host, nodeId: connect.nodeId, early };
}

/** Handshake frames go out directly (there is no writer yet) and carry no CRC. */
function sendHandshakeFrame(
  ws: WebSocket,
  op: typeof Op.Connect | typeof Op.ConnectResponse,
  payload: Buffer,
): void {
  ws.send(encodeFrame({ muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op, flags: 0, payload }, false));
}
