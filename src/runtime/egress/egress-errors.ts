// How an egress delivery fails. A sink rejects with `EgressDeliveryError` (retryable: the records
// stay in the outbox and the drainer tries again with backoff); a record that can never mean
// anything to its sink is a `MalformedEgressRecordError` (terminal).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/** A destination did not accept a delivery: unreachable, refused, too slow. Retryable. */
export class EgressDeliveryError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.EgressDeliveryError');
  static readonly code = 'WEFT_EGRESS_DELIVERY_FAILED';
  /** Where the records were going: a subject, a URL. */
  readonly destination: string;
  /** The HTTP status, for a webhook that answered. */
  readonly status: number | undefined;

  constructor(destination: string, message: string, options?: WeftErrorOptions & { status?: number }) {
    super(EgressDeliveryError.code, message, true, options);
    this.destination = destination;
    this.status = options?.status;
  }
}

/** An outbox record its sink cannot decode (a Kafka record that is not a KafkaProducerRecord). Terminal. */
export class MalformedEgressRecordError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.MalformedEgressRecordError');
  static readonly code = 'WEFT_EGRESS_RECORD_MALFORMED';
  readonly seq: number;

  constructor(seq: number, message: string, options?: WeftErrorOptions) {
    super(MalformedEgressRecordError.code, message, false, options);
    this.seq = seq;
  }
}
