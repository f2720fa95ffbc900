// What the egress tells metrics and operators, on `weft:runtime:egress-failure`, and the logger
// shape it writes to (console fits, and so does pino).

import type { Logger } from '../../internal/log-safely.ts';
import { diagnosticChannel } from '../../internal/diagnostics.ts';

export interface EgressFailureEvent {
  /**
   * `delivery-failed`: a sink rejected a group; it is retried after `retryInMs`.
   * `unroutable`: records for an egress with no sink; they stay in the outbox.
   * `store-failed`: reading or acknowledging the outbox failed; retried after `retryInMs`.
   * `malformed`: a record its sink can never decode; it is dropped (the only records that are).
   */
  readonly kind: 'delivery-failed' | 'unroutable' | 'store-failed' | 'malformed';
  /** The egress, `namespace/type`, when the failure is about one. */
  readonly route: string | undefined;
  readonly records: number;
  /** The seq of the first record concerned. */
  readonly firstSeq: number | undefined;
  /** Consecutive failures of this route (or of the store), this one included. */
  readonly attempt: number;
  readonly retryInMs: number | undefined;
  readonly error: unknown;
}

export const egressFailureChannel = diagnosticChannel<EgressFailureEvent>('runtime', 'egress-failure');

/** Where egress reports what no caller hears; `console` fits. */
export type EgressLogger = Logger;

/** An error as a log field: its code and message, not its whole object graph. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
