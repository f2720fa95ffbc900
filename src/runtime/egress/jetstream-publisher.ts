// Publishing a group of egress records to JetStream and waiting for every PubAck, shared by the
// JetStream sink and the Kafka/Kinesis record sinks.
//
// Each message carries a `Nats-Msg-Id` derived from its outbox seq, so a redelivered record
// (after a failed attempt, or a crash before the outbox was acknowledged) lands inside the
// stream's duplicate window as a duplicate and is stored once. Messages are pipelined, at most
// `maxPendingAcks` awaiting their PubAck at a time; should one of them fail while a later one is
// stored, the retry stores the earlier one after it: order within a route holds except across
// such a failure.

import { errorMessage } from '../../internal/errors.ts';
import { headers as natsHeaders, type JetStreamClient, type PubAck } from 'nats';

import { raceSignal } from '../../internal/abort.ts';
import { EgressDeliveryError } from './egress-errors.ts';
import type { HeaderField } from './header-value.ts';

export interface JetStreamMessage {
  readonly subject: string;
  readonly body: Uint8Array;
  readonly headers: readonly HeaderField[];
  readonly msgId: string;
}

export interface PublishOptions {
  /** How long each PubAck is awaited (the nats client's own timer). */
  readonly timeoutMs: number;
  readonly maxPendingAcks: number;
  readonly signal?: AbortSignal | undefined;
}

export interface PublishOutcome {
  /** Messages the stream stored now. */
  readonly stored: number;
  /** Messages the stream already had (same msg id within its duplicate window). */
  readonly duplicates: number;
}

/** Resolves once the stream acknowledged every message; rejects with an EgressDeliveryError otherwise. */
export async function publishToJetStream(
  jetstream: JetStreamClient,
  messages: readonly JetStreamMessage[],
  options: PublishOptions,
): Promise<PublishOutcome> {
  let stored = 0;
  let duplicates = 0;
  for (let start = 0; start < messages.length; start += options.maxPendingAcks) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    const chunk = messages.slice(start, start + options.maxPendingAcks);
    const acks = chunk.map((message) => publishOne(jetstream, message, options.timeoutMs));
    const settled = await raceSignal(Promise.allSettled(acks), options.signal);
    for (const [index, outcome] of settled.entries()) {
      if (outcome.status === 'rejected') throw publishError(chunk[index]?.subject ?? '', outcome.reason);
      if (outcome.value.duplicate) duplicates += 1;
      else stored += 1;
    }
  }
  return { stored, duplicates };
}

async function publishOne(
  jetstream: JetStreamClient,
  message: JetStreamMessage,
  timeoutMs: number,
): Promise<PubAck> {
  const headers = natsHeaders();
  for (const [name, value] of message.headers) headers.append(name, value);
  return jetstream.publish(message.subject, message.body, {
    msgID: message.msgId,
    headers,
    timeout: timeoutMs,
  });
}

function publishError(subject: string, cause: unknown): EgressDeliveryError {
  const code = (cause as { code?: unknown } | null)?.code;
  const detail = errorMessage(cause);
  const hint = code === '503' ? `: no JetStream stream captures subject ${subject}` : `: ${detail}`;
  return new EgressDeliveryError(`nats:${subject}`, `publishing to JetStream failed${hint}`, { cause });
}
