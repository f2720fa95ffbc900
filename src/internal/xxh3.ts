// XXH3-64 (seed 0, default secret) in plain JavaScript, written from the xxHash specification
// (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md). It gives the same values as
// the native `@node-rs/xxhash` and stands in for it when that optional package is absent.
//
// JavaScript has no cheap 64-bit integer, so every 64-bit value is carried as two unsigned
// 32-bit halves (`hi`, `lo`). Products come from `Math.imul` (the low 32 bits) and `mulHi32`
// (the high 32 bits, from 16-bit pieces whose products stay exact in a double); carries come
// from sums done in doubles, which are exact below 2^53. No BigInt is made unless the caller
// asks for the full 64-bit value.
//
// The algorithm has one branch per length class: 0, 1–3, 4–8, 9–16, 17–128, 129–240 bytes,
// and longer inputs, which run eight accumulators over 64-byte stripes in 1024-byte blocks.

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME64_1_HI = 0x9e3779b1;
const PRIME64_1_LO = 0x85ebca87;
const PRIME64_2_HI = 0xc2b2ae3d;
const PRIME64_2_LO = 0x27d4eb4f;
const PRIME64_3_HI = 0x165667b1;
const PRIME64_3_LO = 0x9e3779f9;
const PRIME64_4_HI = 0x85ebca77;
const PRIME64_4_LO = 0xc2b2ae63;
const PRIME64_5_HI = 0x27d4eb2f;
const PRIME64_5_LO = 0x165667c5;
const PRIME_MX1_HI = 0x16566791;
const PRIME_MX1_LO = 0x9e3779f9;
const PRIME_MX2_HI = 0x9fb21c65;
const PRIME_MX2_LO = 0x1e98df25;

const TWO_POW_32 = 0x1_0000_0000;

// prettier-ignore
const DEFAULT_SECRET = new Uint8Array([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
]);

const SECRET_SIZE = DEFAULT_SECRET.length;
const STRIPE_LEN = 64;
const STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE_LEN) / 8;
const BLOCK_LEN = STRIPE_LEN * STRIPES_PER_BLOCK;
// The secret offsets the specification names for the medium and long paths.
const MID_START_OFFSET = 3;
const MID_LAST_OFFSET = 119;
const LAST_STRIPE_OFFSET = SECRET_SIZE - STRIPE_LEN - 7;
const SCRAMBLE_OFFSET = SECRET_SIZE - STRIPE_LEN;
const MERGE_OFFSET = 11;

/** The little-endian u32 of `bytes` at `p`. */
function readU32(bytes: Uint8Array, p: number): number {
  return (
    ((bytes[p] as number) |
      ((bytes[p + 1] as number) << 8) |
      ((bytes[p + 2] as number) << 16) |
      ((bytes[p + 3] as number) << 24)) >>>
    0
  );
}

// SECRET[o] is the secret's little-endian u32 at byte offset o: the specification reads it at
// odd offsets (3, 11, 119, 121), so every offset is tabled, not just the aligned ones.
const SECRET = new Uint32Array(SECRET_SIZE - 3);
for (let o = 0; o < SECRET.length; o++) SECRET[o] = readU32(DEFAULT_SECRET, o);

function secret(o: number): number {
  return SECRET[o] as number;
}

/** The high 32 bits of the 64-bit product of two u32s (int32 bit patterns are read as unsigned). */
function mulHi32(a: number, b: number): number {
  const bu = b >>> 0;
  // a·b = (aHi16·b)·2^16 + aLo16·b; both partial products are below 2^48, so exact.
  const low = (a & 0xffff) * bu;
  const high = (a >>> 16) * bu;
  return Math.floor((high + Math.floor(low / 0x1_0000)) / 0x1_0000);
}

// JavaScript returns one number cheaply, not two: the 64-bit helpers below leave their result's
// halves in `out` and the caller reads them at once, before the next helper call overwrites them.
// A typed array, not two `let`s: a module variable holding a number above 2^30 is a heap object,
// and a store to it allocates (it made the medium path twice as slow).
const out = new Uint32Array(2);

function outLo(): number {
  return out[0] as number;
}

function outHi(): number {
  return out[1] as number;
}

/** out = a·b mod 2^64. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  out[0] = Math.imul(aLo, bLo) >>> 0;
  out[1] = (mulHi32(aLo, bLo) + Math.imul(aLo, bHi) + Math.imul(aHi, bLo)) >>> 0;
}

/** out = low 64 bits xor high 64 bits of the full 128-bit product a·b. */
function mulFold64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  // The product's 32-bit words are w0..w3; each column sum stays below 2^34, exact in a double.
  const w0 = Math.imul(aLo, bLo);
  const s1 = mulHi32(aLo, bLo) + (Math.imul(aLo, bHi) >>> 0) + (Math.imul(aHi, bLo) >>> 0);
  const s2 =
    mulHi32(aLo, bHi) + mulHi32(aHi, bLo) + (Math.imul(aHi, bHi) >>> 0) + Math.floor(s1 / TWO_POW_32);
  const w3 = mulHi32(aHi, bHi) + Math.floor(s2 / TWO_POW_32);
  // `^` keeps the low 32 bits of s1 and s2, which are w1 and w2.
  out[0] = (w0 ^ s2) >>> 0;
  out[1] = (s1 ^ w3) >>> 0;
}

/** out = the specification's `avalanche` (XXH3's own final mix). */
function avalanche(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 5)) >>> 0; // x ^= x >> 37
  mul64(hi, lo, PRIME_MX1_HI, PRIME_MX1_LO);
  out[0] = (outLo() ^ outHi()) >>> 0; // x ^= x >> 32
}

/** out = the specification's `avalanche_XXH64` (XXH64's final mix). */
function avalancheXxh64(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 1)) >>> 0; // x ^= x >> 33
  mul64(hi, lo, PRIME64_2_HI, PRIME64_2_LO);
  lo = (outLo() ^ ((outLo() >>> 29) | (outHi() << 3))) >>> 0; // x ^= x >> 29
  hi = (outHi() ^ (outHi() >>> 29)) >>> 0;
  mul64(hi, lo, PRIME64_3_HI, PRIME64_3_LO);
  out[0] = (outLo() ^ outHi()) >>> 0; // x ^= x >> 32
}

function hashEmpty(): void {
  avalancheXxh64(secret(60) ^ secret(68), secret(56) ^ secret(64));
}

function hash1to3(bytes: Uint8Array, len: number): void {
  const combined =
    (bytes[len - 1] as number) |
    (len << 8) |
    ((bytes[0] as number) << 16) |
    ((bytes[len >> 1] as number) << 24);
  avalancheXxh64(0, secret(0) ^ secret(4) ^ combined);
}

function hash4to8(bytes: Uint8Array, len: number): void {
  // value = (secret[8:16] xor secret[16:24]) xor (inputFirst << 32 | inputLast)
  let hi = (secret(12) ^ secret(20) ^ readU32(bytes, 0)) >>> 0;
  let lo = (secret(8) ^ secret(16) ^ readU32(bytes, len - 4)) >>> 0;
  // value ^= (value <<< 49) ^ (value <<< 24)
  const rot49Hi = (lo << 17) | (hi >>> 15);
  const rot49Lo = (hi << 17) | (lo >>> 15);
  const rot24Hi = (hi << 24) | (lo >>> 8);
  const rot24Lo = (lo << 24) | (hi >>> 8);
  hi = (hi ^ rot49Hi ^ rot24Hi) >>> 0;
  lo = (lo ^ rot49Lo ^ rot24Lo) >>> 0;
  mul64(hi, lo, PRIME_MX2_HI, PRIME_MX2_LO);
  // value ^= (value >> 35) + len: the sum is below 2^30, so it never carries into the high half.
  mul64(outHi(), (outLo() ^ ((outHi() >>> 3) + len)) >>> 0, PRIME_MX2_HI, PRIME_MX2_LO);
  // value ^= value >> 28
  out[0] = (outLo() ^ ((outLo() >>> 28) | (outHi() << 4))) >>> 0;
  out[1] = (outHi() ^ (outHi() >>> 28)) >>> 0;
}

function bswap32(x: number): number {
  return ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) >>> 0;
}

function hash9to16(bytes: Uint8Array, len: number): void {
  const lowLo = (secret(24) ^ secret(32) ^ readU32(bytes, 0)) >>> 0;
  const lowHi = (secret(28) ^ secret(36) ^ readU32(bytes, 4)) >>> 0;
  const highLo = (secret(40) ^ secret(48) ^ readU32(bytes, len - 8)) >>> 0;
  const highHi = (secret(44) ^ secret(52) ^ readU32(bytes, len - 4)) >>> 0;
  mulFold64(lowHi, lowLo, highHi, highLo);
  // value = len + bswap64(low) + high + fold(low · high), summed a half at a time.
  const sumLo = len + bswap32(lowHi) + highLo + outLo();
  const sumHi = bswap32(lowLo) + highHi + outHi() + Math.floor(sumLo / TWO_POW_32);
  avalanche(sumHi >>> 0, sumLo >>> 0);
}

/** out = the specification's `mixStep` (seed 0) of the 16 bytes at `p` with the secret at `s`. */
function mix16(bytes: Uint8Array, p: number, s: number): void {
  mulFold64(
    readU32(bytes, p + 4) ^ secret(s + 4),
    readU32(bytes, p) ^ secret(s),
    readU32(bytes, p + 12) ^ secret(s + 12),
    readU32(bytes, p + 8) ^ secret(s + 8),
  );
}

// The medium paths add up to 16 mixes into one 64-bit accumulator. Its halves are summed apart
// as plain numbers, exact while below 2^53 (16 terms below 2^32 each stay under 2^36), and the
// carry from the low half is settled once, at the end.

function hash17to128(bytes: Uint8Array, len: number): void {
  mul64(0, len, PRIME64_1_HI, PRIME64_1_LO);
  let sumHi = outHi();
  let sumLo = outLo();
  const rounds = ((len - 1) >> 5) + 1;
  for (let i = rounds - 1; i >= 0; i--) {
    mix16(bytes, i * 16, i * 32);
    sumHi += outHi();
    sumLo += outLo();
    mix16(bytes, len - i * 16 - 16, i * 32 + 16);
    sumHi += outHi();
    sumLo += outLo();
  }
  avalanche((sumHi + Math.floor(sumLo / TWO_POW_32)) >>> 0, sumLo >>> 0);
}

function hash129to240(bytes: Uint8Array, len: number): void {
  mul64(0, len, PRIME64_1_HI, PRIME64_1_LO);
  let sumHi = outHi();
  let sumLo = outLo();
  for (let i = 0; i < 8; i++) {
    mix16(bytes, i * 16, i * 16);
    sumHi += outHi();
    sumLo += outLo();
  }
  avalanche((sumHi + Math.floor(sumLo / TWO_POW_32)) >>> 0, sumLo >>> 0);
  sumHi = outHi();
  sumLo = outLo();
  const chunks = len >> 4;
  for (let i = 8; i < chunks; i++) {
    mix16(bytes, i * 16, (i - 8) * 16 + MID_START_OFFSET);
    sumHi += outHi();
    sumLo += outLo();
  }
  mix16(bytes, len - 16, MID_LAST_OFFSET);
  sumHi += outHi();
  sumLo += outLo();
  avalanche((sumHi + Math.floor(sumLo / TWO_POW_32)) >>> 0, sumLo >>> 0);
}

// The long-input accumulators: lane i's low half at [2i], its high half at [2i + 1]. Halves are
// added to without carrying: at most 16 stripes pass between two settles, each adding two terms
// below 2^32 to a half, so a half stays below 2^38 and exact in a double. `settleLanes` then
// moves each low half's carry into its high half, before the lanes are scrambled or merged.
// Like `out`, this state is shared between calls: hashing is synchronous and never re-entered.
const lanes = new Float64Array(16);
// prettier-ignore
const INITIAL_LANES = [
  PRIME32_3, 0, PRIME64_1_LO, PRIME64_1_HI, PRIME64_2_LO, PRIME64_2_HI, PRIME64_3_LO, PRIME64_3_HI,
  PRIME64_4_LO, PRIME64_4_HI, PRIME32_2, 0, PRIME64_5_LO, PRIME64_5_HI, PRIME32_1, 0,
];

/** The specification's `accumulate` for the stripe at `p` and the secret at `s`. */
function accumulateStripe(view: DataView, p: number, s: number): void {
  for (let i = 0; i < 8; i++) {
    const dataLo = view.getUint32(p + 8 * i, true);
    const dataHi = view.getUint32(p + 8 * i + 4, true);
    // The keyed value is only ever multiplied low half by high half: a 32×32 → 64 product.
    const keyLo = dataLo ^ secret(s + 8 * i);
    const keyHi = dataHi ^ secret(s + 8 * i + 4);
    const other = 2 * (i ^ 1);
    lanes[other] = (lanes[other] as number) + dataLo;
    lanes[other + 1] = (lanes[other + 1] as number) + dataHi;
    lanes[2 * i] = (lanes[2 * i] as number) + (Math.imul(keyLo, keyHi) >>> 0);
    lanes[2 * i + 1] = (lanes[2 * i + 1] as number) + mulHi32(keyLo, keyHi);
  }
}

/** Brings every lane back to two u32 halves: carries the low half's excess into the high half, mod 2^64. */
function settleLanes(): void {
  for (let k = 0; k < 16; k += 2) {
    const lo = lanes[k] as number;
    lanes[k] = lo >>> 0;
    lanes[k + 1] = ((lanes[k + 1] as number) + Math.floor(lo / TWO_POW_32)) >>> 0;
  }
}

/** The specification's `round_scramble`, on settled lanes. */
function scramble(): void {
  for (let i = 0; i < 8; i++) {
    const hi = lanes[2 * i + 1] as number;
    const lo = ((lanes[2 * i] as number) ^ (hi >>> 15) ^ secret(SCRAMBLE_OFFSET + 8 * i)) >>> 0; // ^= x >> 47
    const keyedHi = hi ^ secret(SCRAMBLE_OFFSET + 8 * i + 4);
    // x · PRIME32_1 mod 2^64, PRIME32_1 having no high half.
    lanes[2 * i] = Math.imul(lo, PRIME32_1) >>> 0;
    lanes[2 * i + 1] = (mulHi32(lo, PRIME32_1) + Math.imul(keyedHi, PRIME32_1)) >>> 0;
  }
}

function hashLong(bytes: Uint8Array, len: number): void {
  // A DataView reads a u32 in one bounds-checked load, which makes this path about a third
  // faster than byte reads; below 241 bytes, making the view costs more than it saves.
  const view = new DataView(bytes.buffer, bytes.byteOffset, len);
  lanes.set(INITIAL_LANES);

  // Every full block but the last is accumulated and scrambled; the last block, even a full
  // one, is left for the final round, which ends on the input's last 64 bytes.
  const blocks = Math.floor((len - 1) / BLOCK_LEN);
  for (let b = 0; b < blocks; b++) {
    const start = b * BLOCK_LEN;
    for (let n = 0; n < STRIPES_PER_BLOCK; n++) accumulateStripe(view, start + n * STRIPE_LEN, n * 8);
    settleLanes();
    scramble();
  }
  const lastStart = blocks * BLOCK_LEN;
  const stripes = Math.floor((len - 1 - lastStart) / STRIPE_LEN);
  for (let n = 0; n < stripes; n++) accumulateStripe(view, lastStart + n * STRIPE_LEN, n * 8);
  accumulateStripe(view, len - STRIPE_LEN, LAST_STRIPE_OFFSET);
  settleLanes();

  // finalMerge(len · PRIME64_1, 11); len may pass 2^32, so it is split into halves too.
  mul64(Math.floor(len / TWO_POW_32) >>> 0, len >>> 0, PRIME64_1_HI, PRIME64_1_LO);
  let sumHi = outHi();
  let sumLo = outLo();
  for (let i = 0; i < 4; i++) {
    const s = MERGE_OFFSET + 16 * i;
    mulFold64(
      (lanes[4 * i + 1] as number) ^ secret(s + 4),
      (lanes[4 * i] as number) ^ secret(s),
      (lanes[4 * i + 3] as number) ^ secret(s + 12),
      (lanes[4 * i + 2] as number) ^ secret(s + 8),
    );
    sumHi += outHi();
    sumLo += outLo();
  }
  avalanche((sumHi + Math.floor(sumLo / TWO_POW_32)) >>> 0, sumLo >>> 0);
}

/** Leaves XXH3-64 of `bytes` in `out`. */
function hash(bytes: Uint8Array): void {
  const len = bytes.length;
  if (len <= 16) {
    if (len > 8) hash9to16(bytes, len);
    else if (len >= 4) hash4to8(bytes, len);
    else if (len > 0) hash1to3(bytes, len);
    else hashEmpty();
  } else if (len <= 128) {
    hash17to128(bytes, len);
  } else if (len <= 240) {
    hash129to240(bytes, len);
  } else {
    hashLong(bytes, len);
  }
}

/** The low 32 bits of XXH3-64 (seed 0) of `bytes`, as an unsigned number. */
export function xxh3Low32(bytes: Uint8Array): number {
  hash(bytes);
  return outLo();
}

/** XXH3-64 (seed 0) of `bytes`. */
export function xxh3_64(bytes: Uint8Array): bigint {
  hash(bytes);
  return (BigInt(outHi()) << 32n) | BigInt(outLo());
}
