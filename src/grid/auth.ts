// Who may connect. Each side of a handshake proves it holds the cluster secret by a token
// over the whole exchange: both hosts, both node ids, the protocol version, both wall
// times and a fresh random nonce from each side. A token is therefore good for one
// exchange only: it cannot be replayed later, moved to another socket, or kept while a
// field (a node id, a host) is changed. The two roles sign different labels, so the
// acceptor's token can never pass as a dialler's (no reflection).

import { createHmac, timingSafeEqual } from 'node:crypto';

import { ConfigError } from '../internal/errors.ts';

/** One side of a handshake, as the transcript names it. */
export interface HandshakeParty {
  /** The party's own host URL, as the cluster's host lists spell it. */
  readonly host: string;
  /** The party's node id: 16 random bytes, new at every process start. */
  readonly nodeId: Uint8Array;
  /** The party's wall time when it spoke, in whole ms since the Unix epoch. */
  readonly timeMs: number;
  /** 16 random bytes, new for every handshake. */
  readonly nonce: Uint8Array;
}

/** Everything that identifies one handshake; both tokens are made over all of it. */
export interface HandshakeClaims {
  readonly version: number;
  readonly dialler: HandshakeParty;
  readonly acceptor: HandshakeParty;
}

/** Which side a token speaks for. */
export type HandshakeRole = 'dialler' | 'acceptor';

/**
 * The pluggable proof of identity. The default is `hmacAuth` (a shared secret); an
 * implementation may instead sign with per-node keys, or check an identity from mTLS.
 * `handshakeTranscript(role, claims)` gives the canonical bytes to sign.
 */
export interface GridAuth {
  /** The token this node sends in `role` for the exchange described by `claims`. */
  authToken(role: HandshakeRole, claims: HandshakeClaims): string;
  /** True if `token` proves the peer, speaking in `role`, took part in exactly this exchange. */
  verifyToken(token: string, role: HandshakeRole, claims: HandshakeClaims): boolean;
}

/** Shortest accepted cluster secret, in bytes. */
export const MIN_SECRET_BYTES = 16;

const TRANSCRIPT_LABEL = 'weft-grid-handshake';

/**
 * The canonical bytes a token covers: each field as a 4-byte big-endian length and its
 * bytes, in a fixed order (docs/wire/grid.md §3). Lengths make the encoding unambiguous
 * whatever a host string contains.
 */
export function handshakeTranscript(role: HandshakeRole, claims: HandshakeClaims): Buffer {
  const fields: Uint8Array[] = [utf8(TRANSCRIPT_LABEL), utf8(role), utf8(String(claims.version))];
  for (const party of [claims.dialler, claims.acceptor]) {
    fields.push(utf8(party.host), party.nodeId, utf8(String(party.timeMs)), party.nonce);
  }
  let size = 0;
  for (const field of fields) size += 4 + field.length;
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const field of fields) {
    out.writeUInt32BE(field.length, offset);
    out.set(field, offset + 4);
    offset += 4 + field.length;
  }
  return out;
}

/**
 * The default: HMAC-SHA256 of the transcript under a shared cluster secret of at least
 * 16 bytes, base64url without padding (43 characters).
 */
export function hmacAuth(secret: string | Uint8Array): GridAuth {
  const key = checkSecret(secret, 'grid.auth.secret');
  const sign = (role: HandshakeRole, claims: HandshakeClaims): string =>
    createHmac('sha256', key).update(handshakeTranscript(role, claims)).digest('base64url');
  return {
    authToken: sign,
    verifyToken(token, role, claims) {
      if (typeof token !== 'string') return false;
      // Compared as the exact string: base64url decoding would accept padding, junk and
      // other spellings of the same bytes.
      const expected = Buffer.from(sign(role, claims));
      const given = Buffer.from(token);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/** The secret's bytes; a missing, mistyped or short secret is a `ConfigError` naming `field`. */
export function checkSecret(secret: unknown, field: string): Buffer {
  if (typeof secret !== 'string' && !(secret instanceof Uint8Array)) {
    throw new ConfigError(field, `must be a string or bytes of at least ${MIN_SECRET_BYTES} bytes`);
  }
  const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (key.length < MIN_SECRET_BYTES) {
    throw new ConfigError(field, `must be at least ${MIN_SECRET_BYTES} bytes, got ${key.length}`);
  }
  return key;
}

function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}
