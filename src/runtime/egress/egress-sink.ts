// Where egress records go. The runtime's outbox drainer reads committed records from the store's
// outbox, hands each route's records to its sink, and acknowledges them once the sink resolves:
// delivery is at least once, so a sink makes a redelivered record harmless where its destination
// can (a JetStream message id, an idempotency key header).

import type { OutboxRecord } from '../store/state-store.ts';

export interface EgressSink {
  /**
   * Delivers `records`, in order, all of one route; resolves once the destination has accepted
   * every one of them, rejects otherwise (the drainer delivers them again later, so a record may
   * arrive twice; `record.seq` is stable across redeliveries and names it for deduplication).
   */
  deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void>;

  close(): Promise<void>;
}
