// The handler's side of a stream.
//
// Input items land in a bounded queue of `inCapacity`; each item the handler takes
// returns a credit to the caller (UnblockClMux), so the reader never waits. Output goes
// out only against the caller's credits: `send()` waits for one, so a caller that reads
// slowly slows its own handler and nothing else. The handler's signal aborts when the
// caller cancels, its connection drops, the deadline passes, or it stops pinging.
//
// On a stateless stream `send()` never waits for the caller: an item goes out at once or
// is dropped (and counted). It still waits for a turn of the event loop now and then: a
// handler that sends in a loop would otherwise never leave the microtask queue, and the
// socket, the timers and the cancel that should stop it would never run again.

import { BoundedQueue } from '../internal/bounded-queue.ts';
import type { Timer } from '../internal/clock.ts';
import { CreditWindow } from '../internal/credit-window.ts';
import { callScope, type CallScope } from '../internal/deadline.ts';
import { CancelledError, ClosedError } from '../internal/errors.ts';
import { DisconnectedError, ProtocolError } from './errors.ts';
import type { Frame } from './frame.ts';
import type { RegisteredStream } from './handler-registry.ts';
import { CreditReturn } from './credit-return.ts';
import {
  decodeCredits,
  decodePing,
  encodeCredits,
  encodeError,
  encodePong,
  encodeWindow,
} from './messages.ts';
import { grantReturned, MuxSequence, neitherItemNorEnd, notSentError, type MuxHost } from './mux.ts';
import { Flag, MERGE_MAX_MESSAGES, Op, type Op as OpCode } from './protocol.ts';

/** What a handler's stream needs from its connection. */
export interface ServerStreamHost extends MuxHost {
  /** The handler threw, and the caller is told: the connection logs it (see Connection). */
  handlerFailed(handler: number, subroute: Uint8Array | undefined, error: unknown): void;
  /** The caller broke this stream's protocol, and the stream ends: the connection counts it. */
  streamProtocolError(): void;
}

/** Stateless sends between two turns of the event loop: about one Merged batch. */
const SENDS_PER_TURN = MERGE_MAX_MESSAGES;

/** What `send` returns for an item queued at once: one settled promise for all of them. */
const SENT: Promise<boolean> = Promise.resolve(true);

export class ServerStream {
  readonly muxId: number;
  readonly #host: ServerStreamHost;
  readonly #handler: number;
  readonly #subroute: Uint8Array | undefined;
  // The caller's ConnectMux was seq 0.
  readonly #seq = new MuxSequence(1);
  readonly #input: BoundedQueue<Uint8Array>;
  readonly #credits: CreditWindow;
  readonly #scope: CallScope;
  readonly #stateless: boolean;
  readonly #creditReturn: CreditReturn;
  /** The caller sent its end of input. */
  #inputEnded = false;
  readonly #inputWindow: number;
  /** The caller's window for this handler's output: the most credits it may hold. */
  readonly #outputWindow: number;
  #lastPingAt: number;
  #idleTimer: Timer | undefined;
  #done = false;
  /** Stateless items dropped because the send queue was full or the socket gone. */
  #dropped = 0;
  /** Sends waiting for a credit or woken with one, their items not yet queued. */
  #creditedSends = 0;
  /** Stateless sends since send last gave the event loop a turn. */
  #sendsSinceYield = 0;

  constructor(
    host: ServerStreamHost,
    frame: Frame,
    handler: RegisteredStream,
    open: { outWindow: number; initial: Uint8Array | undefined },
    parentSignal: AbortSignal,
    stateless = false,
  ) {
    this.muxId = frame.muxId;
    this.#host = host;
    this.#handler = frame.handler;
    this.#subroute = frame.subroute;
    this.#stateless = stateless;
    this.#input = new BoundedQueue<Uint8Array>({
      capacity: Math.max(1, handler.inCapacity),
      maxWaiters: 1,
      name: `stream ${frame.muxId} input`,
      onTake: () => {
        this.#creditReturn.add();
      },
    });
    // A stateless stream takes no input and sends without credits (its caller drops what
    // does not fit), so the credit window is simply unbounded.
    this.#creditReturn = new CreditReturn(this.#input.capacity, (count) => {
      this.#send(Op.UnblockClMux, 0, encodeCredits(count));
    });
    this.#inputWindow = stateless ? 0 : handler.inCapacity;
    if (this.#inputWindow === 0) this.#input.close();
    this.#outputWindow = stateless ? Number.POSITIVE_INFINITY : open.outWindow;
    this.#credits = stateless
      ? new CreditWindow({ initial: Number.MAX_SAFE_INTEGER, name: 'stateless stream output' })
      : new CreditWindow({ initial: open.outWindow, name: 'stream output' });
    this.#scope = callScope(host.clock, {
      signal: parentSignal,
      timeoutMs: frame.deadlineMs === 0 ? undefined : frame.deadlineMs,
    });
    this.#lastPingAt = host.clock.now();
    // The ack comes first: it opens the caller's input.
    this.#send(Op.AckMux, 0, encodeWindow(this.#inputWindow));
    const idleLimit = host.limits.handlerIdleTimeoutMs;
    // Stateless callers do not ping; their socket's liveness covers them.
    if (!stateless && (frame.deadlineMs === 0 || frame.deadlineMs > idleLimit)) {
      this.#idleTimer = host.clock.setInterval(
        () => {
          this.#checkIdle();
        },
        Math.ceil(idleLimit / 4),
      );
    }
    this.#run(handler, open.initial);
  }

  get signal(): AbortSignal {
    return this.#scope.signal;
  }

  #isDone(): boolean {
    return this.#done;
  }

  /** A frame for this mux from the caller. */
  onFrame(frame: Frame): void {
    if (this.#done) return;
    try {
      switch (frame.op) {
        case Op.MuxClientMsg:
          this.#seq.check(frame.seq);
          this.#onInput(frame);
          return;
        case Op.UnblockSrvMux:
          this.#seq.check(frame.seq);
          grantReturned(
            this.#credits,
            decodeCredits(frame.payload),
            this.#outputWindow,
            `stream ${this.muxId}: output credit`,
          );
          return;
        case Op.Ping:
          this.#seq.check(frame.seq);
          this.#lastPingAt = this.#host.clock.now();
          this.#sendUnsequenced(Op.Pong, encodePong({ sentAt: decodePing(frame.payload), notFound: false }));
          return;
        case Op.DisconnectServerMux:
          this.#abort(new CancelledError(`stream ${this.muxId} cancelled by the caller`), false);
          return;
        default:
          throw new ProtocolError(`stream ${this.muxId}: unexpected op ${frame.op} for a handler`);
      }
    } catch (error) {
      // Only the caller's frames throw here: it broke the stream's protocol. Counted, and the
      // stream ends on both sides; the connection stays up.
      this.#host.streamProtocolError();
      this.#abort(error, true);
    }
  }

  /** An input item, or the end of input, from the caller. Throws if the caller broke the protocol. */
  #onInput(frame: Frame): void {
    if ((frame.flags & Flag.EOF) !== 0) {
      this.#inputEnded = true;
      this.#input.close();
      return;
    }
    if (this.#inputEnded || this.#inputWindow === 0) {
      throw new ProtocolError(`stream ${this.muxId}: input after the input ended`);
    }
    const broken = neitherItemNorEnd(frame, `stream ${this.muxId}: an input item`);
    if (broken !== undefined) throw broken;
    if (this.#input.closed) {
      // The handler stopped reading its input: the item is dropped, its credit returned.
      this.#creditReturn.add();
      return;
    }
    if (frame.payload !== undefined && !this.#input.offer(frame.payload)) {
      throw new ProtocolError(`stream ${this.muxId}: input beyond the handler's window (handler blocked)`);
    }
  }

  /** The connection went down or the manager closes. */
  fail(error: unknown): void {
    this.#abort(error, false);
  }

  #run(handler: RegisteredStream, initial: Uint8Array | undefined): void {
    const signal = this.#scope.signal;
    const dropped = (): number => this.#dropped;
    const context = {
      initial,
      requests: this.#input,
      signal,
      remote: this.#host.remote,
      get dropped(): number {
        return dropped();
      },
      send: (payload: Uint8Array): Promise<boolean> => {
        try {
          // Plain JavaScript callers get no type check: anything but bytes is refused here.
          if (!(payload instanceof Uint8Array))
            throw new TypeError(`stream items are bytes, got ${typeof payload}`);
          if (this.#done) throw new ClosedError(`stream ${this.muxId} is over`);
          if (this.#stateless) return this.#sendStateless(payload);
          // A credit in hand is spent at once, and the item queued with no promise of its own;
          // but not past an earlier send that has its credit and has not yet queued its item.
          if (this.#creditedSends === 0 && this.#credits.tryAcquire()) {
            this.#sendItem(payload);
            return SENT;
          }
        } catch (error) {
          return Promise.reject(error);
        }
        return this.#sendWhenCredited(payload, signal);
      },
    };
    Promise.resolve()
      .then(() => handler.handle(context))
      .then(
        () => {
          this.#end(undefined);
        },
        (error: unknown) => {
          this.#end({ error });
        },
      );
  }

  /** Waits for a credit, then queues the item. */
  async #sendWhenCredited(payload: Uint8Array, signal: AbortSignal): Promise<boolean> {
    // Counted from the wait until the item is queued: a credit granted to this send wakes it
    // a microtask later, and a later send must not take the fast path past it meanwhile.
    this.#creditedSends += 1;
    try {
      await this.#credits.acquire({ signal });
      // The stream may have ended while this send waited.
      if (this.#isDone()) throw new ClosedError(`stream ${this.muxId} is over`);
      this.#sendItem(payload);
      return true;
    } finally {
      this.#creditedSends -= 1;
    }
  }

  /** Queues an item whose credit is spent; throws if it did not go out (the credit is back). */
  #sendItem(payload: Uint8Array): void {
    const result = this.#seq.sendItem(this.#host, this.muxId, Op.MuxServerMsg, payload, this.#credits);
    if (result !== 'sent') throw notSentError(result, this.#host);
  }

  /** Queues the item or drops it (a stateless caller tolerates loss), then yields if due. */
  async #sendStateless(payload: Uint8Array): Promise<boolean> {
    const result = this.#seq.sendOp(this.#host, this.muxId, Op.MuxServerMsg, 0, payload, false);
    const queued = result === 'sent';
    if (!queued) this.#dropped += 1;
    // A drop means the queue is full, and only the socket, which needs the event loop, empties it.
    if (!queued || ++this.#sendsSinceYield >= SENDS_PER_TURN) {
      this.#sendsSinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return queued;
  }

  /**
   * The handler returned (or threw): the caller gets the end, or the error, after the items.
   * A stream that ended already (cancelled, disconnected) has no one to tell, and a handler
   * whose signal aborted (the caller's deadline, its silence) threw because of that: neither
   * is a handler failure to log.
   */
  #end(outcome: { readonly error: unknown } | undefined): void {
    if (this.#done) return;
    if (outcome === undefined) this.#send(Op.MuxServerMsg, Flag.EOF, undefined);
    else {
      if (!this.#scope.signal.aborted) this.#host.handlerFailed(this.#handler, this.#subroute, outcome.error);
      this.#send(Op.MuxServerMsg, Flag.EOF | Flag.PayloadIsErr, encodeError(outcome.error));
    }
    this.#finish(undefined);
  }

  #checkIdle(): void {
    const silentFor = this.#host.clock.now() - this.#lastPingAt;
    if (silentFor > this.#host.limits.handlerIdleTimeoutMs) {
      this.#abort(
        new DisconnectedError(`stream ${this.muxId}: no ping from the caller for ${silentFor} ms`),
        true,
      );
    }
  }

  /** Stops the handler; `tell` also tells the caller the stream is gone. */
  #abort(reason: unknown, tell: boolean): void {
    if (this.#done) return;
    if (tell) {
      this.#host.sendFrame(
        { ...this.#frame(Op.DisconnectClientMux, Flag.PayloadIsErr, encodeError(reason)), seq: 0 },
        true,
      );
    }
    this.#finish(reason);
  }

  #finish(reason: unknown): void {
    this.#done = true;
    this.#creditReturn.close();
    this.#idleTimer?.cancel();
    this.#credits.close(reason);
    if (reason === undefined) {
      this.#input.close();
    } else {
      this.#input.error(reason);
      // The handler may still be running: its signal tells it to stop.
      this.#scope.abort(reason);
    }
    this.#scope.dispose();
    this.#host.release(this.muxId);
  }

  /** Sends a control frame (ack, credit, end): never refused for a full queue. */
  #send(op: OpCode, flags: number, payload: Uint8Array | undefined): void {
    this.#seq.sendOp(this.#host, this.muxId, op, flags, payload, true);
  }

  #sendUnsequenced(op: OpCode, payload: Uint8Array): void {
    this.#host.sendFrame({ ...this.#frame(op, 0, payload), seq: 0 }, true);
  }

  #frame(op: OpCode, flags: number, payload: Uint8Array | undefined): Omit<Frame, 'seq'> {
    return { muxId: this.muxId, deadlineMs: 0, handler: 0, op, flags, payload };
  }
}
