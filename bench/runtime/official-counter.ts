// What the remote-official loop and its endpoint agree on: the counter function's names, the
// ToFunction request the loop sends and the FromFunction reply it must get back, and the one IPC
// message the endpoint process sends.
//
// The loop plays the runtime's part: it holds each key's count, sends it with every invocation
// (so the SDK never has to ask for it with an incomplete-context reply; a key never written is
// sent without a value, as the runtime sends an absent state), and applies the reply's mutation.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';

import {
  AddressSchema,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  ToFunction_InvocationBatchRequestSchema,
  ToFunction_InvocationSchema,
  ToFunction_PersistedValueSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { IntWrapperSchema } from '../../src/gen/statefun/types_pb.ts';

export const officialCounter = {
  namespace: 'bench',
  name: 'counter',
  typeName: 'bench/counter',
  /** Lower-case letters only, which the official SDK requires of a state's name. */
  state: 'count',
} as const;

const intTypename = 'io.statefun.types/int';

function intValue(value: number): TypedValue {
  return create(TypedValueSchema, {
    typename: intTypename,
    hasValue: true,
    value: toBinary(IntWrapperSchema, create(IntWrapperSchema, { value })),
  });
}

// Every invocation adds one; the bytes are the same each time.
const addOne = create(ToFunction_InvocationSchema, { argument: intValue(1) });

/** A ToFunction of one invocation (add 1) for bench/counter:`id`, carrying its `count` (0: absent). */
export function counterRequest(id: string, count: number): Uint8Array {
  return toBinary(
    ToFunctionSchema,
    create(ToFunctionSchema, {
      request: {
        case: 'invocation',
        value: create(ToFunction_InvocationBatchRequestSchema, {
          target: create(AddressSchema, {
            namespace: officialCounter.namespace,
            type: officialCounter.name,
            id,
          }),
          state: [
            create(ToFunction_PersistedValueSchema, {
              stateName: officialCounter.state,
              ...(count === 0 ? {} : { stateValue: intValue(count) }),
            }),
          ],
          invocations: [addOne],
        }),
      },
    }),
  );
}

/**
 * The count a FromFunction reply writes; throws unless the reply is an invocation result whose
 * only effect is one MODIFY of `count` to an int.
 */
export function countFromReply(bytes: Uint8Array, what: string): number {
  const reply = fromBinary(FromFunctionSchema, bytes);
  if (reply.response.case !== 'invocationResult') {
    throw new Error(`${what}: expected an invocation result, got ${String(reply.response.case)}`);
  }
  const result = reply.response.value;
  const [mutation, ...more] = result.stateMutations;
  if (mutation === undefined || more.length > 0) {
    throw new Error(`${what}: expected one state mutation, got ${result.stateMutations.length}`);
  }
  const effects =
    result.outgoingMessages.length + result.outgoingEgresses.length + result.delayedInvocations.length;
  if (effects > 0) throw new Error(`${what}: ${effects} unexpected messages, egress records or delays`);
  const value = mutation.stateValue;
  if (
    mutation.stateName !== officialCounter.state ||
    mutation.mutationType !== MutationType.MODIFY ||
    value?.typename !== intTypename ||
    !value.hasValue
  ) {
    throw new Error(`${what}: expected a MODIFY of ${officialCounter.state} to an int`);
  }
  return fromBinary(IntWrapperSchema, value.value).value;
}

/** The endpoint process's one message: it listens on `port` of 127.0.0.1. */
export interface OfficialEndpointReady {
  readonly type: 'ready';
  readonly port: number;
}

export function parseOfficialEndpointReady(message: unknown): OfficialEndpointReady {
  if (typeof message === 'object' && message !== null) {
    const { type, port } = message as Record<string, unknown>;
    if (
      type === 'ready' &&
      typeof port === 'number' &&
      Number.isSafeInteger(port) &&
      port > 0 &&
      port < 65_536
    ) {
      return { type, port };
    }
  }
  throw new TypeError(`unexpected message from the official endpoint process: ${JSON.stringify(message)}`);
}
