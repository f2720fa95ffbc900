// Egress to core NATS: each record is published once per delivery attempt, the record's value
// bytes as the body, its typename in `Weft-Type` and `<msgIdPrefix><seq>` in `Nats-Msg-Id` (so a
// stream that happens to capture the subject drops redeliveries). Core NATS has no acks: the sink
// resolves once the server has received everything (a flush), which is as far as core NATS can
// tell; a subscriber that was not listening misses the record.

import type { NatsConnectionLike } from '../nats-connection.ts';
import type { NatsConnection } from 'nats';
import { headers as natsHeaders } from 'nats';

import { isAborted, raceSignal } from '../../internal/abort.ts';
import { systemClock, type Clock } from '../../internal/clock.ts';
import { callScope } from '../../internal/deadline.ts';
import { ClosedError, errorMessage } from '../../internal/errors.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import { EgressDeliveryError } from './egress-errors.ts';
import type { EgressSink } from './egress-sink.ts';
import { headerFields, WEFT_TYPE_HEADER } from './header-value.ts';
import { checkSubjectOption, subjectFor, type SubjectOption } from './nats-subject.ts';
import { checkHasMethods, checkMsgIdPrefix, positiveInteger } from './sink-config.ts';

export interface NatsCoreSinkOptions {
  /** The connection to publish on; it stays the caller's (closing the sink does not close it). */
  /** A nats.js connection (`await connect(…)`); the caller owns it and closes it. */
  readonly connection: NatsConnectionLike;
  readonly subject: SubjectOption;
  /** Start of each message's `Nats-Msg-Id`, before the outbox seq; default `weft-outbox-`. */
  readonly msgIdPrefix?: string | undefined;
  /** How long the flush after a group may take; default 5 000 ms, on `clock`. */
  readonly flushTimeoutMs?: number | undefined;
  readonly clock?: Clock | undefined;
}

export class NatsCoreSink implements EgressSink {
  readonly #connection: NatsConnection;
  readonly #subject: SubjectOption;
  readonly #msgIdPrefix: string;
  readonly #flushTimeoutMs: number;
  readonly #clock: Clock;
  #closed = false;
  #published = 0;

  constructor(options: NatsCoreSinkOptions) {
    checkHasMethods('natsCoreSink.connection', options.connection, ['publish', 'flush']);
    this.#connection = options.connection as unknown as NatsConnection;
    this.#subject = checkSubjectOption('natsCoreSink.subject', options.subject);
    this.#msgIdPrefix = checkMsgIdPrefix('natsCoreSink.msgIdPrefix', options.msgIdPrefix);
    this.#flushTimeoutMs = positiveInteger('natsCoreSink.flushTimeoutMs', options.flushTimeoutMs, 5_000);
    this.#clock = options.clock ?? systemClock;
  }

  async deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new ClosedError('the NATS egress sink is closed');
    if (signal?.aborted === true) throw signal.reason;
    // Subjects first: a bad one fails the attempt before anything of it is published.
    const subjects = records.map((record) => subjectFor(this.#subject, record));
    for (const [index, record] of records.entries()) {
      const subject = subjects[index] ?? '';
      const headers = natsHeaders();
      for (const [name, value] of headerFields(WEFT_TYPE_HEADER, record.value.typename))
        headers.append(name, value);
      headers.set('Nats-Msg-Id', `${this.#msgIdPrefix}${record.seq}`);
      try {
        this.#connection.publish(subject, record.value.value, { headers });
      } catch (error) {
        throw new EgressDeliveryError(
          `nats:${subject}`,
          `publishing outbox record ${record.seq} failed: ${errorMessage(error)}`,
          {
            cause: error,
          },
        );
      }
    }
    const scope = callScope(this.#clock, { signal, timeoutMs: this.#flushTimeoutMs });
    try {
      await raceSignal(this.#connection.flush(), scope.signal);
    } catch (error) {
      if (signal !== undefined && isAborted(signal)) throw error;
      throw new EgressDeliveryError(
        'nats',
        `the NATS server did not confirm ${records.length} published records: ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      scope.dispose();
    }
    this.#published += records.length;
  }

  /** Records published and flushed. */
  stats(): { readonly published: number } {
    return { published: this.#published };
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
