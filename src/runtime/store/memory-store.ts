// A StateStore in memory, for tests and for trying the runtime out: every operation is
// immediate, nothing survives the process. It keeps the same semantics as the durable stores
// (the conformance suite holds all of them to it), including the all-or-nothing commit: a
// batch is checked whole before anything is changed.

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
} from './state-store.ts';
import {
  addressKey,
  checkBatches,
  checkDedupWindow,
  checkIngressIds,
  checkLimit,
  checkSeq,
  checkTime,
  compareAddresses,
  copyEnvelope,
  copyValue,
  staleBatch,
  tokensAfter,
} from './store-records.ts';

interface Timer {
  readonly id: number;
  readonly dueAt: number;
  readonly envelope: Envelope;
  readonly sender: StoredAddress;
  readonly token: string | undefined;
}

export interface MemoryStateStoreOptions {
  /** How long an ingress id is remembered; default DEFAULT_DEDUP_WINDOW_MS. */
  readonly dedupWindowMs?: number;
}

export class MemoryStateStore implements StateStore {
  readonly #dedupWindowMs: number;
  // Ingress id → the seq it was stored under and when it is forgotten.
  readonly #ingress = new Map<string, { readonly seq: number; readonly expiresAt: number }>();
  readonly #inboxes = new Map<string, { address: StoredAddress; messages: InboxMessage[] }>();
  readonly #values = new Map<string, Map<string, StateEntry>>();
  // Pending delayed messages by id, and by (sender, token) for the ones with a token.
  readonly #timers = new Map<number, Timer>();
  readonly #tokens = new Map<string, number>();
  readonly #outbox = new Map<number, OutboxRecord>();
  #seq = 0;
  #timerId = 0;
  #inboxMessages = 0;
  #closed = false;

  constructor(options: MemoryStateStoreOptions = {}) {
    this.#dedupWindowMs = checkDedupWindow(options.dedupWindowMs);
  }

  async append(envelopes: readonly Envelope[], now: number): Promise<Appended[]> {
    await this.#open();
    checkTime('now', now);
    checkIngressIds(envelopes);
    return envelopes.map((envelope) => {
      const id = envelope.ingressId;
      const seen = id === undefined ? undefined : this.#ingress.get(id);
      if (seen !== undefined && seen.expiresAt > now) {
        return { ...copyEnvelope(envelope), seq: seen.seq, duplicate: true };
      }
      const message = this.#appendOne(envelope);
      if (id !== undefined) this.#ingress.set(id, { seq: message.seq, expiresAt: now + this.#dedupWindowMs });
      return { ...copyMessage(message), duplicate: false };
    });
  }

  async inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    await this.#open();
    checkLimit(limit);
    const inbox = this.#inboxes.get(addressKey(address));
    return inbox === undefined ? [] : inbox.messages.slice(0, limit).map(copyMessage);
  }

  async addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    await this.#open();
    checkLimit(limit);
    const addresses = [...this.#inboxes.values()]
      .map((inbox) => inbox.address)
      .filter((address) => after === undefined || compareAddresses(address, after) > 0)
      .sort(compareAddresses);
    return addresses.slice(0, limit);
  }

  async readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    await this.#open();
    checkTime('now', now);
    const live = new Map<string, StateEntry>();
    for (const [name, entry] of this.#values.get(addressKey(address)) ?? []) {
      if (entry.expiresAt === undefined || entry.expiresAt > now) live.set(name, copyEntry(entry));
    }
    return live;
  }

  async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
    await this.#open();
    checkBatches(batches, now);
    // Checked whole first, batch after batch as they would apply, so that a refused commit
    // leaves everything as it was.
    const tokens = new Map<string, boolean>();
    const consumed = new Set<string>();
    for (const batch of batches) {
      const inbox = this.#inboxes.get(addressKey(batch.address));
      for (const seq of batch.consumed ?? []) {
        const key = `${addressKey(batch.address)}#${seq}`;
        if (consumed.has(key) || !(inbox?.messages.some((m) => m.seq === seq) ?? false)) {
          throw staleBatch(batch.address, seq);
        }
        consumed.add(key);
      }
      const after = tokensAfter(batch.address, batch.timers ?? [], (token) => {
        const key = tokenKey(batch.address, token);
        return tokens.get(key) ?? this.#tokens.has(key);
      });
      for (const [token, pending] of after) tokens.set(tokenKey(batch.address, token), pending);
    }
    for (const batch of batches) this.#apply(batch, now);
  }

  async hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    await this.#open();
    return this.#tokens.has(tokenKey(sender, token));
  }

  async nextDueAt(): Promise<number | undefined> {
    await this.#open();
    let earliest: number | undefined;
    for (const timer of this.#timers.values()) {
      if (earliest === undefined || timer.dueAt < earliest) earliest = timer.dueAt;
    }
    return earliest;
  }

  async fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    await this.#open();
    checkTime('now', now);
    checkLimit(limit);
    const due = [...this.#timers.values()]
      .filter((timer) => timer.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt || a.id - b.id)
      .slice(0, limit);
    return due.map((timer) => {
      this.#forgetTimer(timer);
      return copyMessage(this.#appendOne(timer.envelope));
    });
  }

  async outbox(limit: number): Promise<OutboxRecord[]> {
    await this.#open();
    checkLimit(limit);
    const records = [...this.#outbox.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
    return records.map((record) => ({
      ...record,
      egress: [record.egress[0], record.egress[1]],
      value: copyValue(record.value),
    }));
  }

  async acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    await this.#open();
    for (const seq of seqs) checkSeq(seq);
    for (const seq of seqs) this.#outbox.delete(seq);
  }

  async sweepExpired(now: number, limit: number): Promise<SweepResult> {
    await this.#open();
    checkTime('now', now);
    checkLimit(limit);
    let forgotten = 0;
    for (const [id, seen] of this.#ingress) {
      if (forgotten === limit) break;
      if (seen.expiresAt <= now) {
        this.#ingress.delete(id);
        forgotten += 1;
      }
    }
    let swept = 0;
    for (const [key, values] of this.#values) {
      for (const [name, entry] of values) {
        if (swept === limit) break;
        if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
          values.delete(name);
          swept += 1;
        }
      }
      if (values.size === 0) this.#values.delete(key);
      if (swept === limit) break;
    }
    return { values: swept, ingressIds: forgotten, more: swept === limit || forgotten === limit };
  }

  async counts(): Promise<StoreCounts> {
    await this.#open();
    return {
      inboxMessages: this.#inboxMessages,
      delayedMessages: this.#timers.size,
      outboxRecords: this.#outbox.size,
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Rejects once the store is closed; every method awaits it, so none throws instead. */
  #open(): Promise<void> {
    return this.#closed ? Promise.reject(new Error('the state store is closed')) : Promise.resolve();
  }

  #appendOne(envelope: Envelope): InboxMessage {
    const message: InboxMessage = { ...copyEnvelope(envelope), seq: ++this.#seq };
    const key = addressKey(envelope.target);
    let inbox = this.#inboxes.get(key);
    if (inbox === undefined) {
      inbox = { address: message.target, messages: [] };
      this.#inboxes.set(key, inbox);
    }
    inbox.messages.push(message);
    this.#inboxMessages += 1;
    return message;
  }

  #apply(batch: BatchEffects, now: number): void {
    const key = addressKey(batch.address);
    if (batch.consumed !== undefined && batch.consumed.length > 0) {
      const inbox = this.#inboxes.get(key);
      if (inbox !== undefined) {
        const consumed = new Set(batch.consumed);
        const kept = inbox.messages.filter((message) => !consumed.has(message.seq));
        this.#inboxMessages -= inbox.messages.length - kept.length;
        if (kept.length === 0) this.#inboxes.delete(key);
        else inbox.messages = kept;
      }
    }
    let values = this.#values.get(key);
    for (const mutation of batch.mutations ?? []) {
      if (mutation.value === undefined) {
        values?.delete(mutation.name);
        continue;
      }
      if (values === undefined) {
        values = new Map();
        this.#values.set(key, values);
      }
      values.set(mutation.name, { ...copyValue(mutation.value), expiresAt: mutation.expiresAt });
    }
    for (const refresh of batch.refreshes ?? []) {
      const entry = values?.get(refresh.name);
      // An expired value, swept or not, stays expired: a refresh does not bring it back.
      if (entry === undefined || (entry.expiresAt !== undefined && entry.expiresAt <= now)) continue;
      values?.set(refresh.name, { ...entry, expiresAt: refresh.expiresAt });
    }
    if (values?.size === 0) this.#values.delete(key);
    // In call order: a batch may send with a token, cancel it, and send with it again.
    for (const operation of batch.timers ?? []) {
      if ('cancel' in operation) {
        const id = this.#tokens.get(tokenKey(batch.address, operation.cancel));
        const timer = id === undefined ? undefined : this.#timers.get(id);
        if (timer !== undefined) this.#forgetTimer(timer);
        continue;
      }
      const delayed = operation.send;
      const timer: Timer = {
        id: ++this.#timerId,
        dueAt: delayed.dueAt,
        envelope: copyEnvelope(delayed.envelope),
        sender: batch.address,
        token: delayed.token,
      };
      this.#timers.set(timer.id, timer);
      if (timer.token !== undefined) this.#tokens.set(tokenKey(batch.address, timer.token), timer.id);
    }
    for (const envelope of batch.messages ?? []) this.#appendOne(envelope);
    for (const record of batch.egress ?? []) {
      const seq = ++this.#seq;
      this.#outbox.set(seq, {
        egress: [record.egress[0], record.egress[1]],
        value: copyValue(record.value),
        seq,
      });
    }
  }

  #forgetTimer(timer: Timer): void {
    this.#timers.delete(timer.id);
    if (timer.token !== undefined) this.#tokens.delete(tokenKey(timer.sender, timer.token));
  }
}

function copyMessage(message: InboxMessage): InboxMessage {
  return { ...copyEnvelope(message), seq: message.seq };
}

function copyEntry(entry: StateEntry): StateEntry {
  return { ...copyValue(entry), expiresAt: entry.expiresAt };
}

function tokenKey(sender: StoredAddress, token: string): string {
  return JSON.stringify([...sender, token]);
}
