// Encodes a FromFunction reply (proto/statefun/request-reply.proto) by hand, fields in
// field-number order and default values left out, as @bufbuild/protobuf's `toBinary` does: the
// bytes are the same as the reflective path's (test/statefun/wire.test.ts checks it), at a
// fraction of the cost. Tags below are written as their wire bytes: field << 3 | wire type.

import type { TypedValue } from '../../gen/statefun/request-reply_pb.ts';
import type { Address } from '../address.ts';
import type { TypeName } from '../type-name.ts';
import type { ValueSpec } from '../value-spec.ts';
import { EncodingCache } from './encoding-cache.ts';
import { ProtoWriter } from './proto-writer.ts';
import { RecordValue } from './record-value.ts';
import { NO_BYTES } from './typed-value.ts';

/** The final change of one persisted value: its new bytes under `typename`, or removed (undefined). */
export interface StateMutation {
  readonly name: string;
  readonly typename: string;
  readonly bytes: Uint8Array | undefined;
}

export interface OutgoingMessage {
  readonly target: Address;
  readonly argument: TypedValue;
}

/** A message sent after a delay, or (`isCancellationRequest`) the cancellation of one by token. */
export interface DelayedInvocation {
  readonly isCancellationRequest: boolean;
  readonly cancellationToken: string;
  readonly delayMs: number;
  readonly target: Address | undefined;
  readonly argument: TypedValue | undefined;
}

export interface OutgoingEgress {
  readonly typeName: TypeName;
  /** Undefined only from a JavaScript caller that left it out; then the record has no argument. */
  readonly argument: TypedValue | undefined;
}

export interface InvocationResult {
  readonly mutations: readonly StateMutation[];
  readonly outgoingMessages: readonly OutgoingMessage[];
  readonly delayedInvocations: readonly DelayedInvocation[];
  readonly outgoingEgresses: readonly OutgoingEgress[];
}

// FromFunction.invocation_result (100) and .incomplete_invocation_context (101), as varint tags.
const INVOCATION_RESULT_TAG = (100 << 3) | 2;
const INCOMPLETE_CONTEXT_TAG = (101 << 3) | 2;
const MODIFY = 1;
const EXPIRE_AFTER_WRITE = 1;
const EXPIRE_AFTER_INVOKE = 2;

// Room for a typical reply: the result of one invocation is about 150 bytes.
const BYTES_PER_EFFECT = 96;

/**
 * A FromFunction with the batch's InvocationResponse. With `forWrite`, the bytes may share
 * their ArrayBuffer (ProtoWriter.finishForWrite): for a reply written straight to a socket.
 */
export function encodeInvocationResult(result: InvocationResult, forWrite = false): Uint8Array {
  const effects =
    result.mutations.length +
    result.outgoingMessages.length +
    result.delayedInvocations.length +
    result.outgoingEgresses.length;
  const writer = new ProtoWriter(16 + effects * BYTES_PER_EFFECT);
  const response = writer.beginOuterField();
  for (const mutation of result.mutations) {
    writer.byte(0x0a);
    const start = writer.beginMessage();
    if (mutation.bytes !== undefined) {
      writer.byte(0x08);
      writer.byte(MODIFY);
    }
    if (mutation.name !== '') {
      writer.byte(0x12);
      writer.string(mutation.name);
    }
    if (mutation.bytes !== undefined) {
      writer.byte(0x1a);
      const value = writer.beginMessage();
      writeTypedValueFields(writer, mutation.typename, true, mutation.bytes);
      writer.endMessage(value);
    }
    writer.endMessage(start);
  }
  for (const message of result.outgoingMessages) {
    writer.byte(0x12);
    const start = writer.beginMessage();
    writer.byte(0x0a);
    writeAddress(writer, message.target);
    writer.byte(0x12);
    writeTypedValue(writer, message.argument);
    writer.endMessage(start);
  }
  for (const delayed of result.delayedInvocations) {
    writer.byte(0x1a);
    const start = writer.beginMessage();
    if (delayed.delayMs !== 0) {
      writer.byte(0x08);
      writer.varint(delayed.delayMs);
    }
    if (delayed.target !== undefined) {
      writer.byte(0x12);
      writeAddress(writer, delayed.target);
    }
    if (delayed.argument !== undefined) {
      writer.byte(0x1a);
      writeTypedValue(writer, delayed.argument);
    }
    if (delayed.isCancellationRequest) {
      writer.byte(0x50);
      writer.byte(1);
    }
    if (delayed.cancellationToken !== '') {
      writer.byte(0x5a);
      writer.string(delayed.cancellationToken);
    }
    writer.endMessage(start);
  }
  for (const egress of result.outgoingEgresses) {
    writer.byte(0x22);
    const start = writer.beginMessage();
    // egress_namespace = 1, egress_type = 2
    typeNameFields.write(writer, egress.typeName.toString());
    if (egress.argument !== undefined) {
      writer.byte(0x1a);
      writeTypedValue(writer, egress.argument);
    }
    writer.endMessage(start);
  }
  writer.endOuterField(INVOCATION_RESULT_TAG, response);
  return forWrite ? writer.finishForWrite() : writer.finish();
}

/** A FromFunction listing the values the request lacked (IncompleteInvocationContext). */
export function encodeIncompleteContext(missing: readonly ValueSpec<unknown>[]): Uint8Array {
  const writer = new ProtoWriter(16 + missing.length * 64);
  const context = writer.beginOuterField();
  for (const spec of missing) {
    writer.byte(0x0a);
    const start = writer.beginMessage();
    writer.byte(0x0a);
    writer.string(spec.name);
    const { expiration } = spec;
    // Left out for a value that never expires, as the official JavaScript SDK does.
    if (expiration.mode !== 'none') {
      writer.byte(0x12);
      const expirationStart = writer.beginMessage();
      writer.byte(0x08);
      writer.byte(expiration.mode === 'after-write' ? EXPIRE_AFTER_WRITE : EXPIRE_AFTER_INVOKE);
      writer.byte(0x10);
      writer.varint(expiration.afterMs);
      writer.endMessage(expirationStart);
    }
    writer.byte(0x1a);
    writer.string(spec.type.typeName.toString());
    writer.endMessage(start);
  }
  writer.endOuterField(INCOMPLETE_CONTEXT_TAG, context);
  return writer.finish();
}

/**
 * A type name's namespace and name as fields 1 and 2, as both Address and EgressMessage have
 * them, from its whole form (split at the last slash, as TypeName.parse does).
 */
const typeNameFields = new EncodingCache((writer, whole) => {
  const slash = whole.lastIndexOf('/');
  writer.byte(0x0a);
  writer.string(whole.slice(0, slash));
  writer.byte(0x12);
  writer.string(whole.slice(slash + 1));
});

/** The typename (1) and has_value = true (2) of a present TypedValue. */
const presentValueHeads = new EncodingCache((writer, typename) => {
  writer.byte(0x0a);
  writer.string(typename);
  writer.byte(0x10);
  writer.byte(1);
});

/** An Address sub-message (after its tag). */
function writeAddress(writer: ProtoWriter, address: Address): void {
  const start = writer.beginMessage();
  // namespace = 1, type = 2 (a TypeName's are never empty); an id may be empty.
  typeNameFields.write(writer, address.type.toString());
  if (address.id !== '') {
    writer.byte(0x1a);
    writer.string(address.id);
  }
  writer.endMessage(start);
}

/** A TypedValue sub-message (after its tag), with any unknown fields a decoded one kept. */
function writeTypedValue(writer: ProtoWriter, value: TypedValue): void {
  const start = writer.beginMessage();
  if (value instanceof RecordValue) {
    // An egress record: encoded here, in place (a record always has a field, so never empty).
    writeTypedValueFields(writer, value.typename, value.hasValue, NO_BYTES);
    writer.byte(0x1a);
    const record = writer.beginMessage();
    value.writeTo(writer);
    writer.endMessage(record);
    writer.endMessage(start);
    return;
  }
  writeTypedValueFields(writer, value.typename, value.hasValue, value.value);
  if (value.$unknown !== undefined) {
    for (const field of value.$unknown) {
      writer.varint(field.no * 8 + field.wireType);
      writer.raw(field.data);
    }
  }
  writer.endMessage(start);
}

function writeTypedValueFields(
  writer: ProtoWriter,
  typename: string,
  hasValue: boolean,
  bytes: Uint8Array,
): void {
  if (typename !== '' && hasValue) {
    presentValueHeads.write(writer, typename);
  } else if (typename !== '') {
    writer.byte(0x0a);
    writer.string(typename);
  } else if (hasValue) {
    writer.byte(0x10);
    writer.byte(1);
  }
  if (bytes.length > 0) {
    writer.byte(0x1a);
    writer.bytes(bytes);
  }
}
