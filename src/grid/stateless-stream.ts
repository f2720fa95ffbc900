// A stateless stream: responses only, no flow control, and it survives reconnects.
//
// It is for feeds where the latest items matter more than every item: membership
// updates, metrics, change notifications. The handler sends without waiting for
// credits (what its connection's send queue cannot take is dropped, and its `send()`
// says so: see server-stream.ts); the caller keeps a bounded inbox and drops (and
// counts) what does not fit.
// When the connection drops, the stream does not fail: it waits, and when the
// connection is back it opens again with the same initial payload (under a new mux
// id), so the handler starts over from that payload. MinIO declared this mode and
// left it unimplemented; here it is. Sequence numbers are not checked: items may be
// dropped by design. What is dropped by design is items that do not fit; a frame that is
// no item at all (neither a payload nor the end) is the handler side breaking the stream's
// protocol, as on any stream: the stream ends with a `ProtocolError`, for good, and the
// connection counts it.

import { BoundedQueue } from '../internal/bounded-queue.ts';
import { Cancellation } from './cancel.ts';
import type { Frame } from './frame.ts';
import { decodeError, encodeStreamOpen } from './messages.ts';
import { neitherItemNorEnd } from './mux.ts';
import { Flag, Op } from './protocol.ts';

export interface StatelessStreamOptions {
  readonly initial?: Uint8Array | undefined;
  /** Responses kept while the consumer is behind; newer ones are dropped past it. Default 100. */
  readonly capacity?: number | undefined;
  readonly subroute?: Uint8Array | undefined;
}

/** A stateless stream as its caller sees it. */
export interface StatelessGridStream extends AsyncIterable<Uint8Array> {
  /** Items dropped because the inbox was full. */
  readonly dropped: number;
  /** Times the stream was (re)opened: 1 after the first open. */
  readonly opens: number;
  /**
   * Ends the stream for good: the handler's signal aborts, and the iteration ends with a
   * `CancelledError` whose cause is `reason`. Leaving a `for await` loop does the same.
   */
  cancel(reason?: unknown): void;
}

/** What the stream needs from its connection. */
export interface StatelessHost {
  /** Allocates a mux id, registers the stream under it, and sends the frame; false if not sent. */
  open(stream: StatelessStream, frame: (muxId: number) => Frame): number | undefined;
  send(frame: Frame): boolean;
  /** The stream is over: drop it (and its current mux id, if any). */
  forget(stream: StatelessStream, muxId: number | undefined): void;
  /** The handler side broke this stream's protocol, and the stream ends: the connection counts it. */
  streamProtocolError(): void;
}

export class StatelessStream implements StatelessGridStream {
  readonly kind = 'stateless';
  readonly #host: StatelessHost;
  readonly #handler: number;
  readonly #options: StatelessStreamOptions;
  readonly #inbox: BoundedQueue<Uint8Array>;
  #muxId: number | undefined;
  #dropped = 0;
  #opens = 0;
  #done = false;
  /** Set when the caller gave up: what its awaits reject with. */
  #cancellation: Cancellation | undefined;

  constructor(host: StatelessHost, handler: number, options: StatelessStreamOptions) {
    this.#host = host;
    this.#handler = handler;
    this.#options = options;
    this.#inbox = new BoundedQueue<Uint8Array>({ capacity: options.capacity ?? 100, maxWaiters: 1 });
  }

  get dropped(): number {
    return this.#dropped;
  }

  get opens(): number {
    return this.#opens;
  }

  /** The mux id of the current open, if the stream is open now. */
  get muxId(): number | undefined {
    return this.#muxId;
  }

  /** Opens (again) on the current socket. */
  open(): void {
    if (this.#done || this.#muxId !== undefined) return;
    this.#muxId = this.#host.open(this, (muxId) => ({
      muxId,
      seq: 0,
      deadlineMs: 0,
      handler: this.#handler,
      op: Op.ConnectMux,
      flags: Flag.Stateless,
      payload: encodeStreamOpen({ outWindow: 0, initial: this.#options.initial }),
      subroute: this.#options.subroute,
    }));
    if (this.#muxId !== undefined) this.#opens += 1;
  }

  /** The socket went away: wait for the next one. */
  detach(): void {
    this.#muxId = undefined;
  }

  cancel(reason?: unknown): void {
    if (this.#done) return;
    const cancellation = new Cancellation(`stateless stream to handler ${this.#handler}`, reason);
    this.#cancellation = cancellation;
    this.#abandon(cancellation.marker);
  }

  /** Ends the stream for good because the connection shut down. */
  fail(error: unknown): void {
    this.#finish(error);
  }

  onFrame(frame: Frame): void {
    if (this.#done) return;
    switch (frame.op) {
      case Op.MuxServerMsg:
        this.#onResponse(frame);
        return;
      case Op.MuxConnectError:
        this.#finish(decodeError(frame.payload));
        return;
      case Op.DisconnectClientMux:
        // The handler side dropped it (its handler failed or was cancelled): that is final.
        this.#finish((frame.flags & Flag.PayloadIsErr) !== 0 ? decodeError(frame.payload) : undefined);
        return;
      default:
        // AckMux, pongs: nothing to do for a stream without credits.
        return;
    }
  }

  /** An item, the end, or the handler's error, from the handler side. */
  #onResponse(frame: Frame): void {
    if ((frame.flags & Flag.PayloadIsErr) !== 0) {
      this.#finish(decodeError(frame.payload));
      return;
    }
    // Not dropped as if it did not fit: that would hide a broken peer.
    const broken = neitherItemNorEnd(frame, `stateless stream ${frame.muxId}: a response`);
    if (broken !== undefined) {
      this.#host.streamProtocolError();
      this.#abandon(broken);
      return;
    }
    if (frame.payload !== undefined && !this.#inbox.offer(frame.payload)) this.#dropped += 1;
    if ((frame.flags & Flag.EOF) !== 0) this.#finish(undefined);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      // A buffered item is handed over at once; only a wait can end in an error.
      next: () => (this.#inbox.depth > 0 ? this.#inbox.next() : this.#waitForNext()),
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  async #waitForNext(): Promise<IteratorResult<Uint8Array>> {
    try {
      return await this.#inbox.next();
    } catch (error) {
      // Made after the await, so the stack leads back to the caller.
      throw this.#cancellation === undefined ? error : this.#cancellation.atCaller(error);
    }
  }

  /** Ends the stream with `error` and tells the handler side to stop. */
  #abandon(error: unknown): void {
    if (this.#muxId !== undefined) {
      this.#host.send({
        muxId: this.#muxId,
        seq: 0,
        deadlineMs: 0,
        handler: 0,
        op: Op.DisconnectServerMux,
        flags: 0,
        payload: undefined,
      });
    }
    this.#finish(error);
  }

  #finish(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const muxId = this.#muxId;
    this.#muxId = undefined;
    if (error === undefined) this.#inbox.close();
    else this.#inbox.error(error);
    this.#host.forget(this, muxId);
  }
}
