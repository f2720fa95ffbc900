// The recent batches of one topic, for subscribers to read at their own pace.
//
// A bounded ring: each batch gets a sequence number, a subscriber holds the sequence number
// it reads next, and when the ring is full the oldest batch is dropped. A subscriber whose
// next batch was dropped has missed events and is told so (it never skips silently), and
// memory never grows with the number or slowness of subscribers: they all read the one ring.

import { onAbort } from '../internal/abort.ts';
import type { Event } from './event.ts';

export interface Batch<P> {
  readonly index: number;
  readonly events: readonly Event<P>[];
}

export class TopicBuffer<P> {
  readonly #capacity: number;
  readonly #ring: (Batch<P> | undefined)[];
  /** Sequence number of the oldest batch held. */
  #firstSeq = 0;
  /** Sequence number the next batch gets. */
  #nextSeq = 0;
  /** Index of the newest batch dropped: resuming from an index below it would miss events. */
  #droppedIndex = 0;
  #latestIndex = 0;
  /** Readers waiting at the head, each removable: one that gives up must not stay referenced. */
  readonly #waiting = new Set<() => void>();
  /** Batches dropped to make room, over the buffer's life. */
  dropped = 0;

  constructor(capacity: number, startIndex = 0) {
    this.#capacity = capacity;
    this.#ring = new Array<Batch<P> | undefined>(capacity);
    this.#latestIndex = startIndex;
    this.#droppedIndex = startIndex;
  }

  get latestIndex(): number {
    return this.#latestIndex;
  }

  get nextSeq(): number {
    return this.#nextSeq;
  }

  get size(): number {
    return this.#nextSeq - this.#firstSeq;
  }

  append(batch: Batch<P>): void {
    if (this.size === this.#capacity) {
      const oldest = this.#ring[this.#firstSeq % this.#capacity] as Batch<P>;
      this.#ring[this.#firstSeq % this.#capacity] = undefined;
      this.#droppedIndex = oldest.index;
      this.#firstSeq += 1;
      this.dropped += 1;
    }
    this.#ring[this.#nextSeq % this.#capacity] = batch;
    this.#nextSeq += 1;
    this.#latestIndex = batch.index;
    this.wakeAll();
  }

  /**
   * The batch at `seq`, `undefined` if it is not published yet, or `'gone'` if it was
   * dropped before the reader got to it.
   */
  read(seq: number): Batch<P> | undefined | 'gone' {
    if (seq < this.#firstSeq) return 'gone';
    if (seq >= this.#nextSeq) return undefined;
    return this.#ring[seq % this.#capacity];
  }

  /**
   * The sequence number of the first batch after `index`, or undefined when batches after
   * it may have been dropped already (the reader needs a snapshot).
   */
  seqAfter(index: number): number | undefined {
    if (index < this.#droppedIndex) return undefined;
    if (index >= this.#latestIndex) return this.#nextSeq;
    // Indexes grow with sequence numbers: binary search the held batches.
    let low = this.#firstSeq;
    let high = this.#nextSeq;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#ring[mid % this.#capacity] as Batch<P>).index <= index) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Readers waiting now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Resolves on the next append (or `wakeAll`); rejects with the signal's reason if it aborts
   * first, and then nothing of the reader is left behind (a shared promise would keep every
   * reader that ever gave up on an idle topic until its next publish).
   */
  changed(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        stopListening();
        resolve();
      };
      this.#waiting.add(wake);
      const stopListening = onAbort(signal, (reason) => {
        this.#waiting.delete(wake);
        reject(reason);
      });
    });
  }

  wakeAll(): void {
    if (this.#waiting.size === 0) return;
    const waking = [...this.#waiting];
    this.#waiting.clear();
    for (const wake of waking) wake();
  }

  /**
   * Forgets every batch and moves the index on by one: what subscribers held must be rebuilt
   * from a snapshot, and that snapshot's index is above any they saw, so blocked readers take it
   * as news (Consul's restore moves the Raft index on for the same reason).
   */
  clear(): void {
    this.#ring.fill(undefined);
    this.#firstSeq = this.#nextSeq;
    this.#latestIndex += 1;
    this.#droppedIndex = this.#latestIndex;
    this.wakeAll();
  }
}
