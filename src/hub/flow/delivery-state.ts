// Delivery and flow state of one stream key (one downstream step): sequences, acks, credits,
// the packets held for replay, and the pause signal from the downstream.
//
// Pure bookkeeping, no I/O and no clock: the stream manager asks `canSend` before each send,
// reports it with `recordSent`, feeds the downstream's FlowControl messages to `applyFlow`, and
// replays `unackedInReplayOrder()` when a new stream takes over the key. Under per_partition
// every partition has its own sequence space, ack and in-flight limit; otherwise everything
// lives in partition "" whatever the envelope says.

import {
  normalizeDeliveryConfig,
  type DeliveryConfig,
  type DeliveryConfigInput,
  type FlowBufferLimits,
} from './delivery-config.ts';
import { InvalidFlowInputError, PartitionLimitError } from './errors.ts';
import { PauseController, type PauseControllerStats } from './pause-controller.ts';

/** The envelope fields flow cares about (the generated StreamEnvelope is mapped to and from this). */
export interface FlowEnvelope {
  readonly streamId: string;
  /** 0 = not yet sequenced. */
  readonly sequence: bigint;
  /** "" = unpartitioned. */
  readonly partition: string;
}

export interface AssignOptions {
  /**
   * The packet is a copy of another step's output: its stream id and sequence belong to that
   * step's stream and are cleared so this key numbers it in its own sequence space.
   */
  readonly downstream?: boolean;
}

/** A FlowControl message from the downstream, in plain values. */
export interface FlowUpdate {
  /** Cumulative ack; 0 or absent = none. Under per_partition it acks partition "". */
  readonly ack?: bigint;
  readonly creditsMessages?: number;
  readonly creditsBytes?: number;
  readonly partitionAcks?: readonly { readonly partition: string; readonly ack: bigint }[];
  readonly signal?: 'pause' | 'resume' | 'unspecified';
}

export interface FlowUpdateResult<P = unknown> {
  /** Unacked packets released by the acks. */
  readonly acked: number;
  /** The packets those were, so their delivery can be settled (e.g. acknowledged upstream). */
  readonly released: readonly P[];
  /** Partitions whose lastAck moved forward. */
  readonly acksAdvanced: number;
  readonly creditsAdded: boolean;
  /** The downstream asked to pause (and was not already paused). */
  readonly paused: boolean;
  /** The downstream asked to resume after a pause. */
  readonly resumed: boolean;
  /** Something changed that may let a blocked send through: try flushing the buffer. */
  readonly mayUnblock: boolean;
}

export interface UnackedPacket<P> {
  readonly partition: string;
  readonly sequence: bigint;
  readonly packet: P;
  readonly size: number;
}

/** What a checkpoint holds: acks and the packets still waiting for one. */
export interface DeliveryCheckpoint<P> {
  readonly lastAck?: bigint;
  readonly partitionAcks?: Readonly<Record<string, bigint>>;
  readonly pending: readonly UnackedPacket<P>[];
}

/** Why `canSend` said no. */
export type SendBlock = 'paused' | 'max_in_flight' | 'credits' | 'window';

export interface DeliveryStats {
  readonly ordering: DeliveryConfig['ordering'];
  readonly semantics: DeliveryConfig['semantics'];
  readonly flowMode: DeliveryConfig['flowMode'];
  readonly creditsMessages: number;
  readonly creditsBytes: number;
  readonly window: number;
  /** Partitions with a non-zero ack ("" under per_stream). */
  readonly lastAck: Readonly<Record<string, bigint>>;
  readonly partitions: number;
  readonly unacked: number;
  /** The downstream asked us to pause. */
  readonly paused: boolean;
  readonly acksApplied: number;
  /** Acks at or below lastAck, or for a partition past the limit. */
  readonly acksIgnored: number;
  readonly pauseSignalsReceived: number;
  readonly resumeSignalsReceived: number;
  /** Packets sent while the unacked store was full: not held, so not replayable. */
  readonly unackedRefused: number;
  readonly partitionsRefused: number;
  /** Credit grants that were not a non-negative safe integer. */
  readonly invalidCredits: number;
  readonly blocked: Readonly<Record<SendBlock, number>>;
  readonly upstream: PauseControllerStats;
}

interface PartitionState<P> {
  nextSeq: bigint;
  lastAck: bigint;
  readonly unacked: Map<bigint, { packet: P; size: number }>;
}

const MAX_U64 = (1n << 64n) - 1n;

export class DeliveryState<P> {
  readonly streamId: string;
  readonly config: DeliveryConfig;
  /** PAUSE/RESUME decisions towards the producer feeding this key's buffer. */
  readonly upstream: PauseController;

  readonly #partitions = new Map<string, PartitionState<P>>();
  #unackedTotal = 0;
  #creditsMessages: number;
  #creditsBytes: number;
  #paused = false;
  #acksApplied = 0;
  #acksIgnored = 0;
  #pauseSignals = 0;
  #resumeSignals = 0;
  #unackedRefused = 0;
  #partitionsRefused = 0;
  #invalidCredits = 0;
  readonly #blocked: Record<SendBlock, number> = { paused: 0, max_in_flight: 0, credits: 0, window: 0 };

  /**
   * @param streamId the stream key (`ns/run/step`), written into envelopes without one.
   * @param config a story's delivery settings (normalised here) or an already normalised config.
   */
  constructor(
    streamId: string,
    config: DeliveryConfigInput | DeliveryConfig = {},
    bufferLimits?: FlowBufferLimits,
  ) {
    this.streamId = streamId;
    this.config = isNormalized(config) ? config : normalizeDeliveryConfig(config, bufferLimits);
    this.#creditsMessages =
      this.config.flowMode === 'window' ? this.config.windowMessages : this.config.initialCreditsMessages;
    this.#creditsBytes = this.config.initialCreditsBytes;
    this.upstream = new PauseController(this.config);
  }

  get atLeastOnce(): boolean {
    return this.config.semantics === 'at_least_once';
  }

  get #sequenced(): boolean {
    return this.config.ordering !== 'none' || this.atLeastOnce;
  }

  /** The downstream asked us to pause and has not resumed. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Returns the envelope to send: stream id filled, sequence assigned (0 → next) when the key
   * is ordered or at-least-once. An explicit sequence is kept and moves the counter past it.
   * Throws PartitionLimitError for a new partition past `maxPartitions`.
   */
  assignEnvelope(envelope: FlowEnvelope | undefined, options: AssignOptions = {}): FlowEnvelope | undefined {
    if (envelope === undefined && !this.#sequenced) return undefined;
    let streamId = envelope?.streamId ?? '';
    let sequence = envelope?.sequence ?? 0n;
    const partition = envelope?.partition ?? '';
    if (options.downstream === true) {
      streamId = '';
      sequence = 0n;
    }
    checkSequence('sequence', sequence);
    if (streamId === '') streamId = this.streamId;

    if (this.#sequenced && sequence === 0n) {
      const state = this.#partitionForWrite(partition);
      sequence = state.nextSeq;
      state.nextSeq++;
    } else if (sequence > 0n) {
      const state = this.#partitionForWrite(partition);
      if (sequence >= state.nextSeq) state.nextSeq = sequence + 1n;
    }
    return { streamId, sequence, partition };
  }

  /** True when a packet of `size` encoded bytes may be sent now. */
  canSend(size: number, partition: string, sequence: bigint): boolean {
    const block = this.blockedBy(size, partition, sequence);
    if (block === undefined) return true;
    this.#blocked[block]++;
    return false;
  }

  /** The first gate that holds this packet back, or undefined when it may go. Counts nothing. */
  blockedBy(size: number, partition: string, sequence: bigint): SendBlock | undefined {
    checkSize(size);
    if (this.#paused) return 'paused';
    const state = this.#partitions.get(this.#key(partition));
    // A packet already held (a replay) takes no new room, so no in-flight limit holds it back.
    const alreadyHeld = sequence > 0n && state?.unacked.has(sequence) === true;
    if (this.atLeastOnce && !alreadyHeld) {
      const inFlight = state?.unacked.size ?? 0;
      const perKeyLimit = this.config.maxInFlight;
      if (perKeyLimit > 0 && inFlight >= perKeyLimit) return 'max_in_flight';
      if (this.#unackedTotal >= this.config.maxUnacked) return 'max_in_flight';
    }
    switch (this.config.flowMode) {
      case 'credits':
        if (this.#creditsMessages <= 0 || size > this.#creditsBytes) return 'credits';
        break;
      case 'window':
        if (sequence > 0n && sequence > (state?.lastAck ?? 0n) + BigInt(this.config.windowMessages))
          return 'window';
        break;
      case 'none':
        break;
    }
    return undefined;
  }

  /**
   * Records a packet as sent: spends credits and, under at-least-once, holds it for replay until
   * acked. Returns false when it should have been held but the unacked store was full.
   */
  recordSent(sequence: bigint, partition: string, packet: P, size: number): boolean {
    checkSize(size);
    checkSequence('sequence', sequence);
    if (this.config.flowMode === 'credits') {
      if (this.#creditsMessages > 0) this.#creditsMessages--;
      this.#creditsBytes = Math.max(0, this.#creditsBytes - size);
    }
    if (!this.atLeastOnce || sequence === 0n) return true;
    const key = this.#key(partition);
    const existing = this.#partitions.get(key);
    if (existing !== undefined && sequence <= existing.lastAck) return true; // acked while in flight
    if (existing?.unacked.has(sequence) === true) {
      existing.unacked.set(sequence, { packet, size });
      return true;
    }
    if (this.#unackedTotal >= this.config.maxUnacked) {
      this.#unackedRefused++;
      return false;
    }
    const state = existing ?? this.#tryPartition(key);
    if (state === undefined) {
      this.#unackedRefused++;
      return false;
    }
    state.unacked.set(sequence, { packet, size });
    this.#unackedTotal++;
    return true;
  }

  /** True when the packet `sequence` of `partition` is held for replay (sent, not yet acked). */
  isHeld(sequence: bigint, partition: string): boolean {
    return this.#partitions.get(this.#key(partition))?.unacked.has(sequence) === true;
  }

  /** Applies a FlowControl message from the downstream: credits, cumulative acks, PAUSE/RESUME. */
  applyFlow(update: FlowUpdate): FlowUpdateResult<P> {
    let creditsAdded = false;
    const messages = this.#validCredits(update.creditsMessages);
    if (messages > 0) {
      this.#creditsMessages = Math.min(Number.MAX_SAFE_INTEGER, this.#creditsMessages + messages);
      creditsAdded = true;
    }
    const bytes = this.#validCredits(update.creditsBytes);
    if (bytes > 0) {
      this.#creditsBytes = Math.min(Number.MAX_SAFE_INTEGER, this.#creditsBytes + bytes);
      creditsAdded = true;
    }

    let acked = 0;
    let acksAdvanced = 0;
    const releasedPackets: P[] = [];
    const apply = (partition: string, ack: bigint): void => {
      const released = this.#applyAck(partition, ack, releasedPackets);
      if (released === undefined) return;
      acksAdvanced++;
      acked += released;
    };
    const partitionAcks = update.partitionAcks ?? [];
    if (this.config.ordering === 'per_partition' && partitionAcks.length > 0) {
      // As the reference hub: with partition acks present, a bare ack is not also applied.
      for (const { partition, ack } of partitionAcks) apply(partition, ack);
    } else if (update.ack !== undefined) {
      apply('', update.ack);
    }

    let paused = false;
    let resumed = false;
    if (update.signal === 'pause') {
      this.#pauseSignals++;
      paused = !this.#paused;
      this.#paused = true;
    } else if (update.signal === 'resume') {
      this.#resumeSignals++;
      resumed = this.#paused;
      this.#paused = false;
    }
    return {
      acked,
      released: releasedPackets,
      acksAdvanced,
      creditsAdded,
      paused,
      resumed,
      mayUnblock: acked > 0 || acksAdvanced > 0 || creditsAdded || resumed,
    };
  }

  /** The packets held for replay, by partition then sequence: the order to resend them in. */
  unackedInReplayOrder(): UnackedPacket<P>[] {
    const out: UnackedPacket<P>[] = [];
    const partitions = [...this.#partitions.keys()].sort(compareStrings);
    for (const partition of partitions) {
      const state = this.#partitions.get(partition);
      if (state === undefined || state.unacked.size === 0) continue;
      const sequences = [...state.unacked.keys()].sort(compareBigints);
      for (const sequence of sequences) {
        const held = state.unacked.get(sequence);
        if (held !== undefined) out.push({ partition, sequence, packet: held.packet, size: held.size });
      }
    }
    return out;
  }

  /** Acks and held packets, for a durable checkpoint. */
  checkpoint(): DeliveryCheckpoint<P> {
    const partitionAcks: Record<string, bigint> = {};
    for (const [partition, state] of this.#partitions)
      if (state.lastAck > 0n) partitionAcks[partition] = state.lastAck;
    return {
      lastAck: this.#partitions.get('')?.lastAck ?? 0n,
      ...(this.config.ordering === 'per_partition' ? { partitionAcks } : {}),
      pending: this.unackedInReplayOrder(),
    };
  }

  /**
   * Loads a checkpoint into a fresh state: acks first, then the pending packets not yet acked
   * (within the limits). Returns how many packets were restored and skipped.
   */
  restore(checkpoint: DeliveryCheckpoint<P>): { restored: number; skipped: number } {
    const partitionAcks = Object.entries(checkpoint.partitionAcks ?? {});
    if (this.config.ordering === 'per_partition' && partitionAcks.length > 0) {
      for (const [partition, ack] of partitionAcks) this.#applyAck(partition, ack, []);
    } else if (checkpoint.lastAck !== undefined) {
      this.#applyAck('', checkpoint.lastAck, []);
    }
    let restored = 0;
    let skipped = 0;
    for (const record of checkpoint.pending) {
      const valid =
        typeof record.sequence === 'bigint' &&
        record.sequence > 0n &&
        record.sequence <= MAX_U64 &&
        Number.isSafeInteger(record.size) &&
        record.size >= 0;
      const state = valid ? this.#tryPartition(this.#key(record.partition)) : undefined;
      if (
        state === undefined ||
        record.sequence <= state.lastAck ||
        state.unacked.has(record.sequence) ||
        !this.atLeastOnce ||
        this.#unackedTotal >= this.config.maxUnacked
      ) {
        skipped++;
        continue;
      }
      state.unacked.set(record.sequence, { packet: record.packet, size: record.size });
      this.#unackedTotal++;
      if (record.sequence >= state.nextSeq) state.nextSeq = record.sequence + 1n;
      restored++;
    }
    return { restored, skipped };
  }

  stats(): DeliveryStats {
    const lastAck: Record<string, bigint> = {};
    for (const [partition, state] of this.#partitions)
      if (state.lastAck > 0n) lastAck[partition] = state.lastAck;
    return {
      ordering: this.config.ordering,
      semantics: this.config.semantics,
      flowMode: this.config.flowMode,
      creditsMessages: this.#creditsMessages,
      creditsBytes: this.#creditsBytes,
      window: this.config.windowMessages,
      lastAck,
      partitions: this.#partitions.size,
      unacked: this.#unackedTotal,
      paused: this.#paused,
      acksApplied: this.#acksApplied,
      acksIgnored: this.#acksIgnored,
      pauseSignalsReceived: this.#pauseSignals,
      resumeSignalsReceived: this.#resumeSignals,
      unackedRefused: this.#unackedRefused,
      partitionsRefused: this.#partitionsRefused,
      invalidCredits: this.#invalidCredits,
      blocked: { ...this.#blocked },
      upstream: this.upstream.stats(),
    };
  }

  /** Returns how many held packets the ack released, or undefined when it was ignored. */
  #applyAck(partition: string, ack: bigint, releasedPackets: P[]): number | undefined {
    if (typeof ack !== 'bigint' || ack <= 0n || ack > MAX_U64) {
      if (ack !== 0n) this.#acksIgnored++;
      return undefined;
    }
    const state = this.#tryPartition(this.#key(partition));
    if (state === undefined || ack <= state.lastAck) {
      this.#acksIgnored++;
      return undefined;
    }
    this.#acksApplied++;
    state.lastAck = ack;
    if (state.nextSeq <= ack) state.nextSeq = ack + 1n;
    let released = 0;
    for (const [sequence, held] of state.unacked) {
      if (sequence <= ack) {
        state.unacked.delete(sequence);
        releasedPackets.push(held.packet);
        released++;
      }
    }
    this.#unackedTotal -= released;
    return released;
  }

  #key(partition: string): string {
    return this.config.ordering === 'per_partition' ? partition : '';
  }

  #partitionForWrite(partition: string): PartitionState<P> {
    const state = this.#tryPartition(this.#key(partition));
    if (state === undefined) throw new PartitionLimitError(partition, this.config.maxPartitions);
    return state;
  }

  #tryPartition(key: string): PartitionState<P> | undefined {
    let state = this.#partitions.get(key);
    if (state !== undefined) return state;
    if (this.#partitions.size >= this.config.maxPartitions) {
      this.#partitionsRefused++;
      return undefined;
    }
    state = { nextSeq: 1n, lastAck: 0n, unacked: new Map() };
    this.#partitions.set(key, state);
    return state;
  }

  #validCredits(value: number | undefined): number {
    if (value === undefined || value === 0) return 0;
    if (!Number.isSafeInteger(value) || value < 0) {
      this.#invalidCredits++;
      return 0;
    }
    return value;
  }
}

function isNormalized(config: DeliveryConfigInput | DeliveryConfig): config is DeliveryConfig {
  return 'fallbacks' in config && Array.isArray(config.fallbacks);
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidFlowInputError('size', `must be a non-negative integer byte count, got ${String(size)}`);
  }
}

function checkSequence(field: string, sequence: bigint): void {
  if (typeof sequence !== 'bigint' || sequence < 0n || sequence > MAX_U64) {
    throw new InvalidFlowInputError(field, `must be a uint64 bigint, got ${String(sequence)}`);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
