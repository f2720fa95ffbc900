// The grid frame codec: bytes in, frames out, and back.
//
// A message is a MessagePack array of seven fields, optionally followed by a 32-byte
// subroute id and a 4-byte CRC (docs/wire/grid.md):
//
//   0x97 muxId seq deadlineMs handler op flags payload [subroute] [crc]
//
// The encoder writes the smallest MessagePack encoding of each integer and always a
// `bin` payload (an absent payload is `c4 00`, an empty one is `c4 00` plus the
// PayloadIsZero flag). The decoder accepts any valid integer encoding but checks every
// range, every length and the CRC, and refuses trailing bytes: a frame either decodes
// exactly or is a `ProtocolError`. Written by hand rather than with msgpackr because the
// header is fixed and hot, and an exact layout is what the golden vectors pin.

import { crc32OfFrame } from './crc.ts';
import { ProtocolError } from './errors.ts';
import {
  CRC_BYTES,
  Flag,
  isOp,
  KNOWN_FLAGS,
  MERGE_MAX_MESSAGES,
  Op,
  opName,
  SUBROUTE_BYTES,
  type Op as OpCode,
} from './protocol.ts';

export interface Frame {
  /** Stream (mux) id; 0 for connection-level frames. At most 2^53-1. */
  readonly muxId: number;
  /** Per-mux, per-direction sequence number (uint32). For Merged: the count of inner messages. */
  readonly seq: number;
  /** Milliseconds the receiver has to answer (uint32); 0 = no deadline. */
  readonly deadlineMs: number;
  /** Handler id (uint8); 0 = none. */
  readonly handler: number;
  readonly op: OpCode;
  /** Flag bits; the encoder adds CRC, PayloadIsZero and Subroute itself. */
  readonly flags: number;
  /** Absent (undefined) and empty are different, as in MinIO. */
  readonly payload: Uint8Array | undefined;
  /** 32-byte subroute id, when the handler is reached by subroute. */
  readonly subroute?: Uint8Array | undefined;
}

const UINT32_MAX = 0xffff_ffff;

/** Size of the smallest MessagePack encoding of a non-negative integer. */
function uintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value <= 0xff) return 2;
  if (value <= 0xffff) return 3;
  if (value <= UINT32_MAX) return 5;
  return 9;
}

/** Size of a MessagePack `bin` header for `length` bytes. */
export function binHeaderSize(length: number): number {
  if (length <= 0xff) return 2;
  if (length <= 0xffff) return 3;
  return 5;
}

function writeUint(buf: Buffer, offset: number, value: number): number {
  if (value < 0x80) {
    buf[offset] = value;
    return offset + 1;
  }
  if (value <= 0xff) {
    buf[offset] = 0xcc;
    buf[offset + 1] = value;
    return offset + 2;
  }
  if (value <= 0xffff) {
    buf[offset] = 0xcd;
    buf.writeUInt16BE(value, offset + 1);
    return offset + 3;
  }
  if (value <= UINT32_MAX) {
    buf[offset] = 0xce;
    buf.writeUInt32BE(value, offset + 1);
    return offset + 5;
  }
  buf[offset] = 0xcf;
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset + 1);
  buf.writeUInt32BE(value >>> 0, offset + 5);
  return offset + 9;
}

/** Writes a MessagePack `bin` header for `length` bytes. */
function writeBinHeader(buf: Buffer, offset: number, length: number): number {
  if (length <= 0xff) {
    buf[offset] = 0xc4;
    buf[offset + 1] = length;
    return offset + 2;
  }
  if (length <= 0xffff) {
    buf[offset] = 0xc5;
    buf.writeUInt16BE(length, offset + 1);
    return offset + 3;
  }
  buf[offset] = 0xc6;
  buf.writeUInt32BE(length, offset + 1);
  return offset + 5;
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`frame ${name} must be an integer within [0, ${max}], got ${value}`);
  }
}

/**
 * Checks a frame's fields and returns the bytes it encodes to, with the CRC trailer if `crc`.
 * Throws `RangeError` for a frame no encoder may write.
 */
export function frameSize(frame: Frame, crc: boolean): number {
  checkField('muxId', frame.muxId, Number.MAX_SAFE_INTEGER);
  checkField('seq', frame.seq, UINT32_MAX);
  checkField('deadlineMs', frame.deadlineMs, UINT32_MAX);
  checkField('handler', frame.handler, 0xff);
  checkField('flags', frame.flags, 0xff);
  if ((frame.flags & ~KNOWN_FLAGS) !== 0) {
    throw new RangeError(`frame flags 0x${frame.flags.toString(16)} has unknown bits`);
  }
  // A Merged message is built from encoded frames (encodeMerged, the writer), never as a frame.
  if (!isOp(frame.op) || frame.op === Op.Merged) {
    throw new RangeError(`frame op must be a grid op other than Merged, got ${frame.op}`);
  }
  if (frame.subroute !== undefined && frame.subroute.length !== SUBROUTE_BYTES) {
    throw new RangeError('a subroute id is 32 bytes');
  }
  const payloadLength = frame.payload === undefined ? 0 : frame.payload.length;
  return (
    1 +
    uintSize(frame.muxId) +
    uintSize(frame.seq) +
    uintSize(frame.deadlineMs) +
    uintSize(frame.handler) +
    uintSize(frame.op) +
    1 + // flags: the bits the encoder adds keep them under 0x80
    binHeaderSize(payloadLength) +
    payloadLength +
    (frame.subroute === undefined ? 0 : SUBROUTE_BYTES) +
    (crc ? CRC_BYTES : 0)
  );
}

/**
 * Writes a frame that `frameSize` accepted at `offset` of `buf`, which has room for it;
 * returns the offset after it. The payload is copied: the caller may reuse its bytes at once.
 */
export function encodeFrameInto(frame: Frame, crc: boolean, buf: Buffer, offset: number): number {
  const start = offset;
  const payload = frame.payload;
  const payloadLength = payload === undefined ? 0 : payload.length;
  let flags = frame.flags & ~(Flag.CRC | Flag.PayloadIsZero | Flag.Subroute);
  if (payload !== undefined && payloadLength === 0) flags |= Flag.PayloadIsZero;
  if (frame.subroute !== undefined) flags |= Flag.Subroute;
  if (crc) flags |= Flag.CRC;
  buf[offset] = 0x97;
  offset = writeUint(buf, offset + 1, frame.muxId);
  offset = writeUint(buf, offset, frame.seq);
  offset = writeUint(buf, offset, frame.deadlineMs);
  offset = writeUint(buf, offset, frame.handler);
  offset = writeUint(buf, offset, frame.op);
  buf[offset++] = flags;
  offset = writeBinHeader(buf, offset, payloadLength);
  if (payload !== undefined && payloadLength > 0) {
    buf.set(payload, offset);
    offset += payloadLength;
  }
  if (frame.subroute !== undefined) {
    buf.set(frame.subroute, offset);
    offset += SUBROUTE_BYTES;
  }
  if (crc) {
    buf.writeUInt32LE(crc32OfFrame(buf.subarray(start, offset)), offset);
    offset += CRC_BYTES;
  }
  return offset;
}

/** Encodes one frame into a buffer of its own. `crc` adds the CRC trailer (off on TLS connections). */
export function encodeFrame(frame: Frame, crc: boolean): Buffer {
  const buf = Buffer.allocUnsafe(frameSize(frame, crc));
  encodeFrameInto(frame, crc, buf, 0);
  return buf;
}

/**
 * A read position over one message, `buf` from `offset` to `end`; every read checks the bounds.
 * A frame inside a Merged batch is read in place, between its item's bounds, not as a copy or view.
 */
class Reader {
  offset = 0;
  end = 0;
  buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  /** Points the reader at `buf` from `start` to `end`. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.offset = start;
    this.end = end;
    return this;
  }

  need(count: number, what: string): void {
    if (this.offset + count > this.end) {
      throw new ProtocolError(`truncated frame: ${what} needs ${count} bytes at offset ${this.offset}`);
    }
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++] as number;
  }

  uint(what: string, max: number): number {
    const lead = this.byte(what);
    let value: number;
    if (lead < 0x80) value = lead;
    else if (lead === 0xcc) value = this.byte(what);
    else if (lead === 0xcd) {
      this.need(2, what);
      value = this.buf.readUInt16BE(this.offset);
      this.offset += 2;
    } else if (lead === 0xce) {
      this.need(4, what);
      value = this.buf.readUInt32BE(this.offset);
      this.offset += 4;
    } else if (lead === 0xcf) {
      this.need(8, what);
      const high = this.buf.readUInt32BE(this.offset);
      const low = this.buf.readUInt32BE(this.offset + 4);
      this.offset += 8;
      // Above 2^53 a number loses precision; no valid id or counter gets there.
      if (high >= 0x20_0000) throw new ProtocolError(`${what} exceeds 2^53-1`);
      value = high * 0x1_0000_0000 + low;
    } else {
      throw new ProtocolError(
        `${what}: expected a MessagePack unsigned integer, found 0x${lead.toString(16)}`,
      );
    }
    if (value > max) throw new ProtocolError(`${what} ${value} exceeds ${max}`);
    return value;
  }

  /** A `bin` (or nil) value; returns undefined for nil. The bytes are a view, not a copy. */
  bin(what: string): Buffer | undefined {
    const length = this.binLength(what);
    if (length < 0) return undefined;
    const bytes = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return bytes;
  }

  /** Reads a `bin` header and checks its bytes are there: their length, or -1 for nil. */
  binLength(what: string): number {
    const lead = this.byte(what);
    let length: number;
    if (lead === 0xc0) return -1;
    if (lead === 0xc4) length = this.byte(what);
    else if (lead === 0xc5) {
      this.need(2, what);
      length = this.buf.readUInt16BE(this.offset);
      this.offset += 2;
    } else if (lead === 0xc6) {
      this.need(4, what);
      length = this.buf.readUInt32BE(this.offset);
      this.offset += 4;
    } else {
      throw new ProtocolError(`${what}: expected MessagePack bin, found 0x${lead.toString(16)}`);
    }
    this.need(length, what);
    return length;
  }
}

// Two Readers for the life of the module, reused by every decode (decoding is synchronous, so
// one message's reader is never in use by another): a Merged batch's and its inner messages'.
// Besides saving an object per message, this keeps the Reader's hidden class alive. V8 holds
// the transition to it weakly; with every Reader short-lived, each full GC collected it, and
// every optimised function that checks for it (the whole decode path) was thrown away and
// optimised again (`--trace-deopt`: "weak objects"). A 512 B decode right after a full GC took
// 1 to 5 µs, against 0.3 µs once optimised.
const EMPTY = Buffer.alloc(0);
const messageReader = new Reader(EMPTY);
const innerReader = new Reader(EMPTY);

/** Decodes one message that is a single frame (not a Merged batch). Throws `ProtocolError`. */
export function decodeFrame(buf: Buffer): Frame {
  try {
    const reader = messageReader.reset(buf);
    const header = readHeader(reader, messageHeader);
    if (header.op === Op.Merged) throw new ProtocolError('a merged frame where a single frame was expected');
    return readBody(reader, header, 0);
  } finally {
    releaseReaders();
  }
}

/** The readers let go of the last message, which may be megabytes, once it is decoded. */
function releaseReaders(): void {
  messageReader.reset(EMPTY);
  innerReader.reset(EMPTY);
}

/** The seven-tuple's fixed fields: a frame before its payload and trailers. */
type Header = { -readonly [K in keyof Omit<Frame, 'payload' | 'subroute'>]: Frame[K] };

// Where readHeader puts the fields, one for a message and one for a frame in a batch: reused,
// like the readers, since each is read and copied into its frame before the next is read.
const messageHeader: Header = { muxId: 0, seq: 0, deadlineMs: 0, handler: 0, op: Op.Ping, flags: 0 };
const innerHeader: Header = { ...messageHeader };

function readHeader(reader: Reader, header: Header): Header {
  if (reader.byte('header') !== 0x97) throw new ProtocolError('a frame starts with a 7-element array (0x97)');
  const muxId = reader.uint('muxId', Number.MAX_SAFE_INTEGER);
  const seq = reader.uint('seq', UINT32_MAX);
  const deadlineMs = reader.uint('deadlineMs', UINT32_MAX);
  const handler = reader.uint('handler', 0xff);
  const op = reader.uint('op', 0xff);
  const flags = reader.uint('flags', 0xff);
  if (!isOp(op)) throw new ProtocolError(`unknown op ${op}`);
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new ProtocolError(`unknown flag bits 0x${flags.toString(16)}`);
  header.muxId = muxId;
  header.seq = seq;
  header.deadlineMs = deadlineMs;
  header.handler = handler;
  header.op = op;
  header.flags = flags;
  return header;
}

/** Reads payload and trailers after `header`; the frame began at `start` and must end where the reader does. */
function readBody(reader: Reader, header: Header, start: number): Frame {
  const { flags, op } = header;
  const raw = reader.bin('payload');
  let payload: Uint8Array | undefined = raw;
  if (raw !== undefined && raw.length === 0 && (flags & Flag.PayloadIsZero) === 0) payload = undefined;
  let subroute: Uint8Array | undefined;
  if ((flags & Flag.Subroute) !== 0) {
    reader.need(SUBROUTE_BYTES, 'subroute id');
    subroute = reader.buf.subarray(reader.offset, reader.offset + SUBROUTE_BYTES);
    reader.offset += SUBROUTE_BYTES;
  }
  if ((flags & Flag.CRC) !== 0) {
    reader.need(CRC_BYTES, 'crc');
    const expected = reader.buf.readUInt32LE(reader.offset);
    const actual = crc32OfFrame(reader.buf.subarray(start, reader.offset));
    if (expected !== actual) {
      throw new ProtocolError(`crc mismatch on ${opName(op)}: frame says ${expected}, bytes give ${actual}`);
    }
    reader.offset += CRC_BYTES;
  }
  const extra = reader.end - reader.offset;
  if (extra !== 0) throw new ProtocolError(`${extra} unexpected bytes after the frame`);
  return {
    muxId: header.muxId,
    seq: header.seq,
    deadlineMs: header.deadlineMs,
    handler: header.handler,
    op,
    flags,
    payload,
    subroute,
  };
}

/**
 * Decodes one WebSocket message into its frames: one frame, or the contents of a Merged
 * batch. Payloads are views into `buf`; a receiver that keeps one past the call copies it.
 */
export function decodeMessage(buf: Buffer): Frame[] {
  try {
    return decodeWithReaders(buf);
  } finally {
    releaseReaders();
  }
}

function decodeWithReaders(buf: Buffer): Frame[] {
  const reader = messageReader.reset(buf);
  const header = readHeader(reader, messageHeader);
  if (header.op !== Op.Merged) return [readBody(reader, header, 0)];
  // The outer tuple of a batch: mux 0, no flags but CRC, an empty payload, then `seq` bin items.
  if (
    header.muxId !== 0 ||
    (header.flags & ~Flag.CRC) !== 0 ||
    header.deadlineMs !== 0 ||
    header.handler !== 0
  ) {
    throw new ProtocolError('a merged frame has mux 0, no deadline, no handler and no flags but CRC');
  }
  if (header.seq === 0 || header.seq > MERGE_MAX_MESSAGES) {
    throw new ProtocolError(`a merged frame holds 1 to ${MERGE_MAX_MESSAGES} messages, not ${header.seq}`);
  }
  // With a batch CRC (its last four bytes) the items end before it. They are read first, so a
  // batch cut short says so; the CRC is checked before any of their frames is returned.
  const batchCrc = (header.flags & Flag.CRC) !== 0;
  if (batchCrc) {
    reader.need(CRC_BYTES, 'merged crc');
    reader.end = buf.length - CRC_BYTES;
  }
  const outerPayload = reader.bin('payload');
  if (outerPayload !== undefined && outerPayload.length !== 0)
    throw new ProtocolError('a merged frame has no payload');
  const count = header.seq;
  const frames: Frame[] = [];
  for (let i = 0; i < count; i++) {
    const length = reader.binLength(`merged message ${i}`);
    if (length < 0) throw new ProtocolError(`merged message ${i} is nil`);
    const start = reader.offset;
    reader.offset += length;
    innerReader.reset(buf, start, start + length);
    const frameHeader = readHeader(innerReader, innerHeader);
    if (frameHeader.op === Op.Merged) throw new ProtocolError('a merged frame cannot contain another');
    frames.push(readBody(innerReader, frameHeader, start));
  }
  const extra = reader.end - reader.offset;
  if (extra !== 0) throw new ProtocolError(`${extra} unexpected bytes after the merged frame`);
  if (batchCrc) {
    const end = buf.length - CRC_BYTES;
    const expected = buf.readUInt32LE(end);
    const actual = crc32OfFrame(buf.subarray(0, end));
    if (expected !== actual) {
      throw new ProtocolError(`crc mismatch on Merged: batch says ${expected}, bytes give ${actual}`);
    }
  }
  return frames;
}

/**
 * Builds a Merged message from already encoded messages (each at most one frame), with one
 * CRC over the whole batch if `crc`. The caller keeps within MERGE_MAX_MESSAGES and
 * MERGE_MAX_BYTES. The connection's writer builds its batches in place instead (frame-writer.ts).
 */
export function encodeMerged(messages: readonly Buffer[], crc = false): Buffer {
  if (messages.length === 0 || messages.length > MERGE_MAX_MESSAGES) {
    throw new RangeError(`a merged frame holds 1 to ${MERGE_MAX_MESSAGES} messages`);
  }
  let size = MERGED_HEADER_BYTES + (crc ? CRC_BYTES : 0);
  for (const m of messages) size += binHeaderSize(m.length) + m.length;
  const buf = Buffer.allocUnsafe(size);
  let offset = MERGED_HEADER_BYTES;
  for (const m of messages) {
    offset = writeBinHeader(buf, offset, m.length);
    buf.set(m, offset);
    offset += m.length;
  }
  sealMerged(buf, messages.length, offset, crc);
  return buf;
}

/**
 * Bytes of the outer tuple of a Merged message: `97 00 <count> 00 00 11 <flags> c4 00`, nine
 * whatever the count, since a count of at most MERGE_MAX_MESSAGES (< 128) is one byte.
 */
export const MERGED_HEADER_BYTES = 9;

/** Writes a Merged item's `bin` header for a message of `length` bytes; returns the offset after it. */
export function writeMergedItemHeader(buf: Buffer, offset: number, length: number): number {
  return writeBinHeader(buf, offset, length);
}

/**
 * Completes a Merged message whose `count` items fill `buf` from MERGED_HEADER_BYTES to `end`:
 * writes the outer tuple in front and, if `crc`, the batch's CRC after the items. Returns the
 * message's length.
 */
export function sealMerged(buf: Buffer, count: number, end: number, crc: boolean): number {
  buf[0] = 0x97;
  buf[1] = 0; // muxId
  buf[2] = count; // seq = count, a positive fixint (MERGE_MAX_MESSAGES < 128)
  buf[3] = 0; // deadline
  buf[4] = 0; // handler
  buf[5] = Op.Merged;
  buf[6] = crc ? Flag.CRC : 0;
  buf[7] = 0xc4; // empty payload
  buf[8] = 0;
  if (!crc) return end;
  buf.writeUInt32LE(crc32OfFrame(buf.subarray(0, end)), end);
  return end + CRC_BYTES;
}
