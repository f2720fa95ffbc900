// The first exchange on a new socket. The dialler sends Connect (version, node id, its
// host, its wall time, a token for the acceptor's host); the acceptor checks each in
// turn and answers ConnectResponse, accepted or refused with a reason. Nothing else is
// read before that, and a socket that stays silent is closed after the handshake timeout.

import type WebSocket from 'ws';

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

/** Resolves with the first binary message on `ws`, or rejects on close, error or timeout. */
function firstMessage(ws: WebSocket, clock: Clock, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      timer.cancel();
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (!isBinary) return;
      cleanup();
      resolve(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer));
    };
    const onClose = (code: number, reason: Buffer): void => {
      cleanup();
      reject(new ProtocolError(`socket closed during the handshake (${code} ${reason.toString()})`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const timer = clock.setTimeout(() => {
      cleanup();
      reject(new HandshakeRefusedError('handshake-timeout', `no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
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
): Promise<Uint8Array> {
  const { clock, auth, local, nodeId, timeoutMs } = parties;
  const connect = encodeConnect({
    version: PROTOCOL_VERSION,
    nodeId,
    host: local,
    timeMs,
    token: auth.authToken(remote, timeMs),
  });
  const reply = firstMessage(ws, clock, timeoutMs);
  sendHandshakeFrame(ws, Op.Connect, connect);
  const frame = decodeFrame(await reply);
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
  return response.nodeId;
}

export interface AcceptedPeer {
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
  claimFreshTime: (host: string, timeMs: number) => boolean,
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
  try {
    const frame = decodeFrame(await firstMessage(ws, clock, timeoutMs));
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
  // within it; each accepted Connect must be newer than the last one from that host.
  if (!claimFreshTime(connect.host, connect.timeMs)) {
    refuse('replayed-token', `a Connect from ${connect.host} no newer than one already accepted`);
  }
  const answeredAt = clock.wallTimeMs();
  const token = auth.authToken(connect.host, answeredAt);
  sendHandshakeFrame(
    ws,
    Op.ConnectResponse,
    encodeConnectResponse({ nodeId, accepted: true, timeMs: answeredAt, token }),
  );
  return { host: connect.host, nodeId: connect.nodeId };
}

/** Handshake frames go out directly (there is no writer yet) and carry no CRC. */
function sendHandshakeFrame(
  ws: WebSocket,
  op: typeof Op.Connect | typeof Op.ConnectResponse,
  payload: Buffer,
): void {
  ws.send(encodeFrame({ muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op, flags: 0, payload }, false));
}
