import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { hmacAuth } from '../../src/grid/auth.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';

const secret = 'weft-example-cluster-secret';
const A = 'http://10.0.0.1:9000';
const B = 'http://10.0.0.2:9000';
const T = 1_700_000_000_000;

describe('hmacAuth', () => {
  test('a token verifies for the audience and time it was made for', () => {
    const auth = hmacAuth(secret);
    assert.equal(auth.verifyToken(auth.authToken(B, T), B, T), true);
  });

  test('another node with the same secret accepts the token', () => {
    const token = hmacAuth(secret).authToken(B, T);
    assert.equal(hmacAuth(Buffer.from(secret, 'utf8')).verifyToken(token, B, T), true);
  });

  test('a token is refused for another audience, another time or another secret', () => {
    const auth = hmacAuth(secret);
    const token = auth.authToken(B, T);
    assert.equal(auth.verifyToken(token, A, T), false);
    assert.equal(auth.verifyToken(token, `${B}/`, T), false);
    assert.equal(auth.verifyToken(token, B, T + 1), false);
    assert.equal(auth.verifyToken(token, B, T - 1), false);
    assert.equal(hmacAuth(`${secret}!`).verifyToken(token, B, T), false);
  });

  test('is HMAC-SHA256 over "weft-grid-v1\\n<audience>\\n<timeMs>", base64url without padding', () => {
    const expected = createHmac('sha256', secret).update(`weft-grid-v1\n${B}\n${T}`).digest('base64url');
    const token = hmacAuth(secret).authToken(B, T);
    assert.equal(token, expected);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  });

  test('garbage tokens are refused without throwing', () => {
    const auth = hmacAuth(secret);
    const good = auth.authToken(B, T);
    for (const token of [
      '',
      'not base64 at all!',
      '%%%%',
      good.slice(0, 42),
      good.slice(0, 40),
      `${good}${good}`,
      Buffer.alloc(31).toString('base64url'),
      Buffer.alloc(33).toString('base64url'),
      '\u0000'.repeat(43),
      '😀'.repeat(43),
    ]) {
      assert.equal(auth.verifyToken(token, B, T), false, JSON.stringify(token));
    }
  });

  test('random tokens never verify and never throw', () => {
    const auth = hmacAuth(secret);
    fc.assert(
      fc.property(fc.string({ maxLength: 100, unit: 'binary' }), (token) => {
        assert.equal(auth.verifyToken(token, B, T), false);
      }),
    );
  });

  test('only the exact token string verifies', () => {
    const auth = hmacAuth(secret);
    const token = auth.authToken(B, T);
    for (const variant of [
      `${token}=`,
      `${token}!!`,
      ` ${token}`,
      token.replaceAll('-', '+').replaceAll('_', '/'),
    ]) {
      if (variant !== token) assert.equal(auth.verifyToken(variant, B, T), false, variant);
    }
  });

  test('a secret shorter than 16 bytes is refused', () => {
    assert.throws(() => hmacAuth('fifteen-chars!!'), RangeError);
    assert.throws(() => hmacAuth(new Uint8Array(15)), RangeError);
    assert.throws(() => hmacAuth(''), RangeError);
    assert.doesNotThrow(() => hmacAuth('sixteen-chars!!!'));
    assert.doesNotThrow(() => hmacAuth(new Uint8Array(16)));
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
