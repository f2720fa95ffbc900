// Where the hub keeps, per stream key (`namespace/run/step`), the connector stream that receives
// the step's input, the buffer of what could not be sent yet, and the delivery and flow state.
//
// Every operation on a key runs in that key's serial queue, so a packet never overtakes one sent
// or buffered before it, and handoff callbacks fire in the order the phases were entered (the
// reference's callbacks could run out of order).
//
// Blue-green handoff by connector generation, with the reference's bugs fixed:
// - a newer generation replaces the active stream at once (the shadow is promoted), and the new
//   stream receives the replay of every unacknowledged packet, then the flush of the buffer;
// - the replaced stream is always closed, and the count of active streams is exact;
// - an older generation than the active one is refused (a stale connector must not take over).

import { type Clock, systemClock } from '../internal/clock.ts';
import { diagnosticChannel } from '../internal/diagnostics.ts';
import { ConfigError } from '../internal/errors.ts';
import { createMessageBuffer, type DropReason, type Lane, type MessageBuffer } from './buffer/index.ts';
import type { MessageBufferConfigInput } from './buffer/index.ts';
import {
  type DeliveryCheckpoint,
  DeliveryState,
  defaultFlowBufferLimits,
  type DeliveryConfigInput,
  type FlowBufferLimits,
  type FlowEnvelope,
  type FlowUpdate,
  type UnackedPacket,
} from './flow/index.ts';
import type { PauseSignal } from './flow/index.ts';
import type { OutboundStream } from './outbound-stream.ts';

/** A packet on its way to one step: the wire message, its facts, and whom to tell when it settles. */
export interface RoutedPacket<M> {
  readonly message: M;
  /** Encoded size in bytes. */
  readonly size: number;
  readonly lane: Lane;
  /** This step's envelope: its own stream id and sequence space. */
  envelope: FlowEnvelope;
  /**
   * Called once when this delivery settles: acknowledged downstream (at least once), written
   * (at most once), or dropped under a policy (counted by reason).
   */
  readonly settle?: (() => void) | undefined;
}

/** The policies a key's stream follows (from its step in the story). */
export interface StreamOptions {
  readonly buffer?: MessageBufferConfigInput;
  readonly delivery?: DeliveryConfigInput;
  /** Past this long without a stream or while retrying, buffered packets are dropped (`timeout`). */
  readonly drainTimeoutMs?: number | undefined;
  /** False: no heartbeats to this key's stream. Default true. */
  readonly heartbeat?: boolean | undefined;
  /**
   * At least this long between two heartbeats to the key's stream (the story's
   * `heartbeat.intervalMs`). Heartbeats go out on ticks, so the tick period is the finest grain.
   * Default 0: one each tick.
   */
  readonly heartbeatIntervalMs?: number | undefined;
}

/** Encodes what the manager sends into the transport's message type. */
export interface OutboundEncoder<M, W> {
  /** `redelivery`: the packet was sent before (a replay after a reconnect, a cutover or a restart). */
  packet(packet: RoutedPacket<M>, redelivery: boolean): W;
  /** A heartbeat: one fresh message per stream (a shared one would race in serialisation). */
  heartbeat(): W;
}

export type HandoffPhase = 'pending' | 'warming' | 'cutover' | 'draining' | 'ready';

export interface HandoffEvent {
  readonly key: string;
  readonly phase: HandoffPhase;
  readonly reason: string;
  readonly generation: number;
}

/** A connector's stream, as registered; pass it back to `removeStream`. */
export interface Connection<W> {
  readonly key: string;
  readonly generation: number;
  readonly stream: OutboundStream<W>;
}

export type AddStreamResult<W> =
  | { readonly added: true; readonly connection: Connection<W> }
  | {
      readonly added: false;
      readonly reason: 'max-active-streams' | 'max-keys' | 'superseded';
      readonly activeGeneration?: number;
    };

export interface StreamManagerConfig<M, W> {
  readonly encoder: OutboundEncoder<M, W>;
  readonly clock?: Clock;
  /** Connector streams at once; one more is refused. Default 2000. */
  readonly maxActiveStreams?: number;
  /** Buffers at once; a packet that needs one more is dropped (`max_buffers`). Default 1000. */
  readonly maxBuffers?: number;
  /** Keys with state at once (streams, buffers, delivery state). Default 10,000. */
  readonly maxKeys?: number;
  /** A buffer with no activity for this long is dropped whole (`evicted`). Default 10 min. */
  readonly idleBufferTtlMs?: number;
  /** Told of every handoff phase, in order per key. */
  readonly onHandoff?: (event: HandoffEvent) => void;
  /** Told to send PAUSE or RESUME to the producers feeding `key` (its buffer filled or drained). */
  readonly onUpstreamSignal?: (key: string, signal: PauseSignal) => void;
  /** Told of every packet dropped, with its reason. */
  readonly onDrop?: (key: string, reason: DropReason) => void;
  /** Told when a key's acks or unacknowledged packets changed (to checkpoint it). */
  readonly onDeliveryChange?: (key: string) => void;
  /**
   * Asked once, when a key's state is created, for what a previous run of the hub left
   * unacknowledged (a checkpoint): it is replayed to the key's next stream before anything new.
   */
  readonly restore?: (key: string) => DeliveryCheckpoint<RoutedPacket<M>> | undefined;
}

export const defaultStreamManagerLimits = {
  maxActiveStreams: 2000,
  maxBuffers: 1000,
  maxKeys: 10_000,
  idleBufferTtlMs: 10 * 60_000,
} as const;

export interface StreamManagerStats {
  readonly keys: number;
  readonly activeStreams: number;
  readonly buffers: number;
  readonly buffered: number;
  readonly sent: number;
  readonly sendFailures: number;
  readonly replayed: number;
  readonly heartbeats: number;
  readonly handoffs: Readonly<Record<HandoffPhase, number>>;
  readonly refusedStreams: { readonly maxActive: number; readonly superseded: number };
  readonly refusedKeys: number;
  readonly drops: Readonly<Partial<Record<DropReason, number>>>;
  readonly bufferedBy: Readonly<Record<BufferReason, number>>;
}

/** Every reason a packet can be buffered, as `stats().bufferedBy` counts them. */
export const bufferReasons = [
  'stream_not_found',
  'flow_control',
  'send_failed',
  'retry_wait',
  'buffer_drain',
] as const;

/** Why a packet went to the buffer instead of the stream. */
export type BufferReason = (typeof bufferReasons)[number];
// Reasons that start a drain deadline when drainTimeoutMs is set (the reference's set).
const DRAIN_REASONS: ReadonlySet<BufferReason> = new Set(['stream_not_found', 'send_failed', 'retry_wait']);

const handoffChannel = diagnosticChannel<HandoffEvent>('hub', 'handoff');

interface KeyState<M, W> {
  readonly key: string;
  options: StreamOptions;
  active: Connection<W> | undefined;
  buffer: MessageBuffer<RoutedPacket<M>> | undefined;
  readonly delivery: DeliveryState<RoutedPacket<M>>;
  phase: HandoffPhase;
  /** The key's serial queue: every operation on the key chains here. */
  tail: Promise<void>;
  /** What the current stream's replay has still to send, in order (empty when it is done). */
  replayRest: UnackedPacket<RoutedPacket<M>>[];
  /** Operations queued or running; the tick forgets a key only when its own is the only one. */
  queued: number;
  /** When the key's stream last got a heartbeat (-Infinity: never). */
  lastHeartbeatAt: number;
}

export class StreamManager<M, W> {
  readonly #config: StreamManagerConfig<M, W> & {
    readonly maxActiveStreams: number;
    readonly maxBuffers: number;
    readonly maxKeys: number;
    readonly idleBufferTtlMs: number;
  };
  readonly #clock: Clock;
  readonly #keys = new Map<string, KeyState<M, W>>();
  #activeStreams = 0;
  #buffers = 0;
  #sent = 0;
  #sendFailures = 0;
  #replayed = 0;
  #heartbeats = 0;
  #refusedMaxActive = 0;
  #refusedSuperseded = 0;
  #refusedKeys = 0;
  readonly #handoffs: Record<HandoffPhase, number> = {
    pending: 0,
    warming: 0,
    cutover: 0,
    draining: 0,
    ready: 0,
  };
  readonly #drops: Partial<Record<DropReason, number>> = {};
  readonly #bufferedBy = Object.fromEntries(bufferReasons.map((r) => [r, 0])) as Record<BufferReason, number>;

  constructor(config: StreamManagerConfig<M, W>) {
    const merged = { ...defaultStreamManagerLimits, ...config };
    for (const field of ['maxActiveStreams', 'maxBuffers', 'maxKeys', 'idleBufferTtlMs'] as const) {
      if (!Number.isSafeInteger(merged[field]) || merged[field] <= 0) {
        throw new ConfigError(`hub.${field}`, `must be a positive integer, got ${String(merged[field])}`);
      }
    }
    this.#config = merged;
    this.#clock = config.clock ?? systemClock;
  }

  /**
   * Registers a connector's stream for `key`. A newer generation than the active stream's takes
   * over (blue-green); the same generation, or a connector without one (0), replaces it; an
   * older one is refused as superseded. The new stream first receives the replay of what the
   * old one left unacknowledged, then the buffer.
   */
  addStream(
    key: string,
    stream: OutboundStream<W>,
    generation: number,
    options?: StreamOptions,
  ): Promise<AddStreamResult<W>> {
    const state = this.#state(key, options);
    if (state === undefined) return Promise.resolve({ added: false, reason: 'max-keys' });
    // A stream that will be replaced is closed now, not in turn: a send stuck on it (its
    // connector stopped reading) must fail and free the key's queue for the takeover.
    const current = state.active;
    if (current !== undefined && !(generation > 0 && generation < current.generation)) current.stream.close();
    return this.#serially(state, async () => {
      const previous = state.active;
      if (previous !== undefined && generation > 0 && generation < previous.generation) {
        this.#refusedSuperseded++;
        return { added: false, reason: 'superseded', activeGeneration: previous.generation } as const;
      }
      if (previous === undefined && this.#activeStreams >= this.#config.maxActiveStreams) {
        this.#refusedMaxActive++;
        return { added: false, reason: 'max-active-streams' } as const;
      }
      const connection: Connection<W> = { key, generation, stream };
      if (previous === undefined) {
        this.#activeStreams++;
        state.active = connection;
      } else {
        const blueGreen = previous.generation > 0 && generation > previous.generation;
        if (blueGreen) this.#enter(state, 'warming', 'shadow_connected', generation);
        state.active = connection;
        previous.stream.close();
        this.#enter(state, 'cutover', blueGreen ? 'blue_green_cutover' : 'stream_replaced', generation);
      }
      await this.#replay(state, connection);
      await this.#flush(state);
      if (state.buffer === undefined)
        this.#enter(
          state,
          'ready',
          previous === undefined ? 'stream_connected' : 'cutover_complete',
          generation,
        );
      return { added: true, connection } as const;
    });
  }

  /** Unregisters `connection` if it is still the key's stream, and closes it. */
  removeStream(connection: Connection<W>): Promise<void> {
    connection.stream.close();
    const state = this.#keys.get(connection.key);
    if (state === undefined) return Promise.resolve();
    return this.#serially(state, () => {
      if (state.active !== connection) return;
      state.active = undefined;
      this.#activeStreams--;
      this.#enter(state, 'pending', 'stream_removed', connection.generation);
    });
  }

  /**
   * Sends `packet` to `key`'s stream, or buffers it (no stream, flow control, a failed send, or
   * older packets still buffered: a new packet never overtakes them). Resolves true when sent or
   * buffered, false when dropped (settled then, unless dropped for the hub's own capacity:
   * `max_buffers`, which also covers a key refused past `maxKeys`).
   */
  sendOrBuffer(key: string, packet: RoutedPacket<M>, options?: StreamOptions): Promise<boolean> {
    const state = this.#state(key, options);
    if (state === undefined) {
      this.#drop(key, packet, 'max_buffers');
      return Promise.resolve(false);
    }
    return this.#serially(state, () => {
      const envelope = state.delivery.assignEnvelope(packet.envelope, { downstream: true });
      if (envelope !== undefined) packet.envelope = envelope;
      return this.#sendOrBufferInTurn(state, packet);
    });
  }

  /** `sendOrBuffer` in the key's turn, its envelope assigned. */
  async #sendOrBufferInTurn(state: KeyState<M, W>, packet: RoutedPacket<M>): Promise<boolean> {
    const connection = state.active;
    if (connection === undefined) return this.#buffer(state, packet, 'stream_not_found');
    const buffer = state.buffer;
    if (buffer !== undefined && buffer.size > 0) {
      if (!buffer.shouldRetry(this.#clock.now())) return this.#buffer(state, packet, 'retry_wait');
      await this.#flush(state);
      if (state.buffer !== undefined && state.buffer.size > 0) {
        this.#enter(state, 'draining', 'buffer_pending', connection.generation);
        return this.#buffer(state, packet, 'buffer_drain');
      }
    }
    // A replay that has not finished goes before anything new.
    if (state.replayRest.length > 0 || !this.#canSend(state, packet)) {
      return this.#buffer(state, packet, 'flow_control');
    }
    try {
      await this.#send(state, connection, packet);
    } catch {
      return this.#buffer(state, packet, 'send_failed');
    }
    return true;
  }

  /**
   * Applies a FlowControl message from `key`'s connector (acks and credits for what the hub sent
   * it, PAUSE/RESUME of its input): acknowledged packets settle, and what the flow now allows is
   * flushed from the buffer.
   */
  applyFlow(key: string, update: FlowUpdate): Promise<void> {
    const state = this.#keys.get(key);
    if (state === undefined) return Promise.resolve();
    return this.#serially(state, async () => {
      const result = state.delivery.applyFlow(update);
      for (const packet of result.released) packet.settle?.();
      if (result.acksAdvanced > 0) this.#deliveryChanged(state);
      const pending = state.buffer !== undefined || state.replayRest.length > 0;
      if (result.mayUnblock && pending && state.active !== undefined) await this.#flush(state);
    });
  }

  /**
   * The background work of one tick: buffers idle past their TTL are dropped (`evicted`), buffers
   * due for a retry are flushed to their live stream, and each active stream whose interval has
   * passed gets one heartbeat.
   */
  async tick(): Promise<void> {
    const now = this.#clock.now();
    const work: Promise<void>[] = [];
    for (const state of this.#keys.values()) {
      work.push(
        this.#serially(state, async () => {
          if (state.active !== undefined && state.replayRest.length > 0 && state.buffer === undefined) {
            await this.#resumeReplay(state, state.active);
          }
          const buffer = state.buffer;
          if (buffer !== undefined) {
            if (state.active === undefined && buffer.idleMs(now) >= this.#config.idleBufferTtlMs) {
              buffer.dropAll('evicted');
            } else if (buffer.shouldRetry(now) && state.active !== undefined) {
              // shouldRetry runs without a stream too: past the drain deadline it drops (`timeout`).
              await this.#flush(state);
            }
            if (state.buffer !== undefined && state.buffer.size === 0) this.#bufferEmptied(state);
          }
          if (
            state.active !== undefined &&
            state.options.heartbeat !== false &&
            now - state.lastHeartbeatAt >= (state.options.heartbeatIntervalMs ?? 0)
          ) {
            state.lastHeartbeatAt = now;
            this.#heartbeats++;
            state.active.stream.send(this.#config.encoder.heartbeat()).catch(() => undefined);
          }
          if (
            state.queued === 1 &&
            state.active === undefined &&
            state.buffer === undefined &&
            state.delivery.stats().unacked === 0
          ) {
            this.#keys.delete(state.key);
          }
        }),
      );
    }
    await Promise.all(work);
  }

  /** True while `connection` is its key's active stream (not replaced, not removed). */
  isCurrent(connection: Connection<W>): boolean {
    return this.#keys.get(connection.key)?.active === connection;
  }

  /** The current handoff phase of `key`, or undefined when the hub holds nothing for it. */
  phase(key: string): HandoffPhase | undefined {
    return this.#keys.get(key)?.phase;
  }

  /** The delivery state of `key` (sequences, acks, unacked), for checkpoints and diagnostics. */
  delivery(key: string): DeliveryState<RoutedPacket<M>> | undefined {
    return this.#keys.get(key)?.delivery;
  }

  /** Waits until every operation queued on `key` so far has run. */
  idle(key: string): Promise<void> {
    const state = this.#keys.get(key);
    return state === undefined ? Promise.resolve() : this.#serially(state, () => undefined);
  }

  stats(): StreamManagerStats {
    let buffered = 0;
    for (const state of this.#keys.values()) buffered += state.buffer?.size ?? 0;
    return {
      keys: this.#keys.size,
      activeStreams: this.#activeStreams,
      buffers: this.#buffers,
      buffered,
      sent: this.#sent,
      sendFailures: this.#sendFailures,
      replayed: this.#replayed,
      heartbeats: this.#heartbeats,
      handoffs: { ...this.#handoffs },
      refusedStreams: { maxActive: this.#refusedMaxActive, superseded: this.#refusedSuperseded },
      refusedKeys: this.#refusedKeys,
      drops: { ...this.#drops },
      bufferedBy: { ...this.#bufferedBy },
    };
  }

  /** The key's state, created with `options` on first use; undefined past `maxKeys`. */
  #state(key: string, options: StreamOptions | undefined): KeyState<M, W> | undefined {
    let state = this.#keys.get(key);
    if (state !== undefined) {
      if (options !== undefined) state.options = options;
      return state;
    }
    if (this.#keys.size >= this.#config.maxKeys) {
      this.#refusedKeys++;
      return undefined;
    }
    const resolved = options ?? {};
    state = {
      key,
      options: resolved,
      active: undefined,
      buffer: undefined,
      delivery: new DeliveryState<RoutedPacket<M>>(
        key,
        resolved.delivery ?? {},
        bufferLimits(resolved.buffer),
      ),
      phase: 'pending',
      tail: Promise.resolve(),
      replayRest: [],
      queued: 0,
      lastHeartbeatAt: Number.NEGATIVE_INFINITY,
    };
    this.#keys.set(key, state);
    const restored = this.#config.restore?.(key);
    if (restored !== undefined) state.delivery.restore(restored);
    return state;
  }

  #serially<T>(state: KeyState<M, W>, operation: () => T | Promise<T>): Promise<T> {
    // An idle queue runs the operation now rather than a turn later: nothing on the key can come
    // between, and a packet on a live stream then costs no hop through the queue.
    const idle = state.queued === 0;
    state.queued++;
    let started: Promise<T>;
    if (idle) {
      try {
        started = Promise.resolve(operation());
      } catch (error) {
        started = Promise.reject(error);
      }
    } else started = state.tail.then(operation);
    const run = started.finally(() => {
      state.queued--;
    });
    state.tail = run.then(noop, noop);
    return run;
  }

  #canSend(state: KeyState<M, W>, packet: RoutedPacket<M>): boolean {
    return state.delivery.canSend(packet.size, packet.envelope.partition, packet.envelope.sequence);
  }

  /** Writes one packet to the stream and records it; at most once, it settles when written. */
  async #send(state: KeyState<M, W>, connection: Connection<W>, packet: RoutedPacket<M>): Promise<void> {
    try {
      await connection.stream.send(this.#config.encoder.packet(packet, false));
    } catch (error) {
      this.#sendFailures++;
      throw error;
    }
    this.#recordSent(state, packet);
  }

  #recordSent(state: KeyState<M, W>, packet: RoutedPacket<M>): void {
    this.#sent++;
    const { sequence, partition } = packet.envelope;
    state.delivery.recordSent(sequence, partition, packet, packet.size);
    // Not held (at most once, unsequenced, acked while in flight, or no room): nothing will settle it later.
    if (!state.delivery.isHeld(sequence, partition)) packet.settle?.();
    else this.#deliveryChanged(state);
  }

  /** Resends what the key's previous stream left unacknowledged, in (partition, sequence) order. */
  async #replay(state: KeyState<M, W>, connection: Connection<W>): Promise<void> {
    state.replayRest = state.delivery.unackedInReplayOrder();
    await this.#resumeReplay(state, connection);
  }

  /**
   * Sends what is left of the replay while the flow allows. Where it stops (credits, window, a
   * pause, a failed send) it resumes on the next flow message or tick; meanwhile nothing newer
   * goes ahead of it.
   */
  async #resumeReplay(state: KeyState<M, W>, connection: Connection<W>): Promise<void> {
    const rest = state.replayRest;
    while (rest.length > 0) {
      const held = rest[0] as (typeof rest)[number];
      if (!state.delivery.isHeld(held.sequence, held.partition)) {
        rest.shift(); // acknowledged meanwhile
        continue;
      }
      if (!state.delivery.canSend(held.size, held.partition, held.sequence)) return;
      try {
        await connection.stream.send(this.#config.encoder.packet(held.packet, true));
      } catch {
        this.#sendFailures++;
        return;
      }
      rest.shift();
      this.#replayed++;
      state.delivery.recordSent(held.sequence, held.partition, held.packet, held.size);
    }
  }

  /** Sends buffered packets while the flow allows; records the outcome for the retry policy. */
  async #flush(state: KeyState<M, W>): Promise<void> {
    const connection = state.active;
    if (connection !== undefined && state.replayRest.length > 0) {
      await this.#resumeReplay(state, connection);
      if (state.replayRest.length > 0) return; // the replay goes first
    }
    const buffer = state.buffer;
    if (buffer === undefined || connection === undefined) return;
    let failure: unknown;
    try {
      await buffer.flush((packet) => this.#send(state, connection, packet), {
        allow: (packet) => this.#canSend(state, packet),
      });
    } catch (error) {
      failure = error ?? new Error('send failed');
    }
    buffer.recordFlushResult(failure);
    this.#signalUpstream(state, state.delivery.upstream.observe(buffer.utilization()));
    if (buffer.size === 0) {
      this.#deleteBuffer(state);
      this.#signalUpstream(state, state.delivery.upstream.drainFinished());
      this.#enter(state, 'ready', 'buffer_drained', connection.generation);
    }
  }

  /** Buffers `packet` for `reason`; false (and settled) when the buffer refused it. */
  #buffer(state: KeyState<M, W>, packet: RoutedPacket<M>, reason: BufferReason): boolean {
    let buffer = state.buffer;
    if (buffer === undefined) {
      if (this.#buffers >= this.#config.maxBuffers) {
        this.#drop(state.key, packet, 'max_buffers');
        return false;
      }
      buffer = createMessageBuffer<RoutedPacket<M>>({
        clock: this.#clock,
        ...(state.options.buffer === undefined ? {} : { config: state.options.buffer }),
        onDrop: (entry, dropReason) => {
          this.#drop(state.key, entry.packet, dropReason);
        },
      });
      state.buffer = buffer;
      this.#buffers++;
    }
    if (!buffer.retryEnabled) {
      buffer.refuse({ packet, size: packet.size, lane: packet.lane }, 'retry_disabled');
      if (buffer.size === 0) this.#deleteBuffer(state);
      return false;
    }
    const result = buffer.add({ packet, size: packet.size, lane: packet.lane });
    if (!result.added) {
      // A buffer made for a packet it refused would hold a slot of maxBuffers for nothing.
      if (buffer.size === 0) this.#deleteBuffer(state);
      return false;
    }
    this.#bufferedBy[reason]++;
    const drainTimeoutMs = state.options.drainTimeoutMs;
    if (drainTimeoutMs !== undefined && DRAIN_REASONS.has(reason)) {
      buffer.setDeadline(this.#clock.now() + drainTimeoutMs);
      this.#signalUpstream(state, state.delivery.upstream.drainStarted());
    }
    this.#signalUpstream(state, state.delivery.upstream.observe(buffer.utilization()));
    return true;
  }

  /** The buffer emptied by a drop (timeout, evicted): forget it and let the producer resume. */
  #bufferEmptied(state: KeyState<M, W>): void {
    this.#deleteBuffer(state);
    this.#signalUpstream(state, state.delivery.upstream.observe(0));
    this.#signalUpstream(state, state.delivery.upstream.drainFinished());
    if (state.active !== undefined) this.#enter(state, 'ready', 'buffer_drained', state.active.generation);
  }

  #deliveryChanged(state: KeyState<M, W>): void {
    try {
      this.#config.onDeliveryChange?.(state.key);
    } catch {
      // A checkpointer's failure is its own to count.
    }
  }

  #deleteBuffer(state: KeyState<M, W>): void {
    if (state.buffer === undefined) return;
    state.buffer = undefined;
    this.#buffers--;
  }

  #drop(key: string, packet: RoutedPacket<M>, reason: DropReason): void {
    this.#drops[reason] = (this.#drops[reason] ?? 0) + 1;
    // A story's policy settles the packet (its fate was chosen); the hub's own capacity does not:
    // its producer is then never told it was delivered, and holds it.
    if (reason !== 'max_buffers') packet.settle?.();
    try {
      this.#config.onDrop?.(key, reason);
    } catch {
      // An observer's failure must not change what happened to the packet.
    }
  }

  #signalUpstream(state: KeyState<M, W>, signal: PauseSignal | undefined): void {
    if (signal === undefined) return;
    try {
      this.#config.onUpstreamSignal?.(state.key, signal);
    } catch {
      // Same: observers do not change delivery.
    }
  }

  #enter(state: KeyState<M, W>, phase: HandoffPhase, reason: string, generation: number): void {
    if (state.phase === phase && phase !== 'cutover') return;
    state.phase = phase;
    this.#handoffs[phase]++;
    const event: HandoffEvent = { key: state.key, phase, reason, generation };
    handoffChannel.publish(event);
    try {
      this.#config.onHandoff?.(event);
    } catch {
      // Same: a callback that throws loses its own event, nothing else.
    }
  }
}

/** The buffer's limits, which the flow's credits and window default to. */
function bufferLimits(buffer: MessageBufferConfigInput | undefined): FlowBufferLimits {
  return {
    maxMessages: buffer?.maxMessages ?? defaultFlowBufferLimits.maxMessages,
    maxBytes: buffer?.maxBytes ?? defaultFlowBufferLimits.maxBytes,
  };
}

function noop(): void {}
