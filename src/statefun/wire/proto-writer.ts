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
// Room kept in front of an outer field's body for its tag and length, each a varint of at most 5 bytes.
const OUTER_HEAD_ROOM = 10;

// TextEncoder, like @bufbuild/protobuf, writes a lone surrogate as U+FFFD (EF BF BD).
const utf8 = new TextEncoder();
// Called directly: a Buffer's own `set`, found through Buffer.prototype, is looked up by an
// inline cache on every call rather than compiled in.
// eslint-disable-next-line @typescript-eslint/unbound-method -- only ever called with .call
const typedArraySet = Uint8Array.prototype.set;

export class ProtoWriter {
  #buf: Uint8Array;
  #capacity: number;
  #pos = 0;
  // Where the output begins: after the room an outer field left unused (see beginOuterField).
  #start = 0;

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
    if (this.#start === 0 && this.#pos === buf.length && buf.constructor === Uint8Array) return buf;
    const exact = new Uint8Array(this.#pos - this.#start);
    exact.set(buf.subarray(this.#start, this.#pos));
    return exact;
  }

  /**
   * The bytes written, as a view of the working buffer, which may sit in Node's shared pool:
   * only for bytes that go straight to a socket and are never handed to a user. It saves the
   * copy `finish` makes, an off-heap allocation for anything over 64 bytes.
   */
  finishForWrite(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#pos);
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
      typedArraySet.call(buf, value, this.#pos);
      this.#pos += length;
    }
  }

  /** Starts a length-delimited sub-message (after its tag); pass the result to `endMessage`. */
  beginMessage(): number {
    if (this.#pos >= this.#capacity) this.#grow(1);
    return this.#pos++;
  }

  /**
   * Starts the output's one top-level field, a length-delimited one, before anything else is
   * written; pass the result to `endOuterField`. Its tag and length are written last, in front
   * of its body, in room kept for them: a reply's body is usually too long for a one-byte
   * length, and `endMessage` would move all of it.
   */
  beginOuterField(): number {
    if (this.#pos !== 0) throw new Error('an outer field must be the first thing written');
    if (OUTER_HEAD_ROOM > this.#capacity) this.#grow(OUTER_HEAD_ROOM);
    this.#pos = OUTER_HEAD_ROOM;
    return OUTER_HEAD_ROOM;
  }

  /** Writes the `tag` and length of the outer field whose body began at `bodyStart`, just before it. */
  endOuterField(tag: number, bodyStart: number): void {
    const length = this.#pos - bodyStart;
    const start = bodyStart - varintSize(tag) - varintSize(length);
    const end = this.#pos;
    this.#pos = start;
    this.varint(tag);
    this.varint(length);
    this.#pos = end;
    this.#start = start;
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
