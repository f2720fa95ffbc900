// A connector: one step's end of HubService.Process, kept open across failures.
//
// The stream goes over gRPC (`address`) or, for a step inside the Weft cluster, over a grid
// stream (`grid`); the logic here is the same for both (transport.ts).
//
// It numbers what the step sends (per partition, for the connector's life), holds each packet
// until the hub acknowledges it and resends all it holds, in send order, on every new stream,
// marked `weft-redelivered` (the hub may have forwarded it already, and passes the marker on, so
// the step after sees the copy flagged as a possible duplicate): with the hub's own rule (a producer's packet is acknowledged only once delivered downstream)
// that makes delivery at-least-once end to end. What the step receives it acknowledges
// cumulatively per partition, as the application acks each delivery (see inbox.ts).

import { REDELIVERED_METADATA_KEY } from '../redelivered.ts';
import { ackFlow } from '../wire/ack-flow.ts';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';

import {
  type DataPacket,
  DataPacketSchema,
  type ProcessRequest,
  ProcessRequestSchema,
  type ProcessResponse,
} from '../../gen/transport/v1/hub_pb.ts';
import { FlowControlSignal, StreamEnvelopeSchema } from '../../gen/transport/v1/transport_pb.ts';
import { onAbort } from '../../internal/abort.ts';
import { Backoff } from '../../internal/backoff.ts';
import { systemClock, type Clock, type Timer } from '../../internal/clock.ts';
import { gridHubTransport } from '../grid/connector-transport.ts';
import { isHeartbeat } from '../wire/heartbeat.ts';
import { defaultConnectorConfig, verifyConnectorOptions, type HubConnectorOptions } from './config.ts';
import { ConnectorClosedError, ConnectorRefusedError, ConnectorSendQueueFullError } from './errors.ts';
import { ConnectionInbox, DeliveryMemory } from './inbox.ts';
import { grpcHubTransport } from './grpc-transport.ts';
import { Outbox, type OutboxEntry } from './outbox.ts';
import { TERMINAL_STATUSES, type CallEnd, type HubCall, type HubTransport } from './transport.ts';

export type PacketInit = MessageInitShape<typeof DataPacketSchema>;

/** One packet of the step's input. */
export interface Delivery {
  readonly packet: DataPacket;
  /** The step's own sequence for it (0 when the hub sent none: nothing to ack). */
  readonly sequence: bigint;
  readonly partition: string;
  /** Delivered before and not acknowledged (on this connection or an earlier one). */
  readonly redelivered: boolean;
  /** Marks it processed; acks go to the hub cumulatively, at most one message per tick. Idempotent. */
  ack(): void;
}

export interface SendOptions {
  /** Default "" (unpartitioned). */
  readonly partition?: string;
  /** Aborts the wait for room or RESUME; a packet already sequenced is still delivered. */
  readonly signal?: AbortSignal;
}

export interface SendResult {
  readonly partition: string;
  readonly sequence: bigint;
}

export interface HubConnectorStats {
  /** Packets sequenced by `send`. */
  readonly sent: number;
  /** Writes of held packets to a new stream after a reconnect. */
  readonly resent: number;
  /** Packets the hub acknowledged. */
  readonly acked: number;
  /** Packets held until the hub acknowledges them. */
  readonly unacked: number;
  /** `send` calls waiting for room or RESUME. */
  readonly waitingSends: number;
  /** `send` calls refused because maxWaitingSends were waiting. */
  readonly refusedSends: number;
  readonly received: number;
  readonly redelivered: number;
  /** Received deliveries not yet acked by the application (current connection). */
  readonly unackedReceived: number;
  /** Acks of deliveries from an ended connection (ignored: the hub redelivers them). */
  readonly staleAcks: number;
  readonly ackMessagesSent: number;
  readonly heartbeatsReceived: number;
  /** Streams opened after the first. */
  readonly reconnects: number;
  /** The hub asked this producer to stop sending and has not yet resumed it. */
  readonly paused: boolean;
  readonly pauses: number;
  readonly connected: boolean;
}

export interface HubConnector {
  /** Sequences `packet` and resolves once it is written to the hub (waits for room and RESUME). */
  send(packet: PacketInit, options?: SendOptions): Promise<SendResult>;
  /** The step's input, in arrival order. Ends on `close()`; throws the error that ended the connector. */
  received(): AsyncIterableIterator<Delivery>;
  /** Resolves once the hub has acknowledged every packet sent so far (or rejects if the connector ends). */
  drained(options?: { signal?: AbortSignal }): Promise<void>;
  /** Ends the current stream and opens a new one now, optionally as a new generation. */
  reconnect(options?: { generation?: number }): void;
  /** Half-closes the stream, sends pending acks, and ends. Packets still unacked are not resent. */
  close(): Promise<void>;
  /** Resolves when closed by `close()`, rejects with the terminal error otherwise. */
  readonly closed: Promise<void>;
  stats(): HubConnectorStats;
}

export const HubConnector = {
  /**
   * Opens the stream, over gRPC to `address` or over the grid to the hub's node (`grid`);
   * registration failures arrive later, on `closed`, `send` and `received`.
   */
  connect(options: HubConnectorOptions): Promise<HubConnector> {
    verifyConnectorOptions(options);
    return Promise.resolve(new HubConnectorImpl(options));
  },
};

interface Connection {
  readonly call: HubCall;
  readonly inbox: ConnectionInbox;
  ended: boolean;
  readingPaused: boolean;
  ackScheduled: boolean;
  onEnd: (() => void) | undefined;
}

interface WaitingSend {
  readonly init: PacketInit;
  readonly partition: string;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (error: unknown) => void;
  stopListening: () => void;
}

type Pull = { resolve: (result: IteratorResult<Delivery>) => void; reject: (error: unknown) => void };

class HubConnectorImpl implements HubConnector {
  readonly #options: HubConnectorOptions;
  readonly #clock: Clock;
  readonly #transport: HubTransport;
  readonly #backoff: Backoff;
  readonly #maxUnacked: number;
  readonly #maxUnackedReceived: number;
  readonly #maxWaitingSends: number;
  readonly #grantCredits: boolean;
  readonly #outbox: Outbox;
  readonly #memory: DeliveryMemory;
  readonly #waiting: WaitingSend[] = [];
  readonly #deliveries: Delivery[] = [];
  readonly #pulls: Pull[] = [];
  readonly #drainWaiters = new Set<() => void>();
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  #rejectClosed!: (error: unknown) => void;
  #generation: number | undefined;
  #connection: Connection | undefined;
  #retryTimer: Timer | undefined;
  #ending = false;
  #failure: Error | undefined;
  #paused = false;
  #opened = 0;
  readonly #counts = {
    sent: 0,
    resent: 0,
    acked: 0,
    refusedSends: 0,
    received: 0,
    redelivered: 0,
    staleAcks: 0,
    ackMessagesSent: 0,
    heartbeatsReceived: 0,
    pauses: 0,
  };

  constructor(options: HubConnectorOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#generation = options.generation;
    this.#maxUnacked = options.maxUnacked ?? defaultConnectorConfig.maxUnacked;
    this.#maxUnackedReceived = options.maxUnackedReceived ?? defaultConnectorConfig.maxUnackedReceived;
    this.#maxWaitingSends = options.maxWaitingSends ?? defaultConnectorConfig.maxWaitingSends;
    this.#grantCredits = options.grantCredits ?? defaultConnectorConfig.grantCredits;
    const maxPartitions = options.maxPartitions ?? defaultConnectorConfig.maxPartitions;
    this.#outbox = new Outbox(maxPartitions);
    this.#memory = new DeliveryMemory(maxPartitions);
    const reconnect = options.reconnect ?? defaultConnectorConfig.reconnect;
    this.#backoff = new Backoff(
      {
        kind: 'exponential',
        baseDelayMs: reconnect.initialDelayMs,
        maxDelayMs: reconnect.maxDelayMs,
        jitter: 0.2,
      },
      options.random,
    );
    this.#transport =
      options.grid === undefined
        ? grpcHubTransport({ address: options.address ?? '', credentials: options.credentials, reconnect })
        : gridHubTransport(options.grid);
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Observed here so a failure nobody awaits is not an unhandled rejection.
    this.closed.catch(() => undefined);
    this.#open();
  }

  send(packet: PacketInit, options: SendOptions = {}): Promise<SendResult> {
    const stopped = this.#stoppedError();
    if (stopped !== undefined) return Promise.reject(stopped);
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#waiting.length >= this.#maxWaitingSends) {
      this.#counts.refusedSends++;
      return Promise.reject(new ConnectorSendQueueFullError(this.#maxWaitingSends));
    }
    return new Promise<SendResult>((resolve, reject) => {
      const waiting: WaitingSend = {
        init: packet,
        partition: options.partition ?? '',
        resolve,
        reject,
        stopListening: () => undefined,
      };
      this.#waiting.push(waiting);
      waiting.stopListening = onAbort(signal, (reason) => {
        const index = this.#waiting.indexOf(waiting);
        if (index < 0) return;
        this.#waiting.splice(index, 1);
        reject(reason);
      });
      this.#pump();
    });
  }

  received(): AsyncIterableIterator<Delivery> {
    const iterator: AsyncIterableIterator<Delivery> = {
      next: () => this.#pull(),
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  drained(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#outbox.size === 0 && this.#waiting.length === 0) return Promise.resolve();
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        stopListening();
        this.#drainWaiters.delete(done);
        if (this.#failure !== undefined) reject(this.#failure);
        else resolve();
      };
      const stopListening = onAbort(signal, (reason) => {
        this.#drainWaiters.delete(done);
        reject(reason);
      });
      this.#drainWaiters.add(done);
    });
  }

  reconnect(options: { generation?: number } = {}): void {
    if (this.#stoppedError() !== undefined) return;
    if (options.generation !== undefined) {
      verifyConnectorOptions({ ...this.#options, generation: options.generation });
      this.#generation = options.generation;
    }
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined) {
      connection.ended = true;
      connection.call.cancel();
    }
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#open();
  }

  async close(): Promise<void> {
    if (this.#ending) return this.closed.catch(() => undefined);
    this.#ending = true;
    this.#retryTimer?.cancel();
    const connection = this.#connection;
    if (connection !== undefined && !connection.ended) {
      this.#flushAcks(connection);
      const ended = new Promise<void>((resolve) => (connection.onEnd = resolve));
      connection.call.end();
      // The hub ends its side once it has read ours; do not wait for a hub that never does.
      const timer = this.#clock.setTimeout(() => {
        connection.call.cancel();
      }, this.#options.closeGraceMs ?? defaultConnectorConfig.closeGraceMs);
      await ended;
      timer.cancel();
    }
    this.#connection = undefined;
    this.#stop(new ConnectorClosedError());
    this.#resolveClosed();
  }

  stats(): HubConnectorStats {
    return {
      ...this.#counts,
      unacked: this.#outbox.size,
      waitingSends: this.#waiting.length,
      unackedReceived: this.#connection?.inbox.outstanding ?? 0,
      reconnects: Math.max(0, this.#opened - 1),
      paused: this.#paused,
      connected: this.#connection !== undefined,
    };
  }

  #stoppedError(): Error | undefined {
    if (this.#failure !== undefined) return this.#failure;
    if (this.#ending) return new ConnectorClosedError();
    return undefined;
  }

  #open(): void {
    this.#retryTimer = undefined;
    // The transport calls back only after `open` returns, so `connection` is set by then.
    const connection: Connection = {
      call: this.#transport.open(
        {
          namespace: this.#options.namespace,
          run: this.#options.run,
          step: this.#options.step,
          generation: this.#generation,
          story: this.#options.story,
        },
        {
          onResponse: (response) => {
            this.#onResponse(connection, response);
          },
          onEnd: (end) => {
            this.#ended(connection, end);
          },
        },
      ),
      inbox: new ConnectionInbox(this.#memory),
      ended: false,
      readingPaused: false,
      ackScheduled: false,
      onEnd: undefined,
    };
    this.#opened++;
    this.#connection = connection;
    // A new stream starts unpaused: the hub signals changes only, and a RESUME sent while this
    // connector was away reached nobody.
    this.#paused = false;
    for (const entry of this.#outbox.inSendOrder()) {
      this.#counts.resent++;
      this.#write(connection, entry, true);
    }
    this.#pump();
  }

  #ended(connection: Connection, end: CallEnd): void {
    connection.ended = true;
    connection.onEnd?.();
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    if (this.#ending) return;
    if (TERMINAL_STATUSES.has(end.code)) {
      const error = new ConnectorRefusedError(status[end.code], end.details);
      this.#stop(error);
      this.#rejectClosed(error);
      return;
    }
    this.#retryTimer = this.#clock.setTimeout(
      () => {
        if (this.#stoppedError() === undefined && this.#connection === undefined) this.#open();
      },
      this.#backoff.next(),
      { keepAlive: true },
    );
  }

  #onResponse(connection: Connection, response: ProcessResponse): void {
    if (this.#connection !== connection) return;
    this.#backoff.reset();
    const flow = response.flow;
    if (flow !== undefined) {
      let acked = 0;
      if (flow.ack > 0n) acked += this.#outbox.acknowledge('', flow.ack);
      for (const { partition, ack } of flow.partitionAcks) acked += this.#outbox.acknowledge(partition, ack);
      this.#counts.acked += acked;
      if (flow.signal === FlowControlSignal.PAUSE && !this.#paused) {
        this.#paused = true;
        this.#counts.pauses++;
      } else if (flow.signal === FlowControlSignal.RESUME) {
        this.#paused = false;
      }
      this.#pump();
    }
    const packet = response.packet;
    if (packet === undefined) return;
    if (isHeartbeat(packet)) {
      this.#counts.heartbeatsReceived++;
      return;
    }
    const partition = packet.envelope?.partition ?? '';
    const sequence = packet.envelope?.sequence ?? 0n;
    const received = connection.inbox.receive(partition, sequence);
    // The hub marks what it replays; this connector's own memory covers what it saw itself.
    const redelivered = received.redelivered || packet.metadata[REDELIVERED_METADATA_KEY] === 'true';
    this.#counts.received++;
    if (redelivered) this.#counts.redelivered++;
    const delivery: Delivery = {
      packet,
      sequence,
      partition,
      redelivered,
      ack: () => {
        if (this.#connection !== connection) {
          this.#counts.staleAcks++;
          return;
        }
        if (received.ack()) this.#scheduleAcks(connection);
      },
    };
    if (connection.inbox.outstanding >= this.#maxUnackedReceived && !connection.readingPaused) {
      connection.readingPaused = true;
      connection.call.pause();
    }
    const pull = this.#pulls.shift();
    if (pull !== undefined) pull.resolve({ done: false, value: delivery });
    else this.#deliveries.push(delivery);
  }

  #pull(): Promise<IteratorResult<Delivery>> {
    const next = this.#deliveries.shift();
    if (next !== undefined) return Promise.resolve({ done: false, value: next });
    if (this.#failure !== undefined && !(this.#failure instanceof ConnectorClosedError)) {
      return Promise.reject(this.#failure);
    }
    if (this.#failure !== undefined) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.#pulls.push({ resolve, reject }));
  }

  /** Sequences waiting sends while the hub has room and has not paused this producer. */
  #pump(): void {
    while (this.#waiting.length > 0 && !this.#paused && this.#outbox.size < this.#maxUnacked) {
      const waiting = this.#waiting.shift() as WaitingSend;
      waiting.stopListening();
      const { partition } = waiting;
      const entry = this.#outbox.add(partition, (sequence) => packetOf(waiting.init, partition, sequence));
      entry.written = (error) => {
        if (error === undefined) waiting.resolve({ partition, sequence: entry.sequence });
        else waiting.reject(error);
      };
      this.#counts.sent++;
      const connection = this.#connection;
      if (connection !== undefined && !connection.ended) this.#write(connection, entry);
    }
    if (this.#outbox.size === 0 && this.#waiting.length === 0) {
      for (const done of [...this.#drainWaiters]) done();
    }
  }

  #write(connection: Connection, entry: OutboxEntry, resend = false): void {
    // A write that fails with its stream is not retried here: the entry is still held and the
    // next stream resends it.
    // A plain message object: `create` would copy the packet's fields again on every write.
    const packet = resend ? markedResent(entry.packet) : entry.packet;
    const request: ProcessRequest = { $typeName: 'transport.v1.ProcessRequest', packet };
    connection.call.write(request, () => {
      const written = entry.written;
      entry.written = undefined;
      written?.();
    });
  }

  #scheduleAcks(connection: Connection): void {
    if (connection.readingPaused && connection.inbox.outstanding < this.#maxUnackedReceived) {
      connection.readingPaused = false;
      connection.call.resume();
    }
    if (connection.ackScheduled) return;
    connection.ackScheduled = true;
    // After this turn's I/O: deliveries are acked one microtask chain each, so a microtask would
    // send an ack message per delivery.
    setImmediate(() => {
      connection.ackScheduled = false;
      this.#flushAcks(connection);
    });
  }

  #flushAcks(connection: Connection): void {
    if (connection.ended || this.#connection !== connection) return;
    const { acks, count } = connection.inbox.takeAcks();
    if (acks.size === 0) return;
    const flow = ackFlow(acks, this.#grantCredits ? { creditsMessages: count } : {});
    this.#counts.ackMessagesSent++;
    connection.call.write(create(ProcessRequestSchema, { flow }));
  }

  /** Ends everything: waiting sends, unwritten packets, readers and drain waiters get `error`. */
  #stop(error: Error): void {
    this.#failure = error;
    this.#ending = true;
    this.#retryTimer?.cancel();
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined && !connection.ended) connection.call.cancel();
    for (const waiting of this.#waiting.splice(0)) {
      waiting.stopListening();
      waiting.reject(error);
    }
    for (const entry of this.#outbox.inSendOrder()) {
      const written = entry.written;
      entry.written = undefined;
      written?.(error);
    }
    const closedCleanly = error instanceof ConnectorClosedError;
    for (const pull of this.#pulls.splice(0)) {
      if (closedCleanly) pull.resolve({ done: true, value: undefined });
      else pull.reject(error);
    }
    for (const done of [...this.#drainWaiters]) done();
    this.#transport.close();
  }
}

/** A held packet written again: the stream that ended may have carried it to the hub already. */
function markedResent(packet: DataPacket): DataPacket {
  return { ...packet, metadata: { ...packet.metadata, [REDELIVERED_METADATA_KEY]: 'true' } };
}

/** The packet as sent: the caller's fields, with this connector's envelope sequence and partition. */
function packetOf(init: PacketInit, partition: string, sequence: bigint): DataPacket {
  const packet = create(DataPacketSchema, init);
  return {
    ...packet,
    // The caller's stream id is kept; chunking fields are not the SDK's to number.
    envelope: create(StreamEnvelopeSchema, {
      streamId: packet.envelope?.streamId ?? '',
      sequence,
      partition,
    }),
  };
}
