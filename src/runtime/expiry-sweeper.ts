// Deletes expired state values, and forgets ingress ids past the dedup window, in the background,
// a bounded slice at a time (one short store transaction each), so the store does not keep what
// no read will ever return (reads already leave expired values out) and the table of ingress ids
// stays bounded by the ingress rate times the window. A sweep goes on slice after slice while
// the store says there is more, up to `maxSlices`.

import type { Clock, Timer } from '../internal/clock.ts';
import type { StateStore } from './store/state-store.ts';

export interface ExpirySweeperOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly intervalMs: number;
  /** Values (and ingress ids) deleted per store call; a sweep makes at most `maxSlices` calls. */
  readonly sliceSize: number;
  readonly maxSlices: number;
  readonly onError: (error: unknown) => void;
}

export class ExpirySweeper {
  readonly #options: ExpirySweeperOptions;
  readonly #timer: Timer;
  #sweeping: Promise<void> | undefined;
  #swept = 0;
  #forgotten = 0;
  #closed = false;

  constructor(options: ExpirySweeperOptions) {
    this.#options = options;
    this.#timer = options.clock.setInterval(() => {
      this.#sweeping ??= this.#sweep().finally(() => {
        this.#sweeping = undefined;
      });
    }, options.intervalMs);
  }

  /** Expired values deleted so far. */
  get swept(): number {
    return this.#swept;
  }

  /** Ingress ids forgotten so far. */
  get forgotten(): number {
    return this.#forgotten;
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
        const swept = await store.sweepExpired(clock.wallTimeMs(), sliceSize);
        this.#swept += swept.values;
        this.#forgotten += swept.ingressIds;
        if (!swept.more) return;
      }
    } catch (error) {
      if (!this.#closed) this.#options.onError(error);
    }
  }
}
