// A raw grid client for tests: a `ws` socket that speaks the wire by hand, to send what a
// well-behaved node never would.

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

import WebSocket from 'ws';

import { hmacAuth, type HandshakeClaims } from '../../src/grid/auth.ts';
import type { RefusalReason } from '../../src/grid/errors.ts';
import { decodeFrame, decodeMessage, encodeFrame, type Frame } from '../../src/grid/frame.ts';
import { decodeConnect, encodeChallenge, encodeConnectResponse } from '../../src/grid/messages.ts';
import type { Clock } from '../../src/internal/clock.ts';
import { toBuffer } from '../../src/grid/handshake.ts';
import { GRID_PATH, Op, PROTOCOL_VERSION, type Op as OpCode } from '../../src/grid/protocol.ts';

export class RawPeer {
  readonly ws: WebSocket;
  /** Resolves with the close code and reason once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #inbox: Buffer[] = [];
  #waiter: ((message: Buffer | undefined) => void) | undefined;
  #isClosed = false;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('error', () => {
      // Surfaces as the close.
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const message = toBuffer(data);
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (waiter === undefined) this.#inbox.push(message);
      else waiter(message);
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.#isClosed = true;
        this.#waiter?.(undefined);
        this.#waiter = undefined;
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** Opens a client to the grid path; `localAddress` picks its source (any of 127.0.0.0/8). */
  static async open(t: TestContext, port: number, options: { localAddress?: string } = {}): Promise<RawPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${GRID_PATH}`, {
      perMessageDeflate: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    t.after(() => {
      ws.terminate();
    });
    const peer = new RawPeer(ws);
    await once(ws, 'open');
    return peer;
  }

  get isOpen(): boolean {
    return !this.#isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  /** The next binary message, or undefined once the socket has closed. */
  next(): Promise<Buffer | undefined> {
    const message = this.#inbox.shift();
    if (message !== undefined) return Promise.resolve(message);
    if (this.#isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** The next frame that satisfies `wanted` (Merged batches are opened), or undefined on close. */
  async nextFrame(wanted: (frame: Frame) => boolean): Promise<Frame | undefined> {
    for (;;) {
      const message = await this.next();
      if (message === undefined) return undefined;
      const found = decodeMessage(message).find(wanted);
      if (found !== undefined) return found;
    }
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }
}

export function frameOf(op: OpCode, fields: Partial<Frame> = {}): Frame {
  return { muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op, flags: 0, payload: undefined, ...fields };
}

/**
 * Plays a legitimate acceptor at `host` on a raw server socket: sends the Challenge at once,
 * and returns how to answer the dialler's Connect: an accepting ConnectResponse with the
 * acceptor's token under `secret`, or a refusal.
 */
export function playAcceptor(
  ws: WebSocket,
  clock: Clock,
  host: string,
  secret: string,
): (connect: Buffer, refuse?: RefusalReason) => Buffer {
  const acceptor = {
    host,
    nodeId: randomBytes(16),
    timeMs: Math.floor(clock.wallTimeMs()),
    nonce: randomBytes(16),
  };
  const challenge = encodeChallenge({ version: PROTOCOL_VERSION, ...acceptor });
  ws.send(encodeFrame(frameOf(Op.Challenge, { payload: challenge }), false));
  return (message, refuse) => {
    const connect = decodeConnect(decodeFrame(message).payload);
    const claims: HandshakeClaims = { version: PROTOCOL_VERSION, dialler: connect, acceptor };
    const payload =
      refuse === undefined
        ? encodeConnectResponse({ accepted: true, token: hmacAuth(secret).authToken('acceptor', claims) })
        : encodeConnectResponse({ accepted: false, reason: refuse, detail: 'told to refuse' });
    return encodeFrame(frameOf(Op.ConnectResponse, { payload }), false);
  };
}
