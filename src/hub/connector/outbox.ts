// What the connector has sent and the hub has not yet acknowledged, in send order.
//
// Each partition numbers its packets 1, 2, 3… for the life of the connector (not per
// connection), so a packet resent after a reconnect carries the sequence it first had and the
// hub's cumulative ack covers it whichever connection delivered it.

import type { DataPacket } from '../../gen/transport/v1/hub_pb.ts';

/** One packet held until the hub acknowledges it. */
export interface OutboxEntry {
  readonly partition: string;
  readonly sequence: bigint;
  readonly packet: DataPacket;
  /** Resolves the `send` that made it, on its first write; undefined once resolved. */
  written: ((error?: Error) => void) | undefined;
}

export class Outbox {
  readonly #maxPartitions: number;
  /** Every unacked entry in send order (a Map keeps insertion order; removal is O(1)). */
  readonly #inOrder = new Map<OutboxEntry, true>();
  /** Per partition, its unacked entries in sequence order. */
  readonly #byPartition = new Map<string, OutboxEntry[]>();
  readonly #nextSequence = new Map<string, bigint>();
  #partitionsForgotten = 0;

  constructor(maxPartitions: number) {
    this.#maxPartitions = maxPartitions;
  }

  get size(): number {
    return this.#inOrder.size;
  }

  /** Partitions whose next sequence was forgotten (idle, past maxPartitions); they restart at 1. */
  get partitionsForgotten(): number {
    return this.#partitionsForgotten;
  }

  /** Assigns the partition's next sequence and holds the entry. */
  add(partition: string, makePacket: (sequence: bigint) => DataPacket): OutboxEntry {
    const sequence = (this.#nextSequence.get(partition) ?? 0n) + 1n;
    this.#nextSequence.delete(partition);
    this.#nextSequence.set(partition, sequence);
    this.#forgetIdlePartitions();
    const entry: OutboxEntry = { partition, sequence, packet: makePacket(sequence), written: undefined };
    this.#inOrder.set(entry, true);
    let entries = this.#byPartition.get(partition);
    if (entries === undefined) this.#byPartition.set(partition, (entries = []));
    entries.push(entry);
    return entry;
  }

  /** Drops the partition's entries up to `ack`; returns how many. */
  acknowledge(partition: string, ack: bigint): number {
    const entries = this.#byPartition.get(partition);
    if (entries === undefined) return 0;
    let count = 0;
    while (count < entries.length && (entries[count] as OutboxEntry).sequence <= ack) {
      this.#inOrder.delete(entries[count] as OutboxEntry);
      count++;
    }
    if (count === entries.length) this.#byPartition.delete(partition);
    else if (count > 0) entries.splice(0, count);
    return count;
  }

  /** Unacked entries in the order they were first sent: the resend order after a reconnect. */
  inSendOrder(): IterableIterator<OutboxEntry> {
    return this.#inOrder.keys();
  }

  // Sequence counters of partitions with nothing unacked are the only state that could grow
  // without bound; the least recently used go first.
  #forgetIdlePartitions(): void {
    if (this.#nextSequence.size <= this.#maxPartitions) return;
    for (const partition of this.#nextSequence.keys()) {
      if (this.#nextSequence.size <= this.#maxPartitions) return;
      if (this.#byPartition.has(partition)) continue;
      this.#nextSequence.delete(partition);
      this.#partitionsForgotten++;
    }
  }
}
