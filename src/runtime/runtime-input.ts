// What an ingress sees of the runtime: whether a function type is served, and a durable append.

import type { Appended, Envelope } from './store/state-store.ts';

export interface RuntimeInput {
  /** Whether a function of `namespace/type` is served (in-process or by an endpoint). */
  servesType(namespace: string, type: string): boolean;

  /**
   * Appends messages to their targets' inboxes; resolves once they are durable (an ingress
   * acknowledges only then), with their seqs, `duplicate` for an `ingressId` seen within the
   * dedup window. Rejects with a retryable `CapacityExceededError` under backpressure (an
   * ingress answers 503 or pauses), `UnknownFunctionTypeError` for a type nobody serves,
   * `ClosedError` once the runtime is closing; nothing of a rejected call was appended.
   */
  send(envelopes: readonly Envelope[]): Promise<Appended[]>;

  /** Resolves when the runtime takes input again (at once when it is not pushing back). */
  released(): Promise<void>;
}
