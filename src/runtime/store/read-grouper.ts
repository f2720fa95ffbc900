// Group reads: under load, many batches start at once, each reading its address's inbox and
// state. Each read alone is a round trip to the database; grouped, the reads waiting when a
// connection frees up go as one query. Up to `maxInFlight` group queries run at once (a pool has
// several connections); a read submitted while fewer are running goes at once, alone, so light
// load pays no wait. A failed query fails every read of its group: reads are safe to repeat, and
// their callers do. What waits is bounded by its callers: the runtime reads for the batches it
// runs, at most `maxConcurrentBatches` at once.

export interface ReadGrouperOptions<T, R> {
  /** Reads a group in one query; resolves with one result per item, in order. */
  readonly read: (items: readonly T[]) => Promise<readonly R[]>;
  readonly maxItemsPerRead: number;
  readonly maxInFlight: number;
}

interface Waiting<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

export class ReadGrouper<T, R> {
  readonly #options: ReadGrouperOptions<T, R>;
  #waiting: Waiting<T, R>[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(options: ReadGrouperOptions<T, R>) {
    for (const name of ['maxItemsPerRead', 'maxInFlight'] as const) {
      const value = options[name];
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer, got ${value}`);
      }
    }
    this.#options = options;
  }

  read(item: T): Promise<R> {
    const result = new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
    });
    if (!this.#scheduled && this.#inFlight < this.#options.maxInFlight) {
      // Reads submitted in this turn go together.
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
    return result;
  }

  #pump(): void {
    while (this.#waiting.length > 0 && this.#inFlight < this.#options.maxInFlight) {
      const group = this.#waiting.slice(0, this.#options.maxItemsPerRead);
      this.#waiting = this.#waiting.slice(group.length);
      this.#inFlight += 1;
      void this.#readGroup(group).finally(() => {
        this.#inFlight -= 1;
        this.#pump();
      });
    }
  }

  async #readGroup(group: readonly Waiting<T, R>[]): Promise<void> {
    try {
      const results = await this.#options.read(group.map((entry) => entry.item));
      group.forEach((entry, i) => {
        entry.resolve(results[i] as R);
      });
    } catch (error) {
      for (const entry of group) entry.reject(error);
    }
  }
}
