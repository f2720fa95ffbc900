// Who may connect. Each side proves it holds the cluster secret by sending a token
// bound to the host it is talking to (the audience) and to its wall time, so a token
// captured from one connection is useless against another host or minutes later.

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface GridAuth {
  /** The token to send to `audience` (the remote host URL) at wall time `timeMs`. */
  authToken(audience: string, timeMs: number): string;
  /** True if `token` was made for `audience` (this node's host URL) at `timeMs`. */
  verifyToken(token: string, audience: string, timeMs: number): boolean;
}

/**
 * The default: HMAC-SHA256 under a shared cluster secret over the protocol name, the
 * audience and the time, base64url-encoded. The time's freshness is checked separately
 * (the clock-skew bound), so verification here is only about the secret.
 */
export function hmacAuth(secret: string | Uint8Array): GridAuth {
  const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (key.length < 16) throw new RangeError('the grid secret must be at least 16 bytes');
  const sign = (audience: string, timeMs: number): Buffer =>
    createHmac('sha256', key).update(`weft-grid-v1\n${audience}\n${timeMs}`).digest();
  return {
    authToken: (audience, timeMs) => sign(audience, timeMs).toString('base64url'),
    verifyToken(token, audience, timeMs) {
      // Compared as the exact string: base64url decoding would accept padding, junk and
      // other spellings of the same bytes.
      const expected = Buffer.from(sign(audience, timeMs).toString('base64url'));
      const given = Buffer.from(token);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
