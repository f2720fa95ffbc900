// Helpers for driving the official Apache Flink StateFun JavaScript SDK (apache-flink-statefun@3.3.0,
// CommonJS) and ours with the same request bytes, and for reading both replies with our generated
// protocol code. Not a test file itself: test/compat/official-functions.test.ts uses it.
//
// The official SDK is fed without HTTP through its public `StateFun.handle(req, res)`: it only
// iterates `req` for the body chunks and calls `res.writeHead` and `res.end`, so a Readable and a
// small recording sink stand in for node:http's objects.

import { createRequire } from 'node:module';
import type http from 'node:http';
import { Readable } from 'node:stream';

import { fromBinary } from '@bufbuild/protobuf';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import { KinesisEgressRecordSchema } from '../../src/gen/statefun/kinesis-egress_pb.ts';
import {
  FromFunction_ExpirationSpec_ExpireMode as ExpireMode,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  type Address as WireAddress,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { KAFKA_PRODUCER_RECORD_TYPENAME, KINESIS_EGRESS_RECORD_TYPENAME } from '../../src/statefun/egress.ts';
import {
  boolType,
  doubleType,
  floatType,
  intType,
  longType,
  stringType,
} from '../../src/statefun/primitive-types.ts';
import type { SimpleType } from '../../src/statefun/simple-type.ts';
import { hex } from '../statefun/requests.ts';

// ---------------------------------------------------------------------------------------------
// The official SDK's API, as far as the tests use it (its shipped typings refer to an undeclared
// global `proto` namespace, so they are not used).
// ---------------------------------------------------------------------------------------------

export interface OfficialType<T> {
  readonly typename: string;
  serialize(value: T): Uint8Array;
  deserialize(bytes: Uint8Array): T;
}

export interface OfficialAddress {
  readonly namespace: string;
  readonly name: string;
  readonly id: string;
  /** `namespace/name` */
  readonly typename: string;
}

export interface OfficialMessage {
  readonly targetAddress: OfficialAddress;
  readonly valueTypeName: string;
  is(type: OfficialType<unknown>): boolean;
  /** null when the value is absent (has_value=false). */
  as<T>(type: OfficialType<T>): T | null;
  isString(): boolean;
  asString(): string | null;
  isInt(): boolean;
  asInt(): number | null;
  isBoolean(): boolean;
  asBoolean(): boolean | null;
  isFloat(): boolean;
  asFloat(): number | null;
}

export interface OfficialEgressMessage {
  readonly typename: string;
}

/** `S`: the storage's shape, one property per spec; assigning null deletes the value. */
export interface OfficialContext<S> {
  readonly self: OfficialAddress;
  readonly caller: OfficialAddress | null;
  readonly storage: S;
  send(message: OfficialMessage | OfficialEgressMessage): void;
  sendAfter(delayMs: number, message: OfficialMessage, cancellationToken?: string): void;
  cancelDelayedMessage(cancellationToken: string): void;
}

export interface OfficialValueSpec {
  /** Must match `^[_a-z]+$` in the official SDK. */
  readonly name: string;
  readonly type: OfficialType<unknown>;
  readonly expireAfterCall?: number;
  readonly expireAfterWrite?: number;
}

interface ResponseSink {
  writeHead(status: number, headers: Record<string, string | number>): void;
  end(body?: Uint8Array): void;
}

export interface OfficialStateFun {
  bind<S>(options: {
    readonly typename: string;
    readonly specs?: readonly OfficialValueSpec[];
    fn(context: OfficialContext<S>, message: OfficialMessage): void | Promise<void>;
  }): void;
  handle(request: AsyncIterable<Uint8Array>, response: ResponseSink): Promise<void>;
  handler(): (request: http.IncomingMessage, response: http.ServerResponse) => Promise<void>;
}

export interface OfficialSdk {
  readonly StateFun: {
    new (): OfficialStateFun;
    intType(): OfficialType<number>;
    stringType(): OfficialType<string>;
    booleanType(): OfficialType<boolean>;
    floatType(): OfficialType<number>;
    jsonType<T>(typename: string): OfficialType<T>;
  };
  /** Infers string and safe-integer (int) values only; anything else needs a valueType. */
  messageBuilder<T>(options: {
    typename: string;
    id: string;
    value: T;
    valueType?: OfficialType<T>;
  }): OfficialMessage;
  egressMessageBuilder<T>(options: {
    typename: string;
    value: T;
    valueType: OfficialType<T>;
  }): OfficialEgressMessage;
  kafkaEgressMessage<T>(options: {
    typename: string;
    topic: string;
    key?: string;
    value: T;
    valueType?: OfficialType<T>;
  }): OfficialEgressMessage;
  kinesisEgressMessage<T>(options: {
    typename: string;
    stream: string;
    partitionKey: string;
    hashKey?: string;
    value: T;
    valueType?: OfficialType<T>;
  }): OfficialEgressMessage;
}

// CommonJS, with google-protobuf's global `proto` namespace: loaded through require.
const require = createRequire(import.meta.url);
export const official = require('apache-flink-statefun') as OfficialSdk;

export interface OfficialReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | number>>;
  readonly body: Uint8Array;
}

/** Runs one request through the official SDK's own handler, without a socket. */
export async function invokeOfficial(statefun: OfficialStateFun, body: Uint8Array): Promise<OfficialReply> {
  let status = 0;
  let headers: Record<string, string | number> = {};
  let out = new Uint8Array(0);
  await statefun.handle(Readable.from([Buffer.from(body)]), {
    writeHead(s, h) {
      status = s;
      headers = h;
    },
    end(b) {
      if (b !== undefined) out = new Uint8Array(b);
    },
  });
  return { status, headers, body: out };
}

// ---------------------------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------------------------

// Built with test/statefun/requests.ts, shared with our own tests.
export { hex, toFunction, typed, wireAddress, type RequestInvocation } from '../statefun/requests.ts';

// ---------------------------------------------------------------------------------------------
// Replies, decoded field by field into plain data that assert.deepEqual compares and prints well.
// ---------------------------------------------------------------------------------------------

export interface DescribedValue {
  readonly typename: string;
  readonly hasValue: boolean;
  readonly hex: string;
  /** The value decoded by its typename (primitives, egress records, JSON), or null if unknown. */
  readonly value: unknown;
}

export interface DescribedSpec {
  readonly name: string;
  readonly typename: string;
  readonly expiration: { readonly mode: string; readonly afterMs: bigint } | null;
}

export interface DescribedResult {
  readonly kind: 'result';
  readonly mutations: readonly {
    readonly type: string;
    readonly name: string;
    readonly value: DescribedValue | null;
  }[];
  readonly messages: readonly { readonly target: string | null; readonly argument: DescribedValue | null }[];
  readonly delayed: readonly {
    readonly cancellation: boolean;
    readonly token: string;
    readonly delayMs: bigint;
    readonly target: string | null;
    readonly argument: DescribedValue | null;
  }[];
  readonly egress: readonly { readonly egress: string; readonly argument: DescribedValue | null }[];
}

export type Described =
  | { readonly kind: 'incomplete'; readonly missing: readonly DescribedSpec[] }
  | DescribedResult
  | { readonly kind: 'empty' };

const PRIMITIVES: ReadonlyMap<string, SimpleType<unknown>> = new Map(
  [boolType, intType, longType, floatType, doubleType, stringType].map(
    (type) => [type.typeName.toString(), type as SimpleType<unknown>] as const,
  ),
);

function decodeValue(typename: string, bytes: Uint8Array): unknown {
  const primitive = PRIMITIVES.get(typename);
  if (primitive !== undefined) return primitive.deserialize(bytes);
  if (typename === KAFKA_PRODUCER_RECORD_TYPENAME) {
    const record = fromBinary(KafkaProducerRecordSchema, bytes);
    return { topic: record.topic, key: record.key, valueHex: hex(record.valueBytes) };
  }
  if (typename === KINESIS_EGRESS_RECORD_TYPENAME) {
    const record = fromBinary(KinesisEgressRecordSchema, bytes);
    return {
      stream: record.stream,
      partitionKey: record.partitionKey,
      explicitHashKey: record.explicitHashKey,
      valueHex: hex(record.valueBytes),
    };
  }
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

function describeValue(value: TypedValue | undefined): DescribedValue | null {
  if (value === undefined) return null;
  return {
    typename: value.typename,
    hasValue: value.hasValue,
    hex: hex(value.value),
    value: value.hasValue ? decodeValue(value.typename, value.value) : null,
  };
}

function describeAddress(address: WireAddress | undefined): string | null {
  return address === undefined ? null : `${address.namespace}/${address.type}/${address.id}`;
}

const EXPIRE_MODES: Readonly<Record<number, string>> = {
  [ExpireMode.NONE]: 'NONE',
  [ExpireMode.AFTER_WRITE]: 'AFTER_WRITE',
  [ExpireMode.AFTER_INVOKE]: 'AFTER_INVOKE',
};

/** A FromFunction reply, decoded with our generated FromFunctionSchema. */
export function describeReply(bytes: Uint8Array): Described {
  const reply = fromBinary(FromFunctionSchema, bytes);
  switch (reply.response.case) {
    case 'incompleteInvocationContext':
      return {
        kind: 'incomplete',
        missing: reply.response.value.missingValues.map((spec) => ({
          name: spec.stateName,
          typename: spec.typeTypename,
          expiration:
            spec.expirationSpec === undefined
              ? null
              : {
                  mode: EXPIRE_MODES[spec.expirationSpec.mode] ?? String(spec.expirationSpec.mode),
                  afterMs: spec.expirationSpec.expireAfterMillis,
                },
        })),
      };
    case 'invocationResult': {
      const result = reply.response.value;
      return {
        kind: 'result',
        mutations: result.stateMutations.map((m) => ({
          type: m.mutationType === MutationType.MODIFY ? 'MODIFY' : 'DELETE',
          name: m.stateName,
          value: describeValue(m.stateValue),
        })),
        messages: result.outgoingMessages.map((m) => ({
          target: describeAddress(m.target),
          argument: describeValue(m.argument),
        })),
        delayed: result.delayedInvocations.map((d) => ({
          cancellation: d.isCancellationRequest,
          token: d.cancellationToken,
          delayMs: d.delayInMs,
          target: describeAddress(d.target),
          argument: describeValue(d.argument),
        })),
        egress: result.outgoingEgresses.map((e) => ({
          egress: `${e.egressNamespace}/${e.egressType}`,
          argument: describeValue(e.argument),
        })),
      };
    }
    case undefined:
      return { kind: 'empty' };
  }
}

/** The invocation result of a described reply; throws for an incomplete-context or empty reply. */
export function resultOf(described: Described): DescribedResult {
  if (described.kind !== 'result') throw new Error(`expected an invocation result, got ${described.kind}`);
  return described;
}
