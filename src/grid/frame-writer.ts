// The one writer of one socket.
//
// Every frame for the socket goes through this queue, in order. Frames are queued
// encoded, and flushed on the next turn of the event loop, so that frames produced by
// one burst of work (many responses, many credits) leave as one Merged WebSocket message:
// one syscall instead of fifty. Merging stops at 50 messages or before 31 KiB, as MinIO's
// writer does, so a batch never delays a small frame behind a large one for long.
//
// The queue is bounded in bytes: past `maxQueuedBytes` a frame is refused (and counted)
// rather than buffered without end. The socket's own buffer is bounded by
// `writeHighWaterBytes`: above it the writer waits for write callbacks before handing
// over more. A writer belongs to one socket; when the socket dies, `close()` drops what
// is still queued, so stale frames never reach the next socket.

import type { Clock } from '../internal/clock.ts';
import { encodeMerged, binHeaderSize, mergedHeaderSize } from './frame.ts';
import { MERGE_MAX_BYTES, MERGE_MAX_MESSAGES } from './protocol.ts';

/** Where the writer hands messages: a WebSocket's `send` with a completion callback. */
export type SendMessage = (message: Buffer, done: (error?: Error) => void) => void;

export interface FrameWriterOptions {
  readonly send: SendMessage;
  readonly clock: Clock;
  readonly maxQueuedBytes: number;
  readonly writeHighWaterBytes: number;
  /** The peer's limit on one WebSocket message: a Merged batch never grows past it. */
  readonly maxMessageBytes: number;
  /** Called once if the socket reports a write error. */
  readonly onWriteError: (error: Error) => void;
}

export interface FrameWriterStats {
  /** WebSocket messages written (a Merged batch is one). */
  readonly messagesSent: number;
  readonly bytesSent: number;
  /** Frames refused because the queue was full or the writer closed. */
  readonly framesRefused: number;
  /** Frames dropped unsent because the socket died. */
  readonly framesDropped: number;
}

export class FrameWriter {
  readonly #options: FrameWriterOptions;
  /** Frames from `#queueHead` on are waiting; slots before it are emptied as they are sent. */
  #queue: (Buffer | undefined)[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #inFlightBytes = 0;
  #lastProgressAt = 0;
  #scheduled = false;
  #closed = false;
  #messagesSent = 0;
  #bytesSent = 0;
  #framesRefused = 0;
  #framesDropped = 0;

  /** Batches stay under 31 KiB, and under the peer's message limit if that is smaller. */
  readonly #mergeLimit: number;

  constructor(options: FrameWriterOptions) {
    this.#options = options;
    this.#mergeLimit = Math.min(MERGE_MAX_BYTES, options.maxMessageBytes);
  }

  get stats(): FrameWriterStats {
    return {
      messagesSent: this.#messagesSent,
      bytesSent: this.#bytesSent,
      framesRefused: this.#framesRefused,
      framesDropped: this.#framesDropped,
    };
  }

  /** How long writes have been pending without any completing; 0 when none are pending. */
  stalledForMs(): number {
    return this.#inFlightBytes === 0 ? 0 : this.#options.clock.now() - this.#lastProgressAt;
  }

  /**
   * Queues one encoded frame. False (and counted) if the writer is closed, or if the
   * queue is full and the frame is not a `control` frame: credits, acks, ends and pings
   * are tiny, bounded by the protocol, and must not be lost while the socket lives.
   */
  enqueue(frame: Buffer, control = false): boolean {
    const queued = this.#queuedBytes + frame.length;
    // Control frames may go past the limit, but not without end: a peer that floods us with
    // requests for pongs and errors while not reading would otherwise grow the queue freely.
    const limit = control ? 2 * this.#options.maxQueuedBytes : this.#options.maxQueuedBytes;
    if (this.#closed || queued > limit) {
      this.#framesRefused += 1;
      return false;
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    this.#schedule();
    return true;
  }

  /** Drops whatever is queued; later frames are refused. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#framesDropped += this.#queue.length - this.#queueHead;
    this.#queue = [];
    this.#queueHead = 0;
    this.#queuedBytes = 0;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const { writeHighWaterBytes } = this.#options;
    while (
      !this.#closed &&
      this.#queueHead < this.#queue.length &&
      this.#inFlightBytes < writeHighWaterBytes
    ) {
      this.#write(this.#nextMessage());
    }
    if (this.#queueHead === this.#queue.length && this.#queueHead > 0) {
      this.#queue = [];
      this.#queueHead = 0;
    }
  }

  /** Takes the next frame, or a Merged batch of the next frames when several are queued. */
  #nextMessage(): Buffer {
    const first = this.#queue[this.#queueHead] as Buffer;
    let count = 1;
    let batchBytes = mergedHeaderSize(MERGE_MAX_MESSAGES) + binHeaderSize(first.length) + first.length;
    while (count < MERGE_MAX_MESSAGES && this.#queueHead + count < this.#queue.length) {
      const next = this.#queue[this.#queueHead + count] as Buffer;
      const size = binHeaderSize(next.length) + next.length;
      if (batchBytes + size >= this.#mergeLimit) break;
      batchBytes += size;
      count += 1;
    }
    const frames = this.#queue.slice(this.#queueHead, this.#queueHead + count) as Buffer[];
    // Under steady backpressure the queue never drains to empty: empty the sent slots, or
    // the array would keep every sent buffer alive, and compact it now and then.
    this.#queue.fill(undefined, this.#queueHead, this.#queueHead + count);
    this.#queueHead += count;
    if (this.#queueHead > 1_024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    for (const frame of frames) this.#queuedBytes -= frame.length;
    return count === 1 ? first : encodeMerged(frames);
  }

  #write(message: Buffer): void {
    if (this.#inFlightBytes === 0) this.#lastProgressAt = this.#options.clock.now();
    this.#inFlightBytes += message.length;
    this.#messagesSent += 1;
    this.#bytesSent += message.length;
    this.#options.send(message, (error) => {
      this.#inFlightBytes -= message.length;
      this.#lastProgressAt = this.#options.clock.now();
      if (error instanceof Error) {
        if (!this.#closed) this.#options.onWriteError(error);
        return;
      }
      if (!this.#closed && this.#queueHead < this.#queue.length) this.#schedule();
    });
  }
}
