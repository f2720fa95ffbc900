// Fires delayed messages when they are due. The store holds them durably with their due times
// (epoch ms); this keeps one clock timer armed for the earliest, fires what is due in bounded
// slices (`fireDue` moves them into their targets' inboxes in one transaction), and re-arms.
// After a restart the first `arm()` finds whatever came due while the process was down, and
// fires it at once.

import type { Clock, Timer } from '../internal/clock.ts';
import type { InboxMessage, StateStore } from './store/state-store.ts';

export interface DelayedMessagesOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  /** Messages moved per store transaction. */
  readonly sliceSize: number;
  /** Told of the messages fired, now in their targets' inboxes. */
  readonly onFired: (messages: readonly InboxMessage[]) => void;
  /** Told when firing failed; it is tried again after `retryMs`. */
  readonly onError: (error: unknown) => void;
  readonly retryMs: number;
  /** Whether firing must wait (the runtime's inboxes are full); it tries again after `retryMs`. */
  readonly held: () => boolean;
}

export class DelayedMessages {
  readonly #options: DelayedMessagesOptions;
  #timer: Timer | undefined;
  /** When the armed timer fires (epoch ms). */
  #armedFor = Infinity;
  #firing: Promise<void> | undefined;
  /** The timer fired while a round was running: run another, which sees what came due since. */
  #refire = false;
  #closed = false;
  #fired = 0;

  constructor(options: DelayedMessagesOptions) {
    this.#options = options;
  }

  get fired(): number {
    return this.#fired;
  }

  /** Reads the earliest due time from the store and arms the timer for it. */
  async arm(): Promise<void> {
    const dueAt = await this.#options.store.nextDueAt();
    if (dueAt !== undefined) this.noteDue(dueAt);
  }

  /** A delayed message due at `dueAt` was committed: fire no later than that. */
  noteDue(dueAt: number): void {
    if (this.#closed || dueAt >= this.#armedFor) return;
    this.#timer?.cancel();
    this.#armedFor = dueAt;
    const delay = Math.max(0, dueAt - this.#options.clock.wallTimeMs());
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#armedFor = Infinity;
      this.#startRound();
    }, delay);
  }

  #startRound(): void {
    if (this.#firing !== undefined) {
      this.#refire = true;
      return;
    }
    this.#firing = this.#fire().finally(() => {
      this.#firing = undefined;
      if (this.#refire && !this.#closed) {
        this.#refire = false;
        this.#startRound();
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#firing;
  }

  async #fire(): Promise<void> {
    const { store, clock, sliceSize } = this.#options;
    try {
      for (;;) {
        if (this.#closed) return;
        // While inboxes are full, due messages wait in the store rather than flood them.
        if (this.#options.held()) {
          this.noteDue(clock.wallTimeMs() + this.#options.retryMs);
          return;
        }
        const fired = await store.fireDue(clock.wallTimeMs(), sliceSize);
        this.#fired += fired.length;
        if (fired.length > 0) this.#options.onFired(fired);
        if (fired.length < sliceSize) break;
      }
      // Once closed, noteDue arms nothing.
      await this.arm();
    } catch (error) {
      if (this.#closed) return;
      this.#options.onError(error);
      this.noteDue(clock.wallTimeMs() + this.#options.retryMs);
    }
  }
}
