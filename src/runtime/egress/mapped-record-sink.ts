// Sinks for StateFun's generic Kafka and Kinesis egresses, carried over NATS JetStream.
//
// A function emits such records with the SDK's `kafkaEgressMessage` / `kinesisEgressMessage`: the
// outbox holds a KafkaProducerRecord or KinesisEgressRecord (under their type.googleapis.com
// typenames). These sinks decode it and publish its value bytes to JetStream, by default on
// `kafka.<topic>` / `kinesis.<stream>`, with the key fields as headers (`Kafka-Key`,
// `Kinesis-Partition-Key`, `Kinesis-Explicit-Hash-Key`, absent when empty) and the same
// `Nats-Msg-Id` as the JetStream sink, so a redelivered record is stored once.
//
// A record that cannot be decoded (another typename, bytes that are not the message, an empty
// topic or stream, a topic or stream that makes no subject) is malformed: no attempt will ever
// deliver it, and keeping it would block its route forever. So it is the one kind of record an
// egress discards: counted (`malformed`), logged as an error with its seq, and published as a
// `malformed` egress failure, once the rest of its group has been delivered. A custom
// `subjectFor` that throws or answers a bad subject is a configuration bug instead: the delivery
// fails and is retried, nothing is dropped.

import type { NatsConnectionLike } from '../nats-connection.ts';
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import type { JetStreamClient, NatsConnection } from 'nats';

import { ClosedError, ConfigError } from '../../internal/errors.ts';
import { KafkaProducerRecordSchema } from '../../gen/statefun/kafka-egress_pb.ts';
import { KinesisEgressRecordSchema } from '../../gen/statefun/kinesis-egress_pb.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import { logSafely } from '../../internal/log-safely.ts';
import { describeError, egressFailureChannel, type EgressLogger } from './egress-diagnostics.ts';
import { EgressDeliveryError, MalformedEgressRecordError } from './egress-errors.ts';
import type { EgressSink } from './egress-sink.ts';
import { headerFields, type HeaderField } from './header-value.ts';
import { publishToJetStream, type JetStreamMessage } from './jetstream-publisher.ts';
import { subjectProblem } from './nats-subject.ts';
import { checkHasMethods, checkMsgIdPrefix, positiveInteger } from './sink-config.ts';

export const KAFKA_KEY_HEADER = 'Kafka-Key';
export const KINESIS_PARTITION_KEY_HEADER = 'Kinesis-Partition-Key';
export const KINESIS_EXPLICIT_HASH_KEY_HEADER = 'Kinesis-Explicit-Hash-Key';

export interface MappedRecordSinkOptions {
  /** The connection to publish on; it stays the caller's (closing the sink does not close it). */
  /** A nats.js connection (`await connect(…)`); the caller owns it and closes it. */
  readonly connection: NatsConnectionLike;
  /** Start of each message's `Nats-Msg-Id`, before the outbox seq; default `weft-outbox-`. */
  readonly msgIdPrefix?: string | undefined;
  /** How long each PubAck is awaited; default 5 000 ms. */
  readonly ackTimeoutMs?: number | undefined;
  /** Messages awaiting their PubAck at once; default 256. */
  readonly maxPendingAcks?: number | undefined;
  /** Where malformed records are reported; default `console`. */
  readonly logger?: EgressLogger | undefined;
}

export interface KafkaRecordSinkOptions extends MappedRecordSinkOptions {
  /** The subject of a topic's records; default `kafka.<topic>`. A stream must capture it. */
  readonly subjectFor?: ((topic: string) => string) | undefined;
}

export interface KinesisRecordSinkOptions extends MappedRecordSinkOptions {
  /** The subject of a Kinesis stream's records; default `kinesis.<stream>`. A stream must capture it. */
  readonly subjectFor?: ((stream: string) => string) | undefined;
}

export interface MappedRecordSinkStats {
  /** Records the stream stored. */
  readonly stored: number;
  /** Records the stream already had: redeliveries it dropped. */
  readonly duplicates: number;
  /** Records discarded because they cannot be decoded. */
  readonly malformed: number;
}

/** Where a decoded record goes: a subject (by a name, the topic or stream) and its key headers. */
export interface RecordDestination {
  /** The topic or stream. */
  readonly name: string;
  readonly valueBytes: Uint8Array;
  readonly headers: HeaderField[];
}

/** The typename StateFun gives a record message: `type.googleapis.com/<full message name>`. */
function typenameOf(schema: DescMessage): string {
  return `type.googleapis.com/${schema.typeName}`;
}

/** What the Kafka and Kinesis sinks share: decode the SDK's record, publish it to JetStream. */
export abstract class MappedRecordSink implements EgressSink {
  readonly #jetstream: JetStreamClient;
  readonly #subjectFor: ((name: string) => string) | undefined;
  readonly #defaultSubjectPrefix: string;
  readonly #msgIdPrefix: string;
  readonly #ackTimeoutMs: number;
  readonly #maxPendingAcks: number;
  readonly #logger: EgressLogger;
  readonly #kind: string;
  #closed = false;
  #stored = 0;
  #duplicates = 0;
  #malformed = 0;

  protected constructor(
    kind: 'kafka' | 'kinesis',
    options: MappedRecordSinkOptions,
    subjectFor: ((name: string) => string) | undefined,
  ) {
    const sink = `${kind}RecordSink`;
    checkHasMethods(`${sink}.connection`, options.connection, ['jetstream']);
    if (subjectFor !== undefined && typeof subjectFor !== 'function') {
      throw new ConfigError(`${sink}.subjectFor`, 'must be a function of the topic or stream');
    }
    this.#kind = kind;
    this.#subjectFor = subjectFor;
    this.#defaultSubjectPrefix = `${kind}.`;
    this.#msgIdPrefix = checkMsgIdPrefix(`${sink}.msgIdPrefix`, options.msgIdPrefix);
    this.#ackTimeoutMs = positiveInteger(`${sink}.ackTimeoutMs`, options.ackTimeoutMs, 5_000);
    this.#maxPendingAcks = positiveInteger(`${sink}.maxPendingAcks`, options.maxPendingAcks, 256);
    this.#logger = options.logger ?? console;
    this.#jetstream = (options.connection as unknown as NatsConnection).jetstream();
  }

  /** Decodes `record`; throws MalformedEgressRecordError when it cannot be. */
  protected abstract destinationOf(record: OutboxRecord): RecordDestination;

  async deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new ClosedError(`the ${this.#kind} record egress sink is closed`);
    const messages: JetStreamMessage[] = [];
    const malformed: MalformedEgressRecordError[] = [];
    for (const record of records) {
      let destination: RecordDestination;
      let subject: string;
      try {
        destination = this.destinationOf(record);
        subject = this.#subjectOf(destination.name, record.seq);
      } catch (error) {
        if (!(error instanceof MalformedEgressRecordError)) throw error;
        malformed.push(error);
        continue;
      }
      messages.push({
        subject,
        body: destination.valueBytes,
        headers: destination.headers,
        msgId: `${this.#msgIdPrefix}${record.seq}`,
      });
    }
    const outcome = await publishToJetStream(this.#jetstream, messages, {
      timeoutMs: this.#ackTimeoutMs,
      maxPendingAcks: this.#maxPendingAcks,
      signal,
    });
    this.#stored += outcome.stored;
    this.#duplicates += outcome.duplicates;
    // Only now, with the group delivered, are the malformed records let go.
    for (const error of malformed) this.#discard(error, records);
  }

  stats(): MappedRecordSinkStats {
    return { stored: this.#stored, duplicates: this.#duplicates, malformed: this.#malformed };
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #subjectOf(name: string, seq: number): string {
    if (this.#subjectFor === undefined) {
      const subject = `${this.#defaultSubjectPrefix}${name}`;
      const problem = subjectProblem(subject);
      if (problem !== undefined) {
        throw new MalformedEgressRecordError(seq, `${JSON.stringify(name)} makes no subject: ${problem}`);
      }
      return subject;
    }
    let subject: unknown;
    try {
      subject = this.#subjectFor(name);
    } catch (error) {
      throw new EgressDeliveryError('nats', `subjectFor(${JSON.stringify(name)}) threw`, { cause: error });
    }
    const problem = subjectProblem(subject);
    if (problem !== undefined) {
      throw new EgressDeliveryError('nats', `subjectFor(${JSON.stringify(name)}) is unusable: ${problem}`);
    }
    return subject as string;
  }

  #discard(error: MalformedEgressRecordError, records: readonly OutboxRecord[]): void {
    this.#malformed += 1;
    const record = records.find((candidate) => candidate.seq === error.seq);
    const route = record === undefined ? undefined : `${record.egress[0]}/${record.egress[1]}`;
    logSafely(() => {
      this.#logger.error(
        `discarding malformed ${this.#kind} egress record ${error.seq}: it can never be delivered`,
        {
          route,
          seq: error.seq,
          typename: record?.value.typename,
          error: describeError(error),
        },
      );
    });
    egressFailureChannel.publish({
      kind: 'malformed',
      route,
      records: 1,
      firstSeq: error.seq,
      attempt: 1,
      retryInMs: undefined,
      error,
    });
  }
}

/** Publishes KafkaProducerRecords to JetStream (see the module comment). */
export class KafkaRecordSink extends MappedRecordSink {
  static readonly typename = typenameOf(KafkaProducerRecordSchema);

  constructor(options: KafkaRecordSinkOptions) {
    super('kafka', options, options.subjectFor);
  }

  protected destinationOf(record: OutboxRecord): RecordDestination {
    const decoded = decode(record, KafkaRecordSink.typename, () =>
      fromBinary(KafkaProducerRecordSchema, record.value.value),
    );
    if (decoded.topic === '')
      throw new MalformedEgressRecordError(record.seq, 'the Kafka record has no topic');
    return {
      name: decoded.topic,
      valueBytes: decoded.valueBytes,
      headers: decoded.key === '' ? [] : headerFields(KAFKA_KEY_HEADER, decoded.key),
    };
  }
}

/** Publishes KinesisEgressRecords to JetStream (see the module comment). */
export class KinesisRecordSink extends MappedRecordSink {
  static readonly typename = typenameOf(KinesisEgressRecordSchema);

  constructor(options: KinesisRecordSinkOptions) {
    super('kinesis', options, options.subjectFor);
  }

  protected destinationOf(record: OutboxRecord): RecordDestination {
    const decoded = decode(record, KinesisRecordSink.typename, () =>
      fromBinary(KinesisEgressRecordSchema, record.value.value),
    );
    if (decoded.stream === '')
      throw new MalformedEgressRecordError(record.seq, 'the Kinesis record has no stream');
    const headers: HeaderField[] = [];
    if (decoded.partitionKey !== '')
      headers.push(...headerFields(KINESIS_PARTITION_KEY_HEADER, decoded.partitionKey));
    if (decoded.explicitHashKey !== '') {
      headers.push(...headerFields(KINESIS_EXPLICIT_HASH_KEY_HEADER, decoded.explicitHashKey));
    }
    return { name: decoded.stream, valueBytes: decoded.valueBytes, headers };
  }
}

function decode<T>(record: OutboxRecord, typename: string, parse: () => T): T {
  if (record.value.typename !== typename) {
    throw new MalformedEgressRecordError(
      record.seq,
      `expected a ${typename} record, got typename ${JSON.stringify(record.value.typename.slice(0, 200))}`,
    );
  }
  try {
    return parse();
  } catch (error) {
    throw new MalformedEgressRecordError(record.seq, `the record's bytes are not a ${typename}`, {
      cause: error,
    });
  }
}
