// When the hub may acknowledge a producer's packet: once every delivery it fanned out to has
// settled downstream (acknowledged by an at-least-once consumer, written to an at-most-once one,
// or dropped by a policy the story chose). Acknowledging earlier would let a hub crash lose a
// packet its producer already forgot; so an ack upstream always trails the acks downstream.
//
// Acks are cumulative per partition, as the wire's are: the ack is the highest sequence such
// that it and every sequence accepted before it in that partition have settled.

import { ConfigError } from '../internal/errors.ts';

/** One accepted packet, to settle once per delivery. */
export interface AckTicket {
  readonly partition: string;
  readonly sequence: bigint;
  /** Deliveries still to settle. */
  remaining: number;
}

export interface AckLedgerStats {
  /** Packets accepted and not yet acknowledged upstream. */
  readonly pending: number;
  readonly accepted: number;
  /** Packets refused because `maxPending` were outstanding (the producer is over its window). */
  readonly refused: number;
  /** Sequences acknowledged upstream (counted per packet, not per ack message). */
  readonly acknowledged: number;
  /** Settlements of a ticket that had already settled (ignored). */
  readonly duplicateSettles: number;
}

export class AckLedger {
  readonly #maxPending: number;
  /** Per partition, the accepted tickets in arrival order. */
  readonly #partitions = new Map<string, AckTicket[]>();
  /** Per partition, the ack advanced since the last `takeAcks`. */
  readonly #advanced = new Map<string, bigint>();
  #pending = 0;
  #accepted = 0;
  #refused = 0;
  #duplicateSettles = 0;
  /** Callers waiting for room, woken as packets are acknowledged. */
  readonly #roomWaiters: (() => void)[] = [];
  #closed = false;

  constructor(maxPending: number) {
    if (!Number.isSafeInteger(maxPending) || maxPending <= 0) {
      throw new ConfigError('ackLedger.maxPending', `must be a positive integer, got ${String(maxPending)}`);
    }
    this.#maxPending = maxPending;
  }

  /**
   * Records a producer's packet that must settle `deliveries` times before it is acknowledged
   * (zero: at once, e.g. a step with no downstream). Undefined when `maxPending` are outstanding.
   */
  accept(partition: string, sequence: bigint, deliveries: number): AckTicket | undefined {
    if (this.#pending >= this.#maxPending) {
      this.#refused++;
      return undefined;
    }
    const ticket: AckTicket = { partition, sequence, remaining: Math.max(0, deliveries) };
    let tickets = this.#partitions.get(partition);
    if (tickets === undefined) this.#partitions.set(partition, (tickets = []));
    tickets.push(ticket);
    this.#pending++;
    this.#accepted++;
    if (ticket.remaining === 0) this.#advance(partition);
    return ticket;
  }

  /** True when another packet can be accepted now. */
  get hasRoom(): boolean {
    return this.#pending < this.#maxPending;
  }

  /** True once the producer's stream ended: nothing waits for room any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once another packet can be accepted (at once when it can now), or the ledger closed. */
  waitForRoom(): Promise<void> {
    if (this.hasRoom || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** The producer is gone: wakes whoever waits for room, for good. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  /** One delivery of `ticket` has settled. */
  settle(ticket: AckTicket): void {
    if (ticket.remaining <= 0) {
      this.#duplicateSettles++;
      return;
    }
    ticket.remaining--;
    if (ticket.remaining === 0) this.#advance(ticket.partition);
  }

  /** The acks to send upstream, per partition, that advanced since the last call. */
  takeAcks(): Map<string, bigint> {
    const acks = new Map(this.#advanced);
    this.#advanced.clear();
    return acks;
  }

  stats(): AckLedgerStats {
    return {
      pending: this.#pending,
      accepted: this.#accepted,
      refused: this.#refused,
      // Every accepted packet is pending until acknowledged, so the difference is what was.
      acknowledged: this.#accepted - this.#pending,
      duplicateSettles: this.#duplicateSettles,
    };
  }

  /** Pops the settled head of the partition; the last popped sequence is its new ack. */
  #advance(partition: string): void {
    const tickets = this.#partitions.get(partition);
    if (tickets === undefined) return;
    let head = 0;
    let acked: bigint | undefined;
    while (head < tickets.length && (tickets[head] as AckTicket).remaining === 0) {
      acked = (tickets[head] as AckTicket).sequence;
      head++;
    }
    if (head === 0) return;
    tickets.splice(0, head);
    this.#pending -= head;
    for (const wake of this.#roomWaiters.splice(0)) wake();
    if (tickets.length === 0) this.#partitions.delete(partition);
    const previous = this.#advanced.get(partition);
    if (acked !== undefined && (previous === undefined || acked > previous))
      this.#advanced.set(partition, acked);
  }
}
