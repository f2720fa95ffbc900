// Helpers every StateStore shares: address keys and ordering, copies of what callers hand in
// (a store must not keep a caller's buffer, which may be reused), and the token error.

import type { Envelope, StoredAddress, StoredValue } from './state-store.ts';

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
  return { target, caller, argument: copyValue(envelope.argument) };
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
