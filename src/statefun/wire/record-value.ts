// The TypedValue of an egress record (a KafkaProducerRecord or KinesisEgressRecord message).
// It keeps the record's fields and encodes them where they are needed: straight into the
// reply that carries the record, or into bytes of its own the first time someone reads
// `value`. A record made, sent and encoded once is never written to a buffer of its own and
// then copied into the reply.

import type { TypedValue } from '../../gen/statefun/request-reply_pb.ts';
import { ProtoWriter } from './proto-writer.ts';
import { TYPED_VALUE_TYPENAME } from './typed-value.ts';

export abstract class RecordValue implements TypedValue {
  readonly $typeName = TYPED_VALUE_TYPENAME;
  readonly typename: string;
  readonly hasValue = true;
  #bytes: Uint8Array | undefined;

  protected constructor(typename: string) {
    this.typename = typename;
  }

  /** The record's encoded bytes, in an ArrayBuffer of their own; encoded on the first read. */
  get value(): Uint8Array {
    if (this.#bytes === undefined) {
      const writer = new ProtoWriter(this.sizeGuess());
      this.writeFields(writer);
      this.#bytes = writer.finish();
    }
    return this.#bytes;
  }

  /** Writes the record's fields (the body of its message), from `value` if that was read. */
  writeTo(writer: ProtoWriter): void {
    if (this.#bytes === undefined) this.writeFields(writer);
    else writer.raw(this.#bytes);
  }

  /** About how many bytes the record takes: a first size for a buffer of its own. */
  protected abstract sizeGuess(): number;

  protected abstract writeFields(writer: ProtoWriter): void;
}
