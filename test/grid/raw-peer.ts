// A raw grid client for tests: a `ws` socket that speaks the wire by hand, to send what a
// well-behaved node never would.

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import { hmacAuth, type HandshakeClaims } from '../../src/grid/auth.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import type { RefusalReason } from '../../src/grid/errors.ts';
import { decodeFrame, decodeMessage, encodeFrame, type Frame } from '../../src/grid/frame.ts';
import {
  decodeChallenge,
  decodeConnect,
  decodeConnectResponse,
  encodeChallenge,
  encodeConnect,
  encodeConnectResponse,
} from '../../src/grid/messages.ts';
import type { Clock } from '../../src/internal/clock.ts';
import { toBuffer } from '../../src/grid/handshake.ts';
import { GRID_PATH, Op, opName, PROTOCOL_VERSION, type Op as OpCode } from '../../src/grid/protocol.ts';

export class RawPeer {
  readonly ws: WebSocket;
  /** Resolves with the close code and reason once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #inbox: Buffer[] = [];
  /** Frames of a message `readFrame` has opened but not yet returned. */
  readonly #frames: Frame[] = [];
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

  /**
   * Dials the node at `port` and completes the handshake as `host` (a host in the node's
   * list that dials it), with a valid token under `secret`: a raw client the node takes
   * for a legitimate peer.
   */
  static async dial(
    t: TestContext,
    port: number,
    as: { readonly host: string; readonly clock: Clock; readonly secret: string },
  ): Promise<RawPeer> {
    const peer = await RawPeer.open(t, port);
    const first = await peer.next();
    if (first === undefined) throw new Error('the node closed the socket before its Challenge');
    const challenge = decodeChallenge(decodeFrame(first).payload);
    const dialler = {
      host: as.host,
      nodeId: randomBytes(16),
      timeMs: Math.floor(as.clock.wallTimeMs()),
      nonce: randomBytes(16),
    };
    const claims: HandshakeClaims = { version: PROTOCOL_VERSION, dialler, acceptor: challenge };
    const token = hmacAuth(as.secret).authToken('dialler', claims);
    const connect = encodeConnect({ version: PROTOCOL_VERSION, ...dialler, token });
    peer.send(encodeFrame(frameOf(Op.Connect, { payload: connect }), false));
    const reply = await peer.next();
    if (reply === undefined) throw new Error('the node closed the socket without a ConnectResponse');
    const response = decodeConnectResponse(decodeFrame(reply).payload);
    if (!response.accepted) throw new Error(`the node refused the handshake: ${response.reason}`);
    return peer;
  }

  /**
   * Serves grid upgrades on `server` as a legitimate acceptor at `host` (see playAcceptor)
   * and resolves with the first socket once its dialler's Connect is answered (accepted,
   * whatever it says). Later sockets are terminated at once. Rejects if that socket closes
   * before its Connect, or the Connect does not decode.
   */
  static accept(
    t: TestContext,
    server: http.Server,
    as: { readonly host: string; readonly clock: Clock; readonly secret: string },
  ): Promise<RawPeer> {
    const wss = new WebSocketServer({ server, path: GRID_PATH });
    t.after(() => {
      for (const client of wss.clients) client.terminate();
      wss.close();
    });
    return new Promise((resolve, reject) => {
      let taken = false;
      // A server that fails to serve would otherwise leave the test waiting for a dialler.
      wss.once('error', reject);
      wss.on('connection', (ws) => {
        if (taken) {
          ws.terminate();
          return;
        }
        taken = true;
        const peer = new RawPeer(ws);
        const answer = playAcceptor(ws, as.clock, as.host, as.secret);
        peer
          .next()
          .then(async (connect) => {
            if (connect === undefined) {
              const { code, reason } = await peer.closed;
              throw new Error(
                `the dialler closed the socket before its Connect (code ${code}${reason === '' ? '' : `: ${reason}`})`,
              );
            }
            peer.send(answer(connect));
            return peer;
          })
          .then(resolve, reject);
      });
    });
  }

  get isOpen(): boolean {
    return !this.#isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * The next binary message, whole, or undefined once the socket has closed. Throws if
   * `readFrame` or `nextFrame` holds frames of a Merged batch not yet returned: the message
   * after them would pass over them.
   */
  next(): Promise<Buffer | undefined> {
    if (this.#frames.length > 0) {
      const ops = this.#frames.map((frame) => opName(frame.op)).join(', ');
      return Promise.reject(
        new Error(
          `next() reads whole messages, but frames of a Merged batch already opened are not yet read (${ops}): ` +
            'read them with readFrame or nextFrame first',
        ),
      );
    }
    return this.#nextMessage();
  }

  #nextMessage(): Promise<Buffer | undefined> {
    const message = this.#inbox.shift();
    if (message !== undefined) return Promise.resolve(message);
    if (this.#isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /**
   * The next frame that satisfies `wanted`, or undefined on close. The frames before it are
   * passed over; those after it in its Merged batch are kept for the next read.
   */
  async nextFrame(wanted: (frame: Frame) => boolean): Promise<Frame | undefined> {
    for (;;) {
      const frame = await this.readFrame();
      if (frame === undefined || wanted(frame)) return frame;
    }
  }

  /**
   * The next frame, one at a time: a Merged batch is opened and its frames come in order,
   * none skipped. Undefined once the socket has closed.
   */
  async readFrame(): Promise<Frame | undefined> {
    while (this.#frames.length === 0) {
      const message = await this.#nextMessage();
      if (message === undefined) return undefined;
      this.#frames.push(...decodeMessage(message));
    }
    return this.#frames.shift();
  }

  /**
   * Every frame up to and including the first that satisfies `last`, in the order the node
   * sent them. Throws if the socket closes first.
   */
  async readFramesUntil(last: (frame: Frame) => boolean): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (;;) {
      const frame = await this.readFrame();
      if (frame === undefined) {
        const ops = frames.map((f) => opName(f.op)).join(', ');
        throw new Error(`the socket closed before the frame waited for (read: ${ops || 'nothing'})`);
      }
      frames.push(frame);
      if (last(frame)) return frames;
    }
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** Sends one frame of `op` with `fields`, with a CRC (as a node on plain http does). */
  sendFrame(op: OpCode, fields: Partial<Frame> = {}): void {
    this.send(encodeFrame(frameOf(op, fields), true));
  }
}

/** A loopback HTTP server of a test; see bindLoopback. */
export interface LoopbackServer {
  readonly server: http.Server;
  /** The server's host URL, as a node's host list names it. */
  readonly host: string;
  readonly port: number;
}

/**
 * A loopback HTTP server on a free port, closed with every socket it accepted after the
 * test. With `wanted`, ports are tried until the server's host URL satisfies it (say, a dial
 * direction; each try has even odds). Ordinary requests get `onRequest`, by default a 404.
 */
export async function bindLoopback(
  t: TestContext,
  options: {
    readonly wanted?: (host: string) => boolean;
    readonly onRequest?: http.RequestListener;
  } = {},
): Promise<LoopbackServer> {
  const wanted = options.wanted ?? (() => true);
  const onRequest: http.RequestListener = options.onRequest ?? ((_req, res) => res.writeHead(404).end());
  for (let i = 0; i < 64; i++) {
    const server = http.createServer(onRequest);
    // Upgraded sockets leave the server's HTTP bookkeeping (closeAllConnections misses
    // them), so they are tracked here to be destroyed with the server.
    const sockets = new Set<Socket>();
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    // A deep accept queue, as a node facing the internet has: a flood of connections must
    // not make the kernel drop a peer's SYN (which costs that peer a 1 s retransmission).
    await new Promise<void>((resolve) =>
      server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve),
    );
    const close = (): Promise<void> =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const socket of sockets) socket.destroy();
      });
    const { port } = server.address() as AddressInfo;
    const host = `http://127.0.0.1:${port}`;
    if (!wanted(host)) {
      await close();
      continue;
    }
    t.after(close);
    return { server, host, port };
  }
  throw new Error('no free port gave a host URL that satisfies the test');
}

/**
 * A host URL nobody listens at that dials `host` (see dial-direction.ts): a raw client
 * that `RawPeer.dial`s as it is taken for a peer that dials the node, as it should.
 */
export function hostDialling(host: string): string {
  return loopbackHostWhere((candidate) => shouldDial(candidate, host), `no loopback host dials ${host}`);
}

/**
 * A host URL nobody listens at that `host` dials: a peer it can never reach, or a name
 * a raw client claims when its Connect should come from the wrong side.
 */
export function hostDialledBy(host: string): string {
  return loopbackHostWhere((candidate) => shouldDial(host, candidate), `${host} dials no loopback host`);
}

/** The first of port 1 at 127.0.0.2 to 127.0.0.254 that satisfies `wanted`. */
function loopbackHostWhere(wanted: (candidate: string) => boolean, otherwise: string): string {
  for (let i = 2; i < 255; i++) {
    const candidate = `http://127.0.0.${i}:1`;
    if (wanted(candidate)) return candidate;
  }
  throw new Error(otherwise);
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
