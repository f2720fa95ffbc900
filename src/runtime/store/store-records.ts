// Helpers every StateStore shares: address keys and ordering, copies of what callers hand in
// (a store must not keep a caller's buffer, which may be reused), and the token error.

import {
  DEFAULT_DEDUP_WINDOW_MS,
  type BatchEffects,
  type Envelope,
  type StoredAddress,
  type StoredValue,
} from './state-store.ts';

// The escape character of escapeText; it and every character below it is escaped.
const ESCAPE = 0x05;

/**
 * `text` with the characters U+0000 to U+0005 escaped as U+0005 and a letter: no byte 0 to 4
 * remains, which lmdb's keys use as separators and PostgreSQL's text cannot hold (NUL), and the
 * escaping is one to one, so distinct strings stay distinct.
 */
export function escapeText(text: string): string {
  let escaped = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > ESCAPE) continue;
    escaped += `${text.slice(from, i)}${String.fromCharCode(ESCAPE, 0x40 + code)}`;
    from = i + 1;
  }
  return from === 0 ? text : escaped + text.slice(from);
}

export function unescapeText(text: string): string {
  if (!text.includes(String.fromCharCode(ESCAPE))) return text;
  let plain = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === ESCAPE) {
      i += 1;
      plain += String.fromCharCode(text.charCodeAt(i) - 0x40);
    } else {
      plain += text[i] ?? '';
    }
  }
  return plain;
}

/** The most one read or sweep of a store returns or touches. */
export const MAX_STORE_LIMIT = 100_000;

/** Throws unless `value` is a finite time in milliseconds. */
export function checkTime(what: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${what} must be a finite time in milliseconds, got ${String(value)}`);
  }
}

/** Throws unless `value` is an integer from 1 to MAX_STORE_LIMIT. */
export function checkLimit(value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > MAX_STORE_LIMIT) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_STORE_LIMIT}, got ${String(value)}`);
  }
}

/** The dedup window a store was given, checked; the default when none was. */
export function checkDedupWindow(value: number | undefined): number {
  const windowMs = value ?? DEFAULT_DEDUP_WINDOW_MS;
  if (!Number.isFinite(windowMs) || windowMs < 0) {
    throw new RangeError(
      `dedupWindowMs must be a finite number of milliseconds, at least 0, got ${windowMs}`,
    );
  }
  return windowMs;
}

/** The longest ingress id a store keeps. */
export const MAX_INGRESS_ID_LENGTH = 512;

/** Throws unless the envelopes' ingress ids are usable. */
export function checkIngressIds(envelopes: readonly Envelope[]): void {
  for (const { ingressId } of envelopes) {
    if (ingressId === undefined) continue;
    if (typeof ingressId !== 'string' || ingressId === '' || ingressId.length > MAX_INGRESS_ID_LENGTH) {
      throw new RangeError(`an ingressId is a string of 1 to ${MAX_INGRESS_ID_LENGTH} characters`);
    }
  }
}

/** Throws unless `value` is a seq a store could have handed out. */
export function checkSeq(value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`a seq is a positive safe integer, got ${String(value)}`);
  }
}

/** Checks the numbers and tokens of a commit before a store looks at its data. */
export function checkBatches(batches: readonly BatchEffects[], now: number): void {
  checkTime('now', now);
  for (const batch of batches) {
    for (const seq of batch.consumed ?? []) checkSeq(seq);
    for (const mutation of batch.mutations ?? []) {
      if (mutation.expiresAt !== undefined) checkTime('expiresAt', mutation.expiresAt);
    }
    for (const refresh of batch.refreshes ?? []) checkTime('expiresAt', refresh.expiresAt);
    if (batch.fence !== undefined) {
      checkPartition(batch.fence.partition);
      if (!Number.isSafeInteger(batch.fence.epoch) || batch.fence.epoch < 1) {
        throw new RangeError(
          `a fence's epoch must be an integer of at least 1, got ${String(batch.fence.epoch)}`,
        );
      }
    }
    for (const operation of batch.timers ?? []) {
      const token = 'send' in operation ? operation.send.token : operation.cancel;
      if (token === '') throw new RangeError(`an empty cancellation token, from ${batch.address.join('/')}`);
      if ('send' in operation) checkTime('dueAt', operation.send.dueAt);
    }
  }
}

/** Throws unless `value` is a partition number (an integer from 0 to 65535). */
export function checkPartition(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new RangeError(`a partition must be an integer from 0 to 65535, got ${String(value)}`);
  }
}

/** A string key for an address in a map: JSON, so no id can make two addresses collide. */
export function addressKey(address: StoredAddress): string {
  return JSON.stringify(address);
}

/** Orders addresses by namespace, type, then id, by UTF-16 code units. */
export function compareAddresses(a: StoredAddress, b: StoredAddress): number {
  for (let i = 0; i < 3; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function copyValue(value: StoredValue): StoredValue {
  return { typename: value.typename, value: Uint8Array.from(value.value) };
}

export function copyEnvelope(envelope: Envelope): Envelope {
  const target: StoredAddress = [envelope.target[0], envelope.target[1], envelope.target[2]];
  const caller: StoredAddress | undefined =
    envelope.caller === undefined ? undefined : [envelope.caller[0], envelope.caller[1], envelope.caller[2]];
  return { target, caller, argument: copyValue(envelope.argument), ingressId: envelope.ingressId };
}

/**
 * A batch set a cancellation token that is pending for its address. StateFun fails the job on
 * this; the runtime checks tokens before it commits, so reaching the store is a runtime bug.
 */
export function tokenInUse(address: StoredAddress, token: string): Error {
  return new Error(
    `delayed message token ${JSON.stringify(token)} is already pending for ${address.join('/')}; ` +
      'nothing of the commit was applied',
  );
}

/**
 * A batch named a consumed message its address's inbox does not hold: the batch was committed
 * before, or another node took the address and ran it. Applying it again would apply its effects
 * twice.
 */
export function staleBatch(address: StoredAddress, seq: number): Error {
  return new Error(
    `message ${seq} is not in the inbox of ${address.join('/')}: the batch was applied already; ` +
      'nothing of the commit was applied',
  );
}

/**
 * Replays a batch's timer operations on the tokens pending before it, in call order, and
 * returns the tokens it leaves pending. Throws when it sends with a token that is pending at
 * that point.
 */
export function tokensAfter(
  address: StoredAddress,
  operations: readonly (
    { readonly send: { readonly token?: string | undefined } } | { readonly cancel: string }
  )[],
  pending: (token: string) => boolean,
): Map<string, boolean> {
  // token → pending after the operations so far; a token not in the map is as it was before.
  const state = new Map<string, boolean>();
  for (const operation of operations) {
    if ('cancel' in operation) {
      state.set(operation.cancel, false);
      continue;
    }
    const token = operation.send.token;
    if (token === undefined) continue;
    if (state.get(token) ?? pending(token)) throw tokenInUse(address, token);
    state.set(token, true);
  }
  return state;
}
