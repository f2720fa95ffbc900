// Blob references: `weft-blob://sha256/<64 lowercase hex>`, the sha256 of the bytes. A reference
// is opaque to users but arrives inside packets, so it is parsed strictly: one exact form, no
// case folding, no trimming, no other scheme. Stores derive file names from the parsed digest
// only, never from the reference text, so a hostile reference cannot name a path.

import { createHash } from 'node:crypto';

import { InvalidBlobRefError } from './errors.ts';

export const BLOB_REF_PREFIX = 'weft-blob://sha256/';
/** Length of every valid reference. */
export const BLOB_REF_LENGTH = BLOB_REF_PREFIX.length + 64;

const digestPattern = /^[0-9a-f]{64}$/;

/** The sha256 of `bytes` as 64 lowercase hex characters. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The reference of a blob whose sha256 is `digestHex`. */
export function formatBlobRef(digestHex: string): string {
  if (!digestPattern.test(digestHex))
    throw new InvalidBlobRefError('digest must be 64 lowercase hex characters');
  return BLOB_REF_PREFIX + digestHex;
}

/** The reference of `bytes`. */
export function blobRefOf(bytes: Uint8Array): string {
  return BLOB_REF_PREFIX + sha256Hex(bytes);
}

/** The sha256 hex digest named by `ref`; throws `InvalidBlobRefError` for anything else. */
export function parseBlobRef(ref: unknown): string {
  if (typeof ref !== 'string') throw new InvalidBlobRefError(`must be a string, got ${typeof ref}`);
  // Length first, so a huge hostile string is never scanned or echoed.
  if (ref.length !== BLOB_REF_LENGTH) {
    throw new InvalidBlobRefError(`must be ${BLOB_REF_LENGTH} characters, got ${ref.length}`);
  }
  if (!ref.startsWith(BLOB_REF_PREFIX)) throw new InvalidBlobRefError(`must start with ${BLOB_REF_PREFIX}`);
  const digest = ref.slice(BLOB_REF_PREFIX.length);
  if (!digestPattern.test(digest)) {
    throw new InvalidBlobRefError('digest must be 64 lowercase hex characters');
  }
  return digest;
}

/** True when `ref` is a well-formed reference. */
export function isBlobRef(ref: unknown): ref is string {
  return (
    typeof ref === 'string' &&
    ref.length === BLOB_REF_LENGTH &&
    ref.startsWith(BLOB_REF_PREFIX) &&
    digestPattern.test(ref.slice(BLOB_REF_PREFIX.length))
  );
}
