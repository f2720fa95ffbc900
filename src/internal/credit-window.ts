// The sender's half of credit-based flow control.
//
// A sender may have at most as many items in flight as the receiver has free slots.
// It starts with the receiver's advertised window, spends one credit per item, and
// waits when it has none; each credit the receiver gives back (as it consumes an item
// from its `BoundedQueue`) lets one waiting send go. Waiters are served in order and
// are themselves bounded.

import { onAbort } from './abort.ts';
import { CapacityExceededError, ClosedError, ConfigError } from './errors.ts';

export interface CreditWindowOptions {
  /** Credits available at the start. */
  readonly initial: number;
  /** Most credits that may be held at once; a grant past it is a protocol error. Default unbounded. */
  readonly max?: number;
  /** Most callers waiting in `acquire` at once. Default 1024. */
  readonly maxWaiters?: number;
  /** Used in error messages. */
  readonly name?: string;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  stopListening(): void;
}

export class CreditWindow {
  #available: number;
  readonly #max: number;
  readonly #maxWaiters: number;
  readonly #name: string;
  readonly #waiters: Waiter[] = [];
  #closed = false;
  #closeReason: unknown = undefined;
  #makeCloseError: (() => Error) | undefined = undefined;
  /** The error refusals carry, made at the first refusal. */
  #closedWith: Error | undefined = undefined;

  constructor(options: CreditWindowOptions) {
    const max = options.max ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(options.initial) || options.initial < 0 || options.initial > max) {
      throw new ConfigError(
        'initial',
        `must be an integer within [0, ${max}], got ${String(options.initial)}`,
      );
    }
    this.#available = options.initial;
    this.#max = max;
    this.#maxWaiters = options.maxWaiters ?? 1024;
    this.#name = options.name ?? 'credit window';
  }

  /** Credits held now. */
  get available(): number {
    return this.#available;
  }

  /** Callers waiting for a credit. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Spends a credit if one is held and nobody waits ahead. */
  tryAcquire(): boolean {
    if (this.#closed || this.#waiters.length > 0 || this.#available === 0) return false;
    this.#available -= 1;
    return true;
  }

  /** Spends a credit, waiting for one if needed. */
  acquire(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.tryAcquire()) return Promise.resolve();
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason as Error);
    if (this.#waiters.length >= this.#maxWaiters) {
      return Promise.reject(new CapacityExceededError(`${this.#name} waiters`, this.#maxWaiters));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        stopListening: onAbort(options.signal, (reason) => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(reason);
        }),
      };
      this.#waiters.push(waiter);
    });
  }

  /**
   * Adds `count` credits, first to waiting callers. Throws `CapacityExceededError` if the
   * total would pass `max`: the peer returned credits it never had.
   */
  grant(count = 1): void {
    if (this.#closed) return;
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`cannot grant ${count} credits`);
    let left = count;
    while (left > 0) {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) break;
      left -= 1;
      waiter.stopListening();
      waiter.resolve();
    }
    if (this.#available + left > this.#max) {
      throw new CapacityExceededError(`${this.#name} (granted past its window)`, this.#max);
    }
    this.#available += left;
  }

  /**
   * Rejects every waiter and every later `acquire` with `reason` if it is an Error, else with
   * `makeError()` when there is no reason and it is given, else a `ClosedError` ("<name> is
   * closed", caused by `reason`). That error is made only if
   * someone is or comes to be refused: most windows close with nobody waiting, and an error's
   * stack costs more than the rest of closing.
   */
  close(reason?: unknown, makeError?: () => Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#makeCloseError = makeError;
    if (this.#waiters.length === 0) return;
    const error = this.#closedError();
    for (const waiter of this.#waiters.splice(0)) {
      waiter.stopListening();
      waiter.reject(error);
    }
  }

  #closedError(): Error {
    if (this.#closedWith !== undefined) return this.#closedWith;
    const reason = this.#closeReason;
    if (reason instanceof Error) this.#closedWith = reason;
    else if (reason === undefined && this.#makeCloseError !== undefined)
      this.#closedWith = this.#makeCloseError();
    else this.#closedWith = new ClosedError(`${this.#name} is closed`, { cause: reason });
    return this.#closedWith;
  }
}
