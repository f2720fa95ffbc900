// The caller's side of a stream.
//
// Responses land in a bounded inbox of `outWindow` items; the handler may only send
// as many as it holds credits for, and each response the caller takes out returns one
// credit (UnblockSrvMux). So the connection's single reader always finds room and never
// waits on a slow consumer, and a slow consumer stalls only its own stream. Input works
// the other way round: `send()` waits for one of the handler's credits (the first ones
// arrive with AckMux). The final EOF needs no credit, and the items before it are
// always delivered before the end.

import { isAborted, onAbort } from '../internal/abort.ts';
import { BoundedQueue } from '../internal/bounded-queue.ts';
import type { Timer } from '../internal/clock.ts';
import { CreditWindow } from '../internal/credit-window.ts';
import { callScope, type CallOptions, type CallScope } from '../internal/deadline.ts';
import { ClosedError } from '../internal/errors.ts';
import { Cancellation, cancelledError } from './cancel.ts';
import { DEFAULT_STREAM_WINDOW } from './config.ts';
import { DisconnectedError, ProtocolError } from './errors.ts';
import type { Frame } from './frame.ts';
import { CreditReturn } from './credit-return.ts';
import {
  decodeCredits,
  decodeError,
  decodePong,
  decodeWindow,
  encodeCredits,
  encodePing,
  encodeStreamOpen,
} from './messages.ts';
import { grantReturned, MuxSequence, neitherItemNorEnd, notSentError, type MuxHost } from './mux.ts';
import { Flag, Op, type Op as OpCode } from './protocol.ts';

export interface StreamOptions extends CallOptions {
  /** Payload sent with the open. */
  readonly initial?: Uint8Array | undefined;
  /** Responses buffered on this side (the handler's output window). Default `DEFAULT_STREAM_WINDOW` (32). */
  readonly outCapacity?: number | undefined;
  readonly subroute?: Uint8Array | undefined;
}

/** A stream as its caller sees it. Iterate it for the responses. */
export interface GridStream extends AsyncIterable<Uint8Array> {
  readonly muxId: number;
  /**
   * Sends one input item; resolves once the handler had room for it. Aborting `signal`
   * gives up on this item only: the send rejects with a `CancelledError` (cause: the
   * signal's reason), the stream goes on.
   */
  send(payload: Uint8Array, options?: { signal?: AbortSignal | undefined }): Promise<void>;
  /** No more input. The responses keep coming until the handler ends. */
  end(): void;
  /**
   * Abandons the stream: the handler's signal aborts, and the iteration and any send end
   * with a `CancelledError` whose cause is `reason`. Leaving a `for await` loop and
   * aborting the stream's signal do the same (a signal aborted by a deadline ends them
   * with `DeadlineExceededError` instead).
   */
  cancel(reason?: unknown): void;
  /** Responses waiting to be read. */
  readonly buffered: number;
}

/** What a caller's stream needs from its connection. */
export interface ClientStreamHost extends MuxHost {
  /** The handler side broke this stream's protocol, and the stream ends: the connection counts it. */
  streamProtocolError(): void;
}

export class ClientStream implements GridStream {
  /** Tells streams from single requests in the connection's table of outgoing muxes. */
  readonly kind = 'stream';
  readonly muxId: number;
  readonly #host: ClientStreamHost;
  readonly #seq = new MuxSequence(0);
  readonly #inbox: BoundedQueue<Uint8Array>;
  readonly #credits = new CreditWindow({ initial: 0, name: 'stream input' });
  readonly #scope: CallScope;
  readonly #options: StreamOptions;
  readonly #creditReturn: CreditReturn;
  #inputWindow = 0;
  #inputEnded = false;
  #done = false;
  #lastHeardAt: number;
  #pingTimer: Timer | undefined;
  #stopOnAbort: () => void = noop;
  /** Set when the caller gave up: what its awaits reject with. */
  #cancellation: Cancellation | undefined;

  constructor(host: ClientStreamHost, muxId: number, options: StreamOptions) {
    this.muxId = muxId;
    this.#host = host;
    this.#options = options;
    this.#inbox = new BoundedQueue<Uint8Array>({
      capacity: options.outCapacity ?? DEFAULT_STREAM_WINDOW,
      name: `stream ${muxId} responses`,
      maxWaiters: 1,
      onTake: () => {
        this.#creditReturn.add();
      },
    });
    this.#creditReturn = new CreditReturn(this.#inbox.capacity, (count) => {
      this.#send(Op.UnblockSrvMux, 0, encodeCredits(count));
    });
    this.#scope = callScope(host.clock, options);
    this.#lastHeardAt = host.clock.now();
  }

  /** Sends the open. Called once the connection has registered the stream, as it may end at once. */
  start(handler: number): void {
    const { clock, limits } = this.#host;
    // Listening starts here, not in the constructor: an abort before the stream is registered
    // would release a mux id the connection has not taken yet.
    this.#stopOnAbort = onAbort(this.#scope.signal, (reason) => {
      this.cancel(reason);
    });
    if (this.#done) return;
    const remaining = this.#scope.deadline - clock.now();
    let opened;
    try {
      opened = this.#seq.send(
        this.#host,
        {
          muxId: this.muxId,
          deadlineMs: Number.isFinite(remaining) ? Math.min(Math.ceil(remaining), 0xffff_ffff) : 0,
          handler,
          op: Op.ConnectMux,
          flags: 0,
          payload: encodeStreamOpen({ outWindow: this.#inbox.capacity, initial: this.#options.initial }),
          subroute: this.#options.subroute,
        },
        false,
      );
    } catch (error) {
      this.#finish(error);
      throw error;
    }
    if (opened !== 'sent') {
      this.#finish(notSentError(opened, this.#host));
      return;
    }
    // Pings only matter when the stream may outlive a ping period.
    if (remaining > limits.streamPingIntervalMs) {
      this.#pingTimer = clock.setInterval(() => {
        this.#ping();
      }, limits.streamPingIntervalMs);
    }
  }

  get buffered(): number {
    return this.#inbox.depth;
  }

  async send(payload: Uint8Array, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    // Plain JavaScript callers get no type check: anything but bytes is refused here.
    if (!(payload instanceof Uint8Array))
      throw new TypeError(`stream items are bytes, got ${typeof payload}`);
    if (this.#inputEnded) throw new ClosedError(`stream ${this.muxId}: input already ended`);
    const { signal } = options;
    if (signal?.aborted === true) throw cancelledError(`send on stream ${this.muxId}`, signal.reason);
    try {
      await this.#credits.acquire(options);
    } catch (error) {
      if (signal !== undefined && isAborted(signal) && error === signal.reason) {
        throw cancelledError(`send on stream ${this.muxId}`, error);
      }
      throw this.#atCaller(error);
    }
    // The stream may have ended while this send waited.
    if (this.#cancellation !== undefined) throw this.#cancellation.error();
    if (this.#isOver()) throw new ClosedError(`stream ${this.muxId} is over`);
    const result = this.#seq.sendItem(this.#host, this.muxId, Op.MuxClientMsg, payload, this.#credits);
    if (result !== 'sent') throw notSentError(result, this.#host);
  }

  end(): void {
    if (this.#inputEnded || this.#done) return;
    this.#inputEnded = true;
    this.#send(Op.MuxClientMsg, Flag.EOF, undefined);
  }

  cancel(reason?: unknown): void {
    if (this.#done) return;
    this.#cancellation = new Cancellation(`stream ${this.muxId}`, reason);
    this.#abandon(this.#cancellation.marker);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      // A buffered item is handed over at once; only a wait can end in an error.
      next: () => (this.#inbox.depth > 0 ? this.#inbox.next() : this.#waitForNext()),
      // Leaving the loop early: nobody reads the rest, so the handler may stop.
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  #isOver(): boolean {
    return this.#done || this.#inputEnded;
  }

  async #waitForNext(): Promise<IteratorResult<Uint8Array>> {
    try {
      return await this.#inbox.next();
    } catch (error) {
      // Made after the await, so the stack leads back to the caller.
      throw this.#atCaller(error);
    }
  }

  #noInputError(): ClosedError {
    return new ClosedError(`stream ${this.muxId}: the handler takes no input`);
  }

  #atCaller(error: unknown): unknown {
    return this.#cancellation === undefined ? error : this.#cancellation.atCaller(error);
  }

  /** A frame for this mux from the handler side. */
  onFrame(frame: Frame): void {
    if (this.#done) return;
    this.#lastHeardAt = this.#host.clock.now();
    try {
      switch (frame.op) {
        case Op.AckMux:
          this.#seq.check(frame.seq);
          this.#inputWindow = decodeWindow(frame.payload);
          if (this.#inputWindow > 0) this.#credits.grant(this.#inputWindow);
          // Most streams take no input: the window makes the error (and its stack) only for a send.
          else this.#credits.close(undefined, () => this.#noInputError());
          return;
        case Op.MuxServerMsg:
          this.#seq.check(frame.seq);
          this.#onResponse(frame);
          return;
        case Op.UnblockClMux:
          this.#seq.check(frame.seq);
          grantReturned(
            this.#credits,
            decodeCredits(frame.payload),
            this.#inputWindow,
            `stream ${this.muxId}: input credit`,
          );
          return;
        case Op.Pong:
          if (decodePong(frame.payload).notFound) {
            this.#finish(new DisconnectedError(`stream ${this.muxId}: the handler side no longer knows it`));
          }
          return;
        case Op.MuxConnectError:
        case Op.DisconnectClientMux:
          this.#finish(
            (frame.flags & Flag.PayloadIsErr) !== 0 || frame.op === Op.MuxConnectError
              ? decodeError(frame.payload)
              : new DisconnectedError(`stream ${this.muxId} closed by the handler side`),
          );
          return;
        default:
          throw new ProtocolError(`stream ${this.muxId}: unexpected op ${frame.op} for a caller`);
      }
    } catch (error) {
      // Only the handler side's frames throw here: it broke the stream's protocol. The stream
      // is torn down on both sides and counted; the connection stays up.
      this.#host.streamProtocolError();
      this.#abandon(error);
    }
  }

  /** The connection went down (or closes): the stream cannot continue. */
  fail(error: unknown): void {
    this.#finish(error);
  }

  #onResponse(frame: Frame): void {
    if ((frame.flags & Flag.PayloadIsErr) !== 0) {
      this.#finish(decodeError(frame.payload));
      return;
    }
    const broken = neitherItemNorEnd(frame, `stream ${this.muxId}: a response`);
    if (broken !== undefined) throw broken;
    // The handler spent a credit for this item, so there is room unless it cheated.
    if (frame.payload !== undefined && !this.#inbox.offer(frame.payload)) {
      throw new ProtocolError(`stream ${this.muxId}: response beyond the window of ${this.#inbox.capacity}`);
    }
    if ((frame.flags & Flag.EOF) !== 0) this.#finish(undefined);
  }

  #ping(): void {
    const now = this.#host.clock.now();
    if (now - this.#lastHeardAt > this.#host.limits.streamPongTimeoutMs) {
      this.#abandon(
        new DisconnectedError(
          `stream ${this.muxId}: no answer from the handler side for ${now - this.#lastHeardAt} ms`,
        ),
      );
      return;
    }
    this.#send(Op.Ping, 0, encodePing(now));
  }

  /** Ends the stream with `error` and tells the handler side to stop. */
  #abandon(error: unknown): void {
    if (this.#done) return;
    this.#host.sendFrame({ ...this.#frame(Op.DisconnectServerMux, 0, undefined), seq: 0 }, true);
    this.#finish(error);
  }

  /** Sends a control frame (credit, end of input, ping): never refused for a full queue. */
  #send(op: OpCode, flags: number, payload: Uint8Array | undefined): void {
    this.#seq.sendOp(this.#host, this.muxId, op, flags, payload, true);
  }

  #frame(op: OpCode, flags: number, payload: Uint8Array | undefined): Omit<Frame, 'seq'> {
    return { muxId: this.muxId, deadlineMs: 0, handler: 0, op, flags, payload };
  }

  /** Ends the stream once: `error` undefined means a clean end after the buffered responses. */
  #finish(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#creditReturn.close();
    this.#pingTimer?.cancel();
    this.#stopOnAbort();
    this.#scope.dispose();
    this.#credits.close(error, () => new ClosedError(`stream ${this.muxId} is over`));
    if (error === undefined) this.#inbox.close();
    else this.#inbox.error(error);
    this.#host.release(this.muxId);
  }
}

function noop(): void {
  // Not listening yet.
}
