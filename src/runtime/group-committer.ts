// Group commit: the batches of many addresses finished at about the same time are committed to
// the store together, so one transaction (one disk sync, one WAL flush) serves them all.
//
// A `WriteGrouper` (write-grouper.ts) over `store.commit`: no timer; while a commit is in flight,
// newly finished batches wait and go as the next commit (at most `maxBatchesPerCommit`); a group
// the store refuses because of one batch (a stale batch, a token in use) is committed again batch
// by batch, so only that one fails. Past `maxPending` waiting batches `submit` refuses at once
// with a retryable CapacityExceededError, which the runtime turns into backpressure.

import type { Clock } from '../internal/clock.ts';
import type { BatchEffects, StateStore } from './store/state-store.ts';
import { WriteGrouper } from './write-grouper.ts';

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

export class GroupCommitter {
  readonly #grouper: WriteGrouper<BatchEffects, undefined>;

  constructor(options: GroupCommitterOptions) {
    const { store, clock } = options;
    this.#grouper = new WriteGrouper({
      write: async (batches) => {
        await store.commit(batches, clock.wallTimeMs());
        return batches.map(() => undefined);
      },
      maxItemsPerWrite: options.maxBatchesPerCommit ?? 512,
      maxInFlight: store.writeConcurrency ?? 1,
      maxPending: options.maxPending ?? 10_000,
      queueName: 'the commit queue',
    });
  }

  /** Resolves once `batch` is committed; rejects with the store's refusal of it. */
  async submit(batch: BatchEffects): Promise<void> {
    await this.#grouper.submit(batch);
  }

  /** Commits what is pending, then refuses new batches. */
  close(): Promise<void> {
    return this.#grouper.close();
  }

  stats(): GroupCommitterStats {
    const stats = this.#grouper.stats();
    return {
      commits: stats.writes,
      batchesCommitted: stats.itemsWritten,
      largestCommit: stats.largestWrite,
      batchesFailed: stats.itemsFailed,
      refused: stats.refused,
      pending: stats.pending,
    };
  }
}
