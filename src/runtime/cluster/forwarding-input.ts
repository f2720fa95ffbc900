// Ingress on any node of a cluster: what an ingress sends is appended by the node that owns each
// target, so that the owner counts its backlog and pushes back. Messages this node owns go to
// its own runtime; the others go over the grid to their owner (forward-codec.ts), grouped per
// owner: while one request to a peer is in flight, what arrives for that peer waits and goes as
// the next, up to MAX_FORWARD_ENVELOPES in one. `window` requests in flight per peer are the
// link's credits: a slow owner answers late, the queue for it fills, and past `maxPendingPerPeer`
// waiting messages this node refuses ingress for that owner with a retryable
// CapacityExceededError (and counts it). An owner that pushes back itself answers `full`, which reaches the ingress the same
// way. Nothing is dropped: the ingress has not acknowledged what it was refused.
//
// A call whose messages go to several owners can fail for some after others were appended; an
// ingress retries it whole, and its ingress ids (a JetStream sequence, an Idempotency-Key) keep
// the retry from storing a message twice.

import type { Clock } from '../../internal/clock.ts';
import { CapacityExceededError, ClosedError } from '../../internal/errors.ts';
import { OwnerUnavailableError, UnknownFunctionTypeError } from '../errors.ts';
import type { RuntimeInput } from '../runtime-input.ts';
import type { Appended, Envelope, StoredAddress } from '../store/state-store.ts';
import { WriteGrouper } from '../write-grouper.ts';
import { decodeAnswer, encodeForward, FORWARD_HANDLER, MAX_FORWARD_ENVELOPES } from './forward-codec.ts';

/** Sends one grid request to `host`; the grid's `Manager.connection(host).request` fits. */
export type GridRequest = (
  host: string,
  handler: number,
  payload: Uint8Array,
) => Promise<Uint8Array | undefined>;

export interface ForwardingInputOptions {
  /** This node's runtime: takes the messages this node owns. */
  readonly local: RuntimeInput;
  readonly self: string;
  /** The member owning an address, as this node sees the cluster. */
  readonly ownerOf: (address: StoredAddress) => string;
  readonly request: GridRequest;
  readonly clock: Clock;
  /** Forward requests in flight to one peer at once; default 4 (an owner appends that many side by side). */
  readonly window?: number | undefined;
  /** Messages waiting to be forwarded to one peer; default 10 000. */
  readonly maxPendingPerPeer?: number | undefined;
  /** Peers with a forwarding queue; default 1 024 (the grid's own limit of hosts). */
  readonly maxPeers?: number | undefined;
  /** How long `released()` waits after an owner pushed back; default 100 ms. */
  readonly pushbackMs?: number | undefined;
}

export interface ForwardingStats {
  /** Messages forwarded to their owner and appended there. */
  readonly forwarded: number;
  /** Forward requests made. */
  readonly requests: number;
  /** Messages refused: the queue to their owner was full, or the owner pushed back. */
  readonly refused: number;
  /** Messages whose forward failed otherwise (the owner unreachable, an error there). */
  readonly failed: number;
  /** Messages waiting to be forwarded, all peers together. */
  readonly pending: number;
}

export class ForwardingInput implements RuntimeInput {
  readonly #options: ForwardingInputOptions;
  readonly #links = new Map<string, WriteGrouper<Envelope, Appended>>();
  readonly #maxPendingPerPeer: number;
  #pushedBackUntil = 0;
  #forwarded = 0;
  #requests = 0;
  #refused = 0;
  #failed = 0;

  constructor(options: ForwardingInputOptions) {
    this.#options = options;
    this.#maxPendingPerPeer = options.maxPendingPerPeer ?? 10_000;
  }

  servesType(namespace: string, type: string): boolean {
    return this.#options.local.servesType(namespace, type);
  }

  async send(envelopes: readonly Envelope[]): Promise<Appended[]> {
    const { self, ownerOf, local } = this.#options;
    const byOwner = new Map<string, number[]>();
    for (let i = 0; i < envelopes.length; i++) {
      const owner = ownerOf((envelopes[i] as Envelope).target);
      let indexes = byOwner.get(owner);
      if (indexes === undefined) byOwner.set(owner, (indexes = []));
      indexes.push(i);
    }
    if (byOwner.size === 1 && byOwner.has(self)) return local.send(envelopes);
    const results = new Array<Appended>(envelopes.length);
    await Promise.all(
      [...byOwner].map(async ([owner, indexes]) => {
        const group = indexes.map((i) => envelopes[i] as Envelope);
        const appended = owner === self ? await local.send(group) : await this.#forward(owner, group);
        indexes.forEach((index, j) => {
          results[index] = appended[j] as Appended;
        });
      }),
    );
    return results;
  }

  async released(): Promise<void> {
    await this.#options.local.released();
    const wait = this.#pushedBackUntil - this.#options.clock.wallTimeMs();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      this.#options.clock.setTimeout(resolve, wait);
    });
  }

  stats(): ForwardingStats {
    let pending = 0;
    for (const link of this.#links.values()) pending += link.stats().pending;
    return {
      forwarded: this.#forwarded,
      requests: this.#requests,
      refused: this.#refused,
      failed: this.#failed,
      pending,
    };
  }

  /** Sends what is queued, then refuses new messages for other nodes. */
  async close(): Promise<void> {
    await Promise.all([...this.#links.values()].map((link) => link.close()));
  }

  async #forward(owner: string, envelopes: readonly Envelope[]): Promise<Appended[]> {
    try {
      const link = this.#link(owner);
      // All of the call's messages are queued, or none: a call refused must have stored nothing.
      const room = this.#maxPendingPerPeer - link.stats().pending;
      if (envelopes.length > room) {
        throw new CapacityExceededError(`the forwarding queue to ${owner}`, this.#maxPendingPerPeer);
      }
      const appended = await Promise.all(envelopes.map((envelope) => link.submit(envelope)));
      this.#forwarded += envelopes.length;
      return appended;
    } catch (error) {
      if (error instanceof CapacityExceededError) {
        this.#refused += envelopes.length;
        this.#pushedBackUntil = this.#options.clock.wallTimeMs() + (this.#options.pushbackMs ?? 100);
        throw error;
      }
      this.#failed += envelopes.length;
      if (error instanceof ClosedError || error instanceof UnknownFunctionTypeError) throw error;
      // Unreachable, timed out, or an answer that made no sense: retryable, as a dead owner's
      // partitions move to a live node.
      throw new OwnerUnavailableError(owner, { cause: error });
    }
  }

  #link(owner: string): WriteGrouper<Envelope, Appended> {
    let link = this.#links.get(owner);
    if (link !== undefined) return link;
    const maxPeers = this.#options.maxPeers ?? 1_024;
    if (this.#links.size >= maxPeers) {
      // Members come and go; a link with nothing waiting is dropped to make room. (Its request
      // in flight, if any, still completes: for a moment two may be in flight to that peer.)
      for (const [host, candidate] of this.#links) {
        if (candidate.stats().pending === 0) {
          this.#links.delete(host);
          void candidate.close();
          break;
        }
      }
      if (this.#links.size >= maxPeers) throw new CapacityExceededError('the forwarding links', maxPeers);
    }
    link = new WriteGrouper<Envelope, Appended>({
      write: async (envelopes) => {
        this.#requests += 1;
        const answer = await this.#options.request(owner, FORWARD_HANDLER, encodeForward(envelopes));
        return decodeAnswer(answer, envelopes);
      },
      maxItemsPerWrite: MAX_FORWARD_ENVELOPES,
      maxInFlight: this.#options.window ?? 4,
      maxPending: this.#maxPendingPerPeer,
      queueName: `the forwarding queue to ${owner}`,
      // A forward that failed may have been appended (the answer was lost): sending it again
      // alone could store a message without an ingress id twice. The ingress retries instead.
      retryAlone: () => false,
    });
    this.#links.set(owner, link);
    return link;
  }
}
