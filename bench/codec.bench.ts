// Codec suite: the grid's own frame codec (src/grid/frame.ts, written by hand) against the
// best general-purpose MessagePack codecs doing the same job on the same seven-tuple,
//
//   [muxId, seq, deadlineMs, handler, op, flags, payload]   (docs/wire/grid.md)
//
// with a 32 B and a 512 B payload, without and with the frame checksum.
//
// Ours is `encodeFrame(frame, crc)` and `decodeMessage(bytes)`, compiled, as the connection
// calls them. Without the checksum the peers are msgpackr (a `Packr` with `useRecords: false`,
// plain MessagePack) and @msgpack/msgpack (one `Encoder` and one `Decoder` reused, as a tuned
// user would), each packing the tuple as an array. With it, the peer is msgpackr plus node:zlib's
// `crc32` (the standard CRC-32, in C) over the packed bytes, appended as four bytes; ours
// appends the same CRC-32 (src/grid/crc.ts: node:zlib's for frames under 1 KiB, as all of these are).
//
// The work is not quite the same, and not in ours' favour: our decoder checks every field's
// range, the op, the flags, the CRC and that nothing trails the frame, and returns a frame
// object; the peers' decoders return whatever array the bytes hold. Without the checksum our
// bytes are exactly msgpackr's (`check` compares them), so the wire format costs nothing.

import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';

import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr } from 'msgpackr';

import { defineSuite, type BenchCase } from './harness.ts';
import { loadBuiltInternal } from './load-built.ts';
import { seededBytes } from './seeded-bytes.ts';

type FrameModule = typeof import('../src/grid/frame.ts');
type Frame = import('../src/grid/frame.ts').Frame;

let loading: Promise<FrameModule> | undefined;
let frameCodec: FrameModule | undefined;

/** The compiled frame codec, loaded by the first case's setup (dist/ exists only after a build). */
async function loadFrameCodec(): Promise<FrameModule> {
  loading ??= loadBuiltInternal<FrameModule>('grid/frame.js');
  frameCodec = await loading;
  return frameCodec;
}

function codec(): FrameModule {
  if (frameCodec === undefined) throw new Error('the frame codec is not loaded: setup did not run');
  return frameCodec;
}

const payloadSizes = [32, 512] as const;
// MuxServerMsg (10) on handler 64 (the first application handler), mid-stream: ids and
// counters large enough to take their wider encodings.
const header = { muxId: 123_456, seq: 3_000_000_000, deadlineMs: 30_000, handler: 64, op: 10 } as const;
const CRC_FLAG = 0x01;

function frameOf(payloadBytes: number): Frame {
  return { ...header, flags: 0, payload: seededBytes(payloadBytes, 0x5eed + payloadBytes) };
}

type Tuple = readonly [number, number, number, number, number, number, Uint8Array];

function tupleOf(frame: Frame, flags: number): Tuple {
  const payload = frame.payload ?? new Uint8Array(0);
  return [frame.muxId, frame.seq, frame.deadlineMs, frame.handler, frame.op, flags, payload];
}

interface GeneralCodec {
  readonly name: string;
  encode(tuple: Tuple): Uint8Array;
  decode(bytes: Buffer): unknown;
}

const packr = new Packr({ useRecords: false });
const msgpackr: GeneralCodec = {
  name: 'msgpackr',
  encode: (tuple) => packr.pack(tuple),
  decode: (bytes) => packr.unpack(bytes) as unknown,
};

const encoder = new Encoder();
const decoder = new Decoder();
const msgpack: GeneralCodec = {
  name: '@msgpack/msgpack',
  encode: (tuple) => encoder.encode(tuple),
  decode: (bytes) => decoder.decode(bytes),
};

/** msgpackr, then a CRC-32 of the packed bytes appended little-endian, as the grid's trailer is. */
const msgpackrCrc32: GeneralCodec = {
  name: 'msgpackr+zlib.crc32',
  encode: (tuple) => {
    const packed = packr.pack(tuple);
    const out = Buffer.allocUnsafe(packed.length + 4);
    out.set(packed, 0);
    out.writeUInt32LE(crc32(packed), packed.length);
    return out;
  },
  decode: (bytes) => {
    const body = bytes.subarray(0, bytes.length - 4);
    if (crc32(body) !== bytes.readUInt32LE(bytes.length - 4)) throw new Error('crc mismatch');
    return packr.unpack(body) as unknown;
  },
};

/** Throws unless `decoded` is the tuple, payload bytes included. */
function assertIsTuple(decoded: unknown, tuple: Tuple, what: string): void {
  assert.ok(Array.isArray(decoded), `${what}: expected an array`);
  const items: readonly unknown[] = decoded;
  assert.equal(items.length, 7, `${what}: element count`);
  assert.deepEqual(items.slice(0, 6), tuple.slice(0, 6), `${what}: header fields`);
  const payload = items[6];
  assert.ok(payload instanceof Uint8Array, `${what}: payload is not bytes`);
  assert.equal(Buffer.compare(payload, tuple[6]), 0, `${what}: payload bytes differ`);
}

/** Throws unless decodeMessage gives back exactly `frame`, with the CRC flag when `crc`. */
function assertIsFrame(decoded: readonly Frame[], frame: Frame, crc: boolean, what: string): void {
  assert.equal(decoded.length, 1, `${what}: one frame`);
  const [got] = decoded;
  assert.ok(got !== undefined);
  const { muxId, seq, deadlineMs, handler, op, flags } = got;
  assert.deepEqual(
    { muxId, seq, deadlineMs, handler, op, flags },
    { ...header, flags: crc ? CRC_FLAG : 0 },
    `${what}: header fields`,
  );
  assert.ok(got.payload !== undefined && frame.payload !== undefined, `${what}: payload`);
  assert.equal(Buffer.compare(got.payload, frame.payload), 0, `${what}: payload bytes differ`);
}

const cases: BenchCase[] = [];
const setup = async (): Promise<void> => {
  await loadFrameCodec();
};

for (const size of payloadSizes) {
  const frame = frameOf(size);
  for (const crc of [false, true]) {
    const tuple = tupleOf(frame, crc ? CRC_FLAG : 0);
    const peers = crc ? [msgpackrCrc32] : [msgpackr, msgpack];
    const suffix = `${crc ? 'crc-' : ''}${size}B`;
    // Decode inputs are copies, as a message read off a socket is.
    let oursBytes = Buffer.alloc(0);
    const peerBytes = new Map<GeneralCodec, Buffer>();

    const check = (peer: GeneralCodec) => (): undefined => {
      const { encodeFrame, decodeMessage } = codec();
      oursBytes = Buffer.from(encodeFrame(frame, crc));
      peerBytes.set(peer, Buffer.from(peer.encode(tuple)));
      assertIsFrame(decodeMessage(oursBytes), frame, crc, `ours, ${suffix}`);
      assertIsTuple(peer.decode(peerBytes.get(peer) ?? Buffer.alloc(0)), tuple, `${peer.name}, ${suffix}`);
      if (!crc) {
        // The grid's frame is plain MessagePack: byte for byte what msgpackr writes for the tuple,
        // and readable by any MessagePack decoder.
        assert.equal(
          Buffer.compare(oursBytes, Buffer.from(msgpackr.encode(tuple))),
          0,
          'ours and msgpackr differ',
        );
        assertIsTuple(msgpack.decode(oursBytes), tuple, `@msgpack/msgpack reading ours, ${suffix}`);
      } else {
        // A flipped payload bit is caught by both.
        for (const [name, bytes, decode] of [
          ['ours', oursBytes, (b: Buffer) => codec().decodeMessage(b)],
          [peer.name, peerBytes.get(peer) ?? Buffer.alloc(0), (b: Buffer) => peer.decode(b)],
        ] as const) {
          const damaged = Buffer.from(bytes);
          damaged[20] = (damaged[20] ?? 0) ^ 0x01;
          assert.throws(() => decode(damaged), /crc mismatch/, `${name} let a flipped bit through`);
        }
      }
      return undefined;
    };

    for (const peer of peers) {
      cases.push({
        name: `encode-frame-${suffix}`,
        metric: 'ops_per_s',
        ours: { label: 'weft/grid encodeFrame', fn: () => codec().encodeFrame(frame, crc) },
        peer: { name: peer.name, fn: () => peer.encode(tuple) },
        setup,
        check: check(peer),
      });
    }
    for (const peer of peers) {
      cases.push({
        name: `decode-frame-${suffix}`,
        metric: 'ops_per_s',
        ours: { label: 'weft/grid decodeMessage', fn: () => codec().decodeMessage(oursBytes) },
        peer: { name: peer.name, fn: () => peer.decode(peerBytes.get(peer) ?? Buffer.alloc(0)) },
        setup,
        check: check(peer),
      });
    }
  }
}

export default defineSuite({
  cases,
  notes: async () => {
    const { encodeFrame } = await loadFrameCodec();
    return payloadSizes.map((size) => {
      const frame = frameOf(size);
      const sizes = [
        `weft/grid ${encodeFrame(frame, false).length} B`,
        `with crc ${encodeFrame(frame, true).length} B`,
        `msgpackr ${msgpackr.encode(tupleOf(frame, 0)).length} B`,
        `@msgpack/msgpack ${msgpack.encode(tupleOf(frame, 0)).length} B`,
        `msgpackr+zlib.crc32 ${msgpackrCrc32.encode(tupleOf(frame, CRC_FLAG)).length} B`,
      ];
      return `encoded frame, ${size} B payload: ${sizes.join(', ')}`;
    });
  },
});
