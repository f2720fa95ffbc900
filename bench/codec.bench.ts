// Codec suite: how fast the grid's wire codec encodes and decodes one frame.
//
// Ours is msgpackr the way the grid uses it: a Packr with `useRecords: false`, so its output is
// plain MessagePack that any implementation reads (`check` proves it by decoding our bytes with
// @msgpack/msgpack). Peers:
// - @msgpack/msgpack, with one Encoder and one Decoder reused across calls as a tuned user would;
// - JSON, the no-dependency baseline. JSON has no binary type, so the payload travels as base64.
//
// Both MessagePack encoders return bytes the caller may keep (msgpackr hands out slices of a
// buffer it never writes over; @msgpack/msgpack's `encode` copies), and both decoders return
// the payload as a view into the input, so the comparison is like for like.

import assert from 'node:assert/strict';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Packr } from 'msgpackr';
import { defineSuite, type BenchCase } from './harness.ts';
import { seededBytes } from './seeded-bytes.ts';

/** A grid-shaped frame: [muxId, seq, deadlineMs, handler, op, flags, payload]. */
type Frame = readonly [
  muxId: number,
  seq: number,
  deadlineMs: number,
  handler: number,
  op: number,
  flags: number,
  payload: Buffer,
];

interface Codec {
  readonly name: string;
  encode(frame: Frame): Uint8Array;
  decode(bytes: Buffer): unknown;
}

const payloadBytes = 512;

const frame: Frame = [123_456, 3_000_000_000, 30_000, 7, 2, 1, seededBytes(payloadBytes, 0x5eed)];

const packr = new Packr({ useRecords: false });
const ours: Codec = {
  name: 'msgpackr',
  encode: (f) => packr.pack(f),
  decode: (bytes) => packr.unpack(bytes) as unknown,
};

const encoder = new Encoder();
const decoder = new Decoder();
const msgpack: Codec = {
  name: '@msgpack/msgpack',
  encode: (f) => encoder.encode(f),
  decode: (bytes) => decoder.decode(bytes),
};

const json: Codec = {
  name: 'JSON',
  encode: (f) => Buffer.from(JSON.stringify([f[0], f[1], f[2], f[3], f[4], f[5], f[6].toString('base64')])),
  decode: (bytes) => {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (!Array.isArray(parsed)) throw new TypeError('JSON frame is not an array');
    const items: unknown[] = parsed;
    const payload = items[6];
    if (typeof payload !== 'string') throw new TypeError('JSON frame payload is not a base64 string');
    items[6] = Buffer.from(payload, 'base64');
    return items;
  },
};

// Decode inputs are copies, as a frame read off a socket would be: no codec decodes its own
// still-cached output buffer.
const encoded = new Map<Codec, Buffer>([ours, msgpack, json].map((c) => [c, Buffer.from(c.encode(frame))]));

function encodedFor(codec: Codec): Buffer {
  const bytes = encoded.get(codec);
  if (bytes === undefined) throw new Error(`no encoded frame for ${codec.name}`);
  return bytes;
}

/** Throws unless `decoded` is the frame, payload bytes included. */
function assertIsFrame(decoded: unknown, what: string): void {
  assert.ok(Array.isArray(decoded), `${what}: expected an array`);
  const items: readonly unknown[] = decoded;
  assert.equal(items.length, frame.length, `${what}: element count`);
  assert.deepEqual(items.slice(0, 6), frame.slice(0, 6), `${what}: header fields`);
  const payload = items[6];
  assert.ok(payload instanceof Uint8Array, `${what}: payload is not bytes`);
  assert.equal(Buffer.compare(payload, frame[6]), 0, `${what}: payload bytes differ`);
}

function checkRoundTrip(codec: Codec): void {
  assertIsFrame(codec.decode(Buffer.from(codec.encode(frame))), `${codec.name} round trip`);
  assertIsFrame(codec.decode(encodedFor(codec)), `${codec.name} decode of the prepared frame`);
}

function checkOursIsPlainMessagePack(): void {
  assertIsFrame(decoder.decode(ours.encode(frame)), `${msgpack.name} decoding ${ours.name} output`);
}

const cases: BenchCase[] = [];
for (const peer of [msgpack, json]) {
  cases.push({
    name: `encode-frame-${payloadBytes}B`,
    metric: 'ops_per_s',
    ours: { label: ours.name, fn: () => ours.encode(frame) },
    peer: { name: peer.name, fn: () => peer.encode(frame) },
    check: () => {
      checkRoundTrip(ours);
      checkRoundTrip(peer);
      checkOursIsPlainMessagePack();
    },
  });
}
for (const peer of [msgpack, json]) {
  const oursInput = encodedFor(ours);
  const peerInput = encodedFor(peer);
  cases.push({
    name: `decode-frame-${payloadBytes}B`,
    metric: 'ops_per_s',
    ours: { label: ours.name, fn: () => ours.decode(oursInput) },
    peer: { name: peer.name, fn: () => peer.decode(peerInput) },
    check: () => {
      checkRoundTrip(ours);
      checkRoundTrip(peer);
    },
  });
}

export default defineSuite({
  cases,
  notes: () => [
    `encoded frame (${payloadBytes} B payload): ` +
      [ours, msgpack, json].map((c) => `${c.name} ${encodedFor(c).length} B`).join(', '),
  ],
});
