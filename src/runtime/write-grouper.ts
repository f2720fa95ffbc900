// Group writes: what is submitted while a write is in flight goes as the next write, together,
// so one store transaction (one disk sync, one WAL flush) serves many callers. There is no timer:
// under light load a write goes at once, alone; under heavy load groups grow and the syncs per
// item fall. The group commit of batches and the group append of ingress both work this way.
// A store that runs transactions side by side (PostgreSQL, over a pool) may have up to
// `maxInFlight` writes running at once; an embedded store, one.
//
// A store refuses a whole write when one of its items is refused (a stale batch, an id too long
// for a key). Then each item of the group is written again on its own, so only the refused one
// fails and the others, which did nothing wrong, succeed; unless writing again could write twice
// (`retryAlone`). Pending items are bounded
// (`maxPending`): past it `submit` refuses at once with a retryable CapacityExceededError.

import { CapacityExceededError, ClosedError } from '../internal/errors.ts';

export interface WriteGrouperOptions<T, R> {
  /** Writes a group in one store transaction; resolves with one result per item, in order. */
  readonly write: (items: readonly T[]) => Promise<readonly R[]>;
  /** Items in one write. */
  readonly maxItemsPerWrite: number;
  /** Writes running at once; default 1. */
  readonly maxInFlight?: number | undefined;
  /** Items waiting for a write. */
  readonly maxPending: number;
  /** What is full, for the CapacityExceededError: e.g. "the commit queue". */
  readonly queueName: string;
  /**
   * Whether a group refused with `error` is written again item by item. Only when writing an
   * item twice is harmless (a commit: the store refuses a stale batch) or `error` says nothing
   * was written; otherwise every item of the group fails with it, its outcome unknown. Default:
   * always.
   */
  readonly retryAlone?: ((error: unknown) => boolean) | undefined;
}

export interface WriteGrouperStats {
  /** Writes made, counting a refused group's retries one by one. */
  readonly writes: number;
  readonly itemsWritten: number;
  readonly largestWrite: number;
  /** Items the store refused (alone, after their group failed). */
  readonly itemsFailed: number;
  /** Submissions refused because `maxPending` were waiting. */
  readonly refused: number;
  readonly pending: number;
}

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

export class WriteGrouper<T, R> {
  readonly #options: WriteGrouperOptions<T, R>;
  readonly #maxInFlight: number;
  #pending: Pending<T, R>[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** Resolves `close()` once nothing is pending or running. */
  #drained: (() => void) | undefined;
  #closed = false;
  #writes = 0;
  #itemsWritten = 0;
  #largestWrite = 0;
  #itemsFailed = 0;
  #refused = 0;

  constructor(options: WriteGrouperOptions<T, R>) {
    positiveInteger('maxItemsPerWrite', options.maxItemsPerWrite);
    positiveInteger('maxPending', options.maxPending);
    this.#maxInFlight = options.maxInFlight ?? 1;
    positiveInteger('maxInFlight', this.#maxInFlight);
    this.#options = options;
  }

  /** Resolves with `item`'s result once it is written; rejects with the store's refusal of it. */
  submit(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(new ClosedError(`${this.#options.queueName} is closed`));
    if (this.#pending.length >= this.#options.maxPending) {
      this.#refused += 1;
      return Promise.reject(new CapacityExceededError(this.#options.queueName, this.#options.maxPending));
    }
    const written = new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
    });
    if (!this.#scheduled && this.#inFlight < this.#maxInFlight) {
      // Let the items submitted in this turn join the first write.
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
    return written;
  }

  /** Writes what is pending, then refuses new items. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pending.length === 0 && this.#inFlight === 0 && !this.#scheduled) return;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
  }

  stats(): WriteGrouperStats {
    return {
      writes: this.#writes,
      itemsWritten: this.#itemsWritten,
      largestWrite: this.#largestWrite,
      itemsFailed: this.#itemsFailed,
      refused: this.#refused,
      pending: this.#pending.length,
    };
  }

  // Starts writes while fewer than `maxInFlight` run; what arrives meanwhile forms the next.
  #pump(): void {
    while (this.#pending.length > 0 && this.#inFlight < this.#maxInFlight) {
      const group = this.#pending.slice(0, this.#options.maxItemsPerWrite);
      this.#pending = this.#pending.slice(group.length);
      this.#inFlight += 1;
      void this.#writeGroup(group).finally(() => {
        this.#inFlight -= 1;
        this.#pump();
      });
    }
    if (this.#pending.length === 0 && this.#inFlight === 0 && !this.#scheduled) this.#drained?.();
  }

  async #writeGroup(group: readonly Pending<T, R>[]): Promise<void> {
    try {
      const results = await this.#write(group.map((entry) => entry.item));
      group.forEach((entry, i) => {
        entry.resolve(results[i] as R);
      });
      return;
    } catch (error) {
      if (group.length === 1 || this.#options.retryAlone?.(error) === false) {
        this.#itemsFailed += group.length;
        for (const entry of group) entry.reject(error);
        return;
      }
    }
    // One refused item refuses its whole group: find it by writing each alone.
    for (const entry of group) {
      try {
        const [result] = await this.#write([entry.item]);
        entry.resolve(result as R);
      } catch (error) {
        this.#itemsFailed += 1;
        entry.reject(error);
      }
    }
  }

  async #write(items: readonly T[]): Promise<readonly R[]> {
    this.#writes += 1;
    const results = await this.#options.write(items);
    this.#itemsWritten += items.length;
    this.#largestWrite = Math.max(this.#largestWrite, items.length);
    return results;
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
