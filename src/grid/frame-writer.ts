// The one writer of one socket.
//
// Every frame for the socket goes through this queue, in order. A frame is encoded when it is
// queued, straight into the batch being built: a Merged message with one CRC over the whole
// batch, whose items carry none of their own (docs/wire/grid.md §7). The batch leaves at the
// end of the turn of the event loop (or at once, when it is full or a frame is urgent), so
// frames produced by one burst of work (many responses, many credits) cost one WebSocket
// message, one syscall and one checksum instead of fifty. A batch holds at most 50 messages and
// stays under 31 KiB, as MinIO's writer does, so it never delays a small frame behind a large
// one for long; a frame too large for a batch goes alone, with its own CRC.
//
// Batch buffers are reused: `ws` is done with a buffer once it calls back, and the writer keeps
// a few spare ones, so a steady stream of batches allocates nothing. The queue is bounded in
// bytes: past `maxQueuedBytes` a frame is refused (and counted) rather than buffered without
// end. The socket's own buffer is bounded by `writeHighWaterBytes`: above it the writer waits
// for write callbacks before handing over more, and meanwhile the open batch keeps filling. A
// writer belongs to one socket; when the socket dies, `close()` drops what is still queued,
// so stale frames never reach the next socket.

import type { Clock } from '../internal/clock.ts';
import { FrameTooLargeError } from './errors.ts';
import {
  binHeaderSize,
  encodeFrame,
  encodeFrameInto,
  frameSize,
  MERGED_HEADER_BYTES,
  sealMerged,
  writeMergedItemHeader,
  type Frame,
} from './frame.ts';
import { CRC_BYTES, MERGE_MAX_BYTES, MERGE_MAX_MESSAGES } from './protocol.ts';

/**
 * Where the writer hands messages: a WebSocket's `send` with a completion callback. The writer
 * reuses a message's memory once `done` has been called: a sender that keeps it longer copies it.
 */
export type SendMessage = (message: Buffer, done: (error?: Error) => void) => void;

export interface FrameWriterOptions {
  readonly send: SendMessage;
  readonly clock: Clock;
  /** Frames carry a CRC (a batch one, or a frame's own when it goes alone). */
  readonly crc: boolean;
  readonly maxQueuedBytes: number;
  readonly writeHighWaterBytes: number;
  /** The peer's limit on one WebSocket message: no frame or batch is larger. */
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

/** A message ready to write: a sealed batch (in a reusable buffer) or a frame alone. */
interface ReadyMessage {
  readonly message: Buffer;
  readonly frames: number;
  /** What its frames count for in the queue's bound. */
  readonly queuedBytes: number;
  /** The reusable buffer the message lives in (a batch's, or a large frame's), kept once written. */
  readonly buffer: Buffer | undefined;
}

/** Batch buffers kept for reuse: enough for the batches in flight under the high-water mark. */
const MAX_SPARE_BUFFERS = 8;

/**
 * A frame too large for a batch is encoded into a buffer kept for the next one, up to this size.
 * A fresh megabyte costs more in page faults than the copy into it (about 360 µs against 50 µs
 * for 1 MiB here); one such buffer per connection, kept only once a large frame was sent.
 */
const MAX_REUSED_LARGE_BYTES = 4 * 1024 * 1024;

export class FrameWriter {
  readonly #options: FrameWriterOptions;
  readonly #crcBytes: number;
  /** Messages from `#readyHead` on wait for the socket; slots before it are emptied as sent. */
  #ready: (ReadyMessage | undefined)[] = [];
  #readyHead = 0;
  /** The batch being filled: items from MERGED_HEADER_BYTES to `#batchEnd`. */
  #batch: Buffer | undefined;
  #batchEnd = MERGED_HEADER_BYTES;
  #batchCount = 0;
  #batchQueuedBytes = 0;
  readonly #spare: Buffer[] = [];
  /** The buffer of the last frame sent alone, for the next one (MAX_REUSED_LARGE_BYTES). */
  #largeSpare: Buffer | undefined;
  /** Bytes and frames queued, sealed or not. */
  #queuedBytes = 0;
  #queuedFrames = 0;
  #inFlightBytes = 0;
  #lastProgressAt = 0;
  #scheduled = false;
  #closed = false;
  #writeFailed = false;
  #messagesSent = 0;
  #bytesSent = 0;
  #framesRefused = 0;
  #framesDropped = 0;

  /** Batches stay under 31 KiB, and under the peer's message limit if that is smaller. */
  readonly #mergeLimit: number;

  constructor(options: FrameWriterOptions) {
    this.#options = options;
    this.#crcBytes = options.crc ? CRC_BYTES : 0;
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
   * Encodes and queues one frame; its payload is copied, so the caller may reuse it at once.
   * False (and counted) if the writer is closed, or if the queue is full and the frame is not
   * a `control` frame: credits, acks, ends and pings are tiny, bounded by the protocol, and must
   * not be lost while the socket lives. Throws `RangeError` for a frame no encoder may write and
   * `FrameTooLargeError` for one over the peer's message limit: the caller's mistakes.
   */
  enqueue(frame: Frame, control = false, urgent = false): boolean {
    const crc = this.#options.crc;
    const size = frameSize(frame, crc);
    const { maxMessageBytes, maxQueuedBytes } = this.#options;
    if (size > maxMessageBytes) throw new FrameTooLargeError(size, maxMessageBytes);
    // Control frames may go past the limit, but not without end: a peer that floods us with
    // requests for pongs and errors while not reading would otherwise grow the queue freely.
    const limit = control ? 2 * maxQueuedBytes : maxQueuedBytes;
    if (this.#closed || this.#queuedBytes + size > limit) {
      this.#framesRefused += 1;
      return false;
    }
    const inner = size - this.#crcBytes;
    const itemBytes = binHeaderSize(inner) + inner;
    if (MERGED_HEADER_BYTES + itemBytes + this.#crcBytes >= this.#mergeLimit) {
      // Too large for any batch: alone, after what is queued before it.
      this.#sealBatch();
      const buffer = this.#largeBuffer(size);
      const message = buffer === undefined ? encodeFrame(frame, crc) : buffer.subarray(0, size);
      if (buffer !== undefined) encodeFrameInto(frame, crc, buffer, 0);
      this.#ready.push({ message, frames: 1, queuedBytes: size, buffer });
    } else {
      if (
        this.#batchCount === MERGE_MAX_MESSAGES ||
        this.#batchEnd + itemBytes + this.#crcBytes >= this.#mergeLimit
      ) {
        this.#sealBatch();
      }
      const batch = (this.#batch ??= this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#mergeLimit));
      const at = writeMergedItemHeader(batch, this.#batchEnd, inner);
      this.#batchEnd = encodeFrameInto(frame, false, batch, at);
      this.#batchCount += 1;
      this.#batchQueuedBytes += size;
    }
    this.#queuedBytes += size;
    this.#queuedFrames += 1;
    // A full batch (or a frame alone) leaves now, while the rest of this turn's frames are
    // still being made: the peer starts on it sooner. An urgent frame takes the open batch
    // with it. What is left leaves at the end of the turn.
    if (urgent) this.#flush(true);
    else if (this.#readyHead < this.#ready.length) this.#flush(false);
    if (this.#batchCount > 0 || this.#readyHead < this.#ready.length) this.#schedule();
    return true;
  }

  /** Drops whatever is queued; later frames are refused. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#framesDropped += this.#queuedFrames;
    this.#ready = [];
    this.#readyHead = 0;
    this.#batch = undefined;
    this.#batchEnd = MERGED_HEADER_BYTES;
    this.#batchCount = 0;
    this.#batchQueuedBytes = 0;
    this.#spare.length = 0;
    this.#largeSpare = undefined;
    this.#queuedBytes = 0;
    this.#queuedFrames = 0;
  }

  /** A reusable buffer for a frame of `size` bytes sent alone, or undefined past the reuse limit. */
  #largeBuffer(size: number): Buffer | undefined {
    if (size > MAX_REUSED_LARGE_BYTES) return undefined;
    const spare = this.#largeSpare;
    if (spare !== undefined && spare.length >= size) {
      this.#largeSpare = undefined;
      return spare;
    }
    // Room for a somewhat larger frame next time: the next power of two, within the limit.
    return Buffer.allocUnsafeSlow(Math.min(MAX_REUSED_LARGE_BYTES, 2 ** Math.ceil(Math.log2(size))));
  }

  /** Closes the open batch: it joins the ready messages. */
  #sealBatch(): void {
    const batch = this.#batch;
    if (batch === undefined || this.#batchCount === 0) return;
    const length = sealMerged(batch, this.#batchCount, this.#batchEnd, this.#options.crc);
    this.#ready.push({
      message: batch.subarray(0, length),
      frames: this.#batchCount,
      queuedBytes: this.#batchQueuedBytes,
      buffer: batch,
    });
    this.#batch = undefined;
    this.#batchEnd = MERGED_HEADER_BYTES;
    this.#batchCount = 0;
    this.#batchQueuedBytes = 0;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush(true);
    });
  }

  /** Writes what is ready while the socket takes more; with `sealOpen`, the open batch too. */
  #flush(sealOpen: boolean): void {
    const { writeHighWaterBytes } = this.#options;
    while (!this.#closed && this.#inFlightBytes < writeHighWaterBytes) {
      // The open batch is sealed only when it can leave now; held back, it keeps filling.
      if (this.#readyHead === this.#ready.length) {
        if (this.#batchCount === 0 || !sealOpen) break;
        this.#sealBatch();
      }
      const next = this.#ready[this.#readyHead] as ReadyMessage;
      // Under steady backpressure the list never drains to empty: empty the sent slots, or the
      // array would keep every sent buffer alive, and compact it now and then.
      this.#ready[this.#readyHead] = undefined;
      this.#readyHead += 1;
      if (this.#readyHead > 1_024 && this.#readyHead * 2 > this.#ready.length) {
        this.#ready = this.#ready.slice(this.#readyHead);
        this.#readyHead = 0;
      }
      this.#queuedFrames -= next.frames;
      this.#queuedBytes -= next.queuedBytes;
      this.#write(next);
    }
    if (this.#readyHead === this.#ready.length && this.#readyHead > 0) {
      this.#ready = [];
      this.#readyHead = 0;
    }
  }

  #write(ready: ReadyMessage): void {
    const { message, buffer } = ready;
    if (this.#inFlightBytes === 0) this.#lastProgressAt = this.#options.clock.now();
    this.#inFlightBytes += message.length;
    this.#messagesSent += 1;
    this.#bytesSent += message.length;
    try {
      this.#options.send(message, (error) => {
        this.#written(message, buffer, error);
      });
    } catch (error) {
      // A send that throws (a socket not open) fails like a write: the socket is done for.
      this.#written(message, undefined, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** A write completed, or failed; its buffer, if it has one to give back, is free again. */
  #written(message: Buffer, buffer: Buffer | undefined, error: Error | undefined): void {
    this.#inFlightBytes -= message.length;
    this.#lastProgressAt = this.#options.clock.now();
    if (error instanceof Error) {
      // Every write still pending fails with the socket: the first one reports it.
      if (!this.#closed && !this.#writeFailed) {
        this.#writeFailed = true;
        this.#options.onWriteError(error);
      }
      return;
    }
    if (this.#closed) return;
    if (buffer === undefined) {
      // A frame in a buffer of its own.
    } else if (buffer.length !== this.#mergeLimit) {
      if (this.#largeSpare === undefined || this.#largeSpare.length < buffer.length)
        this.#largeSpare = buffer;
    } else if (this.#spare.length < MAX_SPARE_BUFFERS) this.#spare.push(buffer);
    if (this.#readyHead < this.#ready.length || this.#batchCount > 0) this.#schedule();
  }
}
