// The embedded StateStore: lmdb in a data directory, nothing else to run.
//
// Nine named databases in one environment, written only in lmdb child transactions:
//   values  [ns, type, id]                  → [[name, typename, bytes, expiresAt | null], …]
//   expiry  [expiresAt, ns, type, id, name] → null            (what sweepExpired walks)
//   inbox   [ns, type, id, seq]             → [caller | null, typename, bytes]
//   timers  [dueAt, id]                     → [target, caller | null, typename, bytes, sender, token | null]
//   tokens  [ns, type, id, token]           → [dueAt, id]     (pending delayed messages by token)
//   outbox  seq                             → [[ns, type], typename, bytes]
//   ingress       escaped ingress id        → [seq, expiresAt]   (ids within the dedup window)
//   ingressExpiry [expiresAt, escaped id]   → null               (what sweepExpired walks)
//   meta    'seq'                           → the last seq handed out (inbox, outbox, timer ids)
//
// An address's values are one record: every request carries all of them, so one read serves a
// batch. Each write runs in a child transaction, so one that throws half-way is rolled back
// whole, and the last seq is read and written inside it, so a failed write never lets a seq be
// handed out twice. lmdb-js runs the child transactions of one event turn in one transaction
// (group commit); a write resolves once that is flushed to disk (`flushed`: with lmdb-js's
// overlapping sync the commit resolves before the sync, the flush after it).
//
// Key strings are escaped (`escapeText`): lmdb's key encoding writes a long string's bytes as
// they are, so bytes 0 to 4 in an id could end its part early and make two addresses collide.

import { mkdir } from 'node:fs/promises';

import type { Database, Key, RootDatabase } from 'lmdb';

import { ConfigError } from '../../internal/errors.ts';

import type {
  Appended,
  BatchEffects,
  Envelope,
  InboxMessage,
  OutboxRecord,
  StateEntry,
  StateStore,
  StoreCounts,
  SweepResult,
  StoredAddress,
  StoredValue,
} from './state-store.ts';
import {
  checkBatches,
  checkDedupWindow,
  checkIngressIds,
  checkLimit,
  checkSeq,
  checkTime,
  copyEnvelope,
  copyValue,
  escapeText as keyPart,
  staleBatch,
  tokensAfter,
  unescapeText as unescapeKeyPart,
} from './store-records.ts';

export interface LmdbStateStoreOptions {
  /** The directory of the environment; created if missing. */
  readonly path: string;
  /** How long an ingress id is remembered; default DEFAULT_DEDUP_WINDOW_MS. */
  readonly dedupWindowMs?: number;
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
// lmdb refuses keys over 1,978 bytes; the strings of one key stay well within that.
const MAX_KEY_TEXT_BYTES = 1_800;

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
  readonly #ingress: Database<[number, number]>;
  readonly #ingressExpiry: Database<null>;
  readonly #dedupWindowMs: number;
  #closed = false;

  private constructor(root: RootDatabase, dedupWindowMs: number) {
    this.#root = root;
    this.#dedupWindowMs = dedupWindowMs;
    this.#ingress = root.openDB({ name: 'ingress' });
    this.#ingressExpiry = root.openDB({ name: 'ingressExpiry' });
    this.#values = root.openDB({ name: 'values' });
    this.#expiry = root.openDB({ name: 'expiry' });
    this.#inbox = root.openDB({ name: 'inbox' });
    this.#timers = root.openDB({ name: 'timers' });
    this.#tokens = root.openDB({ name: 'tokens' });
    this.#outbox = root.openDB({ name: 'outbox' });
    this.#meta = root.openDB({ name: 'meta' });
  }

  /** Opens (or creates) the store in the directory `options.path`. */
  static async open(options: LmdbStateStoreOptions): Promise<LmdbStateStore> {
    const dedupWindowMs = checkDedupWindow(options.dedupWindowMs);
    // Loaded here, not at import: lmdb is native, and a program that imports weft/runtime (or
    // the root entry, for its errors) without using this store must not need it to load.
    let open: typeof import('lmdb').open;
    try {
      ({ open } = await import('lmdb'));
    } catch (error) {
      throw new ConfigError(
        'store',
        "the embedded lmdb store needs lmdb's native binary, which did not load; it comes with lmdb's " +
          'optional platform package (@lmdb/lmdb-<platform>-<arch>), so install without --omit=optional, ' +
          'or use MemoryStateStore or PostgresStateStore',
        { cause: error },
      );
    }
    // A directory, also when its name has a dot (lmdb-js would take `state.v1` for a file).
    await mkdir(options.path, { recursive: true });
    return new LmdbStateStore(
      open({ path: options.path, noSubdir: false, noSync: false, compression: false }),
      dedupWindowMs,
    );
  }

  async append(envelopes: readonly Envelope[], now: number): Promise<Appended[]> {
    await this.#open();
    checkTime('now', now);
    checkIngressIds(envelopes);
    for (const envelope of envelopes) checkKeyText(envelope.target);
    return this.#write((seq) =>
      envelopes.map((envelope) => {
        const id = envelope.ingressId === undefined ? undefined : keyPart(envelope.ingressId);
        const seen = id === undefined ? undefined : this.#ingress.get(id);
        if (seen !== undefined && seen[1] > now) {
          return { ...copyEnvelope(envelope), seq: seen[0], duplicate: true };
        }
        const message = this.#appendOne(envelope, seq);
        if (id !== undefined) {
          if (seen !== undefined) this.#ingressExpiry.removeSync([seen[1], id]);
          const expiresAt = now + this.#dedupWindowMs;
          this.#ingress.putSync(id, [message.seq, expiresAt]);
          this.#ingressExpiry.putSync([expiresAt, id], null);
        }
        return { ...message, ingressId: envelope.ingressId, duplicate: false };
      }),
    );
  }

  async inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    await this.#open();
    checkLimit(limit);
    const messages: InboxMessage[] = [];
    const key = addressKey(address);
    for (const { key: found, value } of this.#inbox.getRange({
      start: [...key, 0],
      end: [...key, AFTER_ALL_SEQS],
      limit,
    })) {
      messages.push(inboxMessage(address, (found as unknown[])[3] as number, value));
    }
    return messages;
  }

  async addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    await this.#open();
    checkLimit(limit);
    const addresses: StoredAddress[] = [];
    let start: Key = after === undefined ? [] : [...addressKey(after), AFTER_ALL_SEQS];
    // One short range read per address: the first key past the last address's messages.
    while (addresses.length < limit) {
      const [first] = [...this.#inbox.getKeys({ start, limit: 1 })] as string[][];
      if (first === undefined) break;
      const encoded = [first[0] ?? '', first[1] ?? '', first[2] ?? ''] as const;
      addresses.push(decodeAddress(encoded));
      start = [...encoded, AFTER_ALL_SEQS];
    }
    return addresses;
  }

  async readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    await this.#open();
    checkTime('now', now);
    const live = new Map<string, StateEntry>();
    for (const [name, typename, value, expiresAt] of this.#values.get(addressKey(address)) ?? []) {
      if (expiresAt === null) live.set(name, { typename, value });
      else if (expiresAt > now) live.set(name, { typename, value, expiresAt });
    }
    return live;
  }

  async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
    await this.#open();
    checkBatches(batches, now);
    for (const batch of batches) {
      checkKeyText(batch.address);
      for (const mutation of batch.mutations ?? []) checkKeyText(batch.address, mutation.name);
      for (const operation of batch.timers ?? []) {
        const token = 'cancel' in operation ? operation.cancel : operation.send.token;
        if (token !== undefined) checkKeyText(batch.address, token);
      }
      for (const envelope of batch.messages ?? []) checkKeyText(envelope.target);
    }
    // Checked and applied batch after batch inside one child transaction: a refusal (thrown)
    // rolls back every batch of the commit.
    await this.#write((seq) => {
      for (const batch of batches) {
        const key = addressKey(batch.address);
        for (const consumed of batch.consumed ?? []) {
          if (this.#inbox.get([...key, consumed]) === undefined) throw staleBatch(batch.address, consumed);
        }
        tokensAfter(
          batch.address,
          batch.timers ?? [],
          (token) => this.#tokens.get([...key, keyPart(token)]) !== undefined,
        );
        this.#apply(batch, now, seq);
      }
    });
  }

  async hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    await this.#open();
    return this.#tokens.get([...addressKey(sender), keyPart(token)]) !== undefined;
  }

  async nextDueAt(): Promise<number | undefined> {
    await this.#open();
    const [first] = [...this.#timers.getKeys({ limit: 1 })] as [number, number][];
    return first?.[0];
  }

  async fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    await this.#open();
    checkTime('now', now);
    checkLimit(limit);
    return this.#write((seq) => {
      const fired: InboxMessage[] = [];
      for (const { key, value } of [...this.#timers.getRange({ end: [now, AFTER_ALL_SEQS], limit })]) {
        const [target, caller, typename, bytes, sender, token] = value;
        this.#timers.removeSync(key);
        if (token !== null) this.#tokens.removeSync([...addressKey(sender), keyPart(token)]);
        const envelope: Envelope = {
          target,
          caller: caller ?? undefined,
          argument: { typename, value: bytes },
        };
        fired.push(this.#appendOne(envelope, seq));
      }
      return fired;
    });
  }

  async outbox(limit: number): Promise<OutboxRecord[]> {
    await this.#open();
    checkLimit(limit);
    const records: OutboxRecord[] = [];
    for (const { key, value } of this.#outbox.getRange({ limit })) {
      const [egress, typename, bytes] = value;
      records.push({ seq: key as number, egress: [egress[0], egress[1]], value: { typename, value: bytes } });
    }
    return records;
  }

  async acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    await this.#open();
    for (const seq of seqs) checkSeq(seq);
    await this.#write(() => {
      for (const seq of seqs) this.#outbox.removeSync(seq);
    });
  }

  async sweepExpired(now: number, limit: number): Promise<SweepResult> {
    await this.#open();
    checkTime('now', now);
    checkLimit(limit);
    return this.#write(() => {
      // Read first, then delete: the index is walked lazily, in expiry order, up to `now`.
      const expired: [number, string, string, string, string][] = [];
      for (const key of this.#expiry.getKeys({ limit })) {
        const entry = key as [number, string, string, string, string];
        if (entry[0] > now) break;
        expired.push(entry);
      }
      const forgotten: [number, string][] = [];
      for (const key of this.#ingressExpiry.getKeys({ limit })) {
        const entry = key as [number, string];
        if (entry[0] > now) break;
        forgotten.push(entry);
      }
      for (const [expiresAt, id] of forgotten) {
        this.#ingressExpiry.removeSync([expiresAt, id]);
        if (this.#ingress.get(id)?.[1] === expiresAt) this.#ingress.removeSync(id);
      }
      let swept = 0;
      for (const key of expired) {
        this.#expiry.removeSync(key);
        const [expiresAt, namespace, type, id, encodedName] = key;
        const address = [namespace, type, id];
        const name = unescapeKeyPart(encodedName);
        const values = this.#values.get(address) ?? [];
        const entry = values.find(([valueName]) => valueName === name);
        // Only if this index entry is still the value's expiry (a later write moves it).
        if (entry === undefined || entry[3] !== expiresAt) continue;
        const rest = values.filter((value) => value !== entry);
        if (rest.length === 0) this.#values.removeSync(address);
        else this.#values.putSync(address, rest);
        swept += 1;
      }
      // Full slices of either index: there may be more (stale index entries count too).
      return {
        values: swept,
        ingressIds: forgotten.length,
        more: expired.length === limit || forgotten.length === limit,
      };
    });
  }

  async counts(): Promise<StoreCounts> {
    await this.#open();
    return {
      inboxMessages: this.#inbox.getCount(),
      delayedMessages: this.#timers.getCount(),
      outboxRecords: this.#outbox.getCount(),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  /** Rejects once the store is closed; every method awaits it, so none throws instead. */
  #open(): Promise<void> {
    return this.#closed ? Promise.reject(new Error('the state store is closed')) : Promise.resolve();
  }

  /**
   * Runs `action` in a child transaction, handing it the seq counter, which is read from and
   * written back to the store inside the same transaction; resolves once it is on disk.
   */
  async #write<T>(action: (seq: SeqCounter) => T): Promise<T> {
    const result = await this.#root.childTransaction(() => {
      const seq = new SeqCounter(this.#meta.get('seq') ?? 0);
      const value = action(seq);
      if (seq.changed) this.#meta.putSync('seq', seq.last);
      return value;
    });
    await this.#root.flushed;
    return result;
  }

  #appendOne(envelope: Envelope, seqs: SeqCounter): InboxMessage {
    const seq = seqs.next();
    const { target, caller, argument } = envelope;
    const record: InboxRecord = [caller ?? null, argument.typename, Uint8Array.from(argument.value)];
    this.#inbox.putSync([...addressKey(target), seq], record);
    return inboxMessage([target[0], target[1], target[2]], seq, record);
  }

  #apply(batch: BatchEffects, now: number, seqs: SeqCounter): void {
    const { address } = batch;
    const key = addressKey(address);
    for (const seq of batch.consumed ?? []) this.#inbox.removeSync([...key, seq]);
    if ((batch.mutations?.length ?? 0) > 0 || (batch.refreshes?.length ?? 0) > 0) {
      this.#applyState(batch, now);
    }
    // In call order: a batch may send with a token, cancel it, and send with it again.
    for (const operation of batch.timers ?? []) {
      if ('cancel' in operation) {
        const tokenKey = [...key, keyPart(operation.cancel)];
        const pending = this.#tokens.get(tokenKey);
        if (pending === undefined) continue;
        this.#timers.removeSync(pending);
        this.#tokens.removeSync(tokenKey);
        continue;
      }
      const { dueAt, envelope, token } = operation.send;
      const id = seqs.next();
      const { target, caller, argument } = envelope;
      const record: TimerRecord = [
        target,
        caller ?? null,
        argument.typename,
        Uint8Array.from(argument.value),
        address,
        token ?? null,
      ];
      this.#timers.putSync([dueAt, id], record);
      if (token !== undefined) this.#tokens.putSync([...key, keyPart(token)], [dueAt, id]);
    }
    for (const envelope of batch.messages ?? []) this.#appendOne(envelope, seqs);
    for (const record of batch.egress ?? []) {
      const { typename, value } = copyValue(record.value);
      this.#outbox.putSync(seqs.next(), [[record.egress[0], record.egress[1]], typename, value]);
    }
  }

  #applyState(batch: BatchEffects, now: number): void {
    const key = addressKey(batch.address);
    const values = new Map<string, ValueRecord>(
      (this.#values.get(key) ?? []).map(([name, ...record]) => [name, record]),
    );
    const moveExpiry = (name: string, from: number | null, to: number | null): void => {
      if (from === to) return;
      if (from !== null) this.#expiry.removeSync([from, ...key, keyPart(name)]);
      if (to !== null) this.#expiry.putSync([to, ...key, keyPart(name)], null);
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
      // An expired value, swept or not, stays expired: a refresh does not bring it back.
      if (entry === undefined || (entry[2] !== null && entry[2] <= now)) continue;
      moveExpiry(refresh.name, entry[2], refresh.expiresAt);
      values.set(refresh.name, [entry[0], entry[1], refresh.expiresAt]);
    }
    if (values.size === 0) this.#values.removeSync(key);
    else
      this.#values.putSync(
        key,
        [...values].map(([name, record]) => [name, ...record]),
      );
  }
}

/** The seqs one write hands out, continuing from the last one the store recorded. */
class SeqCounter {
  last: number;
  changed = false;

  constructor(last: number) {
    this.last = last;
  }

  next(): number {
    this.last += 1;
    this.changed = true;
    return this.last;
  }
}

/** An address as an lmdb key (a mutable array, as lmdb's types ask), its parts escaped. */
function addressKey(address: StoredAddress): string[] {
  return [keyPart(address[0]), keyPart(address[1]), keyPart(address[2])];
}

function decodeAddress(key: readonly [string, string, string]): StoredAddress {
  return [unescapeKeyPart(key[0]), unescapeKeyPart(key[1]), unescapeKeyPart(key[2])];
}

/** Throws unless the address (and a name or token with it) fits in an lmdb key. */
function checkKeyText(address: StoredAddress, extra = ''): void {
  const bytes = [...address, extra].reduce((sum, part) => sum + Buffer.byteLength(keyPart(part)), 0);
  if (bytes > MAX_KEY_TEXT_BYTES) {
    throw new RangeError(
      `an address with its value name or token takes ${bytes} bytes; the lmdb store keys at most ${MAX_KEY_TEXT_BYTES}`,
    );
  }
}

function inboxMessage(target: StoredAddress, seq: number, record: InboxRecord): InboxMessage {
  const [caller, typename, bytes] = record;
  const argument: StoredValue = { typename, value: bytes };
  return caller === null ? { seq, target, argument } : { seq, target, caller, argument };
}
