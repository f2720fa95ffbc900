// The request the runtime sends a function: a ToFunction carrying one InvocationBatchRequest,
// the target address, every value registered for the target's function type, and the batch's
// messages in the order they arrived. Encoded with the generated @bufbuild/protobuf schema, so
// the bytes are plain protobuf that any StateFun SDK reads.
//
// A registered value the address does not hold is sent as StateFun sends it: its name and its
// typename with has_value false. The SDKs count it as present-but-unset, not as missing (which
// would get an incomplete-invocation-context reply and no progress).

import { create, toBinary } from '@bufbuild/protobuf';

import {
  AddressSchema,
  ToFunction_InvocationBatchRequestSchema,
  ToFunction_InvocationSchema,
  ToFunction_PersistedValueSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type Address,
  type TypedValue,
} from '../../gen/statefun/request-reply_pb.ts';
import type { StoredAddress, StoredValue } from '../store/state-store.ts';

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

/** The ToFunction bytes for a batch of `invocations` on `target`, with its `state` attached. */
export function encodeToFunction(
  target: StoredAddress,
  state: readonly RequestState[],
  invocations: readonly RequestInvocation[],
): Uint8Array {
  // StateFun never sends an empty batch, and an SDK answers one with an empty result: a
  // runtime bug, caught here rather than as a silent no-op.
  if (invocations.length === 0) throw new RangeError('a ToFunction batch needs at least one invocation');
  const batch = create(ToFunction_InvocationBatchRequestSchema, {
    target: wireAddress(target),
    state: state.map((value) =>
      create(ToFunction_PersistedValueSchema, {
        stateName: value.name,
        stateValue: create(TypedValueSchema, {
          typename: value.typename,
          hasValue: value.value !== undefined,
          ...(value.value === undefined ? {} : { value: value.value }),
        }),
      }),
    ),
    invocations: invocations.map((invocation) =>
      create(ToFunction_InvocationSchema, {
        ...(invocation.caller === undefined ? {} : { caller: wireAddress(invocation.caller) }),
        argument: presentValue(invocation.argument),
      }),
    ),
  });
  return toBinary(
    ToFunctionSchema,
    create(ToFunctionSchema, { request: { case: 'invocation', value: batch } }),
  );
}

function wireAddress([namespace, type, id]: StoredAddress): Address {
  return create(AddressSchema, { namespace, type, id });
}

/** A stored value always has a value, even a zero-length one: has_value says so. */
function presentValue(value: StoredValue): TypedValue {
  return create(TypedValueSchema, { typename: value.typename, hasValue: true, value: value.value });
}
