import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { encode as msgpackEncode } from '@msgpack/msgpack';
import fc from 'fast-check';

import { ProtocolError } from '../../src/grid/errors.ts';
import { decodeFrame, decodeMessage, encodeFrame, encodeMerged, type Frame } from '../../src/grid/frame.ts';
import { Manager } from '../../src/grid/manager.ts';
import { Flag, isOp, KNOWN_FLAGS, MERGE_MAX_MESSAGES, Op, opName } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { fuzz, type FuzzBudget } from '../fuzz-budget.ts';

import { bindLoopback, hostDialling, RawPeer } from './raw-peer.ts';

// ---------------------------------------------------------------------------------------
// Golden vectors, read from the wire document so that the document and the codec agree.

const docPath = new URL('../../docs/wire/grid.md', import.meta.url);
const doc = readFileSync(docPath, 'utf8');

/** A frame as the document writes it: bytes as hex, `null` for an absent payload. */
interface PlainFrame {
  readonly muxId: number;
  readonly seq: number;
  readonly deadlineMs: number;
  readonly handler: number;
  readonly op: number;
  readonly flags: number;
  readonly payload: string | null;
  readonly subroute?: string;
}

interface Vector {
  readonly name: string;
  readonly crc: boolean;
  /** One frame, or the frames of a Merged batch. */
  readonly frames: readonly PlainFrame[];
  readonly merged: boolean;
  /** A Merged vector that ends with one CRC over the whole batch. */
  readonly batchCrc: boolean;
  readonly hex: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(map: Record<string, unknown>, key: string, where: string): number {
  const value = map[key];
  if (typeof value !== 'number') throw new Error(`${where}: ${key} must be a number`);
  return value;
}

function hexString(value: unknown, where: string): string {
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value)) throw new Error(`${where}: not hex`);
  return value;
}

function parsePlainFrame(value: unknown, where: string): PlainFrame {
  if (!isRecord(value)) throw new Error(`${where}: a frame is an object`);
  const payload = value['payload'] === null ? null : hexString(value['payload'], `${where}.payload`);
  const frame: PlainFrame = {
    muxId: num(value, 'muxId', where),
    seq: num(value, 'seq', where),
    deadlineMs: num(value, 'deadlineMs', where),
    handler: num(value, 'handler', where),
    op: num(value, 'op', where),
    flags: num(value, 'flags', where),
    payload,
  };
  if (value['subroute'] === undefined) return frame;
  return { ...frame, subroute: hexString(value['subroute'], `${where}.subroute`) };
}

function parseVectors(markdown: string): Vector[] {
  const blocks = [...markdown.matchAll(/```json\n([\s\S]*?)```/g)];
  assert.equal(blocks.length, 1, 'the wire document has exactly one JSON block: the vectors');
  const parsed: unknown = JSON.parse(blocks[0]?.[1] ?? '');
  if (!Array.isArray(parsed)) throw new Error('the vectors are a JSON array');
  return parsed.map((entry: unknown, index) => {
    if (!isRecord(entry)) throw new Error(`vector ${index} is not an object`);
    const name = entry['name'];
    const crc = entry['crc'];
    if (typeof name !== 'string' || typeof crc !== 'boolean') throw new Error(`vector ${index}: name, crc`);
    const hex = hexString(entry['hex'], name);
    if (Array.isArray(entry['frames'])) {
      const frames = entry['frames'].map((f: unknown, i) => parsePlainFrame(f, `${name}[${i}]`));
      return { name, crc, frames, merged: true, batchCrc: entry['batchCrc'] === true, hex };
    }
    return {
      name,
      crc,
      frames: [parsePlainFrame(entry['frame'], name)],
      merged: false,
      batchCrc: false,
      hex,
    };
  });
}

function toFrame(plain: PlainFrame): Frame {
  const op = plain.op;
  if (!isOp(op)) throw new Error(`unknown op ${op}`);
  return {
    muxId: plain.muxId,
    seq: plain.seq,
    deadlineMs: plain.deadlineMs,
    handler: plain.handler,
    op,
    flags: plain.flags,
    payload: plain.payload === null ? undefined : Buffer.from(plain.payload, 'hex'),
    subroute: plain.subroute === undefined ? undefined : Buffer.from(plain.subroute, 'hex'),
  };
}

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A frame in comparable form: bytes as hex, and no `subroute` key when there is none. */
function plain(frame: Frame): PlainFrame {
  const base: PlainFrame = {
    muxId: frame.muxId,
    seq: frame.seq,
    deadlineMs: frame.deadlineMs,
    handler: frame.handler,
    op: frame.op,
    flags: frame.flags,
    payload: frame.payload === undefined ? null : hexOf(frame.payload),
  };
  return frame.subroute === undefined ? base : { ...base, subroute: hexOf(frame.subroute) };
}

function encodeVector(vector: Vector): Buffer {
  const messages = vector.frames.map((f) => encodeFrame(toFrame(f), vector.crc));
  if (vector.merged) return encodeMerged(messages, vector.batchCrc);
  assert.equal(messages.length, 1);
  return messages[0] as Buffer;
}

const vectors = parseVectors(doc);
const vectorNamed = (name: string): Vector => {
  const vector = vectors.find((v) => v.name === name);
  if (vector === undefined) throw new Error(`no vector ${name} in the wire document`);
  return vector;
};
const bytesOf = (name: string): Buffer => Buffer.from(vectorNamed(name).hex, 'hex');

/** Low 32 bits of XXH3-64, computed here rather than by the codec. */
/** CRC-32 (IEEE 802.3, reflected, as zlib), bit by bit: slow, and independent of the codec's. */
function referenceCrc(bytes: Uint8Array): number {
  let crc = 0xffff_ffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb8_8320 & -(crc & 1));
  }
  return (crc ^ 0xffff_ffff) >>> 0;
}

describe('golden vectors of docs/wire/grid.md', () => {
  for (const vector of vectors) {
    test(`${vector.name}: encodes to the documented bytes and decodes back to the documented frame`, () => {
      assert.equal(encodeVector(vector).toString('hex'), vector.hex);
      assert.deepEqual(decodeMessage(Buffer.from(vector.hex, 'hex')).map(plain), vector.frames);
    });
  }

  test('there is a vector for every op and every flag', () => {
    const ops = new Set(vectors.flatMap((v) => (v.merged ? [Op.Merged] : v.frames.map((f) => f.op))));
    for (const op of Object.values(Op)) assert.ok(ops.has(op), `no vector for ${opName(op)}`);
    const flags = vectors.flatMap((v) => v.frames.map((f) => f.flags)).reduce((a, b) => a | b, 0);
    for (const [name, bit] of Object.entries(Flag)) assert.ok((flags & bit) !== 0, `no vector with ${name}`);
  });

  test('the vectors cover nil and empty payloads, bin16 and each width of integer', () => {
    const all = vectors.filter((v) => !v.merged).map((v) => ({ v, f: v.frames[0] as PlainFrame }));
    assert.ok(all.some(({ f }) => f.payload === null));
    assert.ok(all.some(({ f }) => f.payload === ''));
    assert.ok(
      all.some(({ v }) => v.hex.includes('c5012c')),
      'a 300-byte payload',
    );
    for (const lead of ['cc', 'cd', 'ce', 'cf']) {
      assert.ok(
        all.some(({ v }) => v.hex.startsWith(`97${lead}`)),
        `a mux id encoded with 0x${lead}`,
      );
    }
    assert.ok(
      all.some(({ v, f }) => v.crc && f.subroute !== undefined),
      'a subroute frame with a CRC',
    );
  });

  test('the table of vectors shows the same bytes as the JSON block', () => {
    const rows = [...doc.matchAll(/^\|\s*`([a-z0-9-]+)`\s*\|.*\|\s*`([0-9a-f]+)`\s*\|$/gm)];
    const fromTable = new Map(rows.map((m) => [m[1] as string, m[2] as string]));
    assert.deepEqual([...fromTable.keys()].sort(), vectors.map((v) => v.name).sort());
    for (const vector of vectors) assert.equal(fromTable.get(vector.name), vector.hex, vector.name);
  });

  test('each byte-by-byte breakdown adds up to the vector it names', () => {
    const blocks = [...doc.matchAll(/```text\nvector: ([a-z0-9-]+)\n([\s\S]*?)```/g)];
    assert.ok(blocks.length >= 5, 'the document explains several vectors byte by byte');
    for (const [, name, body] of blocks) {
      const bytes = (body ?? '')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const column = line.split(/\s{2,}/)[0] ?? '';
          assert.match(column, /^[0-9a-f]{2}(?: [0-9a-f]{2})*$/, `${String(name)}: "${line}"`);
          return column.replaceAll(' ', '');
        })
        .join('');
      assert.equal(bytes, vectorNamed(name ?? '').hex, `breakdown of ${String(name)}`);
    }
  });

  test('each CRC and batch CRC in the vectors is the CRC-32 of the bytes before it, little-endian', () => {
    const messages = vectors
      .filter((v) => v.crc || v.batchCrc)
      .flatMap((v) =>
        v.batchCrc
          ? [Buffer.from(v.hex, 'hex')]
          : v.merged
            ? decodeMergedItems(Buffer.from(v.hex, 'hex'))
            : [Buffer.from(v.hex, 'hex')],
      );
    assert.ok(messages.length > 10);
    for (const message of messages) {
      const body = message.subarray(0, message.length - 4);
      assert.equal(message.readUInt32LE(message.length - 4), referenceCrc(body), hexOf(message));
    }
  });
});

/** The raw items of a Merged message, each a complete message (bin8 items only). */
function decodeMergedItems(message: Buffer): Buffer[] {
  const count = message[2] ?? 0;
  const items: Buffer[] = [];
  let offset = 9;
  for (let i = 0; i < count; i++) {
    assert.equal(message[offset], 0xc4);
    const length = message[offset + 1] ?? 0;
    items.push(message.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return items;
}

// ---------------------------------------------------------------------------------------
// Round trips.

const MAX_UINT32 = 0xffff_ffff;
const REPLACED_BY_ENCODER = Flag.CRC | Flag.PayloadIsZero | Flag.Subroute;

const uint32Arb = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: MAX_UINT32 }),
  fc.constantFrom(127, 128, 255, 256, 0xffff, 0x1_0000, MAX_UINT32),
);
const muxIdArb = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.maxSafeNat(),
  fc.constantFrom(0, 127, 128, 0xffff, 0x1_0000, MAX_UINT32, MAX_UINT32 + 1, Number.MAX_SAFE_INTEGER),
);
const opArb = fc.constantFrom(...Object.values(Op).filter((op) => op !== Op.Merged));
const payloadArb = fc.oneof(
  fc.constant(undefined),
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ minLength: 1, maxLength: 64 }),
  fc.uint8Array({ minLength: 250, maxLength: 300 }),
  fc.uint8Array({ maxLength: 5000, size: 'max' }),
);
const frameArb: fc.Arbitrary<Frame> = fc.record({
  muxId: muxIdArb,
  seq: uint32Arb,
  deadlineMs: uint32Arb,
  handler: fc.integer({ min: 0, max: 255 }),
  op: opArb,
  flags: fc.integer({ min: 0, max: KNOWN_FLAGS }),
  payload: payloadArb,
  subroute: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
});

/** What decoding an encoded `frame` gives: the encoder sets CRC, PayloadIsZero and Subroute. */
function expectedAfterRoundTrip(frame: Frame, crc: boolean): PlainFrame {
  let flags = frame.flags & ~REPLACED_BY_ENCODER;
  if (crc) flags |= Flag.CRC;
  if (frame.payload?.length === 0) flags |= Flag.PayloadIsZero;
  if (frame.subroute !== undefined) flags |= Flag.Subroute;
  return plain({ ...frame, flags });
}

/** An independent encoder: a general MessagePack library for the tuple, then the trailers. */
function referenceEncode(frame: Frame, crc: boolean): Buffer {
  const expected = expectedAfterRoundTrip(frame, crc);
  const tuple = msgpackEncode([
    frame.muxId,
    frame.seq,
    frame.deadlineMs,
    frame.handler,
    frame.op,
    expected.flags,
    frame.payload ?? new Uint8Array(0),
  ]);
  const body = Buffer.concat([tuple, frame.subroute ?? new Uint8Array(0)]);
  if (!crc) return body;
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(referenceCrc(body));
  return Buffer.concat([body, trailer]);
}

describe('frame round trips', () => {
  test('any frame decodes to itself, with the flags the encoder sets', () => {
    fc.assert(
      fc.property(frameArb, fc.boolean(), (frame, crc) => {
        const decoded = decodeMessage(encodeFrame(frame, crc));
        assert.deepEqual(decoded.map(plain), [expectedAfterRoundTrip(frame, crc)]);
        assert.deepEqual(plain(decodeFrame(encodeFrame(frame, crc))), expectedAfterRoundTrip(frame, crc));
      }),
      { numRuns: 500 },
    );
  });

  test('encodeFrame writes what a general MessagePack encoder writes, plus the trailers', () => {
    fc.assert(
      fc.property(frameArb, fc.boolean(), (frame, crc) => {
        assert.equal(encodeFrame(frame, crc).toString('hex'), referenceEncode(frame, crc).toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  test('a Merged batch of 1 to 50 frames, with or without a batch CRC, decodes to the same frames in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(frameArb, fc.boolean()), { minLength: 1, maxLength: 50 }),
        fc.boolean(),
        (items, batchCrc) => {
          const message = encodeMerged(
            items.map(([frame, crc]) => encodeFrame(frame, crc)),
            batchCrc,
          );
          assert.deepEqual(
            decodeMessage(message).map(plain),
            items.map(([frame, crc]) => expectedAfterRoundTrip(frame, crc)),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  test('a payload over 65 535 bytes goes out as bin32 and comes back whole', () => {
    const payload = Buffer.alloc(70_000, 0xab);
    const frame: Frame = { muxId: 1, seq: 0, deadlineMs: 0, handler: 0, op: Op.Response, flags: 0, payload };
    const bytes = encodeFrame(frame, true);
    assert.equal(bytes.subarray(7, 12).toString('hex'), 'c600011170');
    const [decoded] = decodeMessage(bytes);
    assert.deepEqual(decoded?.payload, payload);
  });

  test('the decoder accepts integers in wider forms than needed and a nil payload', () => {
    // muxId 5 as uint64, seq 1 as uint32, deadline 2 as uint16, handler 3 as uint8, op 9 as uint8.
    const bytes = Buffer.from('97cf0000000000000005ce00000001cd0002cc03cc0900c0', 'hex');
    assert.deepEqual(decodeMessage(bytes).map(plain), [
      { muxId: 5, seq: 1, deadlineMs: 2, handler: 3, op: Op.MuxClientMsg, flags: 0, payload: null },
    ]);
  });

  test('a non-empty payload keeps its bytes even with PayloadIsZero set', () => {
    const bytes = Buffer.from('97010000000f10c4026869', 'hex');
    assert.equal(hexOf(decodeMessage(bytes)[0]?.payload ?? new Uint8Array()), '6869');
  });
});

// ---------------------------------------------------------------------------------------
// Rejections.

function refuses(bytes: Uint8Array, pattern: RegExp, what = hexOf(bytes)): void {
  assert.throws(
    () => decodeMessage(Buffer.from(bytes)),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError, `${what}: expected a ProtocolError, got ${String(error)}`);
      assert.match(error.message, pattern, what);
      return true;
    },
  );
}

const hex = (s: string): Buffer => Buffer.from(s.replaceAll(' ', ''), 'hex');

describe('messages the decoder refuses', () => {
  test('a message cut short at any byte is refused as truncated', () => {
    let prefixes = 0;
    for (const vector of vectors) {
      const bytes = Buffer.from(vector.hex, 'hex');
      for (let end = 0; end < bytes.length; end++) {
        refuses(bytes.subarray(0, end), /^truncated frame: /, `${vector.name} cut at ${end}`);
        prefixes++;
      }
    }
    assert.ok(prefixes > 1000);
  });

  test('any single-bit flip in a frame with a CRC is caught', () => {
    const crcFrames = vectors.filter((v) => v.crc && !v.merged);
    assert.ok(crcFrames.length > 15);
    for (const vector of crcFrames) {
      const original = Buffer.from(vector.hex, 'hex');
      for (let bit = 0; bit < original.length * 8; bit++) {
        const flipped = Buffer.from(original);
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        refuses(flipped, /./, `${vector.name} with bit ${bit} flipped`);
      }
    }
  });

  test('any single-bit flip inside the messages of a Merged batch is caught', () => {
    const original = bytesOf('merged-two');
    for (let bit = 9 * 8; bit < original.length * 8; bit++) {
      const flipped = Buffer.from(original);
      flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      refuses(flipped, /./, `merged-two with bit ${bit} flipped`);
    }
  });

  test('any single-bit flip in the outer tuple of a Merged batch is caught', () => {
    const original = bytesOf('merged-two');
    for (let bit = 0; bit < 9 * 8; bit++) {
      const flipped = Buffer.from(original);
      flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      refuses(flipped, /./, `merged-two with bit ${bit} flipped`);
    }
  });

  test('a wrong CRC is refused as a CRC mismatch', () => {
    const bytes = bytesOf('request-subroute');
    bytes.writeUInt32LE((bytes.readUInt32LE(bytes.length - 4) + 1) >>> 0, bytes.length - 4);
    refuses(bytes, /^crc mismatch on Request: /);
  });

  test('an unknown op is refused', () => {
    for (const op of ['00', '13', '7f', 'ccc8'])
      refuses(hex(`97 00 00 00 00 ${op} 00 c4 00`), /^unknown op \d+$/);
  });

  test('unknown flag bits are refused', () => {
    for (const flags of ['40', '7f', 'cc80', 'ccff']) {
      refuses(hex(`97 01 00 00 00 0f ${flags} c4 00`), /^unknown flag bits 0x[0-9a-f]+$/);
    }
  });

  test('bytes after the frame are refused', () => {
    refuses(Buffer.concat([bytesOf('response'), hex('00')]), /^1 unexpected bytes after the frame$/);
    refuses(Buffer.concat([bytesOf('response-nil'), hex('c400')]), /^2 unexpected bytes after the frame$/);
    refuses(Buffer.concat([bytesOf('merged-two'), hex('00')]), /^1 unexpected bytes after the merged frame$/);
  });

  test('a mux id above 2^53-1 is refused', () => {
    refuses(hex('97 cf 0020000000000000 00 00 00 09 00 c4 00'), /^muxId exceeds 2\^53-1$/);
    refuses(hex('97 cf ffffffffffffffff 00 00 00 09 00 c4 00'), /^muxId exceeds 2\^53-1$/);
  });

  test('a seq, deadline, handler, op or flags wider than its field is refused', () => {
    refuses(hex('97 07 cf0000000100000000 00 00 09 00 c4 00'), /^seq 4294967296 exceeds 4294967295$/);
    refuses(hex('97 07 00 cf0000000100000000 00 09 00 c4 00'), /^deadlineMs 4294967296 exceeds 4294967295$/);
    refuses(hex('97 07 00 00 cd0100 09 00 c4 00'), /^handler 256 exceeds 255$/);
    refuses(hex('97 07 00 00 00 cd0109 00 c4 00'), /^op 265 exceeds 255$/);
    refuses(hex('97 07 00 00 00 09 cd0101 c4 00'), /^flags 257 exceeds 255$/);
  });

  test('a message that does not start with a 7-element array is refused', () => {
    for (const lead of ['96', '98', 'dc0007', '00', 'c0']) {
      refuses(hex(`${lead} 01 00 00 00 0f 00 c4 00`), /^a frame starts with a 7-element array \(0x97\)$/);
    }
  });

  test('a tuple field that is not an unsigned integer is refused, naming the field', () => {
    refuses(
      hex('97 ff 00 00 00 0f 00 c4 00'),
      /^muxId: expected a MessagePack unsigned integer, found 0xff$/,
    );
    refuses(
      hex('97 01 d0 05 00 00 0f 00 c4 00'),
      /^seq: expected a MessagePack unsigned integer, found 0xd0$/,
    );
    refuses(hex('97 01 00 c0 00 0f 00 c4 00'), /^deadlineMs: expected a MessagePack unsigned integer/);
    refuses(hex('97 01 00 00 ca3f800000 0f 00 c4 00'), /^handler: expected a MessagePack unsigned integer/);
    refuses(hex('97 01 00 00 00 a1 0f 00 c4 00'), /^op: expected a MessagePack unsigned integer/);
    refuses(hex('97 01 00 00 00 0f c3 c4 00'), /^flags: expected a MessagePack unsigned integer/);
  });

  test('a payload that is not bin (or nil) is refused', () => {
    for (const payload of ['a3616263', 'd903616263', '05', '90', '80', 'ca00000000', 'c3', 'd40100']) {
      refuses(
        hex(`97 01 00 00 00 0f 00 ${payload}`),
        /^payload: expected MessagePack bin, found 0x[0-9a-f]+$/,
      );
    }
  });

  test('a Merged batch of 0 or of more than 50 messages is refused', () => {
    refuses(hex('97 00 00 00 00 11 00 c4 00'), /^a merged frame holds 1 to 50 messages, not 0$/);
    const response = bytesOf('response');
    const items = Buffer.concat(Array.from({ length: 51 }, () => Buffer.concat([hex('c411'), response])));
    refuses(
      Buffer.concat([hex('97 00 33 00 00 11 00 c4 00'), items]),
      /^a merged frame holds 1 to 50 messages, not 51$/,
    );
  });

  test('a Merged batch inside a Merged batch is refused', () => {
    refuses(encodeMerged([encodeMerged([bytesOf('response')])]), /./);
    // A nested batch with no items of its own reaches the nesting check.
    refuses(encodeMerged([hex('97 00 00 00 00 11 00 c4 00')]), /^a merged frame cannot contain another$/);
  });

  test('a nested Merged batch is refused with a message that says so', () => {
    refuses(encodeMerged([encodeMerged([bytesOf('response')])]), /^a merged frame cannot contain another$/);
  });

  test('a Merged batch with a mux, flags, a payload or a nil item is refused', () => {
    const item = Buffer.concat([hex('c411'), bytesOf('response')]);
    refuses(
      Buffer.concat([hex('97 01 01 00 00 11 00 c4 00'), item]),
      /^a merged frame has mux 0, no deadline, no handler and no flags but CRC$/,
    );
    refuses(
      Buffer.concat([hex('97 00 01 00 00 11 02 c4 00'), item]),
      /^a merged frame has mux 0, no deadline, no handler and no flags but CRC$/,
    );
    refuses(Buffer.concat([hex('97 00 01 00 00 11 00 c4 01 00'), item]), /^a merged frame has no payload$/);
    refuses(hex('97 00 01 00 00 11 00 c4 00 c0'), /^merged message 0 is nil$/);
    refuses(hex('97 00 01 00 00 11 00 c4 00 a1 00'), /^merged message 0: expected MessagePack bin/);
  });

  test('a batch CRC that does not match refuses the whole batch, whichever byte changed', () => {
    const batch = bytesOf('merged-batch-crc');
    assert.equal(decodeMessage(batch).length, 2);
    for (let i = 0; i < batch.length; i++) {
      if (i === 6) continue; // the flags byte: without CRC the trailer reads as extra bytes
      const changed = Buffer.from(batch);
      changed[i] = (changed[i] as number) ^ 0x01;
      assert.throws(() => decodeMessage(changed), ProtocolError, `byte ${i} changed`);
    }
    // A changed payload byte still parses: only the batch CRC can tell.
    const flipped = Buffer.from(batch);
    flipped[batch.length - 6] = (flipped[batch.length - 6] as number) ^ 0x20;
    refuses(flipped, /^crc mismatch on Merged: batch says \d+, bytes give \d+$/);
    refuses(Buffer.concat([batch, hex('00')]), /^1 unexpected bytes after the merged frame$/);
    // Without the CRC flag the same bytes end in four bytes no item accounts for.
    const unflagged = Buffer.from(batch);
    unflagged[6] = 0;
    refuses(unflagged, /^4 unexpected bytes after the merged frame$/);
  });

  test('a frame with a CRC of its own inside a checksummed batch is checked too', () => {
    const own = Buffer.from(bytesOf('response'));
    own[own.length - 1] = (own[own.length - 1] as number) ^ 0xff;
    refuses(encodeMerged([own], true), /^crc mismatch on Response/);
    assert.equal(decodeMessage(encodeMerged([bytesOf('response')], true)).length, 1);
  });

  test('a batch too short for its CRC is refused as truncated', () => {
    refuses(hex('97 00 01 00 00 11 01 c4'), /^truncated frame: merged crc needs 4 bytes/);
  });

  test('a message inside a Merged batch must end where its bin ends', () => {
    const padded = Buffer.concat([bytesOf('response'), hex('00')]);
    refuses(encodeMerged([padded]), /^1 unexpected bytes after the frame$/);
  });

  test('a subroute flag without the 32 bytes is refused as truncated', () => {
    refuses(hex('97 01 00 00 41 0e 20 c4 00 4100'), /^truncated frame: subroute id needs 32 bytes/);
  });
});

// ---------------------------------------------------------------------------------------
// Fuzzing: whatever the bytes, the decoder answers with frames or a ProtocolError.

function checkDecoderOutcome(bytes: Uint8Array): void {
  let frames: Frame[];
  try {
    frames = decodeMessage(Buffer.from(bytes));
  } catch (error) {
    if (error instanceof ProtocolError) return;
    throw error;
  }
  assert.ok(frames.length >= 1 && frames.length <= MERGE_MAX_MESSAGES);
  for (const frame of frames) {
    assert.ok(Number.isSafeInteger(frame.muxId) && frame.muxId >= 0);
    assert.ok(frame.seq >= 0 && frame.seq <= MAX_UINT32);
    assert.ok(frame.deadlineMs >= 0 && frame.deadlineMs <= MAX_UINT32);
    assert.ok(frame.handler >= 0 && frame.handler <= 255);
    assert.ok(isOp(frame.op) && frame.op !== Op.Merged);
    assert.equal(frame.flags & ~KNOWN_FLAGS, 0);
    assert.ok(frame.subroute === undefined || frame.subroute.length === 32);
  }
}

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'insert'; readonly at: number; readonly value: number }
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'truncate'; readonly at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(0x00, 0x7f, 0x80, 0xc0, 0xc4, 0xc5, 0xc6, 0xcc, 0xcf, 0xff), fc.nat(255)),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    switch (m.kind) {
      case 'flip':
        out[at] = (out[at] ?? 0) ^ (1 << m.bit);
        break;
      case 'set':
        out[at] = m.value;
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), Buffer.of(m.value), out.subarray(at)]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
    }
  }
  return out;
}

const validMessageArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(frameArb, fc.boolean()).map(([frame, crc]) => encodeFrame(frame, crc)),
  fc
    .array(fc.tuple(frameArb, fc.boolean()), { minLength: 1, maxLength: 5 })
    .map((items) => encodeMerged(items.map(([frame, crc]) => encodeFrame(frame, crc)))),
  fc.constantFrom(...vectors.map((v) => Buffer.from(v.hex, 'hex'))),
);

/**
 * A quiet 2-core machine checks about 30 000 inputs in the 2 s, and about 13 000 while
 * another test run loads it; the floor of 2 000 is checked however long it takes.
 */
const FRAME_FUZZ_BUDGET: FuzzBudget = { timeLimitMs: 2_000, minRuns: 2_000 };

describe('decoder fuzzing', () => {
  test('random and mutated bytes give frames or a ProtocolError, never another exception', async (t) => {
    const inputArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((rest) => Buffer.concat([Buffer.of(0x97), rest])),
      fc
        .tuple(validMessageArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
        .map(([bytes, ms]) => mutate(bytes, ms)),
    );
    await fuzz(t, FRAME_FUZZ_BUDGET, fc.property(inputArb, checkDecoderOutcome));
  });
});

// ---------------------------------------------------------------------------------------
// Encoder argument checks.

describe('encodeFrame arguments', () => {
  const base: Frame = {
    muxId: 1,
    seq: 0,
    deadlineMs: 0,
    handler: 0,
    op: Op.Response,
    flags: 0,
    payload: undefined,
  };
  const refusesField = (change: Partial<Frame>, field: RegExp): void => {
    assert.throws(
      () => encodeFrame({ ...base, ...change }, true),
      (error: unknown) => {
        assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
        assert.match(error.message, field);
        return true;
      },
    );
  };

  test('out-of-range integers are refused with a RangeError naming the field', () => {
    for (const muxId of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      refusesField({ muxId }, /^frame muxId must be an integer/);
    }
    for (const seq of [-1, 0.5, MAX_UINT32 + 1]) refusesField({ seq }, /^frame seq must be an integer/);
    for (const deadlineMs of [-1, MAX_UINT32 + 1]) {
      refusesField({ deadlineMs }, /^frame deadlineMs must be an integer/);
    }
    for (const handler of [-1, 256, 2.5]) refusesField({ handler }, /^frame handler must be an integer/);
    for (const flags of [-1, 256]) refusesField({ flags }, /^frame flags must be an integer/);
  });

  test('a subroute id that is not 32 bytes is refused', () => {
    for (const length of [0, 31, 33])
      refusesField({ subroute: new Uint8Array(length) }, /subroute id is 32 bytes/);
  });

  test('the largest values of every field are accepted', () => {
    const frame: Frame = {
      muxId: Number.MAX_SAFE_INTEGER,
      seq: MAX_UINT32,
      deadlineMs: MAX_UINT32,
      handler: 255,
      op: Op.Disconnect,
      flags: KNOWN_FLAGS,
      payload: new Uint8Array(1),
      subroute: new Uint8Array(32),
    };
    assert.equal(decodeMessage(encodeFrame(frame, true)).length, 1);
  });

  test('an op that is not a grid op is refused', () => {
    for (const op of [0, 19, 300, -1, 1.5]) refusesField({ op: op as Op }, /op/);
  });

  test('Merged is refused: batches are built by encodeMerged', () => {
    refusesField({ op: Op.Merged }, /op/);
  });

  test('unknown flag bits are refused', () => {
    for (const flags of [0x40, 0x80]) refusesField({ flags }, /flags/);
  });

  test('encodeMerged refuses 0 or more than 50 messages', () => {
    const one = bytesOf('response');
    assert.throws(() => encodeMerged([]), RangeError);
    assert.throws(() => encodeMerged(Array.from({ length: 51 }, () => one)), RangeError);
    assert.equal(decodeMessage(encodeMerged(Array.from({ length: 50 }, () => one))).length, 50);
  });
});

// ---------------------------------------------------------------------------------------
// Merged batches as a node writes them.

/** Any handler: the raw acceptor below echoes every request. */
const HANDLER = 64;

describe('Merged batches on a live connection', () => {
  test('frames that each fit maxFrameBytes are merged, and never into a message that exceeds it', async (t) => {
    const maxFrameBytes = 8 * 1024;
    const secret = 'weft-frame-merge-secret';
    const clock = new FakeClock();
    // A raw acceptor: it records every WebSocket message the node sends, and answers each
    // request with its own payload. The node dials it, and listens nowhere itself.
    const { server, host: acceptorHost } = await bindLoopback(t);
    const accepted = RawPeer.accept(t, server, { host: acceptorHost, clock, secret });
    const local = hostDialling(acceptorHost);
    const manager = new Manager({
      local,
      hosts: [local, acceptorHost],
      auth: { secret },
      clock,
      limits: { maxFrameBytes },
    });
    t.after(() => manager.close());
    manager.start();
    const link = manager.connection(acceptorHost);
    const [acceptor] = await Promise.all([accepted, link.waitForConnect()]);
    const received: Buffer[] = [];
    void (async () => {
      for (let message = await acceptor.next(); message !== undefined; message = await acceptor.next()) {
        received.push(message);
        for (const frame of decodeMessage(message)) {
          if (frame.op !== Op.Request) continue;
          acceptor.sendFrame(Op.Response, { muxId: frame.muxId, payload: frame.payload });
        }
      }
    })();

    // Ten 2 000-byte requests queued in one turn: each fits, together they do not.
    const payloads = Array.from({ length: 10 }, (_, i) => Buffer.alloc(2_000, i));
    const replies = await Promise.all(payloads.map((payload) => link.request(HANDLER, payload)));
    replies.forEach((reply, i) => {
      assert.deepEqual(Buffer.from(reply ?? []), payloads[i]);
    });

    const batches = received.map((message) => ({
      bytes: message.length,
      requests: decodeMessage(message).filter((frame) => frame.op === Op.Request).length,
    }));
    t.diagnostic(
      `messages on the wire (bytes, requests): ${batches.map((b) => `${b.bytes}/${b.requests}`).join(' ')}`,
    );
    assert.equal(
      batches.reduce((sum, b) => sum + b.requests, 0),
      payloads.length,
      'every request was sent once',
    );
    const merged = batches.filter((b) => b.requests > 1);
    assert.ok(merged.length > 0, 'requests queued together left merged');
    for (const { bytes } of batches) {
      assert.ok(bytes <= maxFrameBytes, `a ${bytes}-byte message exceeds maxFrameBytes (${maxFrameBytes})`);
    }
    assert.equal(link.stats().reconnects, 0);
  });
});
