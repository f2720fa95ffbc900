// Subroute ids. A handler id may serve several static routes (say, one per disk);
// frames name the route by a 32-byte id: SHA-256 of the route, with byte 0 replaced by
// the handler id and byte 1 by 0 (MinIO's layout), so an id cannot match the wrong handler.

import { createHash } from 'node:crypto';

import { SUBROUTE_BYTES } from './protocol.ts';

/** Joins nested route segments with `/`, as routes are written. */
export function joinRoute(...segments: readonly string[]): string {
  return segments.join('/');
}

export function subrouteId(handler: number, route: string): Buffer {
  if (route === '') throw new RangeError('a subroute is a non-empty string');
  const id = createHash('sha256').update(route, 'utf8').digest();
  id[0] = handler;
  id[1] = 0;
  return id.subarray(0, SUBROUTE_BYTES);
}

/** The map key for a subroute id. */
export function subrouteKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}
