// Rendezvous hashing: every node computes the same order for a key, byte-exact with Gantry.
// The golden digests were computed with coreutils (`printf '%s%s' NODE KEY | sha256sum`),
// not with node:crypto, so they check the input encoding as well as the hash.

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import {
  compareCandidates,
  compareNodeIds,
  compareScores,
  hrwRank,
  hrwScore,
  hrwTopK,
  rankOf,
} from '../../src/coord/hrw.ts';

const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const HELLO_DIGEST = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

const goldenVectors: readonly { nodeId: string; key: string; sha256: string }[] = [
  {
    nodeId: 'node-a',
    key: EMPTY_DIGEST,
    sha256: '024e986b81af4c91f38a92541b9895da1f6d868b624adb11198407dd779f8d6f',
  },
  {
    nodeId: 'node-b',
    key: EMPTY_DIGEST,
    sha256: '39cc1768299d06c9e51624f636137226e4b600fb054c8d95debe412bd56df81d',
  },
  {
    nodeId: 'node-a',
    key: HELLO_DIGEST,
    sha256: 'e4df0851b078e038a771f42a3657438f50bb139488fb3ca9919804032c47b8b9',
  },
  {
    nodeId: 'worker-7.zone-b',
    key: HELLO_DIGEST,
    sha256: '7aa423db98f0e524ec82ecc79840b36dd7d96bcd07a14ed09812b9131e07ad4d',
  },
  {
    nodeId: 'nœud-é',
    key: EMPTY_DIGEST,
    sha256: 'a528a3bea8b19ef01946b363ef2d44c37183c8c0cd68277adb3f5f64515d90a1',
  },
  { nodeId: 'node-a', key: '', sha256: '66570ff05a2074043084d4aca94293ef067530dde94ff4e92b8d8459253eb779' },
];

const EIGHT_NODES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e', 'node-f', 'node-g', 'node-h'];
// From `sha256sum` over each node with HELLO_DIGEST, sorted by digest, highest first.
const EIGHT_NODES_RANKED_FOR_HELLO = [
  'node-e',
  'node-a',
  'node-f',
  'node-h',
  'node-c',
  'node-d',
  'node-g',
  'node-b',
];

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

// A naive reference order: hex digests compare like their bytes; ties by UTF-8 bytes of the id.
function referenceRank(nodes: readonly string[], key: string): string[] {
  const scored = [...new Set(nodes)].map((nodeId) => ({
    nodeId,
    hex: createHash('sha256')
      .update(Buffer.from(nodeId + key, 'utf8'))
      .digest('hex'),
  }));
  scored.sort((a, b) =>
    a.hex !== b.hex ? (a.hex < b.hex ? 1 : -1) : Buffer.compare(Buffer.from(b.nodeId), Buffer.from(a.nodeId)),
  );
  return scored.map((s) => s.nodeId);
}

const nodeSets = fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 40 });
const keys = fc.string({ unit: 'binary', maxLength: 80 });

describe('hrwScore', () => {
  test('golden vectors: the score is SHA-256 of the node id followed by the key, as sha256sum computes it', () => {
    for (const { nodeId, key, sha256 } of goldenVectors) {
      assert.equal(hex(hrwScore(nodeId, key)), sha256, `${nodeId} / ${key}`);
    }
  });

  test('the same node and key always give the same 32-byte score', () => {
    const first = hrwScore('node-a', HELLO_DIGEST);
    assert.equal(first.length, 32);
    assert.deepEqual(hrwScore('node-a', HELLO_DIGEST), first);
    assert.notDeepEqual(hrwScore('node-b', HELLO_DIGEST), first);
  });

  test('there is no separator: only the concatenated bytes count', () => {
    assert.deepEqual(hrwScore('node-', `a${EMPTY_DIGEST}`), hrwScore('node-a', EMPTY_DIGEST));
  });

  test('a non-string or ill-formed node id or key is a TypeError, never a silent score', () => {
    assert.throws(() => hrwScore(42 as unknown as string, EMPTY_DIGEST), TypeError);
    assert.throws(() => hrwScore('node-a', undefined as unknown as string), TypeError);
    assert.throws(() => hrwScore('node-\uD800', EMPTY_DIGEST), /lone surrogate/);
  });
});

describe('ranking order', () => {
  test('a higher score outranks a lower one, byte by byte from the first', () => {
    assert.ok(compareScores(Uint8Array.of(1, 0), Uint8Array.of(0, 255)) > 0);
    assert.ok(compareScores(Uint8Array.of(0, 255), Uint8Array.of(1, 0)) < 0);
    assert.equal(compareScores(Uint8Array.of(7, 7), Uint8Array.of(7, 7)), 0);
  });

  test('on equal scores the lexically larger node id wins', () => {
    const score = hrwScore('any', 'key');
    const a = { nodeId: 'node-a', score };
    const b = { nodeId: 'node-b', score };
    assert.ok(compareCandidates(b, a) > 0);
    assert.ok(compareCandidates(a, b) < 0);
    assert.equal(compareCandidates(a, { nodeId: 'node-a', score: Uint8Array.from(score) }), 0);
    // A prefix loses to the longer id.
    assert.ok(compareCandidates({ nodeId: 'node-aa', score }, a) > 0);
  });

  test('the score decides before the node id does', () => {
    const low = { nodeId: 'zzz', score: new Uint8Array(32) };
    const high = { nodeId: 'aaa', score: new Uint8Array(32).fill(1) };
    assert.ok(compareCandidates(high, low) > 0);
  });

  test('node ids tie-break in UTF-8 byte order (as Go compares strings), not UTF-16 order', () => {
    // U+10000 encodes as F0 90 80 80 and U+FFFF as EF BF BF, so U+10000 is larger, though as a
    // JavaScript string ('\uD800\uDC00') it sorts below '\uFFFF'.
    const astral: string = '\u{10000}';
    const lastOfBmp: string = '\uFFFF';
    assert.ok(astral < lastOfBmp);
    assert.ok(compareNodeIds(astral, lastOfBmp) > 0);
    const score = new Uint8Array(32);
    assert.ok(compareCandidates({ nodeId: 'n\u{1F600}', score }, { nodeId: 'n\uFF01', score }) > 0);
  });

  test('node id order is the order of their UTF-8 bytes for any ids (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        const expected = Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
        assert.equal(Math.sign(compareNodeIds(a, b)), expected);
      }),
      { seed: 0x68727701, numRuns: 2_000 },
    );
  });
});

describe('hrwRank, hrwTopK and rankOf', () => {
  test('golden order: the top three of eight nodes for one key', () => {
    assert.deepEqual(hrwTopK(EIGHT_NODES, HELLO_DIGEST, 3), ['node-e', 'node-a', 'node-f']);
    assert.deepEqual(hrwRank(EIGHT_NODES, HELLO_DIGEST), EIGHT_NODES_RANKED_FOR_HELLO);
  });

  test('top-K is the first K of the full order, whatever the input order (property)', () => {
    fc.assert(
      fc.property(
        nodeSets,
        keys,
        fc.integer({ min: -2, max: 45 }),
        fc.integer(),
        (nodes, key, k, shuffleSeed) => {
          const expected = referenceRank(nodes, key);
          assert.deepEqual(hrwRank(nodes, key), expected);
          const top = hrwTopK(nodes, key, k);
          assert.deepEqual(top, expected.slice(0, Math.max(k, 0)));
          assert.deepEqual(hrwTopK(shuffled(nodes, shuffleSeed), key, k), top);
          assert.deepEqual(hrwRank(shuffled(nodes, shuffleSeed), key), expected);
        },
      ),
      { seed: 0x68727702, numRuns: 300 },
    );
  });

  test('rankOf is the index in the full order, and -1 for a node not in the set (property)', () => {
    fc.assert(
      fc.property(nodeSets, keys, (nodes, key) => {
        const ranked = hrwRank(nodes, key);
        for (const [index, nodeId] of ranked.entries()) assert.equal(rankOf(nodes, key, nodeId), index);
        if (!nodes.includes('absent')) assert.equal(rankOf(nodes, key, 'absent'), -1);
      }),
      { seed: 0x68727703, numRuns: 200 },
    );
  });

  test('no nodes gives an empty ranking', () => {
    assert.deepEqual(hrwRank([], EMPTY_DIGEST), []);
    assert.deepEqual(hrwTopK([], EMPTY_DIGEST, 3), []);
    assert.equal(rankOf([], EMPTY_DIGEST, 'node-a'), -1);
  });

  test('fewer nodes than K gives all of them, best first', () => {
    assert.deepEqual(hrwTopK(['node-b', 'node-a'], HELLO_DIGEST, 3), ['node-a', 'node-b']);
    assert.deepEqual(hrwTopK(EIGHT_NODES, HELLO_DIGEST, Infinity), EIGHT_NODES_RANKED_FOR_HELLO);
  });

  test('K of zero or less gives no nodes', () => {
    assert.deepEqual(hrwTopK(EIGHT_NODES, HELLO_DIGEST, 0), []);
    assert.deepEqual(hrwTopK(EIGHT_NODES, HELLO_DIGEST, -1), []);
    assert.deepEqual(hrwTopK(EIGHT_NODES, HELLO_DIGEST, -Infinity), []);
  });

  test('a node listed twice is counted once', () => {
    const twice = [...EIGHT_NODES, 'node-e', 'node-a', 'node-e'];
    assert.deepEqual(hrwTopK(twice, HELLO_DIGEST, 3), ['node-e', 'node-a', 'node-f']);
    assert.deepEqual(hrwRank(twice, HELLO_DIGEST), EIGHT_NODES_RANKED_FOR_HELLO);
    assert.equal(rankOf(twice, HELLO_DIGEST, 'node-b'), 7);
  });

  test('bad input is rejected with a TypeError or RangeError naming it', () => {
    const withNumber = ['node-a', 7] as unknown as string[];
    assert.throws(() => hrwRank(withNumber, EMPTY_DIGEST), /node id must be a string, got number/);
    assert.throws(() => hrwTopK(withNumber, EMPTY_DIGEST, 1), TypeError);
    assert.throws(() => rankOf(withNumber, EMPTY_DIGEST, 'node-a'), TypeError);
    assert.throws(() => rankOf(EIGHT_NODES, EMPTY_DIGEST, null as unknown as string), /got null/);
    assert.throws(() => hrwRank('node-a' as unknown as string[], EMPTY_DIGEST), /must be an array/);
    assert.throws(() => hrwTopK(EIGHT_NODES, EMPTY_DIGEST, Number.NaN), TypeError);
    assert.throws(() => hrwTopK(EIGHT_NODES, EMPTY_DIGEST, '3' as unknown as number), TypeError);
    assert.throws(() => hrwTopK(EIGHT_NODES, EMPTY_DIGEST, 1.5), RangeError);
  });
});

// A deterministic Fisher–Yates shuffle, so a failing case replays from fast-check's seed.
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
