// One node's view of a cluster's PostgreSQL store: the reads that find work (inboxes waiting,
// delayed messages due, outbox records, the counts behind backpressure) see only the partitions
// the node holds, so each inbox is run, each delayed message fired and each outbox record
// delivered by the node that owns it. Reads and writes of one address (its inbox, its state, a
// commit) go to the whole store: the runtime asks for them only for addresses it runs, and a
// commit carries its own fence.

import type { PartitionScope, PostgresStateStore } from './postgres-store.ts';
import type {
  Appended,
  BatchEffects,
  Envelope,
  InboxMessage,
  OutboxRecord,
  StateEntry,
  StateStore,
  StoreCounts,
  StoredAddress,
  SweepResult,
} from './state-store.ts';

export class PartitionScopedStore implements StateStore {
  readonly #store: PostgresStateStore;
  readonly #held: PartitionScope;

  constructor(store: PostgresStateStore, held: PartitionScope) {
    this.#store = store;
    this.#held = held;
  }

  get writeConcurrency(): number {
    return this.#store.writeConcurrency;
  }

  append(envelopes: readonly Envelope[], now: number): Promise<Appended[]> {
    return this.#store.append(envelopes, now);
  }

  inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    return this.#store.inbox(address, limit);
  }

  addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    const held = this.#held();
    if (held.length === 0) return Promise.resolve([]);
    return this.#store.addressesWithInboxIn(held, limit, after);
  }

  readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    return this.#store.readState(address, now);
  }

  commit(batches: readonly BatchEffects[], now: number): Promise<void> {
    return this.#store.commit(batches, now);
  }

  hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    return this.#store.hasPendingToken(sender, token);
  }

  nextDueAt(): Promise<number | undefined> {
    const held = this.#held();
    if (held.length === 0) return Promise.resolve(undefined);
    return this.#store.nextDueAtIn(held);
  }

  fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    const held = this.#held();
    if (held.length === 0) return Promise.resolve([]);
    return this.#store.fireDueIn(held, now, limit);
  }

  outbox(limit: number): Promise<OutboxRecord[]> {
    const held = this.#held();
    if (held.length === 0) return Promise.resolve([]);
    return this.#store.outboxIn(held, limit);
  }

  acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    return this.#store.acknowledgeOutbox(seqs);
  }

  sweepExpired(now: number, limit: number): Promise<SweepResult> {
    // Any node may sweep: the store's deletes skip rows another node is deleting.
    return this.#store.sweepExpired(now, limit);
  }

  counts(): Promise<StoreCounts> {
    const held = this.#held();
    if (held.length === 0) return Promise.resolve({ inboxMessages: 0, delayedMessages: 0, outboxRecords: 0 });
    return this.#store.countsIn(held);
  }

  /** The store is the cluster's: closing one node's view of it closes nothing. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
