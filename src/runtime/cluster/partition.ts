// Addresses are grouped into partitions, and ownership (and its fencing) moves a partition at a
// time: a lease per address would be a row per address. The partition of an address is FNV-1a
// (32 bits) of `namespace/type/id` in UTF-8, modulo the partition count, so every node and every
// language computes the same one.

import { ConfigError } from '../../internal/errors.ts';
import type { StoredAddress } from '../store/state-store.ts';

export const DEFAULT_PARTITIONS = 1024;
const encoder = new TextEncoder();

/** FNV-1a, 32 bits, of `bytes`. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function partitionOf(address: StoredAddress, partitions = DEFAULT_PARTITIONS): number {
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > 65_536) {
    throw new ConfigError('partitions', `must be an integer in [1, 65536], got ${String(partitions)}`);
  }
  const [namespace, type, id] = address;
  return fnv1a32(encoder.encode(`${namespace}/${type}/${id}`)) % partitions;
}
