// TypedValues as plain objects. The SDK hands them to users (`Message.typedValue`), so they
// keep @bufbuild/protobuf's shape and type, but are made as literals: `create()` per value
// costs more than the rest of the work around it.

import type { TypedValue } from '../../gen/statefun/request-reply_pb.ts';
import { serializeValue, type SimpleType } from '../simple-type.ts';

export const TYPED_VALUE_TYPENAME = 'io.statefun.sdk.reqreply.TypedValue';

/** Shared by every TypedValue without bytes; zero-length, so nothing can write into it. */
export const NO_BYTES = new Uint8Array(0);

export function typedValue(typename: string, hasValue: boolean, value: Uint8Array): TypedValue {
  return { $typeName: TYPED_VALUE_TYPENAME, typename, hasValue, value };
}

/** A present `value` of `type`, under its typename (what a message or an egress record carries). */
export function typedValueOf<T>(type: SimpleType<T>, value: T): TypedValue {
  return typedValue(type.typeName.toString(), true, serializeValue(type, value));
}
