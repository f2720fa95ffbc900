// Addresses as map keys. Any string may be a namespace, type or id (control characters
// included), so the key is the JSON of the tuple: one to one, whatever the address holds.

import type { StoredAddress } from './store/state-store.ts';

export function addressKey(address: StoredAddress): string {
  return JSON.stringify(address);
}

export function functionTypeOf(address: StoredAddress): string {
  return `${address[0]}/${address[1]}`;
}

export function describeAddress(address: StoredAddress): string {
  return `${address[0]}/${address[1]}/${address[2]}`;
}
