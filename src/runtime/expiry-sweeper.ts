// Deletes expired state values in the background, a bounded slice at a time, so the store does
// not keep what no read will ever return (reads already leave expired values out).

import type { Clock, Timer } from '../internal/clock.ts';
import type { StateStore } from './store/state-store.ts';

export interface ExpirySweeperOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly intervalMs: number;
  /** Values deleted per store call; a sweep makes at most `maxSlices` calls. */
  readonly sliceSize: number;
  readonly maxSlices: number;
  readonly onError: (error: unknown) => void;
}

export class ExpirySweeper {
  readonly #options: ExpirySweeperOptions;
  readonly #timer: Timer;
  #sweeping: Promise<void> | undefined;
  #swept = 0;
  #closed = false;

  constructor(options: ExpirySweeperOptions) {
    this.#options = options;
    this.#timer = options.clock.setInterval(() => {
      this.#sweeping ??= this.#sweep().finally(() => {
        this.#sweeping = undefined;
      });
    }, options.intervalMs);
  }

  get swept(): number {
    return this.#swept;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer.cancel();
    await this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const { store, clock, sliceSize, maxSlices } = this.#options;
    try {
      for (let slice = 0; slice < maxSlices && !this.#closed; slice++) {
        const deleted = await store.sweepExpired(clock.wallTimeMs(), sliceSize);
        this.#swept += deleted;
        if (deleted < sliceSize) return;
      }
    } catch (error) {
      if (!this.#closed) this.#options.onError(error);
    }
  }
}
