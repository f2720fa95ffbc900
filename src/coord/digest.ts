// OCI content digests (`<algorithm>:<hex>`), checked before they name anything on disk.
//
// Only the two algorithms the OCI image spec registers are accepted, each with its exact hex
// length and lowercase hex only, so every digest has one spelling: two strings for the same
// content would be two cache entries, and anything looser (a `/`, a `..`, uppercase) would let
// a hostile key choose a path. A file path is derived from the checked hex alone.

import { InvalidDigestError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A digest that passed `parseDigest`: `digest` is `${algorithm}:${hex}`. */
export interface ParsedDigest {
  readonly digest: string;
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
}

/** Hex length of each accepted algorithm. */
export const DIGEST_HEX_LENGTHS: Readonly<Record<DigestAlgorithm, number>> = {
  sha256: 64,
  sha512: 128,
};

const lowercaseHex = /^[0-9a-f]+$/;
// Longest accepted digest (`sha512:` + 128); longer input is refused before it is echoed.
const MAX_DIGEST_LENGTH = 7 + 128;

/** Checks `value` is an accepted digest; throws `InvalidDigestError` saying why not. */
export function parseDigest(value: unknown): ParsedDigest {
  if (typeof value !== 'string') {
    throw new InvalidDigestError(`a digest must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  if (value.length > MAX_DIGEST_LENGTH) {
    throw new InvalidDigestError(`digest is too long (${value.length} characters)`);
  }
  const colon = value.indexOf(':');
  const algorithm = colon < 0 ? value : value.slice(0, colon);
  if (colon < 0 || !isDigestAlgorithm(algorithm)) {
    throw new InvalidDigestError(`digest ${JSON.stringify(value)} must start with sha256: or sha512:`);
  }
  const hex = value.slice(colon + 1);
  const expectedLength = DIGEST_HEX_LENGTHS[algorithm];
  if (hex.length !== expectedLength || !lowercaseHex.test(hex)) {
    throw new InvalidDigestError(
      `digest ${JSON.stringify(value)} must be ${algorithm}: followed by ${expectedLength} lowercase hex digits`,
    );
  }
  return { digest: value, algorithm, hex };
}

/** True when `value` is an accepted digest. */
export function isDigest(value: unknown): value is string {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return Object.hasOwn(DIGEST_HEX_LENGTHS, value);
}
