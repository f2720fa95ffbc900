// Builders of ToFunction requests with the generated @bufbuild/protobuf code (the reference, not
// our codec), shared by the statefun tests and the compat tests. Not a test file itself.

import { create, toBinary } from '@bufbuild/protobuf';

import {
  AddressSchema,
  ToFunction_InvocationBatchRequestSchema,
  ToFunction_InvocationSchema,
  ToFunction_PersistedValueSchema,
  ToFunctionSchema,
  TypedValueSchema,
  type Address as WireAddress,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import type { SimpleType } from '../../src/statefun/simple-type.ts';

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A present value of `type` (has_value=true, even for zero values, which encode to no bytes). */
export function typed<T>(type: SimpleType<T>, value: T): TypedValue {
  return create(TypedValueSchema, {
    typename: type.typeName.toString(),
    hasValue: true,
    value: type.serialize(value),
  });
}

/** `namespace/type/id` (the namespace may hold slashes; the last two parts are type and id). */
export function wireAddress(address: string): WireAddress {
  const parts = address.split('/');
  const id = parts.pop() ?? '';
  const type = parts.pop() ?? '';
  return create(AddressSchema, { namespace: parts.join('/'), type, id });
}

export interface RequestInvocation {
  /** `namespace/type/id`; absent for a message from an ingress. */
  readonly caller?: string | undefined;
  /** Always set by the runtime; undefined only to build a malformed request. */
  readonly argument: TypedValue | undefined;
}

/**
 * A ToFunction batch for `target` (`namespace/type/id`). `state` lists the values the runtime
 * attaches, in order: a TypedValue, or undefined for a registered value that has none (sent as
 * the name only, as the runtime does).
 */
export function toFunction(
  target: string,
  state: readonly (readonly [string, TypedValue | undefined])[],
  invocations: readonly RequestInvocation[],
): Uint8Array {
  return toBinary(
    ToFunctionSchema,
    create(ToFunctionSchema, {
      request: {
        case: 'invocation',
        value: create(ToFunction_InvocationBatchRequestSchema, {
          target: wireAddress(target),
          state: state.map(([stateName, stateValue]) =>
            create(ToFunction_PersistedValueSchema, { stateName, stateValue }),
          ),
          invocations: invocations.map(({ caller, argument }) =>
            create(ToFunction_InvocationSchema, {
              caller: caller === undefined ? undefined : wireAddress(caller),
              argument,
            }),
          ),
        }),
      },
    }),
  );
}
