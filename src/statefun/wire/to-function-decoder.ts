// Decodes a ToFunction request (proto/statefun/request-reply.proto) into plain objects. Strict
// where @bufbuild/protobuf's reflective reader is lenient: a known field with the wrong wire
// type, a sub-message running past its parent or a group is a `ProtoDecodeError`. Otherwise it
// agrees with `fromBinary`: unknown fields are skipped (and not kept), invalid UTF-8 is refused,
// a repeated singular field keeps the last value, and a repeated message field is merged into
// the first, as protobuf requires. Fields are matched by their tag value (field << 3 | wire
// type); a known field under another wire type falls through to skipUnknown, which refuses it.

import type { TypedValue } from '../../gen/statefun/request-reply_pb.ts';
import { appended } from '../appended.ts';
import { expectWireType, ProtoReader, WIRE_LENGTH_DELIMITED } from './proto-reader.ts';
import { NO_BYTES, typedValue } from './typed-value.ts';

export interface WireAddress {
  namespace: string;
  type: string;
  id: string;
}

export interface PersistedValue {
  name: string;
  value: TypedValue | undefined;
}

export interface Invocation {
  caller: WireAddress | undefined;
  argument: TypedValue | undefined;
}

export interface InvocationBatch {
  target: WireAddress | undefined;
  state: PersistedValue[];
  invocations: Invocation[];
}

/** The request's invocation batch, or undefined when it carries none. */
export function decodeToFunction(bytes: Uint8Array): InvocationBatch | undefined {
  return new ToFunctionDecoder(bytes).decode();
}

class ToFunctionDecoder {
  readonly #reader: ProtoReader;

  constructor(bytes: Uint8Array) {
    this.#reader = new ProtoReader(bytes);
  }

  decode(): InvocationBatch | undefined {
    const reader = this.#reader;
    const end = reader.buf.length;
    let batch: InvocationBatch | undefined;
    while (reader.pos < end) {
      const tag = reader.tag(end);
      if (tag >>> 3 === 100) {
        expectWireType(tag, WIRE_LENGTH_DELIMITED);
        batch = this.#batch(reader.lengthDelimitedEnd(end), batch);
      } else {
        reader.skip(tag & 7, end);
      }
    }
    return batch;
  }

  #batch(end: number, merged: InvocationBatch | undefined): InvocationBatch {
    const reader = this.#reader;
    const batch = merged ?? { target: undefined, state: [], invocations: [] };
    while (reader.pos < end) {
      const tag = reader.tag(end);
      switch (tag) {
        case 0x0a: // target = 1
          batch.target = this.#address(reader.lengthDelimitedEnd(end), batch.target);
          break;
        case 0x12: // state = 2
          batch.state = appended(batch.state, this.#persistedValue(reader.lengthDelimitedEnd(end)));
          break;
        case 0x1a: // invocations = 3
          batch.invocations = appended(batch.invocations, this.#invocation(reader.lengthDelimitedEnd(end)));
          break;
        default:
          reader.skipUnknown(tag, end, 3);
      }
    }
    return batch;
  }

  #persistedValue(end: number): PersistedValue {
    const reader = this.#reader;
    const value: PersistedValue = { name: '', value: undefined };
    while (reader.pos < end) {
      const tag = reader.tag(end);
      switch (tag) {
        case 0x0a: // state_name = 1
          value.name = reader.recurringString(end);
          break;
        case 0x12: // state_value = 2
          value.value = this.#typedValue(reader.lengthDelimitedEnd(end), value.value);
          break;
        default:
          reader.skipUnknown(tag, end, 2);
      }
    }
    return value;
  }

  #invocation(end: number): Invocation {
    const reader = this.#reader;
    const invocation: Invocation = { caller: undefined, argument: undefined };
    while (reader.pos < end) {
      const tag = reader.tag(end);
      switch (tag) {
        case 0x0a: // caller = 1
          invocation.caller = this.#address(reader.lengthDelimitedEnd(end), invocation.caller);
          break;
        case 0x12: // argument = 2
          invocation.argument = this.#typedValue(reader.lengthDelimitedEnd(end), invocation.argument);
          break;
        default:
          reader.skipUnknown(tag, end, 2);
      }
    }
    return invocation;
  }

  #address(end: number, merged: WireAddress | undefined): WireAddress {
    const reader = this.#reader;
    const address = merged ?? { namespace: '', type: '', id: '' };
    while (reader.pos < end) {
      const tag = reader.tag(end);
      switch (tag) {
        case 0x0a: // namespace = 1
          address.namespace = reader.recurringString(end);
          break;
        case 0x12: // type = 2
          address.type = reader.recurringString(end);
          break;
        case 0x1a: // id = 3
          address.id = reader.recurringString(end);
          break;
        default:
          reader.skipUnknown(tag, end, 3);
      }
    }
    return address;
  }

  #typedValue(end: number, merged: TypedValue | undefined): TypedValue {
    const reader = this.#reader;
    const value = merged ?? typedValue('', false, NO_BYTES);
    while (reader.pos < end) {
      const tag = reader.tag(end);
      switch (tag) {
        case 0x0a: // typename = 1
          value.typename = reader.recurringString(end);
          break;
        case 0x10: // has_value = 2
          value.hasValue = reader.varint(end) !== 0;
          break;
        case 0x1a: // value = 3
          value.value = reader.bytes(end);
          break;
        default:
          reader.skipUnknown(tag, end, 3);
      }
    }
    return value;
  }
}
