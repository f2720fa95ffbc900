// The JavaScript XXH3-64 against three references: the values xxHash publishes, the native
// @node-rs/xxhash it stands in for, and a naive BigInt transcription of the specification kept
// here (a second reading of the specification, without the 32-bit-halves arithmetic to get
// wrong). Content is random but seeded, so a failure names a length that reproduces.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { xxh3 } from '@node-rs/xxhash';
import fc from 'fast-check';

import { xxh3_64, xxh3Low32 } from '../../src/internal/xxh3.ts';

/** `length` bytes from a xorshift32 generator started at `seed` (non-zero). */
function seededBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function hex(value: bigint): string {
  return `0x${value.toString(16).padStart(16, '0')}`;
}

function low32(value: bigint): number {
  return Number(BigInt.asUintN(32, value));
}

// ---------------------------------------------------------------------------------------
// The reference: the specification's pseudo-code in BigInt, one step per line, no shortcuts.

const MASK64 = (1n << 64n) - 1n;
const R_PRIME32_1 = 0x9e3779b1n;
const R_PRIME32_2 = 0x85ebca77n;
const R_PRIME32_3 = 0xc2b2ae3dn;
const R_PRIME64_1 = 0x9e3779b185ebca87n;
const R_PRIME64_2 = 0xc2b2ae3d27d4eb4fn;
const R_PRIME64_3 = 0x165667b19e3779f9n;
const R_PRIME64_4 = 0x85ebca77c2b2ae63n;
const R_PRIME64_5 = 0x27d4eb2f165667c5n;
const R_PRIME_MX1 = 0x165667919e3779f9n;
const R_PRIME_MX2 = 0x9fb21c651e98df25n;

const R_SECRET = Buffer.from(
  'b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f' +
    'cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c' +
    '3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8' +
    'a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364' +
    'eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e' +
    '2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e',
  'hex',
);

function readLE(bytes: Uint8Array, offset: number, width: number): bigint {
  let value = 0n;
  for (let i = width - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i] as number);
  return value;
}

const r64 = (bytes: Uint8Array, offset: number): bigint => readLE(bytes, offset, 8);
const s64 = (offset: number): bigint => readLE(R_SECRET, offset, 8);
const s32 = (offset: number): bigint => readLE(R_SECRET, offset, 4);
const mul = (a: bigint, b: bigint): bigint => (a * b) & MASK64;
const add = (...values: bigint[]): bigint => values.reduce((a, b) => a + b, 0n) & MASK64;
const rotl = (x: bigint, n: bigint): bigint => ((x << n) | (x >> (64n - n))) & MASK64;
const bswap64 = (x: bigint): bigint => readLE(Buffer.from(x.toString(16).padStart(16, '0'), 'hex'), 0, 8);

function refAvalanche(x: bigint): bigint {
  x ^= x >> 37n;
  x = mul(x, R_PRIME_MX1);
  return x ^ (x >> 32n);
}

function refAvalancheXxh64(x: bigint): bigint {
  x ^= x >> 33n;
  x = mul(x, R_PRIME64_2);
  x ^= x >> 29n;
  x = mul(x, R_PRIME64_3);
  return x ^ (x >> 32n);
}

function refMixStep(bytes: Uint8Array, offset: number, secretOffset: number): bigint {
  const product = (r64(bytes, offset) ^ s64(secretOffset)) * (r64(bytes, offset + 8) ^ s64(secretOffset + 8));
  return (product & MASK64) ^ (product >> 64n);
}

function referenceXxh3_64(input: Uint8Array): bigint {
  const len = input.length;
  const bigLen = BigInt(len);
  if (len === 0) return refAvalancheXxh64(s64(56) ^ s64(64));
  if (len <= 3) {
    const combined =
      BigInt(input[len - 1] as number) |
      (bigLen << 8n) |
      (BigInt(input[0] as number) << 16n) |
      (BigInt(input[len >> 1] as number) << 24n);
    return refAvalancheXxh64(s32(0) ^ s32(4) ^ combined);
  }
  if (len <= 8) {
    const combined = readLE(input, len - 4, 4) | (readLE(input, 0, 4) << 32n);
    let value = s64(8) ^ s64(16) ^ combined;
    value = value ^ rotl(value, 49n) ^ rotl(value, 24n);
    value = mul(value, R_PRIME_MX2);
    value ^= add(value >> 35n, bigLen);
    value = mul(value, R_PRIME_MX2);
    return value ^ (value >> 28n);
  }
  if (len <= 16) {
    const low = s64(24) ^ s64(32) ^ r64(input, 0);
    const high = s64(40) ^ s64(48) ^ r64(input, len - 8);
    const product = low * high;
    return refAvalanche(add(bigLen, bswap64(low), high, (product & MASK64) ^ (product >> 64n)));
  }
  if (len <= 240) {
    let acc = mul(bigLen, R_PRIME64_1);
    if (len <= 128) {
      for (let i = ((len - 1) >> 5) + 1 - 1; i >= 0; i--) {
        acc = add(acc, refMixStep(input, i * 16, i * 32));
        acc = add(acc, refMixStep(input, len - i * 16 - 16, i * 32 + 16));
      }
    } else {
      for (let i = 0; i < 8; i++) acc = add(acc, refMixStep(input, i * 16, i * 16));
      acc = refAvalanche(acc);
      for (let i = 8; i < len >> 4; i++) acc = add(acc, refMixStep(input, i * 16, (i - 8) * 16 + 3));
      acc = add(acc, refMixStep(input, len - 16, 119));
    }
    return refAvalanche(acc);
  }
  const acc = [
    R_PRIME32_3,
    R_PRIME64_1,
    R_PRIME64_2,
    R_PRIME64_3,
    R_PRIME64_4,
    R_PRIME32_2,
    R_PRIME64_5,
    R_PRIME32_1,
  ];
  const lane = (i: number): bigint => acc[i] as bigint;
  const accumulate = (offset: number, secretOffset: number): void => {
    for (let i = 0; i < 8; i++) {
      const data = r64(input, offset + 8 * i);
      const value = data ^ s64(secretOffset + 8 * i);
      acc[i ^ 1] = add(lane(i ^ 1), data);
      acc[i] = add(lane(i), (value & 0xffffffffn) * (value >> 32n));
    }
  };
  const secretLength = R_SECRET.length;
  const stripesPerBlock = (secretLength - 64) / 8;
  const blockSize = 64 * stripesPerBlock;
  let start = 0;
  while (len - start > blockSize) {
    for (let n = 0; n < stripesPerBlock; n++) accumulate(start + n * 64, n * 8);
    for (let i = 0; i < 8; i++) {
      let x = lane(i);
      x ^= x >> 47n;
      x ^= s64(secretLength - 64 + 8 * i);
      acc[i] = mul(x, R_PRIME32_1);
    }
    start += blockSize;
  }
  const fullStripes = Math.floor((len - start - 1) / 64);
  for (let n = 0; n < fullStripes; n++) accumulate(start + n * 64, n * 8);
  accumulate(len - 64, secretLength - 71);
  let result = mul(bigLen, R_PRIME64_1);
  for (let i = 0; i < 4; i++) {
    const product = (lane(2 * i) ^ s64(11 + 16 * i)) * (lane(2 * i + 1) ^ s64(11 + 16 * i + 8));
    result = add(result, (product & MASK64) ^ (product >> 64n));
  }
  return refAvalanche(result);
}

// ---------------------------------------------------------------------------------------

/** xxHash's sanity-check buffer (cli/xsum_sanity_check.c): byte i is the top byte of PRIME32·PRIME64^i. */
function sanityBuffer(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let generator = 2654435761n;
  for (let i = 0; i < length; i++) {
    bytes[i] = Number(generator >> 56n);
    generator = (generator * 11400714785074694797n) & MASK64;
  }
  return bytes;
}

describe('xxh3_64', () => {
  test('the empty input hashes to the value the specification gives', () => {
    assert.equal(hex(xxh3_64(new Uint8Array(0))), '0x2d06800538d394c2');
    assert.equal(xxh3Low32(new Uint8Array(0)), 0x38d394c2);
  });

  test("xxHash's published seed-0 vectors hold in every length class", () => {
    // Length → XXH3_64bits of the sanity buffer, from xxHash's own self-test.
    const vectors: [number, bigint][] = [
      [0, 0x2d06800538d394c2n],
      [1, 0xc44bdff4074eecdbn],
      [6, 0x27b56a84cd2d7325n],
      [12, 0xa713daf0dfbb77e7n],
      [24, 0xa3fe70bf9d3510ebn],
      [48, 0x397da259ecba1f11n],
      [80, 0xbcdefbbb2c47c90an],
      [195, 0xcd94217ee362ec3an],
      [403, 0xcdeb804d65c6dea4n], // one block, the last stripe overlapping
      [512, 0x617e49599013cb6bn], // one block, ending on a stripe boundary
      [2048, 0xdd59e2c3a5f038e0n], // two blocks, ending on a block boundary
      [2240, 0x6e73a90539cf2948n], // three blocks, ending on a stripe boundary
      [2367, 0xcb37aeb9e5d361edn], // three blocks, the last stripe overlapping
    ];
    const buffer = sanityBuffer(2367);
    for (const [length, expected] of vectors) {
      const bytes = buffer.subarray(0, length);
      assert.equal(hex(xxh3_64(bytes)), hex(expected), `length ${length}`);
      assert.equal(hex(referenceXxh3_64(bytes)), hex(expected), `reference, length ${length}`);
      assert.equal(xxh3Low32(bytes), low32(expected), `low 32 bits, length ${length}`);
    }
  });

  test('every length from 0 to 2100 matches the native hash and the BigInt reference', () => {
    for (let length = 0; length <= 2100; length++) {
      const bytes = seededBytes(length, 0x9e3779b9 ^ length);
      const expected = xxh3.xxh64(bytes);
      assert.equal(hex(xxh3_64(bytes)), hex(expected), `length ${length}`);
      assert.equal(xxh3Low32(bytes), low32(expected), `low 32 bits, length ${length}`);
      assert.equal(hex(referenceXxh3_64(bytes)), hex(expected), `reference, length ${length}`);
    }
  });

  test('all-zero and all-0xff inputs match the native hash, carries and all', () => {
    for (const fill of [0x00, 0xff]) {
      for (const length of [1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 1025, 4096]) {
        const bytes = new Uint8Array(length).fill(fill);
        assert.equal(hex(xxh3_64(bytes)), hex(xxh3.xxh64(bytes)), `0x${fill.toString(16)} × ${length}`);
      }
    }
  });

  test('large inputs of many blocks match the native hash', () => {
    for (const length of [64 * 1024, 1024 * 1024 + 7]) {
      const bytes = seededBytes(length, 0x2545f491);
      const expected = xxh3.xxh64(bytes);
      assert.equal(hex(xxh3_64(bytes)), hex(expected), `length ${length}`);
      assert.equal(xxh3Low32(bytes), low32(expected), `low 32 bits, length ${length}`);
    }
  });

  test('a view into a larger buffer hashes only its own bytes', () => {
    const backing = Buffer.from(seededBytes(700, 7));
    for (const [start, end] of [
      [1, 14],
      [3, 200],
      [5, 650],
    ] as const) {
      const view = backing.subarray(start, end);
      assert.equal(hex(xxh3_64(view)), hex(xxh3.xxh64(Uint8Array.from(view))), `[${start}, ${end})`);
    }
  });

  test('random byte arrays hash as the native hash does', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 16 }),
      fc.uint8Array({ minLength: 17, maxLength: 240 }),
      fc.uint8Array({ minLength: 241, maxLength: 5000 }),
    );
    fc.assert(
      fc.property(bytes, (input) => {
        const expected = xxh3.xxh64(input);
        assert.equal(hex(xxh3_64(input)), hex(expected));
        assert.equal(xxh3Low32(input), low32(expected));
      }),
      { seed: 0x5eed_1234, numRuns: 2_000 },
    );
  });
});
