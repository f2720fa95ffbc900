// The stored form of a checkpoint: compact binary, versioned, one checksum per record.
//
//   "WHCP" | version u8 (1)
//   frame(head)     head   = streamKey | lastAck u64 | updatedAtWallMs f64 | ackCount u32
//                            | (partition, ack u64) × ackCount | pendingCount u32
//   frame(record) × pendingCount          record = seq u64 | partition | packet (the rest)
//   frame(body)  = length u32 | crc32(body) u32 | body;  text = length u32 | UTF-8
//
// All integers big-endian. Each record has its own length and checksum, so one damaged record
// is left out (and counted) while the others still load; a damaged head, a wrong magic or an
// unknown version make the whole checkpoint unreadable (`CheckpointCorruptError`). Packets stay
// bytes: the reference wrote the same facts as JSON with base64 packets, a third larger.

import { crc32 } from 'node:zlib';

import type { Checkpoint, LoadedCheckpoint, PendingRecord } from './checkpoint.ts';
import { CheckpointCorruptError, InvalidCheckpointError } from './errors.ts';

export const CHECKPOINT_FORMAT_VERSION = 1;
/** Longest stream key in UTF-8 bytes (lmdb keys stop at 1,978 bytes). */
export const MAX_STREAM_KEY_BYTES = 1_024;
/** Longest partition name in UTF-8 bytes. */
export const MAX_PARTITION_BYTES = 1_024;

const MAGIC = [0x57, 0x48, 0x43, 0x50]; // "WHCP"
const PREAMBLE_BYTES = MAGIC.length + 1;
const FRAME_HEADER_BYTES = 8;
// Frame header, seq, partition length: a record with an empty partition and packet.
const MIN_RECORD_FRAME_BYTES = FRAME_HEADER_BYTES + 8 + 4;
const MAX_UINT64 = 2n ** 64n - 1n;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes `checkpoint`; throws `InvalidCheckpointError` naming what is out of range. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const streamKey = encodeText(checkpoint.streamKey, MAX_STREAM_KEY_BYTES, 'stream key', false);
  checkUint64(checkpoint.lastAck, 'lastAck');
  if (!Number.isFinite(checkpoint.updatedAtWallMs)) {
    throw new InvalidCheckpointError(`updatedAtWallMs must be finite, got ${checkpoint.updatedAtWallMs}`);
  }
  const acks: [Uint8Array, bigint][] = [];
  for (const [partition, ack] of checkpoint.partitionAcks) {
    checkUint64(ack, `ack of partition "${partition}"`);
    acks.push([encodeText(partition, MAX_PARTITION_BYTES, 'partition', true), ack]);
  }
  const records: [PendingRecord, Uint8Array][] = checkpoint.pending.map((record) => {
    checkUint64(record.seq, 'pending seq');
    return [record, encodeText(record.partition, MAX_PARTITION_BYTES, 'partition', true)];
  });

  const headBytes = 4 + streamKey.length + 8 + 8 + 4 + acks.reduce((n, [p]) => n + 4 + p.length + 8, 0) + 4;
  let total = PREAMBLE_BYTES + FRAME_HEADER_BYTES + headBytes;
  for (const [record, partition] of records) {
    total += FRAME_HEADER_BYTES + 8 + 4 + partition.length + record.packet.length;
  }
  if (total > 0xffff_ffff) throw new InvalidCheckpointError(`checkpoint of ${total} bytes is over 4 GiB`);

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[MAGIC.length] = CHECKPOINT_FORMAT_VERSION;
  let at = PREAMBLE_BYTES;

  const writeText = (bytes: Uint8Array): void => {
    view.setUint32(at, bytes.length);
    out.set(bytes, at + 4);
    at += 4 + bytes.length;
  };
  const writeFrame = (write: () => void): void => {
    const start = at;
    at += FRAME_HEADER_BYTES;
    write();
    const body = out.subarray(start + FRAME_HEADER_BYTES, at);
    view.setUint32(start, body.length);
    view.setUint32(start + 4, crc32(body));
  };

  writeFrame(() => {
    writeText(streamKey);
    view.setBigUint64(at, checkpoint.lastAck);
    view.setFloat64(at + 8, checkpoint.updatedAtWallMs);
    view.setUint32(at + 16, acks.length);
    at += 20;
    for (const [partition, ack] of acks) {
      writeText(partition);
      view.setBigUint64(at, ack);
      at += 8;
    }
    view.setUint32(at, records.length);
    at += 4;
  });
  for (const [record, partition] of records) {
    writeFrame(() => {
      view.setBigUint64(at, record.seq);
      at += 8;
      writeText(partition);
      out.set(record.packet, at);
      at += record.packet.length;
    });
  }
  return out;
}

/**
 * Decodes what `encodeCheckpoint` wrote. Throws `CheckpointCorruptError` when the checkpoint is
 * unreadable as a whole; damaged records are left out and counted in `corruptRecords`.
 */
export function decodeCheckpoint(bytes: Uint8Array): LoadedCheckpoint {
  if (bytes.length < PREAMBLE_BYTES || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new CheckpointCorruptError('not a hub checkpoint (bad magic)');
  }
  const version = bytes[MAGIC.length];
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointCorruptError(`unknown checkpoint format version ${version}`);
  }
  const frames = new FrameReader(bytes, PREAMBLE_BYTES);
  let head: Head;
  try {
    head = readHead(frames.next());
  } catch (error) {
    throw new CheckpointCorruptError(`checkpoint head is damaged: ${(error as Error).message}`, {
      cause: error,
    });
  }

  // A count no byte length could hold means the head lies, checksum or not.
  if (head.pendingCount * MIN_RECORD_FRAME_BYTES > bytes.length) {
    throw new CheckpointCorruptError(
      `checkpoint head claims ${head.pendingCount} records, too many for its size`,
    );
  }
  const pending: PendingRecord[] = [];
  let corruptRecords = 0;
  for (let i = 0; i < head.pendingCount; i++) {
    try {
      pending.push(readRecord(frames.next()));
    } catch (error) {
      if (!(error instanceof SkippableRecordError)) {
        // The framing itself is lost: nothing after this point can be found.
        corruptRecords += head.pendingCount - i;
        break;
      }
      corruptRecords += 1;
    }
  }
  return {
    streamKey: head.streamKey,
    lastAck: head.lastAck,
    partitionAcks: head.partitionAcks,
    pending,
    updatedAtWallMs: head.updatedAtWallMs,
    corruptRecords,
  };
}

interface Head {
  streamKey: string;
  lastAck: bigint;
  updatedAtWallMs: number;
  partitionAcks: Map<string, bigint>;
  pendingCount: number;
}

function readHead(body: Uint8Array): Head {
  const reader = new Reader(body);
  const streamKey = reader.text();
  const lastAck = reader.uint64();
  const updatedAtWallMs = reader.float64();
  const ackCount = reader.uint32();
  const partitionAcks = new Map<string, bigint>();
  for (let i = 0; i < ackCount; i++) {
    const partition = reader.text();
    partitionAcks.set(partition, reader.uint64());
  }
  const pendingCount = reader.uint32();
  reader.end();
  if (streamKey === '' || !Number.isFinite(updatedAtWallMs)) throw new Error('head fields out of range');
  return { streamKey, lastAck, updatedAtWallMs, partitionAcks, pendingCount };
}

function readRecord(body: Uint8Array): PendingRecord {
  try {
    const reader = new Reader(body);
    const seq = reader.uint64();
    const partition = reader.text();
    return { seq, partition, packet: reader.rest() };
  } catch (error) {
    // Its frame was intact, so the records after it can still be read.
    throw new SkippableRecordError((error as Error).message);
  }
}

/** Walks the frames, checking each length and checksum. */
class FrameReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at: number;

  constructor(bytes: Uint8Array, at: number) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#at = at;
  }

  /** The next frame's body. Throws if the frame is cut short; a bad checksum throws after skipping it. */
  next(): Uint8Array {
    if (this.#at + FRAME_HEADER_BYTES > this.#bytes.length) throw new Error('frame header cut short');
    const length = this.#view.getUint32(this.#at);
    const checksum = this.#view.getUint32(this.#at + 4);
    const start = this.#at + FRAME_HEADER_BYTES;
    if (start + length > this.#bytes.length) throw new Error('frame cut short');
    this.#at = start + length;
    const body = this.#bytes.subarray(start, start + length);
    if (crc32(body) !== checksum) throw new SkippableRecordError('checksum mismatch');
    return body;
  }
}

// A damaged record whose frame length still leads to the next one.
class SkippableRecordError extends Error {}

/** Bounds-checked reads from one frame body. */
class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  uint32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.#at);
    this.#at += 4;
    return value;
  }

  uint64(): bigint {
    this.#need(8);
    const value = this.#view.getBigUint64(this.#at);
    this.#at += 8;
    return value;
  }

  float64(): number {
    this.#need(8);
    const value = this.#view.getFloat64(this.#at);
    this.#at += 8;
    return value;
  }

  text(): string {
    const length = this.uint32();
    this.#need(length);
    const value = textDecoder.decode(this.#bytes.subarray(this.#at, this.#at + length));
    this.#at += length;
    return value;
  }

  /** A copy: the caller keeps the packet after the stored buffer is reused. */
  rest(): Uint8Array {
    const value = this.#bytes.slice(this.#at);
    this.#at = this.#bytes.length;
    return value;
  }

  end(): void {
    if (this.#at !== this.#bytes.length) throw new Error('trailing bytes');
  }

  #need(n: number): void {
    if (this.#at + n > this.#bytes.length) throw new Error('field cut short');
  }
}

function encodeText(text: string, maxBytes: number, what: string, allowEmpty: boolean): Uint8Array {
  if (typeof text !== 'string' || (!allowEmpty && text === '')) {
    throw new InvalidCheckpointError(`${what} must be a non-empty string`);
  }
  const bytes = textEncoder.encode(text);
  if (bytes.length > maxBytes) {
    throw new InvalidCheckpointError(
      `${what} is ${bytes.length} bytes in UTF-8, over the limit of ${maxBytes}`,
    );
  }
  return bytes;
}

function checkUint64(value: bigint, what: string): void {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_UINT64) {
    throw new InvalidCheckpointError(`${what} must be a uint64 bigint, got ${String(value)}`);
  }
}
