// What the connector received and how it acknowledges it.
//
// Acks are cumulative per partition. Per connection, each partition keeps its deliveries in
// arrival order; a handler's `ack()` marks one, and the ack sent is the sequence of the last of
// the leading run of marked deliveries. Contiguity is over what arrived, not over integers, so a
// sequence the hub skipped (dropped under a policy) never holds the ack back.
//
// Redelivery: across connections each partition remembers the highest sequence delivered and
// the highest ack sent. A packet is `redelivered` when its sequence is at most the highest
// delivered and above the highest ack: it was delivered before (on this connection or an
// earlier one) and not acknowledged, which is exactly what the hub replays to a new stream. A
// sequence at or below the highest ack means the hub numbers afresh (a hub restarted without
// its state): the partition's memory starts over from it.

/** One delivery awaiting the handler's ack. */
interface Pending {
  readonly sequence: bigint;
  acked: boolean;
}

interface PartitionMemory {
  delivered: bigint;
  acked: bigint;
}

/** The deliveries of one connection, and the acks it still has to send. */
export class ConnectionInbox {
  readonly #partitions = new Map<string, Pending[]>();
  /** Per partition, the cumulative ack waiting to be sent. */
  readonly #toSend = new Map<string, bigint>();
  readonly #sent = new Map<string, bigint>();
  readonly #memory: DeliveryMemory;
  #outstanding = 0;
  #ackedSinceFlush = 0;

  constructor(memory: DeliveryMemory) {
    this.#memory = memory;
  }

  /** Deliveries handed to the application and not yet acked. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Records a delivery; returns whether it is a redelivery and the function that acks it. */
  receive(partition: string, sequence: bigint): { redelivered: boolean; ack: () => boolean } {
    const redelivered = this.#memory.observe(partition, sequence);
    if (sequence === 0n) return { redelivered, ack: () => false };
    const pending: Pending = { sequence, acked: false };
    let queue = this.#partitions.get(partition);
    if (queue === undefined) this.#partitions.set(partition, (queue = []));
    queue.push(pending);
    this.#outstanding++;
    return {
      redelivered,
      ack: () => {
        if (pending.acked) return false;
        pending.acked = true;
        this.#outstanding--;
        this.#ackedSinceFlush++;
        this.#advance(partition);
        return true;
      },
    };
  }

  /** The acks advanced since the last call (partition → cumulative ack) and how many deliveries they cover. */
  takeAcks(): { acks: Map<string, bigint>; count: number } {
    const acks = new Map(this.#toSend);
    this.#toSend.clear();
    const count = this.#ackedSinceFlush;
    this.#ackedSinceFlush = 0;
    return { acks, count };
  }

  #advance(partition: string): void {
    const queue = this.#partitions.get(partition);
    if (queue === undefined) return;
    let head = 0;
    let highest = this.#sent.get(partition) ?? 0n;
    while (head < queue.length && (queue[head] as Pending).acked) {
      const { sequence } = queue[head] as Pending;
      if (sequence > highest) highest = sequence;
      head++;
    }
    if (head === 0) return;
    if (head === queue.length) this.#partitions.delete(partition);
    else queue.splice(0, head);
    if (highest > (this.#sent.get(partition) ?? 0n)) {
      this.#sent.set(partition, highest);
      this.#toSend.set(partition, highest);
      this.#memory.acknowledged(partition, highest);
    }
  }
}

/** Per partition, across connections: highest sequence delivered and highest ack sent. */
export class DeliveryMemory {
  readonly #maxPartitions: number;
  readonly #partitions = new Map<string, PartitionMemory>();
  #forgotten = 0;

  constructor(maxPartitions: number) {
    this.#maxPartitions = maxPartitions;
  }

  /** Partitions forgotten past maxPartitions (their next delivery cannot be flagged redelivered). */
  get forgotten(): number {
    return this.#forgotten;
  }

  /** Records a delivery of `sequence`; true when it is a redelivery (see the module comment). */
  observe(partition: string, sequence: bigint): boolean {
    if (sequence === 0n) return false;
    let memory = this.#partitions.get(partition);
    if (memory === undefined) {
      memory = { delivered: 0n, acked: 0n };
      this.#partitions.set(partition, memory);
      if (this.#partitions.size > this.#maxPartitions) {
        const oldest = this.#partitions.keys().next().value as string;
        this.#partitions.delete(oldest);
        this.#forgotten++;
      }
    }
    if (memory.acked > 0n && sequence <= memory.acked) {
      memory.delivered = sequence;
      memory.acked = 0n;
      return false;
    }
    const redelivered = sequence <= memory.delivered;
    if (sequence > memory.delivered) memory.delivered = sequence;
    return redelivered;
  }

  acknowledged(partition: string, ack: bigint): void {
    const memory = this.#partitions.get(partition);
    if (memory !== undefined && ack > memory.acked) memory.acked = ack;
  }
}
