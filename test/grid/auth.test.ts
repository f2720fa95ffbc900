import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import {
  handshakeTranscript,
  hmacAuth,
  MIN_SECRET_BYTES,
  type GridAuth,
  type HandshakeClaims,
  type HandshakeRole,
} from '../../src/grid/auth.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import { Manager } from '../../src/grid/manager.ts';
import { decodeConnect, encodeConnect } from '../../src/grid/messages.ts';
import { ConfigError } from '../../src/internal/errors.ts';

const secret = 'weft-example-cluster-secret';
/** The dialler's host (it does dial B: `shouldDial(A, B)`). */
const A = 'http://10.0.0.1:9000';
/** The acceptor's host. */
const B = 'http://10.0.0.2:9000';

/** 16 bytes counting up from `first`: 00..0f, 10..1f, … */
const run16 = (first: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, i) => first + i);

/**
 * The handshake of the golden vector (docs/wire/grid.md, "Handshake tokens"): the acceptor's
 * Challenge at 1700000000000, the dialler's Connect 123 ms later.
 */
const claims: HandshakeClaims = {
  version: 2,
  dialler: { host: A, nodeId: run16(0x00), timeMs: 1_700_000_000_123, nonce: run16(0x20) },
  acceptor: { host: B, nodeId: run16(0x10), timeMs: 1_700_000_000_000, nonce: run16(0x30) },
};

const roles: readonly HandshakeRole[] = ['dialler', 'acceptor'];
const otherRole = (role: HandshakeRole): HandshakeRole => (role === 'dialler' ? 'acceptor' : 'dialler');

// ---------------------------------------------------------------------------------------
// Single-field changes of the claims

type Side = 'dialler' | 'acceptor';

/** One field of the claims set to another value. */
type Change =
  | { readonly field: 'version'; readonly value: number }
  | { readonly field: 'host'; readonly side: Side; readonly value: string }
  | { readonly field: 'timeMs'; readonly side: Side; readonly value: number }
  | { readonly field: 'nodeId' | 'nonce'; readonly side: Side; readonly value: Uint8Array };

function applyChange(c: HandshakeClaims, change: Change): HandshakeClaims {
  if (change.field === 'version') return { ...c, version: change.value };
  return { ...c, [change.side]: { ...c[change.side], [change.field]: change.value } };
}

/** True if `change` really changes `c` (a random value may happen to be the one already there). */
function changes(c: HandshakeClaims, change: Change): boolean {
  if (change.field === 'version') return change.value !== c.version;
  const current = c[change.side][change.field];
  if (current instanceof Uint8Array && change.value instanceof Uint8Array) {
    return Buffer.compare(current, change.value) !== 0;
  }
  return current !== change.value;
}

function describeChange(change: Change): string {
  const value = change.value instanceof Uint8Array ? Buffer.from(change.value).toString('hex') : change.value;
  return change.field === 'version'
    ? `version = ${value}`
    : `${change.side}.${change.field} = ${JSON.stringify(value)}`;
}

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const out = Uint8Array.from(bytes);
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
};

/** Small, plausible single-field changes of `c`: the ones an attacker would try first. */
function nearbyChanges(c: HandshakeClaims): Change[] {
  const out: Change[] = [
    { field: 'version', value: c.version + 1 },
    { field: 'version', value: c.version - 1 },
    { field: 'version', value: 1 },
  ];
  for (const side of ['dialler', 'acceptor'] as const) {
    const party = c[side];
    const other = c[side === 'dialler' ? 'acceptor' : 'dialler'];
    out.push(
      { field: 'host', side, value: other.host },
      { field: 'host', side, value: `${party.host}/` },
      { field: 'host', side, value: party.host.toUpperCase() },
      { field: 'host', side, value: party.host.slice(0, -1) },
      { field: 'host', side, value: '' },
      { field: 'timeMs', side, value: party.timeMs + 1 },
      { field: 'timeMs', side, value: party.timeMs - 1 },
      { field: 'timeMs', side, value: other.timeMs },
      { field: 'nodeId', side, value: other.nodeId },
      { field: 'nonce', side, value: other.nonce },
      { field: 'nodeId', side, value: party.nonce },
      { field: 'nonce', side, value: party.nodeId },
      { field: 'nodeId', side, value: new Uint8Array(16) },
      { field: 'nonce', side, value: new Uint8Array(16) },
      { field: 'nonce', side, value: party.nonce.subarray(0, 15) },
      { field: 'nonce', side, value: Uint8Array.from([...party.nonce, 0]) },
    );
    for (let bit = 0; bit < 128; bit++) {
      out.push(
        { field: 'nodeId', side, value: flipBit(party.nodeId, bit) },
        { field: 'nonce', side, value: flipBit(party.nonce, bit) },
      );
    }
  }
  return out.filter((change) => changes(c, change));
}

const bytes16Arb = fc.uint8Array({ minLength: 16, maxLength: 16 });
// Well-formed strings only: hosts come from configuration and from MessagePack strings
// (UTF-8), neither of which carries lone surrogates.
const hostArb = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 65_535 }))
    .map(([octet, port]) => `http://10.0.0.${octet}:${port}`),
);
const timeArb = fc.oneof(fc.maxSafeNat(), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_001_000 }));
const sideArb = fc.constantFrom<Side>('dialler', 'acceptor');
const partyArb = fc.record({ host: hostArb, nodeId: bytes16Arb, timeMs: timeArb, nonce: bytes16Arb });
const claimsArb: fc.Arbitrary<HandshakeClaims> = fc.record({
  version: fc.oneof(fc.constant(2), fc.maxSafeNat()),
  dialler: partyArb,
  acceptor: partyArb,
});
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ field: fc.constant('version' as const), value: fc.oneof(fc.nat(4), fc.maxSafeNat()) }),
  fc.record({ field: fc.constant('host' as const), side: sideArb, value: hostArb }),
  fc.record({ field: fc.constant('timeMs' as const), side: sideArb, value: timeArb }),
  fc.record({
    field: fc.constantFrom('nodeId' as const, 'nonce' as const),
    side: sideArb,
    value: fc.oneof(bytes16Arb, fc.uint8Array({ maxLength: 20 })),
  }),
);

/** The fields of a transcript, read back by its layout: 4-byte big-endian length, then the bytes. */
function transcriptFields(transcript: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  for (let offset = 0; offset < transcript.length;) {
    const length = transcript.readUInt32BE(offset);
    fields.push(transcript.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
    assert.ok(offset <= transcript.length, 'a field runs past the end of the transcript');
  }
  return fields;
}

// ---------------------------------------------------------------------------------------

describe('hmacAuth', () => {
  test('a token verifies for exactly the claims and the role it was made for', () => {
    const auth = hmacAuth(secret);
    // An equal copy of the claims, in other objects and other byte views (Buffers, as decoded).
    const copy: HandshakeClaims = {
      version: claims.version,
      dialler: {
        ...claims.dialler,
        nodeId: Buffer.from(claims.dialler.nodeId),
        nonce: Buffer.from(run16(0x20)),
      },
      acceptor: {
        ...claims.acceptor,
        nodeId: Buffer.from(run16(0x10)),
        nonce: Buffer.from(claims.acceptor.nonce),
      },
    };
    for (const role of roles) {
      const token = auth.authToken(role, claims);
      assert.equal(auth.verifyToken(token, role, claims), true, role);
      assert.equal(auth.verifyToken(token, role, copy), true, `${role}, equal claims`);
      assert.equal(auth.authToken(role, copy), token, `${role}: the token depends on values only`);
    }
  });

  test('another node with the same secret accepts the token', () => {
    for (const role of roles) {
      const token = hmacAuth(secret).authToken(role, claims);
      assert.equal(hmacAuth(Buffer.from(secret, 'utf8')).verifyToken(token, role, claims), true);
      assert.equal(
        hmacAuth(new Uint8Array(Buffer.from(secret, 'utf8'))).verifyToken(token, role, claims),
        true,
      );
    }
  });

  test('a token is refused in the other role (no reflection) and under another secret', () => {
    const auth = hmacAuth(secret);
    for (const role of roles) {
      const token = auth.authToken(role, claims);
      assert.equal(
        auth.verifyToken(token, otherRole(role), claims),
        false,
        `${role} token as ${otherRole(role)}`,
      );
      assert.equal(hmacAuth(`${secret}!`).verifyToken(token, role, claims), false);
      assert.equal(hmacAuth(secret.slice(0, -1) + 'T').verifyToken(token, role, claims), false);
    }
    assert.notEqual(auth.authToken('dialler', claims), auth.authToken('acceptor', claims));
  });

  test('changing any single field of the claims, on either side, breaks the token of either role', () => {
    const auth = hmacAuth(secret);
    const list = nearbyChanges(claims);
    // 3 versions, and per side 16 plausible values and 2 × 128 flipped bits.
    assert.equal(list.length, 3 + 2 * (16 + 256));
    for (const role of roles) {
      const token = auth.authToken(role, claims);
      for (const change of list) {
        assert.equal(
          auth.verifyToken(token, role, applyChange(claims, change)),
          false,
          `${role} token accepted with ${describeChange(change)}`,
        );
      }
    }
  });

  test('swapping the two sides breaks the token', () => {
    const auth = hmacAuth(secret);
    const swapped: HandshakeClaims = { ...claims, dialler: claims.acceptor, acceptor: claims.dialler };
    for (const role of roles) {
      const token = auth.authToken(role, claims);
      assert.equal(auth.verifyToken(token, role, swapped), false);
      // Nor does the other side's token pass once the sides are swapped back (reflection).
      assert.equal(auth.verifyToken(token, otherRole(role), swapped), false);
    }
  });

  test('no single-field change to a captured Connect or ConnectResponse token is accepted', () => {
    const auth = hmacAuth(secret);
    fc.assert(
      fc.property(claimsArb, fc.constantFrom(...roles), changeArb, (c, role, change) => {
        fc.pre(changes(c, change));
        // The Connect carries the dialler's token, the ConnectResponse the acceptor's.
        const captured = auth.authToken(role, c);
        assert.equal(auth.verifyToken(captured, role, c), true, 'the captured token is good as it is');
        assert.equal(auth.verifyToken(captured, role, applyChange(c, change)), false, describeChange(change));
        assert.equal(auth.verifyToken(captured, otherRole(role), c), false, 'in the other role');
      }),
      { numRuns: 2_000 },
    );
  });

  test('the transcript keeps field boundaries: moving characters between fields changes it', () => {
    // Without length prefixes these pairs would read the same when concatenated.
    const pairs: [HandshakeClaims, HandshakeClaims][] = [
      [
        { ...claims, dialler: { ...claims.dialler, host: 'http://h:1', timeMs: 23 } },
        { ...claims, dialler: { ...claims.dialler, host: 'http://h:12', timeMs: 3 } },
      ],
      [
        { ...claims, version: 21, dialler: { ...claims.dialler, host: 'x' } },
        { ...claims, version: 2, dialler: { ...claims.dialler, host: '1x' } },
      ],
      [
        { ...claims, acceptor: { ...claims.acceptor, host: 'b', timeMs: 1 } },
        { ...claims, acceptor: { ...claims.acceptor, host: 'b1', timeMs: 1 } },
      ],
    ];
    const auth = hmacAuth(secret);
    for (const [first, second] of pairs) {
      for (const role of roles) {
        assert.notDeepEqual(handshakeTranscript(role, first), handshakeTranscript(role, second));
        assert.equal(auth.verifyToken(auth.authToken(role, first), role, second), false);
      }
    }
  });

  test('the transcript reads back as its fields, in the documented order', () => {
    fc.assert(
      fc.property(claimsArb, fc.constantFrom(...roles), (c, role) => {
        const text = (field: Buffer | undefined): string | undefined => field?.toString('utf8');
        const hex = (field: Uint8Array | undefined): string | undefined =>
          field === undefined ? undefined : Buffer.from(field).toString('hex');
        const fields = transcriptFields(handshakeTranscript(role, c));
        assert.equal(fields.length, 11);
        assert.deepEqual(
          [
            text(fields[0]),
            text(fields[1]),
            text(fields[2]),
            ...[0, 1].flatMap((side) => [
              text(fields[3 + 4 * side]),
              hex(fields[4 + 4 * side]),
              text(fields[5 + 4 * side]),
              hex(fields[6 + 4 * side]),
            ]),
          ],
          [
            'weft-grid-handshake',
            role,
            String(c.version),
            ...[c.dialler, c.acceptor].flatMap((p) => [
              p.host,
              hex(p.nodeId),
              String(p.timeMs),
              hex(p.nonce),
            ]),
          ],
        );
      }),
      { numRuns: 300 },
    );
  });

  describe('golden vector (docs/wire/grid.md §3 and §14)', () => {
    const goldenSecret = 'weft-golden-vector-secret';
    // Each field: a 4-byte big-endian length, then its bytes.
    const diallerTranscript = [
      '00000013' + '776566742d677269642d68616e647368616b65', // 19 "weft-grid-handshake"
      '00000007' + '6469616c6c6572', // 7 "dialler"
      '00000001' + '32', // 1 "2" (version, decimal)
      '00000014' + '687474703a2f2f31302e302e302e313a39303030', // 20 "http://10.0.0.1:9000"
      '00000010' + '000102030405060708090a0b0c0d0e0f', // 16 dialler node id
      '0000000d' + '31373030303030303030313233', // 13 "1700000000123"
      '00000010' + '202122232425262728292a2b2c2d2e2f', // 16 dialler nonce
      '00000014' + '687474703a2f2f31302e302e302e323a39303030', // 20 "http://10.0.0.2:9000"
      '00000010' + '101112131415161718191a1b1c1d1e1f', // 16 acceptor node id
      '0000000d' + '31373030303030303030303030', // 13 "1700000000000"
      '00000010' + '303132333435363738393a3b3c3d3e3f', // 16 acceptor nonce
    ].join('');
    // The same but for the role: 8 "acceptor".
    const acceptorTranscript = diallerTranscript.replace(
      '000000076469616c6c6572',
      '000000086163636570746f72',
    );
    const diallerToken = 'ukJz92oxFsDFkM-NXD3Wm-94o6fY8lTedbIBXcjeKBc';
    const acceptorToken = 'MRgNu_DtlMpuOAHfNkxZGcBX3wokiKdfP7IFC-KsvCw';

    test('the transcript is exactly the documented bytes', () => {
      assert.equal(shouldDial(A, B), true, 'the dialler of the vector is the side that dials');
      assert.equal(diallerTranscript.length / 2, 201);
      assert.equal(acceptorTranscript.length / 2, 202);
      assert.equal(handshakeTranscript('dialler', claims).toString('hex'), diallerTranscript);
      assert.equal(handshakeTranscript('acceptor', claims).toString('hex'), acceptorTranscript);
    });

    test('the tokens are HMAC-SHA256 of those bytes under the secret, base64url without padding', () => {
      const auth = hmacAuth(goldenSecret);
      assert.equal(auth.authToken('dialler', claims), diallerToken);
      assert.equal(auth.authToken('acceptor', claims), acceptorToken);
      // Computed from the hex alone, not from handshakeTranscript.
      const hmac = (hex: string): string =>
        createHmac('sha256', goldenSecret).update(Buffer.from(hex, 'hex')).digest('base64url');
      assert.equal(hmac(diallerTranscript), diallerToken);
      assert.equal(hmac(acceptorTranscript), acceptorToken);
      for (const token of [diallerToken, acceptorToken]) assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(auth.verifyToken(diallerToken, 'dialler', claims), true);
      assert.equal(auth.verifyToken(acceptorToken, 'acceptor', claims), true);
    });
  });

  test('garbage tokens are refused without throwing', () => {
    const auth = hmacAuth(secret);
    const good = auth.authToken('dialler', claims);
    for (const token of [
      '',
      'not base64 at all!',
      '%%%%',
      good.slice(0, 42),
      good.slice(0, 40),
      `${good}${good}`,
      Buffer.alloc(31).toString('base64url'),
      Buffer.alloc(32).toString('base64url'),
      Buffer.alloc(33).toString('base64url'),
      '\u0000'.repeat(43),
      '😀'.repeat(43),
      'é'.repeat(43),
      'x'.repeat(1_024),
    ]) {
      assert.equal(auth.verifyToken(token, 'dialler', claims), false, JSON.stringify(token));
    }
  });

  test('tokens that are not strings are refused without throwing', () => {
    const auth = hmacAuth(secret);
    const good = auth.authToken('dialler', claims);
    for (const token of [
      undefined,
      null,
      43,
      true,
      Buffer.from(good),
      Buffer.from(good, 'base64url'),
      [good],
      { toString: () => good },
      new String(good),
    ]) {
      assert.doesNotThrow(() => auth.verifyToken(token as string, 'dialler', claims));
      assert.equal(auth.verifyToken(token as string, 'dialler', claims), false, String(token));
    }
  });

  test('random tokens never verify and never throw', () => {
    const auth = hmacAuth(secret);
    fc.assert(
      fc.property(fc.string({ maxLength: 100, unit: 'binary' }), fc.constantFrom(...roles), (token, role) => {
        assert.equal(auth.verifyToken(token, role, claims), false);
      }),
    );
  });

  test('only the exact token string verifies', () => {
    const auth = hmacAuth(secret);
    const token = auth.authToken('dialler', claims);
    for (const variant of [
      `${token}=`,
      `${token}!!`,
      ` ${token}`,
      `${token}\n`,
      token.replaceAll('-', '+').replaceAll('_', '/'),
      Buffer.from(token, 'base64url').toString('base64'),
      token.toLowerCase(),
    ]) {
      if (variant !== token) assert.equal(auth.verifyToken(variant, 'dialler', claims), false, variant);
    }
  });

  test('a secret shorter than 16 bytes is a ConfigError naming grid.auth.secret', () => {
    assert.equal(MIN_SECRET_BYTES, 16);
    const isShortSecret = (error: unknown): boolean => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      assert.equal(error.field, 'grid.auth.secret');
      assert.equal(error.code, 'WEFT_INVALID_CONFIG');
      assert.equal(error.retryable, false);
      assert.match(error.message, /^invalid config grid\.auth\.secret: .*16 bytes/);
      return true;
    };
    for (const short of [
      'fifteen-chars!!',
      '',
      new Uint8Array(15),
      new Uint8Array(0),
      Buffer.alloc(15),
      // 8 characters but 16 bytes would pass; 7 two-byte characters and one more are 15 bytes.
      `${'é'.repeat(7)}a`,
    ]) {
      assert.throws(() => hmacAuth(short), isShortSecret, JSON.stringify(short));
    }
    assert.throws(() => hmacAuth('fifteen-chars!!'), /got 15/);
    // Lengths are bytes, not characters.
    assert.doesNotThrow(() => hmacAuth('é'.repeat(8)));
    assert.doesNotThrow(() => hmacAuth('sixteen-chars!!!'));
    assert.doesNotThrow(() => hmacAuth(new Uint8Array(16)));
  });

  test('a secret that is neither a string nor bytes is a ConfigError naming grid.auth.secret', () => {
    for (const secretValue of [undefined, null, 1_234, {}, ['sixteen-chars!!!']]) {
      assert.throws(
        () => hmacAuth(secretValue as string),
        (error: unknown) => error instanceof ConfigError && error.field === 'grid.auth.secret',
        JSON.stringify(secretValue),
      );
    }
  });

  test('the Manager refuses a short secret at construction, naming the field', () => {
    assert.throws(
      () => new Manager({ local: A, hosts: [A, B], auth: { secret: 'too-short' } }),
      (error: unknown) => error instanceof ConfigError && error.field === 'grid.auth.secret',
    );
  });
});

// ---------------------------------------------------------------------------------------
// The pluggable seam: per-node Ed25519 keys instead of a shared secret

/**
 * A `GridAuth` in which each node signs the transcript with its own Ed25519 private key,
 * and checks the peer's signature with the public key listed for the peer's host. No
 * node can speak for another, even one that knows every public key.
 */
function ed25519Auth(
  self: { host: string; privateKey: KeyObject },
  publicKeys: ReadonlyMap<string, KeyObject>,
): GridAuth {
  return {
    authToken(role, c) {
      if (c[role].host !== self.host)
        throw new Error(`${self.host} cannot sign as the ${role} ${c[role].host}`);
      return sign(null, handshakeTranscript(role, c), self.privateKey).toString('base64url');
    },
    verifyToken(token, role, c) {
      if (typeof token !== 'string') return false;
      const key = publicKeys.get(c[role].host);
      if (key === undefined) return false;
      const signature = Buffer.from(token, 'base64url');
      // One spelling per signature: base64url decoding skips junk and padding.
      if (signature.length !== 64 || signature.toString('base64url') !== token) return false;
      return verify(null, handshakeTranscript(role, c), key, signature);
    },
  };
}

describe('a custom GridAuth: Ed25519 per-node keys over handshakeTranscript', () => {
  const C = 'http://10.0.0.3:9000';
  const keys = new Map([A, B, C].map((host) => [host, generateKeyPairSync('ed25519')] as const));
  const publicKeys = new Map([...keys].map(([host, pair]) => [host, pair.publicKey] as const));
  const nodeAuth = (host: string): GridAuth => {
    const pair = keys.get(host);
    assert.ok(pair !== undefined);
    return ed25519Auth({ host, privateKey: pair.privateKey }, publicKeys);
  };
  const dialler = nodeAuth(A);
  const acceptor = nodeAuth(B);

  test('each side proves itself to the other, through the Connect as it goes on the wire', () => {
    const token = dialler.authToken('dialler', claims);
    assert.ok(token.length <= 1_024, 'the token fits in a Connect');
    // The acceptor rebuilds the claims from the decoded Connect and its own Challenge.
    const connect = decodeConnect(encodeConnect({ version: claims.version, ...claims.dialler, token }));
    const seen: HandshakeClaims = {
      version: connect.version,
      dialler: { host: connect.host, nodeId: connect.nodeId, timeMs: connect.timeMs, nonce: connect.nonce },
      acceptor: claims.acceptor,
    };
    assert.equal(acceptor.verifyToken(connect.token, 'dialler', seen), true);
    assert.equal(dialler.verifyToken(acceptor.authToken('acceptor', seen), 'acceptor', claims), true);
  });

  test('a node cannot speak for another, though its own key is good', () => {
    const pairC = keys.get(C);
    assert.ok(pairC !== undefined);
    // C signs A's transcript with its own key: B checks it with A's public key.
    const forged = sign(null, handshakeTranscript('dialler', claims), pairC.privateKey).toString('base64url');
    assert.equal(acceptor.verifyToken(forged, 'dialler', claims), false);
    assert.throws(() => nodeAuth(C).authToken('dialler', claims), /cannot sign as the dialler/);
    // A host nobody listed has no key at all.
    const stranger: HandshakeClaims = {
      ...claims,
      dialler: { ...claims.dialler, host: 'http://10.9.9.9:1' },
    };
    assert.equal(acceptor.verifyToken(forged, 'dialler', stranger), false);
  });

  test('every single-field change of the claims, and the other role, are refused', () => {
    for (const [role, signer] of [
      ['dialler', dialler],
      ['acceptor', acceptor],
    ] as const) {
      const token = signer.authToken(role, claims);
      // Whoever checks: the verdict depends on the public keys only.
      for (const checker of [dialler, acceptor, nodeAuth(C)]) {
        assert.equal(checker.verifyToken(token, role, claims), true);
        assert.equal(checker.verifyToken(token, otherRole(role), claims), false);
        for (const change of nearbyChanges(claims)) {
          // Moving the host to a third listed host must fail too (its key differs).
          assert.equal(
            checker.verifyToken(token, role, applyChange(claims, change)),
            false,
            describeChange(change),
          );
        }
        assert.equal(
          checker.verifyToken(token, role, applyChange(claims, { field: 'host', side: role, value: C })),
          false,
        );
      }
    }
  });

  test('garbage, other spellings and non-strings are refused without throwing', () => {
    const token = dialler.authToken('dialler', claims);
    for (const garbage of [
      '',
      'x',
      `${token}=`,
      `${token}==`,
      ` ${token}`,
      Buffer.from(token, 'base64url').toString('base64'),
      Buffer.alloc(64).toString('base64url'),
      token.slice(0, -1),
      hmacAuth(secret).authToken('dialler', claims),
      undefined,
      42,
    ]) {
      assert.equal(acceptor.verifyToken(garbage as string, 'dialler', claims), false, String(garbage));
    }
  });

  test('the Manager takes it as its auth', async () => {
    const manager = new Manager({ local: B, hosts: [A, B, C], auth: acceptor });
    await manager.close();
  });
});

describe('shouldDial', () => {
  const hostArb = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 65_535 }))
      .map(([octet, port]) => `http://10.0.0.${octet}:${port}`),
  );

  test('exactly one side of any two different hosts dials', () => {
    fc.assert(
      fc.property(hostArb, hostArb, (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(shouldDial(a, b), shouldDial(b, a), `${a} / ${b}`);
      }),
      { numRuns: 2_000 },
    );
  });

  test('exactly one side dials even when the two orderings hash the same', () => {
    // "a" + "\n" + "a\na" and "a\na" + "\n" + "a" are the same string.
    assert.notEqual(shouldDial('a', 'a\na'), shouldDial('a\na', 'a'));
    assert.equal(shouldDial('a', 'a\na'), true, 'the smaller string dials on a tie');
  });

  test('a node never dials itself', () => {
    fc.assert(
      fc.property(hostArb, (host) => {
        assert.equal(shouldDial(host, host), false);
      }),
    );
  });

  test('the answer is the same every time it is asked', () => {
    fc.assert(
      fc.property(hostArb, hostArb, (a, b) => {
        assert.equal(shouldDial(a, b), shouldDial(a, b));
      }),
    );
  });

  test('the side whose SHA-256(local\\nremote) is lower dials, as the wire document says', () => {
    const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
    fc.assert(
      fc.property(hostArb, hostArb, (a, b) => {
        fc.pre(a !== b);
        const order = Buffer.compare(digest(`${a}\n${b}`), digest(`${b}\n${a}`));
        if (order !== 0) assert.equal(shouldDial(a, b), order < 0);
      }),
    );
  });

  test('the rule is not plain string order, so the first host of a list does not dial all the others', () => {
    const hosts = Array.from({ length: 12 }, (_, i) => `http://node-${String(i).padStart(2, '0')}:9000`);
    const dials = hosts.map((local) => hosts.filter((remote) => shouldDial(local, remote)).length);
    assert.equal(
      dials.reduce((a, b) => a + b, 0),
      (hosts.length * (hosts.length - 1)) / 2,
    );
    assert.ok((dials[0] ?? 0) < hosts.length - 1);
    // With string order the first node would dial 11 and the last none.
    assert.notDeepEqual(
      dials,
      hosts.map((_, i) => hosts.length - 1 - i),
    );
  });
});
