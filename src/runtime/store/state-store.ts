// Where the runtime keeps everything that must survive a crash: function state, each address's
// inbox, delayed messages and the egress outbox. One interface, several stores (memory for
// tests, lmdb embedded, PostgreSQL for a cluster), all held to one conformance suite
// (test/runtime/store-conformance.ts).
//
// Exactly-once effects rest on `commit`: everything a batch of invocations did (its state
// mutations, the messages it sent, its delayed messages and cancellations, its egress records)
// and the consumption of the inbox messages it ran on are applied in one transaction, or not at
// all. A crash before the commit leaves the inbox as it was, so the batch runs again; user code
// may run twice, its effects apply once. Many batches go in one `commit` (group commit), so one
// sync serves many addresses.
//
// Addresses are plain tuples here, not the SDK's Address: a store keys by them and never
// parses them (the runtime has checked them).
//
// Times (`dueAt`, `expiresAt`, `now`) are wall-clock milliseconds since the Unix epoch
// (`Clock.wallTimeMs()`), as Flink's processing time is: they must mean the same after a
// restart and on every node of a cluster. A store refuses a time that is not finite, a limit that
// is not an integer from 1 to `MAX_STORE_LIMIT`, and a seq that is not a safe integer.

/** A function address: namespace, function type name, id. */
export type StoredAddress = readonly [namespace: string, type: string, id: string];

/** A partition and the epoch of the lease a node holds on it. */
export interface PartitionFence {
  readonly partition: number;
  readonly epoch: number;
}

/** Who holds a partition's lease, and under which epoch. */
export interface PartitionLease extends PartitionFence {
  readonly owner: string;
  readonly acquiredAt: number;
}

/** A present value as StateFun carries it: its typename and its bytes. */
export interface StoredValue {
  readonly typename: string;
  readonly value: Uint8Array;
}

/** A message bound for `target`; `caller` is absent for ingress. */
export interface Envelope {
  readonly target: StoredAddress;
  readonly caller?: StoredAddress | undefined;
  readonly argument: StoredValue;
  /**
   * For a message from an ingress that may deliver it again (a JetStream redelivery, a client
   * retrying an HTTP request): an id unique within its source, e.g. `nats:orders:1234`. A message
   * with the id of one appended within the store's dedup window is not stored again.
   */
  readonly ingressId?: string | undefined;
}

/** A message in an inbox; `seq` orders the messages of one store, and so those of an address. */
export interface InboxMessage extends Envelope {
  readonly seq: number;
}

/** What `append` did with one envelope: stored it, or found it stored already (`duplicate`). */
export interface Appended extends InboxMessage {
  /** True when an envelope with the same `ingressId` was appended within the dedup window. */
  readonly duplicate: boolean;
}

/** How long a store remembers an ingress id by default: JetStream's default duplicate window. */
export const DEFAULT_DEDUP_WINDOW_MS = 120_000;

/** A state value with the time it expires, if it has a TTL (milliseconds on the runtime's clock). */
export interface StateEntry extends StoredValue {
  readonly expiresAt?: number | undefined;
}

/** A value written (`value` present) or deleted by a batch. */
export interface StateMutation {
  readonly name: string;
  readonly value?: StoredValue | undefined;
  /** When the written value expires; absent for a value without TTL. */
  readonly expiresAt?: number | undefined;
}

/** A new expiry for a value the batch did not write: StateFun's expire-after-call refresh. */
export interface ExpiryRefresh {
  readonly name: string;
  readonly expiresAt: number;
}

/** A delayed message: appended to its target's inbox once `dueAt` has passed. */
export interface DelayedMessage {
  readonly dueAt: number;
  readonly envelope: Envelope;
  /**
   * The cancellation token, scoped to the sending address; at most one pending per token, and
   * never empty (StateFun refuses an empty one).
   */
  readonly token?: string | undefined;
}

/**
 * What a batch did with delayed messages, in the order it did it (StateFun applies them in call
 * order): send one, or cancel the pending one with a token. Cancelling an unknown or fired token
 * does nothing.
 */
export type TimerOperation = { readonly send: DelayedMessage } | { readonly cancel: string };

/** A record for an egress, routed by (namespace, type). */
export interface EgressRecord {
  readonly egress: readonly [namespace: string, type: string];
  readonly value: StoredValue;
}

/**
 * A record in the outbox; `seq` names it for `acknowledgeOutbox`. Records are read from the head
 * (oldest not yet acknowledged first), never from a cursor: on PostgreSQL a lower seq may commit
 * after a higher one.
 */
export interface OutboxRecord extends EgressRecord {
  readonly seq: number;
}

/** What one batch of invocations on `address` did, applied by `commit` as one. */
export interface BatchEffects {
  readonly address: StoredAddress;
  /**
   * The seqs of the inbox messages the batch ran on; they are consumed. Named one by one, not
   * "up to", so a message appended meanwhile with a lower seq (a concurrent append that committed
   * later) is never consumed unseen.
   */
  readonly consumed?: readonly number[];
  /**
   * The lease the batch ran under. A store shared by a cluster commits the batch only while the
   * partition's epoch is still this one (checked in the commit's own transaction), so a node that
   * lost the partition can never apply effects; a store of one node ignores it.
   */
  readonly fence?: PartitionFence | undefined;
  readonly mutations?: readonly StateMutation[];
  /** New expiries of values the batch did not write; one that has already expired stays expired. */
  readonly refreshes?: readonly ExpiryRefresh[];
  readonly messages?: readonly Envelope[];
  readonly timers?: readonly TimerOperation[];
  readonly egress?: readonly EgressRecord[];
}

/** What one `sweepExpired` call deleted. */
export interface SweepResult {
  /** Expired state values deleted. */
  readonly values: number;
  /** Ingress ids forgotten (past the dedup window). */
  readonly ingressIds: number;
  /** A slice was full: call again for the rest. */
  readonly more: boolean;
}

/** How much a store holds, for stats and backpressure. */
export interface StoreCounts {
  readonly inboxMessages: number;
  readonly delayedMessages: number;
  readonly outboxRecords: number;
}

export interface StateStore {
  /**
   * How many `commit`s (and `append`s) the store runs side by side to advantage, e.g. over a pool
   * of connections; absent, one at a time. Batches of one address are never committed side by
   * side, so concurrent commits touch different addresses.
   */
  readonly writeConcurrency?: number | undefined;

  /**
   * Appends messages to their targets' inboxes at time `now`; resolves once they are durable,
   * which is when an ingress may acknowledge them. Returns them with their seqs, in the order
   * given. An envelope whose `ingressId` was appended within the dedup window is not stored
   * again: it comes back as `duplicate`, with the seq it was first stored under.
   */
  append(envelopes: readonly Envelope[], now: number): Promise<Appended[]>;

  /** Up to `limit` of `address`'s inbox messages, oldest first. */
  inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]>;

  /** Up to `limit` addresses with inbox messages, after `after` in key order: for recovery. */
  addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]>;

  /** `address`'s state values that have not expired at `now`, by name. */
  readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>>;

  /**
   * Applies every batch's effects in one transaction, at `now`: all of them or none. Nothing is
   * applied, and the promise rejects, when a batch sends a delayed message with a token already
   * pending for its address (the runtime checks tokens first, with `hasPendingToken`, so that is
   * a runtime bug), or names a consumed message that is not in its inbox (the batch was committed
   * already, or another node took the address): effects apply once.
   */
  commit(batches: readonly BatchEffects[], now: number): Promise<void>;

  /** Whether a delayed message with `token` is pending for `sender`. */
  hasPendingToken(sender: StoredAddress, token: string): Promise<boolean>;

  /** When the earliest delayed message is due, or undefined when none is pending. */
  nextDueAt(): Promise<number | undefined>;

  /**
   * Moves up to `limit` delayed messages due at `now` (dueAt ≤ now), earliest first, into their
   * targets' inboxes, in one transaction; returns them as appended.
   */
  fireDue(now: number, limit: number): Promise<InboxMessage[]>;

  /** Up to `limit` outbox records, oldest first. */
  outbox(limit: number): Promise<OutboxRecord[]>;

  /** Removes delivered outbox records; unknown seqs are ignored. */
  acknowledgeOutbox(seqs: readonly number[]): Promise<void>;

  /**
   * Deletes up to `limit` state values expired at `now`, and forgets up to `limit` ingress ids
   * older than the dedup window; says how many of each, and whether either slice was full (so
   * there may be more to sweep).
   */
  sweepExpired(now: number, limit: number): Promise<SweepResult>;

  counts(): Promise<StoreCounts>;

  close(): Promise<void>;
}
