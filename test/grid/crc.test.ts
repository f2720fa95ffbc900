// The frame checksum is CRC-32 with the IEEE polynomial, as zlib and gzip compute it: the
// published check values, and a table-driven CRC-32 written here, over every length up to past
// the point where the native package (optional) takes over from node:zlib, with it and without.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

import { crc32OfFrame, frameChecksumImplementation } from '../../src/grid/crc.ts';
import { encodeFrame } from '../../src/grid/frame.ts';
import { Op } from '../../src/grid/protocol.ts';

/** The reflected IEEE 802.3 polynomial. */
const POLYNOMIAL = 0xedb8_8320;

const TABLE = Uint32Array.from({ length: 256 }, (_, index) => {
  let c = index;
  for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
  return c >>> 0;
});

/** CRC-32 one byte at a time, independent of node:zlib. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffff_ffff;
  for (const byte of bytes) crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffff_ffff) >>> 0;
}

const deterministicBytes = (length: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => (i * 131 + length * 7) & 0xff);

describe('crc32OfFrame', () => {
  test('gives the standard CRC-32 check values', () => {
    assert.equal(crc32OfFrame(Buffer.from('123456789', 'ascii')), 0xcbf4_3926);
    assert.equal(referenceCrc32(Buffer.from('123456789', 'ascii')), 0xcbf4_3926);
    assert.equal(crc32OfFrame(new Uint8Array(0)), 0);
  });

  test('returns an unsigned 32-bit number', () => {
    assert.equal(
      crc32OfFrame(Buffer.from('The quick brown fox jumps over the lazy dog', 'ascii')),
      0x414f_a339,
    );
    // CRC-32("a") has its top bit set: a signed result would be negative.
    assert.equal(crc32OfFrame(Buffer.from('a', 'ascii')), 0xe8b7_be43);
  });

  test('agrees with a table-driven CRC-32 over every length from 0 to 2,100 bytes', () => {
    for (let length = 0; length <= 2_100; length++) {
      const bytes = deterministicBytes(length);
      assert.equal(crc32OfFrame(bytes), referenceCrc32(bytes), `length ${length}`);
    }
    const long = deterministicBytes(1 << 20);
    assert.equal(crc32OfFrame(long), referenceCrc32(long), '1 MiB');
  });

  test('without the native package, node:zlib gives every length the same checksum', () => {
    assert.equal(
      frameChecksumImplementation,
      'native',
      'this repository installs the optional native CRC-32',
    );
    const script = `
      import { crc32OfFrame, frameChecksumImplementation } from './src/grid/crc.ts';
      const sums = [];
      for (let length = 0; length <= 2100; length += 7) {
        sums.push(crc32OfFrame(Uint8Array.from({ length }, (_, i) => (i * 131 + length * 7) & 0xff)));
      }
      console.log(JSON.stringify({ implementation: frameChecksumImplementation, sums }));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      encoding: 'utf8',
      env: { ...process.env, WEFT_NATIVE_CRC32: '0' },
    });
    assert.equal(run.status, 0, run.stderr);
    const zlib = JSON.parse(run.stdout) as { implementation: string; sums: number[] };
    assert.equal(zlib.implementation, 'zlib');
    const expected: number[] = [];
    for (let length = 0; length <= 2_100; length += 7)
      expected.push(referenceCrc32(deterministicBytes(length)));
    assert.deepEqual(zlib.sums, expected);
  });

  test('a frame with a CRC ends with the CRC-32 of every earlier byte, little-endian', () => {
    for (let length = 0; length <= 700; length++) {
      const payload = Buffer.from(deterministicBytes(length));
      const message = encodeFrame(
        { muxId: 7, seq: length, deadlineMs: 0, handler: 0, op: Op.Response, flags: 0, payload },
        true,
      );
      const body = message.subarray(0, message.length - 4);
      assert.equal(
        message.readUInt32LE(message.length - 4),
        referenceCrc32(body),
        `payload of ${length} bytes`,
      );
    }
  });
});
