// Egress to a JetStream stream: one message per record, the record's value bytes as its body and
// its typename in the `Weft-Type` header. Each message's `Nats-Msg-Id` is `<msgIdPrefix><seq>`,
// so a record delivered again within the stream's duplicate window is stored once: with JetStream,
// the outbox's at-least-once delivery becomes exactly-once in the stream. A PubAck that says
// `duplicate` counts as delivered.
//
// Outbox seqs are unique per store: give each store (each runtime that does not share its store)
// publishing to the same stream its own `msgIdPrefix`, or their records would drop each other.

import type { NatsConnectionLike } from '../nats-connection.ts';
import type { JetStreamClient, NatsConnection } from 'nats';

import { ClosedError } from '../../internal/errors.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import type { EgressSink } from './egress-sink.ts';
import { headerFields, WEFT_TYPE_HEADER } from './header-value.ts';
import { publishToJetStream, type JetStreamMessage } from './jetstream-publisher.ts';
import { checkSubjectOption, subjectFor, type SubjectOption } from './nats-subject.ts';
import { checkHasMethods, checkMsgIdPrefix, positiveInteger } from './sink-config.ts';

export interface JetStreamSinkOptions {
  /** The connection to publish on; it stays the caller's (closing the sink does not close it). */
  /** A nats.js connection (`await connect(…)`); the caller owns it and closes it. */
  readonly connection: NatsConnectionLike;
  /** The subject of every record, or a function choosing it per record; a stream must capture it. */
  readonly subject: SubjectOption;
  /** Start of each message's `Nats-Msg-Id`, before the outbox seq; default `weft-outbox-`. */
  readonly msgIdPrefix?: string | undefined;
  /** How long each PubAck is awaited; default 5 000 ms. */
  readonly ackTimeoutMs?: number | undefined;
  /** Messages awaiting their PubAck at once; default 256. */
  readonly maxPendingAcks?: number | undefined;
}

export interface JetStreamSinkStats {
  /** Records the stream stored. */
  readonly stored: number;
  /** Records the stream already had: redeliveries it dropped. */
  readonly duplicates: number;
}

export class JetStreamSink implements EgressSink {
  readonly #jetstream: JetStreamClient;
  readonly #subject: SubjectOption;
  readonly #msgIdPrefix: string;
  readonly #ackTimeoutMs: number;
  readonly #maxPendingAcks: number;
  #closed = false;
  #stored = 0;
  #duplicates = 0;

  constructor(options: JetStreamSinkOptions) {
    checkHasMethods('jetStreamSink.connection', options.connection, ['jetstream']);
    this.#subject = checkSubjectOption('jetStreamSink.subject', options.subject);
    this.#msgIdPrefix = checkMsgIdPrefix('jetStreamSink.msgIdPrefix', options.msgIdPrefix);
    this.#ackTimeoutMs = positiveInteger('jetStreamSink.ackTimeoutMs', options.ackTimeoutMs, 5_000);
    this.#maxPendingAcks = positiveInteger('jetStreamSink.maxPendingAcks', options.maxPendingAcks, 256);
    this.#jetstream = (options.connection as unknown as NatsConnection).jetstream();
  }

  async deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new ClosedError('the JetStream egress sink is closed');
    const messages = records.map((record): JetStreamMessage => ({
      subject: subjectFor(this.#subject, record),
      body: record.value.value,
      headers: headerFields(WEFT_TYPE_HEADER, record.value.typename),
      msgId: `${this.#msgIdPrefix}${record.seq}`,
    }));
    const outcome = await publishToJetStream(this.#jetstream, messages, {
      timeoutMs: this.#ackTimeoutMs,
      maxPendingAcks: this.#maxPendingAcks,
      signal,
    });
    this.#stored += outcome.stored;
    this.#duplicates += outcome.duplicates;
  }

  stats(): JetStreamSinkStats {
    return { stored: this.#stored, duplicates: this.#duplicates };
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
