// The request the runtime sends a function: a ToFunction carrying one InvocationBatchRequest,
// the target address, every value registered for the target's function type, and the batch's
// messages in the order they arrived. Plain protobuf (proto/statefun/request-reply.proto) that
// any StateFun SDK reads.
//
// A registered value the address does not hold is sent as StateFun sends it: its name and its
// typename with has_value false. The SDKs count it as present-but-unset, not as missing (which
// would get an incomplete-invocation-context reply and no progress).
//
// Encoded by hand rather than with the generated schema's reflective toBinary, which cost a
// seventh of the runtime's CPU: a pass computes the exact size, a second writes the fields into
// one buffer of that size. The bytes are those toBinary writes (the tests compare them): fields
// in field-number order, and, as proto3 does for fields without explicit presence, an empty
// string, a false bool and an empty bytes field left out. A sub-message field that is set is
// always written, even when empty.

import type { StoredAddress, StoredValue } from '../store/state-store.ts';
import {
  delimitedSize,
  ExactSizeWriter,
  fieldTag,
  utf8Size,
  varintSize,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
} from './proto-writer.ts';

/** A registered value attached to a request; `value` absent: the address holds none. */
export interface RequestState {
  readonly name: string;
  readonly typename: string;
  readonly value?: Uint8Array | undefined;
}

/** One message of the batch; `caller` is absent for a message from an ingress. */
export interface RequestInvocation {
  readonly caller?: StoredAddress | undefined;
  readonly argument: StoredValue;
}

// ToFunction.invocation = 100, the oneof's one case.
const INVOCATION_BATCH = fieldTag(100, WIRE_LENGTH_DELIMITED);
// Every other field is numbered 1 to 3, so its tag is one byte. By field number:
const FIELD_1 = fieldTag(1, WIRE_LENGTH_DELIMITED); // target, caller, namespace, typename, state_name
const FIELD_2 = fieldTag(2, WIRE_LENGTH_DELIMITED); // state, argument, type, state_value
const FIELD_3 = fieldTag(3, WIRE_LENGTH_DELIMITED); // invocations, id, value
const HAS_VALUE = fieldTag(2, WIRE_VARINT); // TypedValue.has_value
const TRUE = 1;

/** The ToFunction bytes for a batch of `invocations` on `target`, with its `state` attached. */
export function encodeToFunction(
  target: StoredAddress,
  state: readonly RequestState[],
  invocations: readonly RequestInvocation[],
): Uint8Array {
  // StateFun never sends an empty batch, and an SDK answers one with an empty result: a
  // runtime bug, caught here rather than as a silent no-op.
  if (invocations.length === 0) throw new RangeError('a ToFunction batch needs at least one invocation');
  const batchSize = batchBodySize(target, state, invocations);
  const writer = new ExactSizeWriter(varintSize(INVOCATION_BATCH) + delimitedSize(batchSize));
  writer.varint(INVOCATION_BATCH);
  writer.varint(batchSize);
  // InvocationBatchRequest: target = 1, state = 2, invocations = 3.
  writer.varint(FIELD_1);
  writeAddress(writer, target);
  for (const value of state) {
    writer.varint(FIELD_2);
    // PersistedValue: state_name = 1, state_value = 2 (always set, has_value says if it holds one).
    writer.varint(persistedValueBodySize(value));
    writeString(writer, FIELD_1, value.name);
    writer.varint(FIELD_2);
    writeTypedValue(writer, value.typename, value.value);
  }
  for (const { caller, argument } of invocations) {
    writer.varint(FIELD_3);
    // Invocation: caller = 1 (absent from an ingress), argument = 2 (a stored value is always present).
    writer.varint(invocationBodySize(caller, argument));
    if (caller !== undefined) {
      writer.varint(FIELD_1);
      writeAddress(writer, caller);
    }
    writer.varint(FIELD_2);
    writeTypedValue(writer, argument.typename, argument.value);
  }
  return writer.finish();
}

function batchBodySize(
  target: StoredAddress,
  state: readonly RequestState[],
  invocations: readonly RequestInvocation[],
): number {
  let size = 1 + delimitedSize(addressBodySize(target));
  for (const value of state) size += 1 + delimitedSize(persistedValueBodySize(value));
  for (const { caller, argument } of invocations) {
    size += 1 + delimitedSize(invocationBodySize(caller, argument));
  }
  return size;
}

function persistedValueBodySize(value: RequestState): number {
  return stringFieldSize(value.name) + 1 + delimitedSize(typedValueBodySize(value.typename, value.value));
}

function invocationBodySize(caller: StoredAddress | undefined, argument: StoredValue): number {
  const callerSize = caller === undefined ? 0 : 1 + delimitedSize(addressBodySize(caller));
  return callerSize + 1 + delimitedSize(typedValueBodySize(argument.typename, argument.value));
}

/** Address: namespace = 1, type = 2, id = 3. */
function addressBodySize([namespace, type, id]: StoredAddress): number {
  return stringFieldSize(namespace) + stringFieldSize(type) + stringFieldSize(id);
}

/** TypedValue: typename = 1, has_value = 2, value = 3; `value` undefined: has_value false. */
function typedValueBodySize(typename: string, value: Uint8Array | undefined): number {
  if (value === undefined) return stringFieldSize(typename);
  return stringFieldSize(typename) + 2 + (value.length === 0 ? 0 : 1 + delimitedSize(value.length));
}

function stringFieldSize(value: string): number {
  return value === '' ? 0 : 1 + delimitedSize(utf8Size(value));
}

/** An address's length and body, after its tag. */
function writeAddress(writer: ExactSizeWriter, address: StoredAddress): void {
  writer.varint(addressBodySize(address));
  writeString(writer, FIELD_1, address[0]);
  writeString(writer, FIELD_2, address[1]);
  writeString(writer, FIELD_3, address[2]);
}

/** A typed value's length and body, after its tag. */
function writeTypedValue(writer: ExactSizeWriter, typename: string, value: Uint8Array | undefined): void {
  writer.varint(typedValueBodySize(typename, value));
  writeString(writer, FIELD_1, typename);
  if (value === undefined) return;
  writer.varint(HAS_VALUE);
  writer.varint(TRUE);
  if (value.length === 0) return;
  writer.varint(FIELD_3);
  writer.bytes(value);
}

function writeString(writer: ExactSizeWriter, tag: number, value: string): void {
  if (value === '') return;
  writer.varint(tag);
  writer.string(value);
}
