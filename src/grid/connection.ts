// One logical connection to one peer, across any number of sockets over time.
//
// The Connection outlives its sockets: it redials (if this side dials) or waits to be
// dialled, and keeps its mux id counter, so an id is never reused even across
// reconnects. Each socket gets an epoch, its own writer and its own abort signal; when
// the socket dies, everything bound to it ends at once: in-flight calls reject with
// `DisconnectedError`, handlers' signals abort, frames queued for it are dropped.
// While there is no socket, calls fail at once rather than queue.
//
// The reader never waits: it decodes, dispatches, and returns. Single requests run as
// their own promise; stream items go to credit-bounded buffers that cannot overflow.

import type {
  ConnectionState,
  ConnectionStats,
  FrameChecksum,
  GridConnection,
  RequestOptions,
} from './grid-connection.ts';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';

import WebSocket from 'ws';

import { onAbort } from '../internal/abort.ts';
import { sleep, type Clock, type Timer } from '../internal/clock.ts';
import {
  callScope,
  type CallScope,
  clampTimeout,
  deadlineOf,
  type CallOptions,
} from '../internal/deadline.ts';
import { diagnosticChannel } from '../internal/diagnostics.ts';
import {
  CancelledError,
  CapacityExceededError,
  ClosedError,
  DeadlineExceededError,
} from '../internal/errors.ts';
import type { GridAuth } from './auth.ts';
import { cancelledError } from './cancel.ts';
import { ClientStream, type ClientStreamHost, type GridStream, type StreamOptions } from './client-stream.ts';
import { DEFAULT_STREAM_WINDOW, type GridLimits } from './config.ts';
import { DeadlineQueue, type DeadlineEntry } from './deadline-queue.ts';
import {
  DisconnectedError,
  HandshakeRefusedError,
  ProtocolError,
  RemoteError,
  UnknownHandlerError,
} from './errors.ts';
import { decodeMessage, encodeFrame, type Frame } from './frame.ts';
import { FrameWriter } from './frame-writer.ts';
import { logSafely, type Logger } from './logger.ts';
import { isCallerFault, type HandlerRegistry } from './handler-registry.ts';
import { dialHandshake, toBuffer } from './handshake.ts';
import {
  decodeError,
  decodePing,
  decodePong,
  decodeStreamOpen,
  encodeError,
  encodePing,
  encodePong,
} from './messages.ts';
import { notSentError, type SendResult } from './mux.ts';
import { Flag, GRID_PATH, Op, type Op as OpCode } from './protocol.ts';
import { ServerStream, type ServerStreamHost } from './server-stream.ts';
import {
  StatelessStream,
  type StatelessGridStream,
  type StatelessHost,
  type StatelessStreamOptions,
} from './stateless-stream.ts';

export interface ConnectionOptions {
  readonly local: string;
  readonly remote: string;
  /** True if this side dials (see dial-direction.ts). */
  readonly dials: boolean;
  readonly nodeId: Uint8Array;
  readonly clock: Clock;
  readonly random: () => number;
  readonly limits: Required<GridLimits>;
  readonly registry: HandlerRegistry;
  readonly auth: GridAuth;
  /** Client TLS options for `wss` dials (ca, cert, key, rejectUnauthorized …). */
  readonly tls?: WebSocket.ClientOptions | undefined;
  /** Dialling waits for this to settle. */
  readonly blockConnect?: Promise<unknown> | undefined;
  /** When frames carry a CRC (see ManagerOptions.frameChecksum). Default 'auto'. */
  readonly frameChecksum?: FrameChecksum | undefined;
  /** Handler failures and handshake refusals go here. Default `console`. */
  readonly logger?: Logger | undefined;
}

const stateChannel = diagnosticChannel<{
  local: string;
  remote: string;
  state: ConnectionState;
  error?: unknown;
}>('grid', 'connection-state');

/** How a request this side sent ended. */
const RequestEnd = {
  Pending: 0,
  Response: 1,
  RemoteError: 2,
  Failed: 3,
  Cancelled: 4,
} as const;
type RequestEnd = (typeof RequestEnd)[keyof typeof RequestEnd];

/**
 * A request this side sent, from its frame to its answer, its deadline, its cancel or the end
 * of its socket. One object per request: its deadline entry (deadline-queue.ts) and its
 * outcome too, so that the hot path makes no closures or outcome objects of its own.
 */
class OutgoingRequest implements DeadlineEntry {
  readonly kind = 'request';
  readonly muxId: number;
  /** The time it was given, for the error at its deadline. */
  readonly timeoutMs: number;
  deadlineAt: number;
  heapIndex = -1;
  heapOrder = 0;
  end: RequestEnd = RequestEnd.Pending;
  /** The payload of a response, or the error or reason it ended with. */
  result: unknown = undefined;
  /** Settles (never rejects) when the request ends, however it ends. */
  readonly answered: Promise<void>;
  resolve: () => void = noop;
  stopListening: () => void = noop;
  readonly #expire: (request: OutgoingRequest) => void;

  constructor(
    muxId: number,
    timeoutMs: number,
    deadlineAt: number,
    expire: (request: OutgoingRequest) => void,
  ) {
    this.muxId = muxId;
    this.timeoutMs = timeoutMs;
    this.deadlineAt = deadlineAt;
    this.#expire = expire;
    this.answered = new Promise<void>((resolve) => {
      this.resolve = resolve;
    });
  }

  expire(): void {
    this.#expire(this);
  }
}

/** How a wait for the connection ended. */
type ConnectOutcome =
  | { readonly kind: 'connected' }
  | { readonly kind: 'shutdown' }
  | { readonly kind: 'refused'; readonly error: HandshakeRefusedError }
  | { readonly kind: 'aborted'; readonly reason: unknown };

/** Everything bound to one socket; replaced whole on reconnect. */
interface Socket {
  readonly ws: WebSocket;
  readonly epoch: number;
  readonly writer: FrameWriter;
  /** Aborts when the socket dies: ends every handler running for it. */
  readonly closed: AbortController;
  readonly crc: boolean;
  readonly remoteNodeId: Uint8Array;
  pingTimer: Timer | undefined;
}

export class Connection implements GridConnection {
  readonly local: string;
  readonly remote: string;
  readonly dials: boolean;
  readonly #options: ConnectionOptions;
  readonly #clock: Clock;
  readonly #limits: Required<GridLimits>;
  #state: ConnectionState = 'unconnected';
  #socket: Socket | undefined;
  #epoch = 0;
  #nextMuxId = 1;
  readonly #outgoing = new Map<number, OutgoingRequest | ClientStream | StatelessStream>();
  /** The Response frame #respond fills in and sends; the writer copies it at once. */
  readonly #response: { -readonly [K in keyof Frame]: Frame[K] } = control(Op.Response);
  /** The deadlines of the requests in #outgoing, on one timer. */
  readonly #deadlines: DeadlineQueue;
  readonly #expireRequest = (request: OutgoingRequest): void => {
    this.#outgoing.delete(request.muxId);
    this.#settleRequest(
      request,
      RequestEnd.Failed,
      new DeadlineExceededError(`no response within ${request.timeoutMs} ms`, {
        timeoutMs: request.timeoutMs,
      }),
    );
  };
  readonly #statelessStreams = new Set<StatelessStream>();
  readonly #statelessHost: StatelessHost;
  #outgoingStreams = 0;
  #outgoingRequests = 0;
  readonly #incomingStreams = new Map<number, ServerStream>();
  #incomingRequests = 0;
  /**
   * How to cancel each request served here whose handler is still running, by mux id. At
   * most one entry per request counted in `#incomingRequests`, so bounded by the same limit.
   */
  readonly #servedRequests = new Map<number, (from: Socket) => void>();
  readonly #stateWaiters = new Set<() => void>();
  #dialLoopRunning = false;
  /** The latest dial's refusal, if its reason needs an operator; cleared when the next dial starts. */
  #refusal: HandshakeRefusedError | undefined;
  /** Refusal reasons logged since the link was last up: each is logged once, not per redial. */
  readonly #refusalsLogged = new Set<string>();
  readonly #dialAbort = new AbortController();
  #dialing: WebSocket | undefined;
  #lastRemoteNodeId: Uint8Array | undefined;
  #lastPongAt: number | undefined;
  #rttMs: number | undefined;
  #sockets = 0;
  #bytesIn = 0;
  #messagesIn = 0;
  #bytesOutClosed = 0;
  #messagesOutClosed = 0;
  #refusedClosed = 0;
  #droppedClosed = 0;
  #protocolErrors = 0;
  #messagesTooLargeIn = 0;
  #streamProtocolErrors = 0;
  #requestsUnknownHandler = 0;
  #streamsUnknownHandler = 0;
  #requestsRefusedOut = 0;
  #requestsRefusedIn = 0;
  #streamsRefusedOut = 0;
  #streamsRefusedIn = 0;
  #lateResults = 0;
  #ignoredMessages = 0;
  /** What caller-side streams see of this connection. */
  readonly #outgoingHost: ClientStreamHost;
  /** What handler-side streams see of this connection. */
  readonly #incomingHost: ServerStreamHost;
  readonly #logger: Logger;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.local = options.local;
    this.remote = options.remote;
    this.dials = options.dials;
    this.#clock = options.clock;
    this.#deadlines = new DeadlineQueue(options.clock);
    this.#limits = options.limits;
    this.#logger = options.logger ?? console;
    const host = {
      clock: options.clock,
      limits: options.limits,
      remote: options.remote,
      streamProtocolError: () => {
        this.#streamProtocolErrors += 1;
      },
    };
    this.#outgoingHost = {
      ...host,
      sendFrame: (frame, isControl) => this.#sendFrame(frame, isControl),
      release: (muxId) => {
        this.#releaseOutgoing(muxId);
      },
    };
    this.#incomingHost = {
      ...host,
      sendFrame: (frame, isControl) => this.#sendFrame(frame, isControl),
      release: (muxId) => this.#incomingStreams.delete(muxId),
      handlerFailed: (handler, subroute, error) => {
        this.#handlerFailed('stream', handler, subroute, error);
      },
    };
    this.#statelessHost = {
      open: (stream, makeFrame) => {
        if (this.#socket === undefined) return undefined;
        const muxId = this.#nextMuxId++;
        this.#outgoing.set(muxId, stream);
        try {
          // Small and rare: sent as a control frame. Invalid or too large, it throws to the caller.
          if (this.#sendFrame(makeFrame(muxId), true) === 'sent') return muxId;
        } catch (error) {
          this.#outgoing.delete(muxId);
          throw error;
        }
        this.#outgoing.delete(muxId);
        return undefined;
      },
      send: (frame) => this.#trySend(frame, true),
      forget: (stream, muxId) => {
        this.#statelessStreams.delete(stream);
        if (muxId !== undefined) this.#outgoing.delete(muxId);
      },
      streamProtocolError: host.streamProtocolError,
    };
  }

  state(): ConnectionState {
    return this.#state;
  }

  /** Starts dialling (on the dialling side); the accepting side waits for `attach`. */
  start(): void {
    if (this.dials && this.#state === 'unconnected') void this.#dial();
  }

  /**
   * Resolves once connected. Rejects with a `DeadlineExceededError` after `timeoutMs` (or at
   * the deadline a Weft signal carries), with a `CancelledError` whose cause is the reason
   * when `signal` aborts, with `ClosedError` on shutdown, and, on the dialling side, with the
   * `HandshakeRefusedError` of a dial made during the wait that was refused for a reason that
   * needs an operator (`retryable` false: bad-token, unknown-host, wrong-direction,
   * version-mismatch, bad-handshake). The dial loop goes on redialling, so a caller that
   * waits again learns the outcome of the next dial, at most one redial delay later: a retry
   * loop is paced by the redial delay, never a busy loop. The accepting side never learns why
   * a dialler's handshake failed, so there it waits until the peer gets in, the deadline
   * passes or the signal aborts: give it a `timeoutMs`.
   */
  async waitForConnect(options: CallOptions = {}): Promise<void> {
    const what = `waiting for a connection to ${this.remote}`;
    const { signal } = options;
    if (signal?.aborted === true) throw cancelledError(what, signal.reason);
    if (this.#state === 'connected') return;
    if (this.#state === 'shutdown') throw new ClosedError(`connection to ${this.remote} is shut down`);
    const outcome = await new Promise<ConnectOutcome>((resolve) => {
      const scope = callScope(this.#clock, options);
      const settle = (result: ConnectOutcome): void => {
        this.#stateWaiters.delete(check);
        stopListening();
        scope.dispose();
        resolve(result);
      };
      const check = (): void => {
        if (this.#state === 'connected') settle({ kind: 'connected' });
        else if (this.#state === 'shutdown') settle({ kind: 'shutdown' });
        // A change of state: a dial made during the wait ended (a refusal found on entry is
        // the previous dial's, and the wait learns the next one's).
        else if (this.#state === 'connection-error' && this.#refusal !== undefined)
          settle({ kind: 'refused', error: this.#refusal });
      };
      const stopListening = onAbort(scope.signal, (reason) => {
        settle({ kind: 'aborted', reason });
      });
      if (!scope.signal.aborted) this.#stateWaiters.add(check);
    });
    // Errors are made here, after the await, so their stacks lead back to the caller.
    switch (outcome.kind) {
      case 'connected':
        return;
      case 'shutdown':
        throw new ClosedError(`connection to ${this.remote} is shut down`);
      case 'refused':
        throw new HandshakeRefusedError(outcome.error.reason, outcome.error.detail, { cause: outcome.error });
      case 'aborted':
        throw cancelledError(what, outcome.reason);
    }
  }

  stats(): ConnectionStats {
    const writer = this.#socket?.writer.stats;
    return {
      state: this.#state,
      remoteNodeId:
        this.#lastRemoteNodeId === undefined
          ? undefined
          : Buffer.from(this.#lastRemoteNodeId).toString('hex'),
      streamsIn: this.#incomingStreams.size,
      streamsOut: this.#outgoingStreams,
      statelessStreamsOut: this.#statelessStreams.size,
      requestsIn: this.#incomingRequests,
      requestsOut: this.#outgoingRequests,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOutClosed + (writer?.bytesSent ?? 0),
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOutClosed + (writer?.messagesSent ?? 0),
      lastPongAt: this.#lastPongAt,
      rttMs: this.#rttMs,
      reconnects: Math.max(0, this.#sockets - 1),
      protocolErrors: this.#protocolErrors,
      messagesTooLargeIn: this.#messagesTooLargeIn,
      streamProtocolErrors: this.#streamProtocolErrors,
      requestsUnknownHandler: this.#requestsUnknownHandler,
      streamsUnknownHandler: this.#streamsUnknownHandler,
      requestsRefusedOut: this.#requestsRefusedOut,
      requestsRefusedIn: this.#requestsRefusedIn,
      streamsRefusedOut: this.#streamsRefusedOut,
      streamsRefusedIn: this.#streamsRefusedIn,
      framesRefused: this.#refusedClosed + (writer?.framesRefused ?? 0),
      framesDropped: this.#droppedClosed,
      lateResults: this.#lateResults,
      ignoredMessages: this.#ignoredMessages,
    };
  }

  /**
   * One request, one response. Fails at once with `DisconnectedError` when not connected,
   * with `DeadlineExceededError` when less than 1 ms is left, and with a `RemoteError`
   * (the handler's code, the caller's stack) when the handler throws. Aborting `signal`
   * rejects with a `CancelledError` (cause: the signal's reason; a `DeadlineExceededError`
   * if that reason is one) and cancels the handler.
   */
  async request(
    handler: number,
    payload: Uint8Array | undefined,
    options?: RequestOptions,
  ): Promise<Uint8Array | undefined> {
    // The work is done outside this async function, so that what it keeps across the await
    // (and allocates per request for it) is one object.
    const request = this.#sendRequest(handler, payload, options);
    await request.answered;
    return outcomeAtCaller(request, handler);
  }

  /** Registers and sends a request; throws what `request` rejects with before anything is sent. */
  #sendRequest(
    handler: number,
    payload: Uint8Array | undefined,
    options: RequestOptions | undefined,
  ): OutgoingRequest {
    const socket = this.#socket;
    if (socket === undefined) throw new DisconnectedError(`not connected to ${this.remote} (${this.#state})`);
    if (this.#outgoingRequests >= this.#limits.maxOutgoingRequests) {
      this.#requestsRefusedOut += 1;
      throw new CapacityExceededError(
        `requests in flight to ${this.remote}`,
        this.#limits.maxOutgoingRequests,
      );
    }
    // No AbortController per call and no timer: the deadline joins the connection's queue and,
    // if the caller passed a signal, one listener goes on it. Requests are the hot path.
    const signal = options?.signal;
    if (signal?.aborted === true) throw cancelledError(`request to handler ${handler}`, signal.reason);
    const now = this.#clock.now();
    const timeoutMs = clampTimeout(options?.timeoutMs ?? this.#limits.defaultRequestTimeoutMs);
    const deadline = Math.min(deadlineOf(signal), now + timeoutMs);
    const remaining = Math.max(0, deadline - now);
    if (remaining < 1) {
      throw new DeadlineExceededError('less than 1 ms left: request not sent', { timeoutMs: remaining });
    }
    const muxId = this.#nextMuxId++;
    const request = new OutgoingRequest(muxId, remaining, deadline, this.#expireRequest);
    this.#outgoing.set(muxId, request);
    this.#outgoingRequests += 1;
    this.#deadlines.add(request);
    if (signal !== undefined) {
      request.stopListening = onAbort(signal, (reason) => {
        this.#outgoing.delete(muxId);
        // The handler stops at the deadline by itself; before it, it must be told.
        if (this.#socket === socket && this.#clock.now() < deadline)
          this.#sendFrame({ ...control(Op.DisconnectServerMux), muxId }, true);
        this.#settleRequest(request, RequestEnd.Cancelled, reason);
      });
    }
    try {
      const sent = this.#sendFrame({
        muxId,
        seq: 0,
        deadlineMs: Math.min(Math.ceil(remaining), 0xffff_ffff),
        handler,
        op: Op.Request,
        flags: 0,
        payload,
        subroute: options?.subroute,
      });
      if (sent !== 'sent') this.#failRequest(request, notSentError(sent, this.#outgoingHost));
    } catch (error) {
      this.#failRequest(request, error);
    }
    return request;
  }

  #failRequest(request: OutgoingRequest, error: unknown): void {
    this.#outgoing.delete(request.muxId);
    this.#settleRequest(request, RequestEnd.Failed, error);
  }

  /** Ends a request once: the first outcome wins (an answer racing its deadline or cancel). */
  #settleRequest(request: OutgoingRequest, end: RequestEnd, result: unknown): void {
    if (request.end !== RequestEnd.Pending) return;
    request.end = end;
    request.result = result;
    this.#outgoingRequests -= 1;
    this.#deadlines.remove(request);
    request.stopListening();
    request.resolve();
  }

  /** Opens a stream to `handler`. Fails at once with `DisconnectedError` when not connected. */
  openStream(handler: number, options: StreamOptions = {}): GridStream {
    if (this.#socket === undefined)
      throw new DisconnectedError(`not connected to ${this.remote} (${this.#state})`);
    if (this.#outgoingStreams >= this.#limits.maxStreams) {
      this.#streamsRefusedOut += 1;
      throw new CapacityExceededError(`streams to ${this.remote}`, this.#limits.maxStreams);
    }
    const outCapacity = options.outCapacity ?? DEFAULT_STREAM_WINDOW;
    if (!Number.isInteger(outCapacity) || outCapacity < 1) {
      throw new RangeError(`outCapacity must be an integer >= 1, got ${outCapacity}`);
    }
    const muxId = this.#nextMuxId++;
    const stream = new ClientStream(this.#outgoingHost, muxId, options);
    this.#outgoing.set(muxId, stream);
    this.#outgoingStreams += 1;
    stream.start(handler);
    return stream;
  }

  /**
   * Opens a stateless stream (see stateless-stream.ts): responses only, no credits, and
   * it reopens by itself after a reconnect. It may be opened while disconnected.
   */
  openStatelessStream(handler: number, options: StatelessStreamOptions = {}): StatelessGridStream {
    if (this.#state === 'shutdown') throw new ClosedError(`connection to ${this.remote} is shut down`);
    if (this.#statelessStreams.size >= this.#limits.maxStreams) {
      this.#streamsRefusedOut += 1;
      throw new CapacityExceededError(`stateless streams to ${this.remote}`, this.#limits.maxStreams);
    }
    const capacity = options.capacity ?? 100;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
    }
    const stream = new StatelessStream(this.#statelessHost, handler, options);
    this.#statelessStreams.add(stream);
    try {
      stream.open();
    } catch (error) {
      this.#statelessStreams.delete(stream);
      throw error;
    }
    return stream;
  }

  /** Accepting side (and the dial loop): a socket whose handshake succeeded becomes current. */
  attach(ws: WebSocket, remoteNodeId: Uint8Array, early: readonly Buffer[] = []): void {
    if (this.#state === 'shutdown') {
      ws.close(1001, 'shutting down');
      return;
    }
    if (this.#socket !== undefined)
      this.#dropSocket(new DisconnectedError(`replaced by a new socket from ${this.remote}`));
    const epoch = ++this.#epoch;
    const checksum = this.#options.frameChecksum ?? 'auto';
    const tls = this.local.startsWith('https:') && this.remote.startsWith('https:');
    const crc = checksum === 'always' || (checksum === 'auto' && !tls);
    const closed = new AbortController();
    // Every request and stream served on this socket listens here, and removes its listener.
    setMaxListeners(0, closed.signal);
    const socket: Socket = {
      ws,
      epoch,
      crc,
      remoteNodeId,
      closed,
      pingTimer: undefined,
      writer: new FrameWriter({
        clock: this.#clock,
        crc,
        maxMessageBytes: this.#limits.maxFrameBytes,
        maxQueuedBytes: this.#limits.maxQueuedBytes,
        writeHighWaterBytes: this.#limits.writeHighWaterBytes,
        send: (message, done) => {
          ws.send(message, { binary: true }, done);
        },
        onWriteError: (error) => {
          this.#socketGone(epoch, new DisconnectedError(`write to ${this.remote} failed`, { cause: error }));
        },
      }),
    };
    this.#socket = socket;
    this.#sockets += 1;
    this.#lastRemoteNodeId = remoteNodeId;
    this.#lastPongAt = this.#clock.now();
    ws.on('message', (data, isBinary) => {
      this.#onMessage(epoch, data, isBinary);
    });
    ws.on('close', (code, reason) => {
      this.#socketGone(
        epoch,
        new DisconnectedError(`socket to ${this.remote} closed (${code} ${reason.toString()})`),
      );
    });
    ws.on('error', (error) => {
      if (this.#socket?.epoch === epoch) this.#countSocketError(error);
      this.#socketGone(epoch, new DisconnectedError(`socket to ${this.remote} failed`, { cause: error }));
    });
    socket.pingTimer = this.#clock.setInterval(() => {
      this.#checkLiveness(epoch);
    }, this.#limits.pingIntervalMs);
    this.#refusal = undefined;
    this.#refusalsLogged.clear();
    this.#setState('connected');
    // What the peer sent right after the handshake comes first, in order.
    for (const message of early) this.#onMessage(epoch, message, true);
    for (const stream of [...this.#statelessStreams]) {
      try {
        stream.open();
      } catch (error) {
        stream.fail(error);
      }
    }
  }

  /** Ends the connection for good: calls fail, handlers abort, no redial. */
  close(): void {
    if (this.#state === 'shutdown') return;
    this.#dialing?.terminate();
    // A handshake in progress ends now, with its timer, not when its socket's close arrives.
    this.#dialAbort.abort(new DisconnectedError(`connection to ${this.remote} shut down`));
    const socket = this.#socket;
    // The last word on this socket goes out directly: the writer's queue is dropped below.
    if (socket?.ws.readyState === WebSocket.OPEN)
      socket.ws.send(this.#encode(socket, control(Op.Disconnect)));
    this.#setState('shutdown');
    const error = new DisconnectedError(`connection to ${this.remote} shut down`);
    this.#dropSocket(error);
    for (const stream of [...this.#statelessStreams]) stream.fail(error);
  }

  // ---------------------------------------------------------------------------------
  // Dialling

  async #dial(): Promise<void> {
    if (this.#dialLoopRunning) return;
    this.#dialLoopRunning = true;
    try {
      await this.#dialUntilConnected();
    } finally {
      this.#dialLoopRunning = false;
    }
  }

  async #dialUntilConnected(): Promise<void> {
    if (this.#options.blockConnect !== undefined) await this.#options.blockConnect.catch(() => undefined);
    while (!this.#isShutdown() && this.#socket === undefined) {
      this.#refusal = undefined;
      this.#setState('connecting');
      try {
        const ws = this.#openSocket();
        const { remoteNodeId, early } = await dialHandshake(
          ws,
          {
            clock: this.#clock,
            auth: this.#options.auth,
            local: this.local,
            nodeId: this.#options.nodeId,
            timeoutMs: this.#limits.handshakeTimeoutMs,
            maxClockSkewMs: this.#limits.maxClockSkewMs,
            randomBytes,
          },
          this.remote,
          this.#dialAbort.signal,
        ).catch((error: unknown) => {
          ws.terminate();
          throw error;
        });
        this.#dialing = undefined;
        if (this.#isShutdown()) {
          ws.close(1001, 'shutting down');
          return;
        }
        this.attach(ws, remoteNodeId, early);
        // What arrived with the handshake may already have ended the socket (a peer that
        // is shutting down says so at once): then it counts as a failed dial.
        if (this.#currentEpoch() !== undefined) return;
      } catch (error) {
        this.#dialing = undefined;
        if (this.#isShutdown()) return;
        if (error instanceof HandshakeRefusedError) this.#refused(error);
        this.#setState('connection-error', error);
      }
      const { redialMinMs, redialMaxMs } = this.#limits;
      const delay = redialMinMs + this.#options.random() * (redialMaxMs - redialMinMs);
      // Settles on close too, so no dial loop outlives the connection.
      await sleep(this.#clock, delay, this.#dialAbort.signal).catch(() => undefined);
    }
  }

  /**
   * Starts a dial and returns the socket at once: the handshake listens from the start,
   * since the peer's Challenge can arrive in the same read as the upgrade's answer.
   */
  #openSocket(): WebSocket {
    const url = new URL(GRID_PATH, this.remote.replace(/^http/, 'ws'));
    const ws = new WebSocket(url, {
      ...this.#options.tls,
      maxPayload: this.#limits.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
    });
    this.#dialing = ws;
    // Never without an 'error' listener, from here until attach adds its own: ws reports a
    // bad frame from the peer as an 'error' event, which unheard would end the process.
    ws.on('error', () => undefined);
    return ws;
  }

  /**
   * The peer (or our check of its answer) refused the handshake. Logged once per reason
   * until the link is up again: the dial loop retries every second or two, and the log
   * would otherwise repeat the same line forever. A reason that needs an operator also
   * ends the waits for the connection (see waitForConnect).
   */
  #refused(error: HandshakeRefusedError): void {
    if (!error.retryable) this.#refusal = error;
    if (this.#refusalsLogged.has(error.reason)) return;
    this.#refusalsLogged.add(error.reason);
    // The detail may come from an impostor at the peer's address (a refusal proves nothing):
    // it stays in the fields, out of the message.
    const details = { remote: this.remote, reason: error.reason, detail: error.detail, error };
    const message = `grid: handshake with ${this.remote} refused (${error.reason})`;
    logSafely(() => {
      if (error.retryable) this.#logger.warn(`${message}; redialling`, details);
      else if (error.reason === 'unknown-host') {
        // Hosts added at run time (a node joining) reach some peers before others: expected for a
        // moment, an operator's business only if it lasts.
        this.#logger.warn(
          `${message}; redialling (normal while a member joins; if it lasts, the peer does not list this host)`,
          details,
        );
      } else this.#logger.error(`${message}; redialling, but this needs an operator`, details);
    });
  }

  // ---------------------------------------------------------------------------------
  // Socket lifetime

  #socketGone(epoch: number, error: DisconnectedError): void {
    if (this.#socket?.epoch !== epoch) return;
    this.#dropSocket(error);
    if (this.#isShutdown()) return;
    this.#setState('connection-error', error);
    // A dropped link is redialled at once; failed dials back off (see #dial).
    if (this.dials) void this.#dial();
  }

  #dropSocket(error: DisconnectedError): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#socket = undefined;
    socket.pingTimer?.cancel();
    // Closing counts what it drops; what was sent stays as it was.
    socket.writer.close();
    const stats = socket.writer.stats;
    this.#bytesOutClosed += stats.bytesSent;
    this.#messagesOutClosed += stats.messagesSent;
    this.#refusedClosed += stats.framesRefused;
    this.#droppedClosed += stats.framesDropped;
    socket.closed.abort(error);
    for (const [muxId, entry] of this.#outgoing) {
      this.#outgoing.delete(muxId);
      if (entry.kind === 'request') this.#settleRequest(entry, RequestEnd.Failed, error);
      else if (entry.kind === 'stream') entry.fail(error);
      // Stateless streams wait for the next socket.
      else entry.detach();
    }
    this.#outgoingStreams = 0;
    for (const stream of this.#incomingStreams.values()) stream.fail(error);
    this.#incomingStreams.clear();
    if (socket.ws.readyState === WebSocket.OPEN || socket.ws.readyState === WebSocket.CONNECTING) {
      if (this.#state === 'shutdown') {
        // Give the Disconnect frame a turn to leave before closing.
        setImmediate(() => {
          socket.ws.close(1001, 'shutting down');
        });
      } else {
        socket.ws.terminate();
      }
    }
  }

  #checkLiveness(epoch: number): void {
    const socket = this.#socket;
    if (socket?.epoch !== epoch) return;
    const now = this.#clock.now();
    const silentFor = now - (this.#lastPongAt ?? now);
    if (silentFor > this.#limits.pongTimeoutMs) {
      this.#socketGone(epoch, new DisconnectedError(`no pong from ${this.remote} for ${silentFor} ms`));
      return;
    }
    const stalledFor = socket.writer.stalledForMs();
    if (stalledFor > this.#limits.writeStallTimeoutMs) {
      this.#socketGone(epoch, new DisconnectedError(`writes to ${this.remote} stalled for ${stalledFor} ms`));
      return;
    }
    this.#sendFrame({ ...control(Op.Ping), payload: encodePing(now) }, true);
  }

  /** Read through a method: the state changes across awaits, where TypeScript's narrowing does not see it. */
  #isShutdown(): boolean {
    return this.#state === 'shutdown';
  }

  #currentEpoch(): number | undefined {
    return this.#socket?.epoch;
  }

  #setState(state: ConnectionState, error?: unknown): void {
    if (this.#state === state) return;
    if (this.#state === 'shutdown') return;
    this.#state = state;
    stateChannel.publish({ local: this.local, remote: this.remote, state, error });
    for (const check of [...this.#stateWaiters]) check();
  }

  // ---------------------------------------------------------------------------------
  // Sending

  #encode(socket: Socket, frame: Frame): Buffer {
    return encodeFrame(frame, socket.crc);
  }

  /**
   * Queues a frame on the current socket. Control frames are never refused for a full
   * queue (see MuxHost.sendFrame). Throws `FrameTooLargeError` for a frame over the
   * limit, a caller's mistake.
   */
  #sendFrame(frame: Frame, isControl = false): SendResult {
    const socket = this.#socket;
    if (socket === undefined) return 'disconnected';
    // Returned credits leave at once rather than at the end of the turn: the peer's sender is
    // waiting for them, and the items they make room for can be on their way while this side
    // reads the rest of what it was sent.
    const urgent = frame.op === Op.UnblockSrvMux || frame.op === Op.UnblockClMux;
    return socket.writer.enqueue(frame, isControl, urgent) ? 'sent' : 'queue-full';
  }

  /** `#sendFrame` for frames whose loss is tolerated: false instead of a throw. */
  #trySend(frame: Frame, isControl: boolean): boolean {
    try {
      return this.#sendFrame(frame, isControl) === 'sent';
    } catch {
      return false;
    }
  }

  #releaseOutgoing(muxId: number): void {
    const entry = this.#outgoing.get(muxId);
    if (entry?.kind !== 'stream') return;
    this.#outgoing.delete(muxId);
    this.#outgoingStreams -= 1;
  }

  // ---------------------------------------------------------------------------------
  // Receiving

  #onMessage(epoch: number, data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#socket?.epoch !== epoch) return;
    if (!isBinary) {
      this.#ignoredMessages += 1;
      return;
    }
    const buf = toBuffer(data);
    this.#bytesIn += buf.length;
    this.#messagesIn += 1;
    let frames: Frame[];
    try {
      frames = decodeMessage(buf);
    } catch (error) {
      // A frame we cannot parse leaves the stream of frames unreliable: reset the socket.
      this.#protocolErrors += 1;
      this.#socketGone(epoch, new DisconnectedError(`bad frame from ${this.remote}`, { cause: error }));
      return;
    }
    for (const frame of frames) {
      // A frame may have ended the socket (a Disconnect, a protocol error): drop the rest.
      if (this.#currentEpoch() !== epoch) return;
      try {
        this.#dispatch(frame);
      } catch (error) {
        this.#protocolErrors += 1;
        this.#socketGone(
          epoch,
          new DisconnectedError(`protocol error from ${this.remote}`, { cause: error }),
        );
        return;
      }
    }
  }

  /**
   * Counts a socket error the peer caused. `ws` stops reading with an error coded `WS_ERR_*`,
   * and closes the socket with the matching close code, when a message is over its
   * `maxPayload` (our `maxFrameBytes`) or breaks the WebSocket protocol. Other errors (a reset,
   * a failed write) are the network's, not the peer's protocol.
   */
  #countSocketError(error: Error): void {
    const code: unknown = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return;
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
      this.#messagesTooLargeIn += 1;
    else this.#protocolErrors += 1;
  }

  #dispatch(frame: Frame): void {
    switch (frame.op) {
      case Op.Ping:
        if (frame.muxId === 0) {
          this.#sendFrame(
            {
              ...control(Op.Pong),
              payload: encodePong({ sentAt: decodePing(frame.payload), notFound: false }),
            },
            true,
          );
        } else {
          this.#toIncoming(frame);
        }
        return;
      case Op.Pong:
        if (frame.muxId === 0) {
          const now = this.#clock.now();
          this.#lastPongAt = now;
          this.#rttMs = now - decodePong(frame.payload).sentAt;
        } else {
          this.#toOutgoing(frame);
        }
        return;
      case Op.Request:
        this.#onRequest(frame);
        return;
      case Op.Response:
        this.#onResponse(frame);
        return;
      case Op.ConnectMux:
        this.#onConnectMux(frame);
        return;
      case Op.MuxClientMsg:
      case Op.UnblockSrvMux:
      case Op.DisconnectServerMux:
        this.#toIncoming(frame);
        return;
      case Op.AckMux:
      case Op.MuxServerMsg:
      case Op.UnblockClMux:
      case Op.MuxConnectError:
      case Op.DisconnectClientMux:
        this.#toOutgoing(frame);
        return;
      case Op.Disconnect:
        this.#socketGone(this.#socket?.epoch ?? -1, new DisconnectedError(`${this.remote} is shutting down`));
        return;
      case Op.Connect:
      case Op.ConnectResponse:
      case Op.Merged:
        throw new ProtocolError(`op ${frame.op} after the handshake`);
    }
  }

  #toIncoming(frame: Frame): void {
    const stream = this.#incomingStreams.get(frame.muxId);
    if (stream !== undefined) {
      stream.onFrame(frame);
      return;
    }
    // Traffic for a stream that is gone here. Input means the caller missed the end:
    // tell it, so it cleans up too. Credits and cancels for a finished stream are normal.
    if (frame.op === Op.Ping) {
      const pong = encodePong({ sentAt: decodePing(frame.payload), notFound: true });
      this.#sendFrame({ ...control(Op.Pong), muxId: frame.muxId, payload: pong }, true);
    } else if (frame.op === Op.MuxClientMsg) {
      this.#sendFrame({ ...control(Op.DisconnectClientMux), muxId: frame.muxId }, true);
    } else if (frame.op === Op.DisconnectServerMux) {
      // Or a single request the caller gave up on; one already answered is ignored.
      const socket = this.#socket;
      if (socket !== undefined) this.#servedRequests.get(frame.muxId)?.(socket);
    }
  }

  #toOutgoing(frame: Frame): void {
    const entry = this.#outgoing.get(frame.muxId);
    // A stream that ended here may still hear from the handler side (its end, a credit).
    if (entry !== undefined && entry.kind !== 'request') entry.onFrame(frame);
  }

  #onResponse(frame: Frame): void {
    const entry = this.#outgoing.get(frame.muxId);
    if (entry?.kind !== 'request') {
      this.#lateResults += 1;
      return;
    }
    this.#outgoing.delete(frame.muxId);
    if ((frame.flags & Flag.PayloadIsErr) !== 0)
      this.#settleRequest(entry, RequestEnd.RemoteError, decodeError(frame.payload));
    else this.#settleRequest(entry, RequestEnd.Response, frame.payload);
  }

  #onRequest(frame: Frame): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    const handler = this.#options.registry.single(frame.handler, frame.subroute);
    if (handler === undefined) {
      this.#requestsUnknownHandler += 1;
      this.#respond(frame, Flag.PayloadIsErr, encodeError(new UnknownHandlerError(frame.handler)));
      return;
    }
    if (this.#incomingRequests >= this.#limits.maxIncomingRequests) {
      this.#requestsRefusedIn += 1;
      this.#respond(
        frame,
        Flag.PayloadIsErr,
        encodeError(
          new CapacityExceededError(`requests served for ${this.local}`, this.#limits.maxIncomingRequests),
        ),
      );
      return;
    }
    this.#incomingRequests += 1;
    const clock = this.#clock;
    const deadline = frame.deadlineMs === 0 ? Number.POSITIVE_INFINITY : clock.now() + frame.deadlineMs;
    const context = new ServedRequestContext(this.remote, clock, socket.closed.signal, deadline);
    // Called at once: a handler that answers synchronously costs no promise round, no closure
    // and no cancel entry, and one that awaits returns a promise. Either way the reader carries
    // on with the next frame.
    let result: ReturnType<typeof handler>;
    try {
      result = handler(frame.payload, context);
    } catch (error) {
      this.#finishRequest(frame, socket, context, Flag.PayloadIsErr, encodeError(error), { error });
      return;
    }
    if (result === undefined || result instanceof Uint8Array) {
      this.#finishRequest(frame, socket, context, 0, result);
      return;
    }
    // Only a handler that returned a promise can be cancelled: made and listed here.
    let cancelled = false;
    const cancel = (from: Socket): void => {
      // An entry left by a request of an earlier socket under the same id is not this request.
      if (from !== socket) return;
      this.#servedRequests.delete(frame.muxId);
      cancelled = true;
      this.#incomingRequests -= 1;
      ServedRequestContext.cancel(
        context,
        new CancelledError(`request ${frame.muxId} cancelled by the caller`),
      );
    };
    this.#servedRequests.set(frame.muxId, cancel);
    const settled = (flags: number, payload: unknown, failure?: { readonly error: unknown }): void => {
      // The caller gave up and its slot is free already: nobody waits for this result.
      if (cancelled) {
        this.#lateResults += 1;
        return;
      }
      if (this.#servedRequests.get(frame.muxId) === cancel) this.#servedRequests.delete(frame.muxId);
      this.#finishRequest(frame, socket, context, flags, payload, failure);
    };
    Promise.resolve(result).then(
      (payload) => {
        settled(0, payload);
      },
      (error: unknown) => {
        settled(Flag.PayloadIsErr, encodeError(error), { error });
      },
    );
  }

  /**
   * A served request's handler has its result: answered unless the caller is gone. `failure`
   * holds what the handler threw (which may be anything, even undefined): it is logged here
   * if it reaches the caller.
   */
  #finishRequest(
    frame: Frame,
    socket: Socket,
    context: ServedRequestContext,
    flags: number,
    payload: unknown,
    failure?: { readonly error: unknown },
  ): void {
    // Plain JavaScript callers get no type check: a result that is not bytes is their bug,
    // reported to the caller rather than written as a broken frame.
    if (payload !== undefined && !(payload instanceof Uint8Array)) {
      flags = Flag.PayloadIsErr;
      const error = new TypeError(`handler ${frame.handler} returned ${typeof payload}, not bytes`);
      failure = { error };
      payload = encodeError(error);
    }
    this.#incomingRequests -= 1;
    ServedRequestContext.dispose(context);
    // Past the deadline the caller has given up; a result now would only be dropped there.
    if (this.#clock.now() >= context.deadline || this.#socket !== socket) {
      this.#lateResults += 1;
      return;
    }
    if (failure !== undefined) this.#handlerFailed('request', frame.handler, frame.subroute, failure.error);
    try {
      this.#respond(frame, flags, payload as Uint8Array | undefined);
    } catch (error) {
      // A result too large to send: the caller gets that error instead of a hang.
      this.#respond(frame, Flag.PayloadIsErr, encodeError(error));
    }
  }

  /**
   * Answers request `frame`. Errors are short and always go out; a result may find the queue
   * full, and then the caller gets that error rather than silence until its deadline.
   */
  #respond(frame: Frame, flags: number, payload: Uint8Array | undefined): void {
    // Written into the writer's batch before #sendFrame returns: one object serves every response.
    const response = this.#response;
    response.muxId = frame.muxId;
    response.seq = frame.seq;
    response.flags = Flag.EOF | flags;
    response.payload = payload;
    const isError = (flags & Flag.PayloadIsErr) !== 0;
    const result = this.#sendFrame(response, isError);
    if (result === 'queue-full') {
      response.muxId = frame.muxId;
      response.seq = frame.seq;
      response.flags = Flag.EOF | Flag.PayloadIsErr;
      response.payload = encodeError(notSentError(result, this.#incomingHost));
      this.#sendFrame(response, true);
    }
    response.payload = undefined;
  }

  /**
   * A handler threw and its caller is told: logged here once, as the caller's node may not log
   * it. Failures the caller caused (a cancel, its deadline, a payload that does not decode)
   * are not: the caller knows of them already, and a peer could fill the log with them.
   */
  #handlerFailed(
    kind: 'request' | 'stream',
    handler: number,
    subroute: Uint8Array | undefined,
    error: unknown,
  ): void {
    if (isCallerFault(error)) return;
    const route = this.#options.registry.routeName(handler, subroute);
    const where = route === undefined ? String(handler) : `${handler} on subroute ${route}`;
    logSafely(() => {
      this.#logger.error(`grid ${kind} handler ${where} failed (called by ${this.remote})`, {
        handler,
        ...(route === undefined ? {} : { subroute: route }),
        remote: this.remote,
        error,
      });
    });
  }

  #onConnectMux(frame: Frame): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    const refuse = (error: unknown): void => {
      this.#sendFrame(
        {
          ...control(Op.MuxConnectError),
          muxId: frame.muxId,
          flags: Flag.PayloadIsErr,
          payload: encodeError(error),
        },
        true,
      );
    };
    if (this.#incomingStreams.has(frame.muxId)) throw new ProtocolError(`stream ${frame.muxId} opened twice`);
    const handler = this.#options.registry.stream(frame.handler, frame.subroute);
    if (handler === undefined) {
      this.#streamsUnknownHandler += 1;
      refuse(new UnknownHandlerError(frame.handler));
      return;
    }
    if (this.#incomingStreams.size >= this.#limits.maxStreams) {
      this.#streamsRefusedIn += 1;
      refuse(new CapacityExceededError(`streams served for ${this.local}`, this.#limits.maxStreams));
      return;
    }
    let open;
    try {
      open = decodeStreamOpen(frame.payload);
    } catch (error) {
      this.#streamProtocolErrors += 1;
      refuse(error);
      return;
    }
    const stateless = (frame.flags & Flag.Stateless) !== 0;
    if (!stateless && open.outWindow < 1) {
      this.#streamProtocolErrors += 1;
      refuse(new ProtocolError('a stream needs an output window of at least 1'));
      return;
    }
    const stream = new ServerStream(
      this.#incomingHost,
      frame,
      handler,
      open,
      socket.closed.signal,
      stateless,
    );
    this.#incomingStreams.set(frame.muxId, stream);
  }
}

/**
 * What a single-request handler gets besides its payload. Its signal (an AbortController, a
 * timer, a listener) is made only if the handler asks for it, or if the caller cancels: most
 * handlers never look.
 */
class ServedRequestContext {
  readonly remote: string;
  /** `clock.now()` past which the caller has given up; Infinity without a deadline. */
  readonly deadline: number;
  readonly #clock: Clock;
  readonly #socketClosed: AbortSignal;
  #scope: CallScope | undefined;

  constructor(remote: string, clock: Clock, socketClosed: AbortSignal, deadline: number) {
    this.remote = remote;
    this.deadline = deadline;
    this.#clock = clock;
    this.#socketClosed = socketClosed;
  }

  get signal(): AbortSignal {
    this.#scope ??= requestScope(this.#clock, this.#socketClosed, this.deadline);
    return this.#scope.signal;
  }

  /** Aborts the handler's signal, made now if the handler has not asked for it yet: it may still. */
  static cancel(context: ServedRequestContext, reason: unknown): void {
    const scope = (context.#scope ??= requestScope(context.#clock, context.#socketClosed, context.deadline));
    scope.abort(reason);
    scope.dispose();
  }

  static dispose(context: ServedRequestContext): void {
    context.#scope?.dispose();
  }
}

/**
 * What `request` returns or throws once `request` ended. Errors are made here, after the await,
 * so their stacks lead back to the caller.
 */
function outcomeAtCaller(request: OutgoingRequest, handler: number): Uint8Array | undefined {
  const result = request.result;
  switch (request.end) {
    case RequestEnd.Response:
      return result as Uint8Array | undefined;
    case RequestEnd.RemoteError: {
      const error = result as RemoteError;
      throw new RemoteError(error.code, error.message, error.retryable);
    }
    case RequestEnd.Cancelled:
      throw cancelledError(`request to handler ${handler}`, result);
    default:
      if (result instanceof DeadlineExceededError) {
        throw new DeadlineExceededError(result.message, { cause: result, timeoutMs: request.timeoutMs });
      }
      if (result instanceof DisconnectedError) {
        throw new DisconnectedError(result.message, { cause: result });
      }
      throw result;
  }
}

function control(op: OpCode): Frame {
  return { muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op, flags: 0, payload: undefined };
}

function noop(): void {
  // Nothing to stop listening to.
}

/** The signal of a request served here: it aborts when its socket dies or at `deadline`. */
function requestScope(clock: Clock, socketClosed: AbortSignal, deadline: number): CallScope {
  return callScope(clock, {
    signal: socketClosed,
    timeoutMs: Number.isFinite(deadline) ? deadline - clock.now() : undefined,
  });
}
