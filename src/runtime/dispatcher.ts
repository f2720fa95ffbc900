// Which address runs next. StateFun's rule: one batch in flight per address; messages that
// arrive meanwhile wait (here in the store's inbox, durable) and go as the next batch, at most
// `maxNumBatchRequests` of them. Many addresses run at once, up to `maxConcurrentBatches`; the
// rest wait their turn in arrival order.
//
// A batch that fails (the function threw, its endpoint gave up, its reply was refused, the
// commit failed) leaves its messages in the inbox: the address is parked, and runs again after a
// backoff that grows with its failures. Nothing is dropped, and other addresses go on.
//
// The dispatcher keeps a slot only for an address that is running, waiting its turn or parked;
// an idle address costs nothing.

import type { Clock, Timer } from '../internal/clock.ts';
import { backoffDelay, type BackoffPolicy, type Random } from '../internal/backoff.ts';
import { addressKey } from './address-key.ts';
import type { InboxMessage, StoredAddress } from './store/state-store.ts';

export interface DispatcherOptions {
  readonly clock: Clock;
  /** Messages in one batch; StateFun's `maxNumBatchRequests`, default 1000. */
  readonly maxNumBatchRequests: number;
  readonly maxConcurrentBatches: number;
  /** How long a failed address waits before it runs again. */
  readonly parkBackoff: BackoffPolicy;
  readonly random?: Random | undefined;
  /** Reads up to `limit` of an address's inbox messages, oldest first. */
  readonly readInbox: (address: StoredAddress, limit: number) => Promise<InboxMessage[]>;
  /** Runs and commits one batch; rejects when it failed (nothing of it was committed). */
  readonly runBatch: (address: StoredAddress, messages: readonly InboxMessage[]) => Promise<void>;
  /** Told of each failure, with how long the address is parked. */
  readonly onFailure: (address: StoredAddress, error: unknown, failures: number, parkedForMs: number) => void;
  /** Whether new batches must wait (the outbox is full); `resume()` says when that ends. */
  readonly held: () => boolean;
}

export interface DispatcherStats {
  /** Addresses running, waiting their turn or parked. */
  readonly activeAddresses: number;
  readonly running: number;
  readonly waiting: number;
  readonly parked: number;
  readonly batches: number;
  readonly failures: number;
}

interface Slot {
  readonly key: string;
  readonly address: StoredAddress;
  running: boolean;
  /** Woken while running: read the inbox again after this batch. */
  again: boolean;
  queued: boolean;
  failures: number;
  parked: Timer | undefined;
}

export class Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #slots = new Map<string, Slot>();
  /** Slots ready to run once a batch finishes (or the hold ends), in arrival order. */
  readonly #ready: Slot[] = [];
  #readyHead = 0;
  #running = 0;
  #batches = 0;
  #failures = 0;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(options: DispatcherOptions) {
    this.#options = options;
  }

  /** An address has new inbox messages (or may have: after recovery). */
  wake(address: StoredAddress): void {
    if (this.#closed) return;
    const key = addressKey(address);
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = { key, address, running: false, again: false, queued: false, failures: 0, parked: undefined };
      this.#slots.set(key, slot);
    }
    if (slot.running) {
      slot.again = true;
      return;
    }
    // A parked address keeps its turn for when its backoff ends.
    if (slot.parked !== undefined || slot.queued) return;
    this.#schedule(slot);
  }

  /** Called when the hold on new batches may have ended. */
  resume(): void {
    this.#drainReady();
  }

  stats(): DispatcherStats {
    let parked = 0;
    for (const slot of this.#slots.values()) if (slot.parked !== undefined) parked += 1;
    return {
      activeAddresses: this.#slots.size,
      running: this.#running,
      waiting: this.#ready.length - this.#readyHead,
      parked,
      batches: this.#batches,
      failures: this.#failures,
    };
  }

  /** Stops starting batches and waits for those in flight; parked addresses stay in the store. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots.values()) slot.parked?.cancel();
    if (this.#running > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    this.#slots.clear();
  }

  #schedule(slot: Slot): void {
    if (
      this.#running < this.#options.maxConcurrentBatches &&
      !this.#options.held() &&
      this.#readyHead === this.#ready.length
    ) {
      void this.#run(slot);
      return;
    }
    slot.queued = true;
    this.#ready.push(slot);
  }

  #drainReady(): void {
    while (
      !this.#closed &&
      this.#readyHead < this.#ready.length &&
      this.#running < this.#options.maxConcurrentBatches &&
      !this.#options.held()
    ) {
      const slot = this.#ready[this.#readyHead] as Slot;
      this.#readyHead += 1;
      slot.queued = false;
      void this.#run(slot);
    }
    // Compact the queue once its consumed head is most of it.
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready.splice(0, this.#readyHead);
      this.#readyHead = 0;
    }
  }

  async #run(slot: Slot): Promise<void> {
    slot.running = true;
    slot.again = false;
    this.#running += 1;
    let more = false;
    try {
      const messages = await this.#options.readInbox(slot.address, this.#options.maxNumBatchRequests);
      if (messages.length > 0) {
        await this.#options.runBatch(slot.address, messages);
        this.#batches += 1;
        slot.failures = 0;
        // A full batch may have left messages behind.
        more = messages.length >= this.#options.maxNumBatchRequests;
      }
    } catch (error) {
      // Once closing, a batch that failed (or was aborted) is not retried here: its messages
      // stay in the store for the next start.
      if (!this.#closed) this.#park(slot, error);
    } finally {
      slot.running = false;
      this.#running -= 1;
    }
    if (this.#closed) {
      if (this.#running === 0) this.#idle?.();
      return;
    }
    if (slot.parked === undefined) {
      // `again` is set by wake() while this batch ran, which the type checker cannot see.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (more || slot.again) this.#schedule(slot);
      else this.#slots.delete(slot.key);
    }
    this.#drainReady();
  }

  #park(slot: Slot, error: unknown): void {
    slot.failures += 1;
    this.#failures += 1;
    const delay = backoffDelay(this.#options.parkBackoff, slot.failures, this.#options.random);
    slot.parked = this.#options.clock.setTimeout(() => {
      slot.parked = undefined;
      if (!this.#closed) this.#schedule(slot);
    }, delay);
    this.#options.onFailure(slot.address, error, slot.failures, delay);
  }
}
