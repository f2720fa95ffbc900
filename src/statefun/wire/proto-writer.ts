// A growable byte buffer with the protobuf wire primitives the SDK writes: varints and
// length-delimited strings and bytes. A sub-message is written in place: one byte is
// kept for its length, and only a sub-message of 128 bytes or more moves to make room for a
// longer varint, so nothing is encoded twice and no size pass runs first.

const SHORT_STRING = 128;
// Below this many bytes a loop copies more cheaply than TypedArray.set: its native call costs
// about as much as a loop over a dozen bytes (some 250 instructions, each byte of a loop 25).
const SHORT_COPY = 12;
// Up to this size a buffer is a plain Uint8Array (on V8's heap, cheapest to make); above it,
// Buffer.allocUnsafe, which skips zeroing.
const SMALL_BUFFER = 64;
// Type names recur in every reply, usually as the very same string object (a TypeName keeps
// its whole form): the last one of each length (mod RECENT_SLOTS) is kept encoded.
const MIN_CACHED_STRING = 16;
const RECENT_SLOTS = 16;

// TextEncoder, like @bufbuild/protobuf, writes a lone surrogate as U+FFFD (EF BF BD).
const utf8 = new TextEncoder();
const recentStrings: string[] = new Array<string>(RECENT_SLOTS).fill('');
const recentEncodings: Uint8Array[] = new Array<Uint8Array>(RECENT_SLOTS).fill(new Uint8Array(1));

export class ProtoWriter {
  #buf: Uint8Array;
  #capacity: number;
  #pos = 0;

  /** `capacity` is a first guess: the buffer grows as needed, and an exact guess is never copied. */
  constructor(capacity = 256) {
    this.#buf = capacity <= SMALL_BUFFER ? new Uint8Array(capacity) : Buffer.allocUnsafe(capacity);
    this.#capacity = capacity;
  }

  /**
   * The bytes written, in an ArrayBuffer of their own and of their exact size: callers hand
   * them to users, who may pass `.buffer` on, so it must hold nothing else (the working
   * buffer may sit in Node's shared pool, or hold stale memory past what was written).
   */
  finish(): Uint8Array {
    const buf = this.#buf;
    if (this.#pos === buf.length && buf.constructor === Uint8Array) return buf;
    const exact = new Uint8Array(this.#pos);
    exact.set(buf.subarray(0, this.#pos));
    return exact;
  }

  /**
   * The bytes written, as a view of the working buffer, which may sit in Node's shared pool:
   * only for bytes that go straight to a socket and are never handed to a user. It saves the
   * copy `finish` makes, an off-heap allocation for anything over 64 bytes.
   */
  finishForWrite(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** One byte: a tag of a field below 16, or a bool. */
  byte(value: number): void {
    if (this.#pos >= this.#capacity) this.#grow(1);
    this.#buf[this.#pos++] = value;
  }

  /** An unsigned varint of a whole number up to 2^53 (a tag, a length, an int64 that is >= 0). */
  varint(value: number): void {
    if (this.#pos + 10 > this.#capacity) {
      // Near the end: only what this varint needs, so a buffer made to its exact size stays so.
      const size = value > 0x7fffffff ? 10 : varintSize(value);
      if (this.#pos + size > this.#capacity) this.#grow(size);
    }
    const buf = this.#buf;
    let pos = this.#pos;
    while (value > 0x7fffffff) {
      buf[pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    while (value > 0x7f) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[pos++] = value;
    this.#pos = pos;
  }

  /** A string's UTF-8 length as a varint, then its bytes. */
  string(value: string): void {
    const length = value.length;
    if (length < SHORT_STRING) {
      // Optimistically ASCII: one length byte, one byte per character.
      if (this.#pos + 1 + length > this.#capacity) this.#grow(1 + length);
      const buf = this.#buf;
      const start = this.#pos;
      let pos = start + 1;
      for (let i = 0; i < length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) {
          this.#utf8String(value);
          return;
        }
        buf[pos++] = code;
      }
      buf[start] = length;
      this.#pos = pos;
      return;
    }
    this.#utf8String(value);
  }

  /**
   * The same as `string`, from a cache of encoded strings: for the few strings that recur in
   * every reply (type names), never for ids or other values without bound.
   */
  recurringString(value: string): void {
    // A short string is copied as fast as it is looked up.
    if (value.length < MIN_CACHED_STRING || value.length >= SHORT_STRING) {
      this.string(value);
      return;
    }
    const slot = value.length & (RECENT_SLOTS - 1);
    // The same object compares at once; an equal copy compares by content, and is still right.
    if (recentStrings[slot] !== value) {
      const writer = new ProtoWriter(5 + value.length * 3);
      writer.string(value);
      recentEncodings[slot] = writer.finish();
      recentStrings[slot] = value;
    }
    this.raw(recentEncodings[slot] as Uint8Array);
  }

  /** Bytes with their length as a varint. */
  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.raw(value);
  }

  /** Bytes as they are (already encoded fields). */
  raw(value: Uint8Array): void {
    const length = value.length;
    if (this.#pos + length > this.#capacity) this.#grow(length);
    const buf = this.#buf;
    if (length < SHORT_COPY) {
      let pos = this.#pos;
      for (let i = 0; i < length; i++) buf[pos++] = value[i] as number;
      this.#pos = pos;
    } else {
      buf.set(value, this.#pos);
      this.#pos += length;
    }
  }

  /** Starts a length-delimited sub-message (after its tag); pass the result to `endMessage`. */
  beginMessage(): number {
    if (this.#pos >= this.#capacity) this.#grow(1);
    return this.#pos++;
  }

  /** Writes the length of the sub-message begun at `start`, moving it if the length needs more than a byte. */
  endMessage(start: number): void {
    const length = this.#pos - start - 1;
    if (length < 0x80) {
      this.#buf[start] = length;
      return;
    }
    const lengthBytes = varintSize(length);
    if (this.#pos + lengthBytes - 1 > this.#capacity) this.#grow(lengthBytes - 1);
    const buf = this.#buf;
    buf.copyWithin(start + lengthBytes, start + 1, this.#pos);
    let pos = start;
    let rest = length;
    while (rest > 0x7f) {
      buf[pos++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    buf[pos] = rest;
    this.#pos += lengthBytes - 1;
  }

  #utf8String(value: string): void {
    const length = Buffer.byteLength(value, 'utf8');
    this.varint(length);
    if (this.#pos + length > this.#capacity) this.#grow(length);
    this.#pos += utf8.encodeInto(value, this.#buf.subarray(this.#pos, this.#pos + length)).written;
  }

  #grow(bytes: number): void {
    const capacity = Math.max(this.#pos + bytes, this.#capacity * 2);
    const grown = Buffer.allocUnsafe(capacity);
    grown.set(this.#buf.subarray(0, this.#pos));
    this.#buf = grown;
    this.#capacity = capacity;
  }
}

/** How many bytes a string takes in UTF-8 (as a protobuf writer counts it: a lone surrogate is 3). */
export function utf8Length(value: string): number {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value, 'utf8');
  }
  return length;
}

/** How many bytes a varint of `value` (below 2^31) takes. */
export function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value >>>= 7;
    size++;
  }
  return size;
}
