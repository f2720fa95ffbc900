// The embedded StateStore: lmdb in a data directory, nothing else to run.
//
// Five named databases in one environment, written only in lmdb transactions:
//   values  [ns, type, id]               → [[name, typename, bytes, expiresAt | null], …]
//   expiry  [expiresAt, ns, type, id, name] → null          (what sweepExpired walks)
//   inbox   [ns, type, id, seq]          → [caller | null, typename, bytes]
//   timers  [dueAt, id]                  → [target, caller | null, typename, bytes, sender, token | null]
//   tokens  [ns, type, id, token]        → [dueAt, id]        (pending delayed messages by token)
//   outbox  seq                          → [[ns, type], typename, bytes]
//   meta    'seq'                        → the last seq handed out (inbox, outbox, timer ids)
//
// An address's values are one record: every request carries all of them, so one read serves a
// batch, and a batch's writes are one put. Durability: a write resolves once lmdb has committed
// it and flushed it to disk (`flushed`); lmdb-js gathers the writes of one event turn into one
// transaction, so concurrent commits share a sync (group commit).

import { open, type Database, type Key, type RootDatabase } from 'lmdb';

import type {
  BatchEffects,
  Envelope,
  InboxMessage,
  OutboxRecord,
  StateEntry,
  StateStore,
  StoreCounts,
  StoredAddress,
  StoredValue,
} from './state-store.ts';
import { copyValue, tokenInUse } from './store-records.ts';

export interface LmdbStateStoreOptions {
  /** The directory of the environment; created if missing. */
  readonly path: string;
}

type ValueRecord = [typename: string, bytes: Uint8Array, expiresAt: number | null];
type InboxRecord = [caller: StoredAddress | null, typename: string, bytes: Uint8Array];
type TimerRecord = [
  target: StoredAddress,
  caller: StoredAddress | null,
  typename: string,
  bytes: Uint8Array,
  sender: StoredAddress,
  token: string | null,
];
type OutboxRow = [egress: readonly [string, string], typename: string, bytes: Uint8Array];

// Past every seq of an address in key order: seqs are integers below 2^53.
const AFTER_ALL_SEQS = 2 ** 53;

export class LmdbStateStore implements StateStore {
  readonly #root: RootDatabase;
  // Pairs, not an object: a value's name is user input, and `__proto__` must stay a name.
  readonly #values: Database<[string, ...ValueRecord][]>;
  readonly #expiry: Database<null>;
  readonly #inbox: Database<InboxRecord>;
  readonly #timers: Database<TimerRecord>;
  readonly #tokens: Database<[number, number]>;
  readonly #outbox: Database<OutboxRow>;
  readonly #meta: Database<number>;
  #seq: number;
  #closed = false;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#values = root.openDB({ name: 'values' });
    this.#expiry = root.openDB({ name: 'expiry' });
    this.#inbox = root.openDB({ name: 'inbox' });
    this.#timers = root.openDB({ name: 'timers' });
    this.#tokens = root.openDB({ name: 'tokens' });
    this.#outbox = root.openDB({ name: 'outbox' });
    this.#meta = root.openDB({ name: 'meta' });
    this.#seq = this.#meta.get('seq') ?? 0;
  }

  static open(options: LmdbStateStoreOptions): LmdbStateStore {
    // Durable commits: synced to disk before a write resolves (the defaults, said out loud).
    return new LmdbStateStore(open({ path: options.path, noSync: false, compression: false }));
  }

  async append(envelopes: readonly Envelope[]): Promise<InboxMessage[]> {
    this.#open();
    const appended = await this.#write(() => envelopes.map((envelope) => this.#appendOne(envelope)));
    return appended;
  }

  inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    this.#open();
    const messages: InboxMessage[] = [];
    for (const { key, value } of this.#inbox.getRange({
      start: [...address, 0],
      end: [...address, AFTER_ALL_SEQS],
      limit,
    })) {
      messages.push(inboxMessage(address, (key as unknown[])[3] as number, value));
    }
    return Promise.resolve(messages);
  }

  addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    this.#open();
    const addresses: StoredAddress[] = [];
    let start: Key = after === undefined ? [] : [...after, AFTER_ALL_SEQS];
    // One short range read per address: the first key past the last address's messages.
    while (addresses.length < limit) {
      const [first] = [...this.#inbox.getKeys({ start, limit: 1 })] as unknown[][];
      if (first === undefined) break;
      const address: StoredAddress = [first[0] as string, first[1] as string, first[2] as string];
      addresses.push(address);
      start = [...address, AFTER_ALL_SEQS];
    }
    return Promise.resolve(addresses);
  }

  readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    this.#open();
    const live = new Map<string, StateEntry>();
    for (const [name, typename, value, expiresAt] of this.#values.get(keyOf(address)) ?? []) {
      if (expiresAt === null) live.set(name, { typename, value });
      else if (expiresAt > now) live.set(name, { typename, value, expiresAt });
    }
    return Promise.resolve(live);
  }

  async commit(batches: readonly BatchEffects[]): Promise<void> {
    this.#open();
    await this.#write(() => {
      // Checked whole first: a refused commit writes nothing.
      const newTokens = new Set<string>();
      for (const batch of batches) {
        for (const delayed of batch.delayed ?? []) {
          if (delayed.token === undefined) continue;
          const key = JSON.stringify([...batch.address, delayed.token]);
          const cancelled = batch.cancellations?.includes(delayed.token) ?? false;
          const pending = this.#tokens.get([...batch.address, delayed.token]) !== undefined;
          if ((pending && !cancelled) || newTokens.has(key)) throw tokenInUse(batch.address, delayed.token);
          newTokens.add(key);
        }
      }
      for (const batch of batches) this.#apply(batch);
    });
  }

  hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    this.#open();
    return Promise.resolve(this.#tokens.get([...sender, token]) !== undefined);
  }

  nextDueAt(): Promise<number | undefined> {
    this.#open();
    const [first] = [...this.#timers.getKeys({ limit: 1 })] as [number, number][];
    return Promise.resolve(first?.[0]);
  }

  async fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    this.#open();
    return this.#write(() => {
      const fired: InboxMessage[] = [];
      for (const { key, value } of [...this.#timers.getRange({ end: [now, AFTER_ALL_SEQS], limit })]) {
        const [target, caller, typename, bytes, sender, token] = value;
        this.#timers.removeSync(key);
        if (token !== null) this.#tokens.removeSync([...sender, token]);
        fired.push(
          this.#appendOne({ target, caller: caller ?? undefined, argument: { typename, value: bytes } }),
        );
      }
      return fired;
    });
  }

  outbox(limit: number, after = 0): Promise<OutboxRecord[]> {
    this.#open();
    const records: OutboxRecord[] = [];
    for (const { key, value } of this.#outbox.getRange({ start: after + 1, limit })) {
      const [egress, typename, bytes] = value;
      records.push({ seq: key as number, egress: [egress[0], egress[1]], value: { typename, value: bytes } });
    }
    return Promise.resolve(records);
  }

  async acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    this.#open();
    await this.#write(() => {
      for (const seq of seqs) this.#outbox.removeSync(seq);
    });
  }

  async sweepExpired(now: number, limit: number): Promise<number> {
    this.#open();
    return this.#write(() => {
      let swept = 0;
      // Read first, then delete: the range is walked lazily, in expiry order, up to `now`.
      const expired: [number, string, string, string, string][] = [];
      for (const key of this.#expiry.getKeys({ limit })) {
        const entry = key as [number, string, string, string, string];
        if (entry[0] > now) break;
        expired.push(entry);
      }
      for (const key of expired) {
        const [expiresAt, namespace, type, id, name] = key;
        this.#expiry.removeSync(key);
        const address: StoredAddress = [namespace, type, id];
        const values = this.#values.get(keyOf(address)) ?? [];
        const entry = values.find(([valueName]) => valueName === name);
        // Only if this index entry is still the value's expiry (a later write moves it).
        if (entry === undefined || entry[3] !== expiresAt) continue;
        const rest = values.filter((value) => value !== entry);
        if (rest.length === 0) this.#values.removeSync(keyOf(address));
        else this.#values.putSync(keyOf(address), rest);
        swept += 1;
      }
      return swept;
    });
  }

  counts(): Promise<StoreCounts> {
    this.#open();
    return Promise.resolve({
      inboxMessages: this.#inbox.getCount(),
      delayedMessages: this.#timers.getCount(),
      outboxRecords: this.#outbox.getCount(),
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  #open(): void {
    if (this.#closed) throw new Error('the state store is closed');
  }

  /** Runs `action` in a write transaction; resolves once it is on disk. */
  async #write<T>(action: () => T): Promise<T> {
    const result = await this.#root.transaction(() => {
      const value = action();
      this.#meta.putSync('seq', this.#seq);
      return value;
    });
    await this.#root.flushed;
    return result;
  }

  #nextSeq(): number {
    this.#seq += 1;
    return this.#seq;
  }

  #appendOne(envelope: Envelope): InboxMessage {
    const seq = this.#nextSeq();
    const { target, caller, argument } = envelope;
    const record: InboxRecord = [caller ?? null, argument.typename, Uint8Array.from(argument.value)];
    this.#inbox.putSync([...target, seq], record);
    return inboxMessage([target[0], target[1], target[2]], seq, record);
  }

  #apply(batch: BatchEffects): void {
    const { address } = batch;
    for (const seq of batch.consumed ?? []) this.#inbox.removeSync([...address, seq]);
    if ((batch.mutations?.length ?? 0) > 0 || (batch.refreshes?.length ?? 0) > 0) this.#applyState(batch);
    for (const token of batch.cancellations ?? []) {
      const pending = this.#tokens.get([...address, token]);
      if (pending === undefined) continue;
      this.#timers.removeSync(pending);
      this.#tokens.removeSync([...address, token]);
    }
    for (const delayed of batch.delayed ?? []) {
      const id = this.#nextSeq();
      const { target, caller, argument } = delayed.envelope;
      const record: TimerRecord = [
        target,
        caller ?? null,
        argument.typename,
        Uint8Array.from(argument.value),
        address,
        delayed.token ?? null,
      ];
      this.#timers.putSync([delayed.dueAt, id], record);
      if (delayed.token !== undefined) this.#tokens.putSync([...address, delayed.token], [delayed.dueAt, id]);
    }
    for (const envelope of batch.messages ?? []) this.#appendOne(envelope);
    for (const record of batch.egress ?? []) {
      const { typename, value } = copyValue(record.value);
      this.#outbox.putSync(this.#nextSeq(), [[record.egress[0], record.egress[1]], typename, value]);
    }
  }

  #applyState(batch: BatchEffects): void {
    const { address } = batch;
    const values = new Map<string, ValueRecord>(
      (this.#values.get(keyOf(address)) ?? []).map(([name, ...record]) => [name, record]),
    );
    const moveExpiry = (name: string, from: number | null, to: number | null): void => {
      if (from === to) return;
      if (from !== null) this.#expiry.removeSync([from, ...address, name]);
      if (to !== null) this.#expiry.putSync([to, ...address, name], null);
    };
    for (const mutation of batch.mutations ?? []) {
      const before = values.get(mutation.name)?.[2] ?? null;
      if (mutation.value === undefined) {
        moveExpiry(mutation.name, before, null);
        values.delete(mutation.name);
        continue;
      }
      const expiresAt = mutation.expiresAt ?? null;
      moveExpiry(mutation.name, before, expiresAt);
      values.set(mutation.name, [mutation.value.typename, Uint8Array.from(mutation.value.value), expiresAt]);
    }
    for (const refresh of batch.refreshes ?? []) {
      const entry = values.get(refresh.name);
      if (entry === undefined) continue;
      moveExpiry(refresh.name, entry[2], refresh.expiresAt);
      values.set(refresh.name, [entry[0], entry[1], refresh.expiresAt]);
    }
    if (values.size === 0) this.#values.removeSync(keyOf(address));
    else
      this.#values.putSync(
        keyOf(address),
        [...values].map(([name, record]) => [name, ...record]),
      );
  }
}

/** An address as an lmdb key (a mutable array, as lmdb's types ask). */
function keyOf(address: StoredAddress): Key {
  return [address[0], address[1], address[2]];
}

function inboxMessage(target: StoredAddress, seq: number, record: InboxRecord): InboxMessage {
  const [caller, typename, bytes] = record;
  const argument: StoredValue = { typename, value: bytes };
  return caller === null ? { seq, target, argument } : { seq, target, caller, argument };
}
