// What the statefun suite sends and what it expects back, shared by the bench process and its
// server process so every side agrees on the bytes.
//
// The function under test, `bench/counter`, is the same on every server: per invocation it
// reads one int state, adds the message's int to it and writes it back, sends one message
// (the new count) to `bench/sink` at the same id, and emits one Kafka egress record (the new
// count, 4 bytes big-endian) to `bench/out`. A request is one ToFunction batch for
// `bench/counter:user-1` with the state present (so no incomplete-context round trip) and N
// invocations of int 1; the reply must carry the count N higher, N messages and N records.

import assert from 'node:assert/strict';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import {
  AddressSchema,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  ToFunction_InvocationBatchRequestSchema,
  ToFunction_InvocationSchema,
  ToFunction_PersistedValueSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type FromFunction,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { IntWrapperSchema } from '../../src/gen/statefun/types_pb.ts';

export const counterNamespace = 'bench';
export const counterName = 'counter';
export const counterTypeName = `${counterNamespace}/${counterName}`;
/** The state's name: lower-case letters only, which the official SDK requires. */
export const countState = 'count';
export const sinkTypeName = 'bench/sink';
export const egressTypeName = 'bench/out';
export const egressTopic = 'counts';
export const targetId = 'user-1';
/** The count the request carries; the reply must carry it plus the number of invocations. */
export const initialCount = 41;

const intTypename = 'io.statefun.types/int';
const kafkaRecordTypename = 'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord';

function intValue(value: number): TypedValue {
  return create(TypedValueSchema, {
    typename: intTypename,
    hasValue: true,
    value: toBinary(IntWrapperSchema, create(IntWrapperSchema, { value })),
  });
}

function readInt(value: TypedValue | undefined, what: string): number {
  assert.ok(value !== undefined, `${what}: no value`);
  assert.equal(value.typename, intTypename, `${what}: typename`);
  assert.equal(value.hasValue, true, `${what}: has_value`);
  return fromBinary(IntWrapperSchema, value.value).value;
}

/**
 * A ToFunction batch for bench/counter:`id` (default user-1) with the count present and
 * `invocations` messages of int 1.
 */
export function counterRequest(invocations: number, id: string = targetId): Buffer {
  const bytes = toBinary(
    ToFunctionSchema,
    create(ToFunctionSchema, {
      request: {
        case: 'invocation',
        value: create(ToFunction_InvocationBatchRequestSchema, {
          target: create(AddressSchema, { namespace: counterNamespace, type: counterName, id }),
          state: [
            create(ToFunction_PersistedValueSchema, {
              stateName: countState,
              stateValue: intValue(initialCount),
            }),
          ],
          invocations: Array.from({ length: invocations }, () =>
            create(ToFunction_InvocationSchema, { argument: intValue(1) }),
          ),
        }),
      },
    }),
  );
  // A Buffer, as a body read off a socket is.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes a FromFunction and throws unless it is the answer to `counterRequest(invocations)`:
 * the count written once (MODIFY, the initial count plus `invocations`), and per invocation in
 * order one message to bench/sink:user-1 and one Kafka record, each with the count so far.
 */
export function assertCounterReply(
  bytes: Uint8Array,
  invocations: number,
  what: string,
  id: string = targetId,
): FromFunction {
  const reply = fromBinary(FromFunctionSchema, bytes);
  assert.equal(reply.response.case, 'invocationResult', `${what}: response kind`);
  const result = reply.response.value;
  assert.equal(result.stateMutations.length, 1, `${what}: state mutations`);
  const [mutation] = result.stateMutations;
  assert.ok(mutation !== undefined);
  assert.equal(mutation.stateName, countState, `${what}: mutated state`);
  assert.equal(mutation.mutationType, MutationType.MODIFY, `${what}: mutation type`);
  assert.equal(readInt(mutation.stateValue, `${what}: count`), initialCount + invocations, `${what}: count`);
  assert.equal(result.delayedInvocations.length, 0, `${what}: delayed invocations`);
  assert.equal(result.outgoingMessages.length, invocations, `${what}: messages`);
  assert.equal(result.outgoingEgresses.length, invocations, `${what}: egress records`);
  for (let i = 0; i < invocations; i++) {
    const expected = initialCount + i + 1;
    const message = result.outgoingMessages[i];
    assert.ok(message !== undefined);
    assert.deepEqual(
      [message.target?.namespace, message.target?.type, message.target?.id],
      ['bench', 'sink', id],
      `${what}: message ${i} target`,
    );
    assert.equal(readInt(message.argument, `${what}: message ${i}`), expected, `${what}: message ${i}`);
    const egress = result.outgoingEgresses[i];
    assert.ok(egress !== undefined);
    assert.deepEqual([egress.egressNamespace, egress.egressType], ['bench', 'out'], `${what}: egress ${i}`);
    assert.equal(egress.argument?.typename, kafkaRecordTypename, `${what}: egress ${i} typename`);
    const record = fromBinary(KafkaProducerRecordSchema, egress.argument.value);
    assert.equal(record.topic, egressTopic, `${what}: egress ${i} topic`);
    assert.equal(record.key, id, `${what}: egress ${i} key`);
    assert.equal(Buffer.from(record.valueBytes).readInt32BE(0), expected, `${what}: egress ${i} value`);
    assert.equal(record.valueBytes.length, 4, `${what}: egress ${i} value length`);
  }
  return reply;
}

/** The id of request `index` of a many-ids workload: `user-0`, `user-1`, … */
export function manyIdsTarget(index: number): string {
  return `user-${index}`;
}

/**
 * `ids` requests of `invocations` each, one per id, taken in turn: no two consecutive requests
 * are alike, so no cache keyed on the bytes or the id (our decoder keeps recently seen strings)
 * can hit the way it does when every request is the same.
 */
export class RequestCycle {
  readonly bodies: readonly Buffer[];
  #next = 0;

  constructor(invocations: number, ids: number) {
    this.bodies = Array.from({ length: ids }, (_, i) => counterRequest(invocations, manyIdsTarget(i)));
  }

  next(): Buffer {
    const body = this.bodies[this.#next] as Buffer;
    this.#next = (this.#next + 1) % this.bodies.length;
    return body;
  }
}

/** What the http-floor server answers to every request. */
export const floorReply: Buffer = Buffer.alloc(64, 0x5a);
