// Encoded fields that recur in every reply, kept by the string they are made from: a
// TypedValue's typename with has_value, or a type name's namespace and name. That string is
// usually the very same object each time (a TypeName keeps its whole form, and requests
// decode typenames to remembered strings), so a hit costs one comparison, and the fields are
// then copied in one go rather than written field by field.
//
// Bounded: SLOTS encodings, each of a string shorter than MAX_KEY. A slot holds the last
// string of its length (mod SLOTS); two busy strings of one length take turns, which only
// costs speed. Never for ids or values, which have no bound.

import { ProtoWriter } from './proto-writer.ts';

const SLOTS = 16;
const MAX_KEY = 128;

/** Writes the fields made from `key`. */
export type FieldsEncoder = (writer: ProtoWriter, key: string) => void;

export class EncodingCache {
  readonly #encode: FieldsEncoder;
  // Undefined matches no key, the empty string included.
  readonly #keys: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  readonly #encodings: Uint8Array[] = new Array<Uint8Array>(SLOTS).fill(new Uint8Array(0));

  constructor(encode: FieldsEncoder) {
    this.#encode = encode;
  }

  /** Writes the fields of `key` into `writer`, from the cache when it has them. */
  write(writer: ProtoWriter, key: string): void {
    if (key.length >= MAX_KEY) {
      this.#encode(writer, key);
      return;
    }
    const slot = key.length & (SLOTS - 1);
    // The same object compares at once; an equal copy compares by content, and is still right.
    if (this.#keys[slot] !== key) {
      const fields = new ProtoWriter(16 + key.length * 3);
      this.#encode(fields, key);
      this.#encodings[slot] = fields.finish();
      this.#keys[slot] = key;
    }
    writer.raw(this.#encodings[slot] as Uint8Array);
  }
}
