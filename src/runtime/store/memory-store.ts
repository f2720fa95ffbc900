// A StateStore in memory, for tests and for trying the runtime out: every operation is
// immediate, nothing survives the process. It keeps the same semantics as the durable stores
// (the conformance suite holds all of them to it), including the all-or-nothing commit: a
// batch is checked whole before anything is changed.

import type {
  BatchEffects,
  Envelope,
  InboxMessage,
  OutboxRecord,
  StateEntry,
  StateStore,
  StoreCounts,
  StoredAddress,
} from './state-store.ts';
import { addressKey, compareAddresses, copyEnvelope, copyValue, tokenInUse } from './store-records.ts';

interface Timer {
  readonly id: number;
  readonly dueAt: number;
  readonly envelope: Envelope;
  readonly sender: StoredAddress;
  readonly token: string | undefined;
}

export class MemoryStateStore implements StateStore {
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

  append(envelopes: readonly Envelope[]): Promise<InboxMessage[]> {
    this.#open();
    return Promise.resolve(envelopes.map((envelope) => this.#appendOne(envelope)));
  }

  inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    this.#open();
    const inbox = this.#inboxes.get(addressKey(address));
    return Promise.resolve(inbox === undefined ? [] : inbox.messages.slice(0, limit));
  }

  addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    this.#open();
    const addresses = [...this.#inboxes.values()]
      .map((inbox) => inbox.address)
      .filter((address) => after === undefined || compareAddresses(address, after) > 0)
      .sort(compareAddresses);
    return Promise.resolve(addresses.slice(0, limit));
  }

  readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    this.#open();
    const live = new Map<string, StateEntry>();
    for (const [name, entry] of this.#values.get(addressKey(address)) ?? []) {
      if (entry.expiresAt === undefined || entry.expiresAt > now) live.set(name, entry);
    }
    return Promise.resolve(live);
  }

  commit(batches: readonly BatchEffects[]): Promise<void> {
    this.#open();
    // Checked whole first, so a refused batch leaves everything as it was.
    const newTokens = new Set<string>();
    for (const batch of batches) {
      for (const delayed of batch.delayed ?? []) {
        if (delayed.token === undefined) continue;
        const key = tokenKey(batch.address, delayed.token);
        const cancelled = batch.cancellations?.includes(delayed.token) ?? false;
        if ((this.#tokens.has(key) && !cancelled) || newTokens.has(key)) {
          return Promise.reject(tokenInUse(batch.address, delayed.token));
        }
        newTokens.add(key);
      }
    }
    for (const batch of batches) this.#apply(batch);
    return Promise.resolve();
  }

  hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    this.#open();
    return Promise.resolve(this.#tokens.has(tokenKey(sender, token)));
  }

  nextDueAt(): Promise<number | undefined> {
    this.#open();
    let earliest: number | undefined;
    for (const timer of this.#timers.values()) {
      if (earliest === undefined || timer.dueAt < earliest) earliest = timer.dueAt;
    }
    return Promise.resolve(earliest);
  }

  fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    this.#open();
    const due = [...this.#timers.values()]
      .filter((timer) => timer.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt || a.id - b.id)
      .slice(0, limit);
    return Promise.resolve(
      due.map((timer) => {
        this.#forgetTimer(timer);
        return this.#appendOne(timer.envelope);
      }),
    );
  }

  outbox(limit: number, after = 0): Promise<OutboxRecord[]> {
    this.#open();
    const records = [...this.#outbox.values()].filter((record) => record.seq > after);
    return Promise.resolve(records.sort((a, b) => a.seq - b.seq).slice(0, limit));
  }

  acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    this.#open();
    for (const seq of seqs) this.#outbox.delete(seq);
    return Promise.resolve();
  }

  sweepExpired(now: number, limit: number): Promise<number> {
    this.#open();
    let swept = 0;
    for (const [key, values] of this.#values) {
      for (const [name, entry] of values) {
        if (swept === limit) return Promise.resolve(swept);
        if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
          values.delete(name);
          swept += 1;
        }
      }
      if (values.size === 0) this.#values.delete(key);
    }
    return Promise.resolve(swept);
  }

  counts(): Promise<StoreCounts> {
    this.#open();
    return Promise.resolve({
      inboxMessages: this.#inboxMessages,
      delayedMessages: this.#timers.size,
      outboxRecords: this.#outbox.size,
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw new Error('the state store is closed');
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

  #apply(batch: BatchEffects): void {
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
      if (entry !== undefined) values?.set(refresh.name, { ...entry, expiresAt: refresh.expiresAt });
    }
    if (values?.size === 0) this.#values.delete(key);
    // Cancellations first: a batch may cancel a token and set it again.
    for (const token of batch.cancellations ?? []) {
      const id = this.#tokens.get(tokenKey(batch.address, token));
      const timer = id === undefined ? undefined : this.#timers.get(id);
      if (timer !== undefined) this.#forgetTimer(timer);
    }
    for (const delayed of batch.delayed ?? []) {
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

function tokenKey(sender: StoredAddress, token: string): string {
  return JSON.stringify([...sender, token]);
}
