// Messages for egresses. StateFun's generic Kafka and Kinesis egresses take a record message
// (KafkaProducerRecord / KinesisEgressRecord, under their type.googleapis.com typenames) whose
// value bytes are written out as they are; any other egress receives the TypedValue unchanged.
// Without a valueType, record values are encoded as the official JS SDK does: strings as UTF-8,
// 32-bit integers as 4 bytes big-endian, bytes as they are; bigints (which it lacks) as 8 bytes
// big-endian, like the Go SDK's int64.

import type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
import { ValueTypeError } from './errors.ts';
import { isInt32, isInt64 } from './primitive-types.ts';
import { serializeValue, type SimpleType } from './simple-type.ts';
import { TypeName } from './type-name.ts';
import { ProtoWriter, varintSize } from './wire/proto-writer.ts';
import { RecordValue } from './wire/record-value.ts';
import { typedValueOf } from './wire/typed-value.ts';

export const KAFKA_PRODUCER_RECORD_TYPENAME =
  'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord';
export const KINESIS_EGRESS_RECORD_TYPENAME =
  'type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord';

// A lone surrogate has no UTF-8 form; encoders would silently write U+FFFD instead.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A value for the egress `typeName` (the egress's id as configured in the module). */
export interface EgressMessage {
  readonly typeName: TypeName;
  readonly typedValue: TypedValue;
}

export interface KafkaEgressOptions<T = unknown> {
  readonly typeName: TypeName | string;
  readonly topic: string;
  /** The record key; "" or absent means the record has no key. */
  readonly key?: string | undefined;
  readonly value: T;
  readonly valueType?: SimpleType<T> | undefined;
}

export interface KinesisEgressOptions<T = unknown> {
  readonly typeName: TypeName | string;
  readonly stream: string;
  readonly partitionKey: string;
  /** "" or absent lets Kinesis hash the partition key. */
  readonly explicitHashKey?: string | undefined;
  readonly value: T;
  readonly valueType?: SimpleType<T> | undefined;
}

export interface GenericEgressOptions<T> {
  readonly typeName: TypeName | string;
  readonly value: T;
  readonly valueType: SimpleType<T>;
}

/** A record for a generic Kafka egress (`io.statefun.kafka.v1/egress`). */
export function kafkaEgressMessage<T>(options: KafkaEgressOptions<T>): EgressMessage {
  const typeName = egressTypeName(options.typeName);
  const topic = requiredString('topic', options.topic);
  const key = optionalString('key', options.key);
  const { value } = options;
  // The commonest record value, a 32-bit int, is written in place rather than made first.
  const int32 = options.valueType === undefined && typeof value === 'number' && isInt32(value);
  const valueBytes = int32 ? undefined : recordValueBytes(value, options.valueType);
  return { typeName, typedValue: new KafkaRecord(key, int32 ? value : 0, valueBytes, topic) };
}

/** KafkaProducerRecord (proto/statefun/kafka-egress.proto): key = 1, value_bytes = 2, topic = 3. */
class KafkaRecord extends RecordValue {
  readonly #key: string;
  readonly #int32: number;
  /** Undefined: the value is `#int32`, as 4 bytes big-endian. */
  readonly #valueBytes: Uint8Array | undefined;
  readonly #topic: string;

  constructor(key: string, int32: number, valueBytes: Uint8Array | undefined, topic: string) {
    super(KAFKA_PRODUCER_RECORD_TYPENAME);
    this.#key = key;
    this.#int32 = int32;
    this.#valueBytes = valueBytes;
    this.#topic = topic;
  }

  protected sizeGuess(): number {
    const value = this.#valueBytes === undefined ? 2 + 4 : bytesFieldSize(this.#valueBytes);
    return stringFieldSize(this.#key) + value + stringFieldSize(this.#topic);
  }

  protected writeFields(writer: ProtoWriter): void {
    if (this.#key !== '') {
      writer.byte(0x0a);
      writer.string(this.#key);
    }
    const valueBytes = this.#valueBytes;
    if (valueBytes === undefined) {
      writer.byte(0x12);
      writer.byte(4);
      writeInt32BigEndian(writer, this.#int32);
    } else if (valueBytes.length > 0) {
      writer.byte(0x12);
      writer.bytes(valueBytes);
    }
    writer.byte(0x1a);
    writer.string(this.#topic);
  }
}

/** A record for a generic Kinesis egress (`io.statefun.kinesis.v1/egress`). */
export function kinesisEgressMessage<T>(options: KinesisEgressOptions<T>): EgressMessage {
  const typeName = egressTypeName(options.typeName);
  const stream = requiredString('stream', options.stream);
  const partitionKey = requiredString('partitionKey', options.partitionKey);
  const explicitHashKey = optionalString('explicitHashKey', options.explicitHashKey);
  const valueBytes = recordValueBytes(options.value, options.valueType);
  return { typeName, typedValue: new KinesisRecord(partitionKey, valueBytes, stream, explicitHashKey) };
}

/**
 * KinesisEgressRecord (proto/statefun/kinesis-egress.proto): partition_key = 1,
 * value_bytes = 2, stream = 3, explicit_hash_key = 4.
 */
class KinesisRecord extends RecordValue {
  readonly #partitionKey: string;
  readonly #valueBytes: Uint8Array;
  readonly #stream: string;
  readonly #explicitHashKey: string;

  constructor(partitionKey: string, valueBytes: Uint8Array, stream: string, explicitHashKey: string) {
    super(KINESIS_EGRESS_RECORD_TYPENAME);
    this.#partitionKey = partitionKey;
    this.#valueBytes = valueBytes;
    this.#stream = stream;
    this.#explicitHashKey = explicitHashKey;
  }

  protected sizeGuess(): number {
    return (
      stringFieldSize(this.#partitionKey) +
      bytesFieldSize(this.#valueBytes) +
      stringFieldSize(this.#stream) +
      stringFieldSize(this.#explicitHashKey)
    );
  }

  protected writeFields(writer: ProtoWriter): void {
    writer.byte(0x0a);
    writer.string(this.#partitionKey);
    if (this.#valueBytes.length > 0) {
      writer.byte(0x12);
      writer.bytes(this.#valueBytes);
    }
    writer.byte(0x1a);
    writer.string(this.#stream);
    if (this.#explicitHashKey !== '') {
      writer.byte(0x22);
      writer.string(this.#explicitHashKey);
    }
  }
}

/** A value for any other egress, which receives it as a TypedValue under `valueType`'s typename. */
export function egressMessage<T>(options: GenericEgressOptions<T>): EgressMessage {
  const typeName = egressTypeName(options.typeName);
  // Checked at run time too: JavaScript callers may leave it out.
  const valueType = options.valueType as SimpleType<T> | undefined;
  if (valueType === undefined) {
    throw new ValueTypeError(`an egress message for ${typeName.toString()} needs a valueType`);
  }
  if (options.value === undefined) throw new ValueTypeError('an egress message needs a value, got undefined');
  return { typeName, typedValue: typedValueOf(valueType, options.value) };
}

// The size of a record, so its buffer is made once and returned as it is: exact for ASCII
// strings, the common case; any other string grows the buffer, and finish() copies.
function stringFieldSize(value: string): number {
  if (value === '') return 0;
  const length = value.length;
  return 1 + varintSize(length) + length;
}

function bytesFieldSize(value: Uint8Array): number {
  return value.length === 0 ? 0 : 1 + varintSize(value.length) + value.length;
}

function egressTypeName(typeName: TypeName | string): TypeName {
  return typeName instanceof TypeName ? typeName : TypeName.parse(typeName);
}

function requiredString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ValueTypeError(`an egress record needs a non-empty ${field}, got ${describe(value)}`);
  }
  return value;
}

function optionalString(field: string, value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new ValueTypeError(`${field} is a string, got ${describe(value)}`);
  return value;
}

function recordValueBytes<T>(value: T, valueType: SimpleType<T> | undefined): Uint8Array {
  if (value === undefined || value === null) {
    throw new ValueTypeError(`an egress record needs a value, got ${String(value)}`);
  }
  if (valueType !== undefined) return serializeValue(valueType, value);
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) {
      throw new ValueTypeError('the record value is not valid UTF-8 (it has a lone surrogate)');
    }
    return Buffer.from(value, 'utf8');
  }
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'number') {
    if (isInt32(value)) {
      const writer = new ProtoWriter(4);
      writeInt32BigEndian(writer, value);
      return writer.finish();
    }
    throw new ValueTypeError(
      `a record value ${value} is not a 32-bit integer: pass a bigint for 8 bytes, or a valueType`,
    );
  }
  if (typeof value === 'bigint') {
    if (!isInt64(value)) {
      throw new ValueTypeError(`a record value ${value}n is outside 64 bits: pass a valueType`);
    }
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigInt64(0, value);
    return bytes;
  }
  throw new ValueTypeError(
    `cannot encode a record value of type ${describe(value)} on its own: pass a valueType ` +
      '(or a string, a Uint8Array, a 32-bit integer or a bigint)',
  );
}

/** A 32-bit integer as 4 bytes, most significant first, as the official JavaScript SDK writes it. */
function writeInt32BigEndian(writer: ProtoWriter, value: number): void {
  writer.byte(value >>> 24);
  writer.byte((value >>> 16) & 0xff);
  writer.byte((value >>> 8) & 0xff);
  writer.byte(value & 0xff);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  return Array.isArray(value) ? 'array' : typeof value;
}
