// weft/statefun: write stateful functions that a real Apache Flink StateFun cluster can call,
// unchanged, over its request-reply protocol, and that Weft's own runtime will run too.
//
// A function is registered under a type name (`namespace/name`) with the persisted values it
// declares (`valueSpec`). The runtime calls it with batches of messages for one address at a
// time, attaching that address's values; the function reads and writes them through
// `context.storage`, sends messages (now or after a delay), and emits egress records. Effects are
// returned to the runtime, which applies them exactly once, though user code may run more than
// once. Types: the six cross-language primitives (`intType`, `longType`, …), JSON, protobuf.
// This module imports nothing of Weft but its internals: an SDK user never pulls in the grid.

export { StatefulFunctions } from './stateful-functions.ts';
export { TypeName } from './type-name.ts';
export { Address } from './address.ts';
export { valueSpec } from './value-spec.ts';
export { Message, messageBuilder } from './message.ts';
export { egressMessage, kafkaEgressMessage, kinesisEgressMessage } from './egress.ts';
export { boolType, doubleType, floatType, intType, longType, stringType } from './primitive-types.ts';
export { jsonType } from './json-type.ts';
export { protobufType } from './protobuf-type.ts';
export { InvalidTypeNameError, ValueTypeError } from './errors.ts';
export { FunctionFailedError, InvalidRequestError, UnknownFunctionError } from './request-errors.ts';

export * from '../internal/public-errors.ts';
export type { StatefulFunction, FunctionSpec } from './stateful-functions.ts';
export type { Context } from './context.ts';
export type { AddressScopedStorage } from './storage.ts';
export type { ValueSpec, ValueSpecOptions, Expiration } from './value-spec.ts';
export type { SimpleType } from './simple-type.ts';
export type { MessageOptions } from './message.ts';
export type {
  EgressMessage,
  GenericEgressOptions,
  KafkaEgressOptions,
  KinesisEgressOptions,
} from './egress.ts';
export type { HandlerOptions, Logger } from './http-handler.ts';
export type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
