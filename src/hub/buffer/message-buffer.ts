// The per-downstream buffer: packets wait here, in arrival order, while their step has no
// stream or cannot take more, and leave by a flush, in that same order, or by a counted drop.
//
// Invariants:
// - Bounded by count and by bytes, globally and per lane; limits hold at every instant.
// - Every packet handed to `add` ends exactly once as flushed, still buffered, or dropped
//   under one reason (flushed + remaining + dropped = added + refused).
// - One flush runs at a time; a packet being sent is out of reach of evictions (it still counts
//   against the limits), so it is never both delivered and counted as dropped.
// - `onDrop` runs after the buffer's state is consistent, so it may call back into the buffer.

import type { Clock } from '../../internal/clock.ts';
import {
  resolveMessageBufferConfig,
  type MessageBufferConfig,
  type MessageBufferConfigInput,
} from './config.ts';
import { dropReasons, type DropReason } from './drop-reason.ts';
import { InvalidBufferInputError } from './errors.ts';
import { isLane, lanes, type Lane } from './lane.ts';
import { retryDelayMs } from './retry-policy.ts';

/** One buffered packet and the facts the buffer accounts by. */
export interface BufferEntry<P> {
  readonly packet: P;
  /** Encoded size in bytes. */
  readonly size: number;
  readonly lane: Lane;
}

export interface Dropped<P> {
  readonly entry: BufferEntry<P>;
  readonly reason: DropReason;
}

/** What `add` did: `evicted` lists what left to make room (or because it expired), oldest first. */
export type AddResult<P> =
  | { readonly added: true; readonly evicted: readonly Dropped<P>[] }
  | { readonly added: false; readonly reason: DropReason; readonly evicted: readonly Dropped<P>[] };

/** Delivers one packet; a rejection (or throw) stops the flush with that packet kept. */
export type SendPacket<P> = (packet: P) => void | Promise<void>;

export interface FlushOptions<P> {
  /** Asked before each send; false stops the flush without error (flow control said no). */
  readonly allow?: (packet: P) => boolean;
  /** Once aborted, nothing more is sent, everything left stays, and flush rejects with its reason. */
  readonly signal?: AbortSignal;
}

export interface LaneUsage {
  readonly messages: number;
  readonly bytes: number;
}

export interface MessageBufferStats {
  /** Messages held, the one being sent included. */
  readonly messages: number;
  readonly bytes: number;
  readonly lanes: Readonly<Record<Lane, LaneUsage>>;
  readonly utilization: number;
  /** Messages accepted by `add`, ever. */
  readonly added: number;
  /** Messages delivered by flushes, ever. */
  readonly flushed: number;
  /** Drops of every reason, ever; one per message. */
  readonly dropped: number;
  readonly droppedByReason: Readonly<Record<DropReason, number>>;
  /** Failed flushes in a row. */
  readonly retryCount: number;
  /** Clock time before which `shouldRetry` says no; undefined = at once. */
  readonly nextRetryAt: number | undefined;
  readonly deadlineAt: number | undefined;
  readonly lastActiveAt: number;
  /** `onDrop` callbacks that threw (the drop itself still happened). */
  readonly onDropErrors: number;
}

export interface MessageBuffer<P> {
  readonly config: MessageBufferConfig;
  /** Messages held, the one being sent included. */
  readonly size: number;
  readonly bytes: number;
  /** False when a retry policy with maxRetries 0 is set: the hub should not buffer at all. */
  readonly retryEnabled: boolean;
  /** Clock time of the last accepted add or of the last flush that delivered something. */
  readonly lastActiveAt: number;
  /** Time since `lastActiveAt`, for idle eviction. */
  idleMs(now?: number): number;
  /** max(count / maxMessages, bytes / maxBytes), in [0, 1]. */
  utilization(): number;
  /**
   * Checks in order: expire the head → oversize → lane_oversize → lane full (drop_oldest evicts
   * the lane's oldest) → buffer full (drop_oldest evicts the head) → append.
   * A nullish packet is dropped as `nil_packet`. Throws InvalidBufferInputError for a bad size or lane.
   */
  add(entry: BufferEntry<P>): AddResult<P>;
  /** Counts a packet the caller decided not to buffer (e.g. `retry_disabled`, `max_buffers`). */
  refuse(entry: BufferEntry<P> | undefined, reason: DropReason): void;
  /**
   * Replaces the limits (fields left out keep their current value), then drops expired entries
   * and trims from the head, globally and per lane, under either drop policy. Throws ConfigError
   * (nothing changed) for a bad field. Returns what was dropped.
   */
  applyLimits(input: MessageBufferConfigInput): readonly Dropped<P>[];
  /**
   * Drops expired entries, then sends the rest in order, one at a time, and resolves with the
   * number delivered. A send error keeps that packet and all after it, and rejects with the error.
   * Calls made while a flush runs wait for it.
   */
  flush(send: SendPacket<P>, options?: FlushOptions<P>): Promise<number>;
  /** True when there is something to send and the retry delay has passed. Past the deadline, drops all (`timeout`). */
  shouldRetry(now?: number): boolean;
  /**
   * Records how a flush went: `undefined` = success. A success that left the buffer empty resets
   * the retry state; an error schedules the next retry, or at maxRetries drops all (`retry_exhausted`).
   */
  recordFlushResult(error?: unknown): void;
  /** Clock time after which the buffer gives up (`timeout`); the earliest deadline set wins. */
  setDeadline(at: number): void;
  /** Drops every message, counting one drop each; resets the retry state and deadline. Returns the count. */
  dropAll(reason: DropReason): number;
  stats(): MessageBufferStats;
}

export interface MessageBufferOptions<P> {
  readonly clock: Clock;
  readonly config?: MessageBufferConfigInput;
  /** Told of each drop after the buffer is consistent again. Errors it throws are counted and ignored. */
  readonly onDrop?: (entry: BufferEntry<P>, reason: DropReason) => void;
}

/** A buffer with `options.config` over the defaults. Throws ConfigError naming a bad field. */
export function createMessageBuffer<P>(options: MessageBufferOptions<P>): MessageBuffer<P> {
  return new MessageBufferImpl(options);
}

interface Held<P> {
  readonly entry: BufferEntry<P>;
  readonly arrivedAt: number;
}

class MessageBufferImpl<P> implements MessageBuffer<P> {
  readonly #clock: Clock;
  readonly #onDrop: ((entry: BufferEntry<P>, reason: DropReason) => void) | undefined;
  #config: MessageBufferConfig;

  /** Waiting entries, oldest first. The one being sent is in #inFlight instead. */
  #queue: Held<P>[] = [];
  #inFlight: Held<P> | undefined;
  /** Set when the whole buffer was dropped during a send: a failed in-flight packet goes too. */
  #inFlightDoomedBy: DropReason | undefined;
  /** Totals include the in-flight entry, so limits hold while it is being sent. */
  #bytes = 0;
  readonly #laneMessages = zeroByLane();
  readonly #laneBytes = zeroByLane();

  #added = 0;
  #flushed = 0;
  #dropped = 0;
  readonly #droppedByReason = Object.fromEntries(dropReasons.map((r) => [r, 0])) as Record<
    DropReason,
    number
  >;
  #onDropErrors = 0;
  /** Drops not yet reported to onDrop; reported when the public call that caused them is done. */
  #unreported: Dropped<P>[] = [];

  #retryCount = 0;
  #nextRetryAt: number | undefined;
  #deadlineAt: number | undefined;
  #lastActiveAt: number;
  #flushTail: Promise<void> = Promise.resolve();

  constructor(options: MessageBufferOptions<P>) {
    this.#clock = options.clock;
    this.#onDrop = options.onDrop;
    this.#config = resolveMessageBufferConfig(options.config);
    this.#lastActiveAt = this.#clock.now();
  }

  get config(): MessageBufferConfig {
    return this.#config;
  }

  get size(): number {
    return this.#queue.length + (this.#inFlight === undefined ? 0 : 1);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get retryEnabled(): boolean {
    return this.#config.retry === undefined || this.#config.retry.maxRetries > 0;
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  idleMs(now = this.#clock.now()): number {
    return Math.max(0, now - this.#lastActiveAt);
  }

  utilization(): number {
    return Math.max(this.size / this.#config.maxMessages, this.#bytes / this.#config.maxBytes);
  }

  add(entry: BufferEntry<P>): AddResult<P> {
    // Checked before anything changes, so a bad entry leaves the buffer untouched.
    const given = entry as BufferEntry<P> | null | undefined;
    const packet: unknown = given?.packet;
    if (packet === null || packet === undefined) {
      if (given !== null && given !== undefined) this.#count({ entry: given, reason: 'nil_packet' });
      else this.#countWithoutEntry('nil_packet');
      this.#report();
      return { added: false, reason: 'nil_packet', evicted: [] };
    }
    checkEntry(entry);
    const evicted: Dropped<P>[] = [];
    const result = this.#addChecked(entry, evicted);
    this.#report();
    return result;
  }

  #addChecked(entry: BufferEntry<P>, evicted: Dropped<P>[]): AddResult<P> {
    const now = this.#clock.now();
    const config = this.#config;
    this.#evictExpired(now, evicted);
    const refuse = (reason: DropReason): AddResult<P> => {
      this.#count({ entry, reason });
      return { added: false, reason, evicted };
    };

    if (entry.size > config.maxBytes) return refuse('oversize');
    const laneMaxBytes = config.laneLimits[entry.lane]?.maxBytes;
    if (laneMaxBytes !== undefined && entry.size > laneMaxBytes) return refuse('lane_oversize');

    if (this.#laneOver(entry.lane, 1, entry.size)) {
      if (config.dropPolicy === 'drop_oldest') this.#evictLaneUntilFits(entry.lane, 1, entry.size, evicted);
      if (this.#laneOver(entry.lane, 1, entry.size)) return refuse('lane_full');
    }

    if (this.#globalOver(1, entry.size)) {
      if (config.dropPolicy === 'drop_oldest') {
        while (this.#queue.length > 0 && this.#globalOver(1, entry.size)) {
          evicted.push(this.#removeAt(0, 'buffer_full'));
        }
      }
      if (this.#globalOver(1, entry.size)) return refuse('buffer_full');
    }

    this.#queue.push({ entry, arrivedAt: now });
    this.#account(entry, 1);
    this.#added += 1;
    this.#lastActiveAt = now;
    return { added: true, evicted };
  }

  refuse(entry: BufferEntry<P> | undefined, reason: DropReason): void {
    if (entry === undefined) this.#countWithoutEntry(reason);
    else this.#count({ entry, reason });
    this.#report();
  }

  applyLimits(input: MessageBufferConfigInput): readonly Dropped<P>[] {
    this.#config = resolveMessageBufferConfig(input, this.#config);
    const dropped: Dropped<P>[] = [];
    this.#evictExpired(this.#clock.now(), dropped);
    // The newest reference trims under drop_newest too: limits that shrink must hold at once.
    while (this.#queue.length > 0 && this.#globalOver(0, 0)) dropped.push(this.#removeAt(0, 'buffer_full'));
    for (const lane of lanes) this.#evictLaneUntilFits(lane, 0, 0, dropped);
    this.#report();
    return dropped;
  }

  flush(send: SendPacket<P>, options: FlushOptions<P> = {}): Promise<number> {
    const run = this.#flushTail.then(() => this.#flushNow(send, options));
    this.#flushTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #flushNow(send: SendPacket<P>, { allow, signal }: FlushOptions<P>): Promise<number> {
    this.#evictExpired(this.#clock.now(), []);
    this.#report();
    let flushed = 0;
    try {
      while (this.#queue.length > 0) {
        if (signal?.aborted === true) throw signal.reason;
        const head = this.#queue[0] as Held<P>;
        if (allow !== undefined && !allow(head.entry.packet)) break;
        this.#queue.shift();
        this.#inFlight = head;
        this.#inFlightDoomedBy = undefined;
        try {
          await send(head.entry.packet);
        } catch (error) {
          this.#settleFailedSend(head);
          throw error;
        }
        this.#inFlight = undefined;
        this.#account(head.entry, -1);
        flushed += 1;
        this.#flushed += 1;
      }
    } finally {
      if (flushed > 0) this.#lastActiveAt = this.#clock.now();
    }
    return flushed;
  }

  /** A failed packet goes back to the head, unless the whole buffer was dropped meanwhile. */
  #settleFailedSend(held: Held<P>): void {
    this.#inFlight = undefined;
    const doomedBy = this.#inFlightDoomedBy;
    this.#inFlightDoomedBy = undefined;
    if (doomedBy === undefined) {
      this.#queue.unshift(held);
      return;
    }
    this.#account(held.entry, -1);
    this.#count({ entry: held.entry, reason: doomedBy });
    this.#report();
  }

  shouldRetry(now = this.#clock.now()): boolean {
    if (this.size === 0) return false;
    if (this.#deadlineAt !== undefined && now > this.#deadlineAt) {
      this.dropAll('timeout');
      return false;
    }
    if (!this.retryEnabled) return false;
    return this.#nextRetryAt === undefined || now >= this.#nextRetryAt;
  }

  recordFlushResult(error?: unknown): void {
    if (error === undefined) {
      if (this.size === 0) this.#resetRetry();
      return;
    }
    this.#retryCount += 1;
    const policy = this.#config.retry;
    if (policy !== undefined && policy.maxRetries > 0 && this.#retryCount >= policy.maxRetries) {
      this.dropAll('retry_exhausted');
      return;
    }
    this.#nextRetryAt = this.#clock.now() + retryDelayMs(policy, this.#retryCount);
  }

  setDeadline(at: number): void {
    if (typeof at !== 'number' || Number.isNaN(at)) {
      throw new InvalidBufferInputError(`buffer deadline must be a clock time in ms, got ${String(at)}`);
    }
    if (this.#deadlineAt === undefined || at < this.#deadlineAt) this.#deadlineAt = at;
  }

  dropAll(reason: DropReason): number {
    const count = this.#queue.length;
    while (this.#queue.length > 0) this.#removeAt(0, reason);
    if (this.#inFlight !== undefined) this.#inFlightDoomedBy = reason;
    this.#resetRetry();
    this.#report();
    return count;
  }

  stats(): MessageBufferStats {
    const laneUsage = Object.fromEntries(
      lanes.map((lane) => [lane, { messages: this.#laneMessages[lane], bytes: this.#laneBytes[lane] }]),
    ) as Record<Lane, LaneUsage>;
    return {
      messages: this.size,
      bytes: this.#bytes,
      lanes: laneUsage,
      utilization: this.utilization(),
      added: this.#added,
      flushed: this.#flushed,
      dropped: this.#dropped,
      droppedByReason: { ...this.#droppedByReason },
      retryCount: this.#retryCount,
      nextRetryAt: this.#nextRetryAt,
      deadlineAt: this.#deadlineAt,
      lastActiveAt: this.#lastActiveAt,
      onDropErrors: this.#onDropErrors,
    };
  }

  // --- accounting ---------------------------------------------------------------------------------

  #resetRetry(): void {
    this.#retryCount = 0;
    this.#nextRetryAt = undefined;
    this.#deadlineAt = undefined;
  }

  #globalOver(extraMessages: number, extraBytes: number): boolean {
    const config = this.#config;
    return this.size + extraMessages > config.maxMessages || this.#bytes + extraBytes > config.maxBytes;
  }

  #laneOver(lane: Lane, extraMessages: number, extraBytes: number): boolean {
    const limit = this.#config.laneLimits[lane];
    if (limit === undefined) return false;
    if (limit.maxMessages !== undefined && this.#laneMessages[lane] + extraMessages > limit.maxMessages)
      return true;
    return limit.maxBytes !== undefined && this.#laneBytes[lane] + extraBytes > limit.maxBytes;
  }

  /** Drops the lane's oldest waiting entries until `extra` fits in it, or none is left to drop. */
  #evictLaneUntilFits(lane: Lane, extraMessages: number, extraBytes: number, out: Dropped<P>[]): void {
    while (this.#laneOver(lane, extraMessages, extraBytes)) {
      const index = this.#queue.findIndex((held) => held.entry.lane === lane);
      if (index < 0) return;
      out.push(this.#removeAt(index, 'lane_full'));
    }
  }

  /** The queue is in arrival order, so expired entries are a prefix of it. */
  #evictExpired(now: number, out: Dropped<P>[]): void {
    const maxAgeMs = this.#config.maxAgeMs;
    if (maxAgeMs <= 0) return;
    const cutoff = now - maxAgeMs;
    while (this.#queue.length > 0 && (this.#queue[0] as Held<P>).arrivedAt <= cutoff) {
      out.push(this.#removeAt(0, 'expired'));
    }
  }

  #removeAt(index: number, reason: DropReason): Dropped<P> {
    const [held] = this.#queue.splice(index, 1) as [Held<P>];
    this.#account(held.entry, -1);
    const dropped = { entry: held.entry, reason };
    this.#count(dropped);
    return dropped;
  }

  #account(entry: BufferEntry<P>, sign: 1 | -1): void {
    this.#bytes += sign * entry.size;
    this.#laneMessages[entry.lane] += sign;
    this.#laneBytes[entry.lane] += sign * entry.size;
  }

  #count(dropped: Dropped<P>): void {
    this.#countWithoutEntry(dropped.reason);
    if (this.#onDrop !== undefined) this.#unreported.push(dropped);
  }

  #countWithoutEntry(reason: DropReason): void {
    this.#dropped += 1;
    this.#droppedByReason[reason] += 1;
  }

  #report(): void {
    const onDrop = this.#onDrop;
    if (onDrop === undefined || this.#unreported.length === 0) return;
    const batch = this.#unreported;
    this.#unreported = [];
    for (const { entry, reason } of batch) {
      try {
        onDrop(entry, reason);
      } catch {
        this.#onDropErrors += 1;
      }
    }
  }
}

function zeroByLane(): Record<Lane, number> {
  return { audio: 0, video: 0, binary: 0, payload: 0 };
}

function checkEntry(entry: BufferEntry<unknown>): void {
  if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new InvalidBufferInputError(`buffer entry size must be an integer >= 0, got ${String(entry.size)}`);
  }
  if (!isLane(entry.lane)) {
    throw new InvalidBufferInputError(
      `buffer entry lane must be audio, video, binary or payload, got ${String(entry.lane)}`,
    );
  }
}
