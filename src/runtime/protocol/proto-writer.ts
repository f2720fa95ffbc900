// The protobuf wire primitives the runtime's request encoder needs, for a message whose exact
// size is computed first: the bytes go into one Uint8Array of that size, written front to back,
// never grown and never copied. (The SDK has a growable writer of its own; the runtime reaches
// the SDK only through its public index, so this one is separate and smaller.)
//
// Strings are UTF-8 as @bufbuild/protobuf writes them: TextEncoder and Buffer.byteLength both
// turn a lone surrogate into U+FFFD (3 bytes), so sizes and bytes agree with the generated code.

export const WIRE_VARINT = 0;
export const WIRE_LENGTH_DELIMITED = 2;

const utf8 = new TextEncoder();

/** The tag (field number and wire type) of a field, as the number its varint encodes. */
export function fieldTag(fieldNumber: number, wireType: number): number {
  return (fieldNumber << 3) | wireType;
}

/** How many bytes the varint of `value` (a whole number up to 2^53) takes. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 4 + varintSize(Math.floor(value / 0x10000000));
}

/** How many bytes `value` takes in UTF-8; a scan without allocation while it is ASCII. */
export function utf8Size(value: string): number {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value, 'utf8');
  }
  return length;
}

/** The size of a length-delimited body of `bodySize` bytes with its length in front (not its tag). */
export function delimitedSize(bodySize: number): number {
  return varintSize(bodySize) + bodySize;
}

/** Writes into a buffer of exactly the size the message will take; `finish` checks it did. */
export class ExactSizeWriter {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(size: number) {
    this.#buf = new Uint8Array(size);
  }

  /** An unsigned varint (a tag, a length, a bool) of a whole number up to 2^53. */
  varint(value: number): void {
    const buf = this.#buf;
    let pos = this.#pos;
    while (value > 0x7fffffff) {
      buf[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
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
    // Optimistically ASCII, whose UTF-8 length is its length: one pass writes it.
    const start = this.#pos;
    this.varint(length);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) {
        this.#pos = start;
        this.#utf8String(value);
        return;
      }
      buf[pos++] = code;
    }
    this.#pos = pos;
  }

  /** Bytes with their length as a varint. */
  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  /** The message; throws if the bytes written are not exactly the size computed (an encoder bug). */
  finish(): Uint8Array {
    if (this.#pos !== this.#buf.length) {
      throw new Error(
        `the message took ${this.#pos} bytes, but its size was computed as ${this.#buf.length}`,
      );
    }
    return this.#buf;
  }

  #utf8String(value: string): void {
    const size = Buffer.byteLength(value, 'utf8');
    this.varint(size);
    const { written } = utf8.encodeInto(value, this.#buf.subarray(this.#pos, this.#pos + size));
    this.#pos += written;
  }
}
