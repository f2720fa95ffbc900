// What `Runtime.stats()` reports: enough to see load, backpressure and trouble at a glance.

import type { OutboxDrainerStats } from './egress/outbox-drainer.ts';
import type { HttpIngressStats } from './ingress/http-ingress.ts';
import type { JetStreamIngressStats } from './ingress/jetstream-ingress.ts';
import type { NatsCoreIngressStats } from './ingress/nats-core-ingress.ts';
import type { ValueRegistryStats } from './value-registry.ts';

export interface RuntimeStats {
  /** Addresses running a batch, waiting for a turn, or parked after a failure. */
  readonly activeAddresses: number;
  readonly runningBatches: number;
  /** Addresses with messages waiting for a free batch slot. */
  readonly waitingAddresses: number;
  /** Addresses whose last batch failed, waiting to run again. */
  readonly parkedAddresses: number;
  /** Messages in inboxes, and the deepest backlog of one address this runtime has seen. */
  readonly backlog: { readonly messages: number; readonly largestAddress: number };
  /** Batches committed, and batches that failed (each failure parks its address). */
  readonly batches: number;
  readonly batchFailures: number;
  /** Batches whose commit was refused because their partition had moved to another node. */
  readonly fencedBatches: number;
  /** Requests sent to functions, counting the resends after incomplete-context replies. */
  readonly requests: number;
  readonly registrations: ValueRegistryStats;
  readonly commits: {
    readonly commits: number;
    readonly batches: number;
    readonly largest: number;
    /** Batches per commit on average: how much group commit saves. */
    readonly meanBatches: number;
    readonly failedBatches: number;
    /** Batches refused because the commit queue was full. */
    readonly refused: number;
    /** Batches waiting for a commit now. */
    readonly pending: number;
  };
  readonly ingress: {
    readonly accepted: number;
    /** Messages whose ingress id was seen within the dedup window: stored once. */
    readonly duplicates: number;
    /** Messages refused under backpressure. */
    readonly refused: number;
    /** The HTTP ingress the runtime started, if any. */
    readonly http?: HttpIngressStats | undefined;
    /** The NATS ingresses it started, in the order configured (JetStream first). */
    readonly nats: readonly (JetStreamIngressStats | NatsCoreIngressStats)[];
  };
  readonly delayed: { readonly pending: number; readonly fired: number };
  /** Records in the outbox, and how their delivery goes. */
  readonly outbox: { readonly records: number } & OutboxDrainerStats;
  /** Expired state values deleted by the background sweep. */
  readonly expiredSwept: number;
  /** Ingress ids forgotten once past the dedup window. */
  readonly ingressIdsForgotten: number;
}
