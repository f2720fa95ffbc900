// A strict reader of the protobuf wire format over one byte array. Every read is bounded by
// the end of the message it belongs to, so a truncated body, a length that runs past its
// parent, an over-long varint or a tag the format does not allow is a `ProtoDecodeError`,
// never a read past the end. Unknown fields are skipped; groups (deprecated, and absent from
// StateFun's protocol) are refused rather than skipped.

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

const MAX_VARINT_BYTES = 10;

// Fatal: proto3 strings must be valid UTF-8, and @bufbuild/protobuf's fromBinary refuses them too.
const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

// The protocol's own strings recur in every request: the target's namespace and type, state
// names, typenames (`type.googleapis.com/…` ones included), the ids of busy addresses. Each is
// decoded once and kept in a fixed table (slot by hash of its bytes, the last string to land in
// a slot wins), so a request that repeats them makes no new strings, and the same string object
// lets V8 compare and hash it without reading its characters. The table's size is fixed: SLOTS
// strings of at most MAX_CACHED bytes. Values' contents never go in: they would stay in memory
// after their request.
const MAX_CACHED = 64;
// Up to this many bytes, an ASCII string outside the table is made by a JavaScript call.
const SHORT_STRING = 32;
const SLOTS = 512;
const cachedBytes = new Uint8Array(SLOTS * MAX_CACHED);
const cachedWords = new DataView(cachedBytes.buffer);
const cachedLengths = new Int32Array(SLOTS).fill(-1);
const cachedStrings: string[] = new Array<string>(SLOTS).fill('');

/**
 * The table slot of the `length` bytes at `start` (1 to MAX_CACHED of them), picked from the
 * length and four of the bytes (both ends, the middle and a quarter in), not all of them: every
 * byte is compared anyway, and two busy strings that differ only elsewhere take turns in their slot.
 */
function slotOf(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  let hash =
    Math.imul(length, 0x9e3779b1) ^
    (buf[start] as number) ^
    ((buf[end - 1] as number) << 8) ^
    ((buf[start + (length >> 1)] as number) << 16) ^
    ((buf[start + (length >> 2)] as number) << 24);
  hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d);
  return (hash ^ (hash >>> 12)) & (SLOTS - 1);
}

/**
 * Puts `value` in the string table, so that a request carrying it decodes to this very string
 * object: V8 compares a string with itself, and hashes it again, without reading it. Does
 * nothing for a string too long for the table or one that would not read back the same (a lone
 * surrogate, a leading BOM). Another string may take its slot later; that only costs speed.
 */
export function rememberString(value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length === 0 || bytes.length > MAX_CACHED || utf8.decode(bytes) !== value) return;
  keep(slotOf(bytes, 0, bytes.length), bytes, value);
}

/** Puts `value`, the string of `bytes`, in `slot` of the string table. */
function keep(slot: number, bytes: Uint8Array, value: string): void {
  cachedBytes.set(bytes, slot * MAX_CACHED);
  cachedLengths[slot] = bytes.length;
  cachedStrings[slot] = value;
}

// TypedArray.prototype's `buffer` and `byteOffset` getters, called directly: read through a
// Buffer (whose methods sit on Buffer.prototype), each is an inline-cache lookup, not compiled in.
const typedArrayPrototype: object = Object.getPrototypeOf(Uint8Array.prototype) as object;
const bufferOf = typedArrayGetter('buffer') as (this: Uint8Array) => ArrayBufferLike;
const byteOffsetOf = typedArrayGetter('byteOffset') as (this: Uint8Array) => number;

function typedArrayGetter(name: string): (this: Uint8Array) => unknown {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- only ever called with .call
  const get = Object.getOwnPropertyDescriptor(typedArrayPrototype, name)?.get;
  if (get === undefined) throw new Error(`TypedArray.prototype.${name} is not a getter`);
  return get;
}

/**
 * Whether the `length` bytes at `start` (`words` views all of `buf`) equal the table's at
 * `base`. Compared 4 bytes at a time, the last 4 overlapping the ones before when `length` is
 * not a multiple of 4: a loop over bytes costs about 25 instructions a byte.
 */
function sameAsCached(
  words: DataView,
  buf: Uint8Array,
  start: number,
  base: number,
  length: number,
): boolean {
  if (length < 4) {
    for (let i = 0; i < length; i++) if (cachedBytes[base + i] !== buf[start + i]) return false;
    return true;
  }
  const last = length - 4;
  for (let i = 0; i < last; i += 4) {
    if (cachedWords.getInt32(base + i) !== words.getInt32(start + i)) return false;
  }
  return cachedWords.getInt32(base + last) === words.getInt32(start + last);
}

/** Bytes that are not a well-formed protobuf message of the expected kind. */
export class ProtoDecodeError extends Error {
  override readonly name = 'ProtoDecodeError';
}

export class ProtoReader {
  readonly buf: Uint8Array;
  pos = 0;
  // Where `buf` lies: its ArrayBuffer and offset, read on the first view (see #locate).
  #arrayBuffer: ArrayBufferLike | undefined;
  #byteOffset = 0;
  #words: DataView | undefined;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  /** A field tag (field number << 3 | wire type) before `end`. */
  tag(end: number): number {
    const start = this.pos;
    const tag = this.varint(end);
    if (this.pos - start > 5 || tag > 0xffffffff) throw new ProtoDecodeError('a tag overflows 32 bits');
    if (tag >>> 3 === 0) throw new ProtoDecodeError('a tag has field number 0');
    return tag;
  }

  /**
   * A varint of at most 10 bytes, as a number: exact up to 2^53, which covers every length,
   * tag and bool; beyond that only whether its low 64 bits are zero is kept right.
   */
  varint(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    // One byte, as nearly every tag, length and flag is: no arithmetic in doubles.
    if (pos < end) {
      const first = buf[pos] as number;
      if (first < 0x80) {
        this.pos = pos + 1;
        return first;
      }
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (pos >= end) throw new ProtoDecodeError('a varint is truncated');
      const byte = buf[pos++] as number;
      // Protobuf keeps the low 64 bits: of a 10th byte only its lowest bit counts.
      value += (i === MAX_VARINT_BYTES - 1 ? byte & 0x01 : byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    throw new ProtoDecodeError('a varint is longer than 10 bytes');
  }

  /** Reads a length prefix and returns where the data it announces ends (at most `end`). */
  lengthDelimitedEnd(end: number): number {
    const length = this.varint(end);
    if (length > end - this.pos) throw new ProtoDecodeError('a length-delimited field runs past its message');
    return this.pos + length;
  }

  bytes(end: number): Uint8Array {
    const dataEnd = this.lengthDelimitedEnd(end);
    const start = this.pos;
    this.pos = dataEnd;
    // A plain view: a Buffer's own subarray costs several times more.
    return this.#view(start, dataEnd);
  }

  /** A length-delimited UTF-8 string: invalid UTF-8 is refused and a leading BOM dropped, as fromBinary does. */
  string(end: number): string {
    const dataEnd = this.lengthDelimitedEnd(end);
    const start = this.pos;
    this.pos = dataEnd;
    return this.utf8(start, dataEnd);
  }

  /**
   * The same as `string`, through the table of recurring strings: for the protocol's own
   * strings (names, typenames, ids), never for a value's contents.
   */
  recurringString(end: number): string {
    const dataEnd = this.lengthDelimitedEnd(end);
    const start = this.pos;
    this.pos = dataEnd;
    return this.recurringUtf8(start, dataEnd);
  }

  /** The UTF-8 string in `buf[start, dataEnd)`, read as `string` reads it; the position is left alone. */
  utf8(start: number, dataEnd: number): string {
    const length = dataEnd - start;
    if (length === 0) return '';
    if (length <= SHORT_STRING) {
      const buf = this.buf;
      let ascii = true;
      for (let i = start; i < dataEnd; i++) {
        if ((buf[i] as number) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return String.fromCharCode.apply(null, this.#view(start, dataEnd) as unknown as number[]);
    }
    try {
      return utf8.decode(this.#view(start, dataEnd));
    } catch (error) {
      throw new ProtoDecodeError('a string is not valid UTF-8', { cause: error });
    }
  }

  /** `utf8`, through the table of recurring strings (see `recurringString`). */
  recurringUtf8(start: number, dataEnd: number): string {
    const length = dataEnd - start;
    if (length === 0) return '';
    if (length > MAX_CACHED) return this.utf8(start, dataEnd);
    const buf = this.buf;
    const slot = slotOf(buf, start, dataEnd);
    const base = slot * MAX_CACHED;
    if (cachedLengths[slot] === length) {
      const words = (this.#words ??= this.#dataView());
      if (sameAsCached(words, buf, start, base, length)) return cachedStrings[slot] as string;
    }
    const value = this.utf8(start, dataEnd);
    keep(slot, buf.subarray(start, dataEnd), value);
    return value;
  }

  /**
   * Skips the field whose tag was just read, in a message whose fields are 1 to `lastKnown`
   * and whose caller has taken every known field with its right wire type already: a known
   * field here came with the wrong one.
   */
  skipUnknown(tag: number, end: number, lastKnown: number): void {
    if (tag >>> 3 <= lastKnown) {
      throw new ProtoDecodeError(`field ${tag >>> 3} has wire type ${tag & 7}, not the one its type uses`);
    }
    this.skip(tag & 7, end);
  }

  /** Skips a field of `wireType` whose tag was just read. */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint(end);
        return;
      case WIRE_FIXED64:
        this.#advance(8, end);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.pos = this.lengthDelimitedEnd(end);
        return;
      case WIRE_FIXED32:
        this.#advance(4, end);
        return;
      case 3:
      case 4:
        throw new ProtoDecodeError('groups are not supported');
      default:
        throw new ProtoDecodeError(`wire type ${wireType} does not exist`);
    }
  }

  #dataView(): DataView {
    if (this.#arrayBuffer === undefined) this.#locate();
    return new DataView(this.#arrayBuffer as ArrayBufferLike, this.#byteOffset, this.buf.length);
  }

  #view(start: number, end: number): Uint8Array {
    if (this.#arrayBuffer === undefined) this.#locate();
    return new Uint8Array(this.#arrayBuffer as ArrayBufferLike, this.#byteOffset + start, end - start);
  }

  /** Reads where `buf` lies in memory, once. */
  #locate(): void {
    this.#arrayBuffer = bufferOf.call(this.buf);
    this.#byteOffset = byteOffsetOf.call(this.buf);
  }

  #advance(bytes: number, end: number): void {
    if (bytes > end - this.pos) throw new ProtoDecodeError('a fixed-width field is truncated');
    this.pos += bytes;
  }
}

/** Throws unless the field whose `tag` was just read came with the wire type its declared type uses. */
export function expectWireType(tag: number, wireType: number): void {
  if ((tag & 7) !== wireType) {
    throw new ProtoDecodeError(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wireType}`);
  }
}
