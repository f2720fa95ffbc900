// Group commit: the batches of many addresses finished at about the same time are committed to
// the store together, so one transaction (one disk sync, one WAL flush) serves them all.
//
// There is no timer: while a commit is in flight, newly finished batches wait, and the moment it
// completes they all go as the next commit (at most `maxBatchesPerCommit`). Under light load a
// batch commits at once, alone; under heavy load commits grow, and the syncs per batch fall.
//
// A store refuses a whole commit when one of its batches is refused (a stale batch, a token in
// use). Then each batch of that commit is committed again on its own, so only the refused one
// fails, and the others, which did nothing wrong, succeed. Pending batches are bounded
// (`maxPending`): past it `submit` refuses at once with a retryable CapacityExceededError, which
// the runtime turns into backpressure on its ingress.

import type { Clock } from '../internal/clock.ts';
import { CapacityExceededError, ClosedError } from '../internal/errors.ts';
import type { BatchEffects, StateStore } from './store/state-store.ts';

export interface GroupCommitterOptions {
  readonly store: StateStore;
  /** Its wall-clock time is the `now` of each commit. */
  readonly clock: Clock;
  /** Batches in one commit; default 512. */
  readonly maxBatchesPerCommit?: number;
  /** Batches waiting for a commit; default 10 000. */
  readonly maxPending?: number;
}

export interface GroupCommitterStats {
  /** Commits made, counting a refused group's retries one by one. */
  readonly commits: number;
  readonly batchesCommitted: number;
  readonly largestCommit: number;
  /** Batches the store refused (alone, after their group failed). */
  readonly batchesFailed: number;
  /** Submissions refused because `maxPending` were waiting. */
  readonly refused: number;
  readonly pending: number;
}

interface Pending {
  readonly batch: BatchEffects;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitter {
  readonly #store: StateStore;
  readonly #clock: Clock;
  readonly #maxBatchesPerCommit: number;
  readonly #maxPending: number;
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;
  #commits = 0;
  #batchesCommitted = 0;
  #largestCommit = 0;
  #batchesFailed = 0;
  #refused = 0;

  constructor(options: GroupCommitterOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#maxBatchesPerCommit = positiveInteger('maxBatchesPerCommit', options.maxBatchesPerCommit ?? 512);
    this.#maxPending = positiveInteger('maxPending', options.maxPending ?? 10_000);
  }

  /** Resolves once `batch` is committed; rejects with the store's refusal of it. */
  submit(batch: BatchEffects): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('the group committer is closed'));
    if (this.#pending.length >= this.#maxPending) {
      this.#refused += 1;
      return Promise.reject(new CapacityExceededError('the commit queue', this.#maxPending));
    }
    const committed = new Promise<void>((resolve, reject) => {
      this.#pending.push({ batch, resolve, reject });
    });
    this.#flushing ??= this.#flush();
    return committed;
  }

  /** Commits what is pending, then refuses new batches. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#flushing;
  }

  stats(): GroupCommitterStats {
    return {
      commits: this.#commits,
      batchesCommitted: this.#batchesCommitted,
      largestCommit: this.#largestCommit,
      batchesFailed: this.#batchesFailed,
      refused: this.#refused,
      pending: this.#pending.length,
    };
  }

  // Runs until nothing is pending; one at a time, so what arrives meanwhile forms the next group.
  async #flush(): Promise<void> {
    // Let the batches submitted in this turn join the first commit.
    await Promise.resolve();
    while (this.#pending.length > 0) {
      const group = this.#pending.slice(0, this.#maxBatchesPerCommit);
      this.#pending = this.#pending.slice(group.length);
      await this.#commitGroup(group);
    }
    this.#flushing = undefined;
  }

  async #commitGroup(group: readonly Pending[]): Promise<void> {
    try {
      await this.#commit(group.map((entry) => entry.batch));
      for (const entry of group) entry.resolve();
      return;
    } catch (error) {
      if (group.length === 1) {
        this.#batchesFailed += 1;
        group[0]?.reject(error);
        return;
      }
    }
    // One refused batch refuses its whole group: find it by committing each alone.
    for (const entry of group) {
      try {
        await this.#commit([entry.batch]);
        entry.resolve();
      } catch (error) {
        this.#batchesFailed += 1;
        entry.reject(error);
      }
    }
  }

  async #commit(batches: readonly BatchEffects[]): Promise<void> {
    this.#commits += 1;
    await this.#store.commit(batches, this.#clock.wallTimeMs());
    this.#batchesCommitted += batches.length;
    this.#largestCommit = Math.max(this.#largestCommit, batches.length);
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}
