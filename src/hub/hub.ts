// The hub: carries the packets each step of a story run produces to the steps after it.
//
// A connector (any language) opens `HubService.Process`, a bidirectional gRPC stream, naming its
// story run and step in the call's metadata. From then on that stream carries both directions:
// what the step produces comes in (routed to each downstream step's stream key, buffered when that
// step is not connected or cannot take more), and the step's input goes out, with the flow
// messages (acks, credits, PAUSE/RESUME) of each side.
//
// A producer's packet that carries a sequence is acknowledged to it only once every delivery of
// it has settled downstream (see ack-ledger.ts), so what the hub acknowledges is never lost by a
// hub that crashes: the producer still holds it.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Metadata, Server, ServerCredentials, type ServerDuplexStream, status } from '@grpc/grpc-js';

import {
  DataPacketSchema,
  type DataPacket,
  type ProcessRequest,
  type ProcessResponse,
  ProcessResponseSchema,
} from '../gen/transport/v1/hub_pb.ts';
import { FlowControlSignal, FlowControlSchema } from '../gen/transport/v1/transport_pb.ts';
import { type Clock, systemClock, type Timer } from '../internal/clock.ts';
import { ConfigError, errorMessage } from '../internal/errors.ts';
import { type Logger, logSafely } from '../internal/log-safely.ts';
import { AckLedger } from './ack-ledger.ts';
import {
  type BlobStore,
  materializePacket,
  offloadedRefsOf,
  offloadPacket,
  stripOffloadMarkers,
} from './offload/index.ts';
import { REDELIVERED_METADATA_KEY } from './redelivered.ts';
import { ackFlow } from './wire/ack-flow.ts';
import {
  Checkpointer,
  type CheckpointerConfig,
  type CheckpointerStats,
  type CheckpointSnapshot,
  type CheckpointStore,
} from './checkpoint/index.ts';
import type { Lane } from './buffer/index.ts';
import type { DeliveryCheckpoint, FlowUpdate, PauseSignal } from './flow/index.ts';
import { OutboundStream, type OutboundTransport } from './outbound-stream.ts';
import { streamOptionsOf } from './step-options.ts';
import type { OffloadPolicy, Story } from './story/index.ts';
import {
  StreamManager,
  type Connection,
  type RoutedPacket,
  type StreamManagerStats,
  type StreamOptions,
} from './stream-manager.ts';
import { grpcStatusOf } from './wire/errors.ts';
import { isHeartbeat, newHeartbeatPacket } from './wire/heartbeat.ts';
import { ChunkReassembler } from './wire/reassembly.ts';
import { parseRegistration, type Registration } from './wire/registration.ts';
import {
  encodedRequestSizes,
  hubChannelOptions,
  hubServiceDefinition,
  type IncomingRequest,
  UndecodableRequest,
} from './wire/service.ts';
import { checkProcessRequest } from './wire/validate.ts';

/** Metadata naming the story a run follows, for a run the hub was not told of with `startRun`. */
export const STORY_NAME_KEY = 'story-name';

export interface HubOptions {
  /** Stories runs may follow; more with `addStory`. */
  readonly stories?: readonly Story[];
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Background work (idle buffers, retries, heartbeats) runs this often. Default 10 s. */
  readonly tickMs?: number;
  /** Story runs known at once. Default 10,000. */
  readonly maxRuns?: number;
  /** Packets of one producer accepted and not yet acknowledged. Default 10,000. */
  readonly maxPendingPerProducer?: number;
  /** Connector streams at once. Default 2000. */
  readonly maxActiveStreams?: number;
  /** Buffers at once. Default 1000. */
  readonly maxBuffers?: number;
  /**
   * Where packets sent and not yet acknowledged are checkpointed, so a restarted hub replays
   * them (`LmdbCheckpointStore.open({ path })`); open the hub with `Hub.open` to load them. The
   * caller closes the store after the hub.
   */
  readonly checkpoints?: CheckpointStore;
  /**
   * Where payloads over a step's `offload.thresholdBytes` are kept while they travel as references
   * (`FsBlobStore.open({ directory })`). Without one, everything travels inline.
   */
  readonly blobs?: BlobStore;
  /** How often and how much is checkpointed (defaults: every 1 s, 1000 packets a key, 24 h retention). */
  readonly checkpoint?: Partial<CheckpointerConfig>;
}

export interface HubStats {
  readonly streams: StreamManagerStats;
  readonly runs: number;
  readonly connections: number;
  /** Calls ended with an error status, by gRPC status name. */
  readonly refused: Readonly<Record<string, number>>;
  readonly packetsIn: number;
  /** Connector streams that ended because the connector went away (cancelled, killed). */
  readonly disconnects: number;
  readonly heartbeatsIn: number;
  /** Packets from a step with no downstream step (a sink): acknowledged, not routed. */
  readonly sunk: number;
  readonly acksSent: number;
  readonly signalsSent: number;
  /** Parts written to the blob store, and offloads the store refused (sent inline). */
  readonly offloaded: number;
  readonly offloadFailures: number;
  /** Packets materialized for `inject` steps, and those that could not be (sent by reference). */
  readonly materialized: number;
  readonly materializeFailures: number;
}

/** One `Process` call as grpc-js hands it to the hub's handler. */
export type HubCall = ServerDuplexStream<IncomingRequest, ProcessResponse>;

/**
 * One connector's stream, whatever carries it (a gRPC call, a grid stream): its registration
 * metadata, what it sends, where the hub writes to it, and how the hub ends it with a status.
 */
export interface ConnectorSession {
  readonly metadata: Metadata;
  readonly requests: AsyncIterable<IncomingRequest>;
  readonly transport: OutboundTransport<ProcessResponse>;
  /** Ends the stream with a gRPC status (the grid carries the same codes). */
  fail(code: status, details: string): void;
}

/** One connected connector: its registration, its outbound stream and its acks to send. */
interface Connector {
  readonly registration: Registration;
  readonly story: Story;
  readonly connection: Connection<ProcessResponse>;
  readonly ledger: AckLedger;
  ackScheduled: boolean;
  /** Unique per connection: scopes its chunk reassembly. */
  readonly sender: string;
  /** Its step's offload policy (what it produces over the threshold goes to the blob store). */
  readonly offload: OffloadPolicy;
  /** Where its packets go: each step after it, resolved once (a story never changes). */
  readonly routes: readonly Route[];
}

/** One step a connector's packets go to: its stream key and the edge's policy. */
interface Route {
  readonly key: string;
  readonly options: StreamOptions;
  /** The step wants offloaded bytes back inline. */
  readonly inject: boolean;
}

// A materialized packet must still fit a gRPC message.
const MAX_MATERIALIZED_BYTES = 10 * 1024 * 1024;

const defaults = {
  tickMs: 10_000,
  maxRuns: 10_000,
  maxPendingPerProducer: 10_000,
} as const;

export class Hub {
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #stories = new Map<string, Story>();
  /** `namespace/run` → the story it follows. */
  readonly #runs = new Map<string, Story>();
  readonly #connectors = new Map<string, Connector>();
  readonly #streams: StreamManager<DataPacket, ProcessResponse>;
  readonly #reassembler: ChunkReassembler;
  readonly #maxRuns: number;
  readonly #maxPendingPerProducer: number;
  readonly #tick: Timer;
  readonly #checkpointer: Checkpointer | undefined;
  /** What checkpoints left per key, taken when the key's state is first created. */
  readonly #restored = new Map<string, DeliveryCheckpoint<RoutedPacket<DataPacket>>>();
  #server: Server | undefined;
  #closed = false;
  readonly #refused: Record<string, number> = {};
  #packetsIn = 0;
  #connectionIds = 0;
  #disconnects = 0;
  #offloaded = 0;
  #offloadFailures = 0;
  #materialized = 0;
  #materializeFailures = 0;
  readonly #blobs: BlobStore | undefined;
  #heartbeatsIn = 0;
  #sunk = 0;
  #acksSent = 0;
  #signalsSent = 0;

  constructor(options: HubOptions = {}) {
    const tickMs = options.tickMs ?? defaults.tickMs;
    this.#maxRuns = options.maxRuns ?? defaults.maxRuns;
    this.#maxPendingPerProducer = options.maxPendingPerProducer ?? defaults.maxPendingPerProducer;
    for (const [field, value] of Object.entries({
      tickMs,
      maxRuns: this.#maxRuns,
      maxPendingPerProducer: this.#maxPendingPerProducer,
    })) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConfigError(`hub.${field}`, `must be a positive integer, got ${String(value)}`);
      }
    }
    this.#clock = options.clock ?? systemClock;
    this.#blobs = options.blobs;
    this.#logger = options.logger;
    for (const story of options.stories ?? []) this.addStory(story);
    this.#reassembler = new ChunkReassembler(this.#clock);
    this.#streams = new StreamManager<DataPacket, ProcessResponse>({
      clock: this.#clock,
      encoder: {
        packet: (routed, redelivery) => encodeRouted(routed, redelivery),
        heartbeat: () => create(ProcessResponseSchema, { packet: newHeartbeatPacket() }),
      },
      ...(options.maxActiveStreams === undefined ? {} : { maxActiveStreams: options.maxActiveStreams }),
      ...(options.maxBuffers === undefined ? {} : { maxBuffers: options.maxBuffers }),
      onUpstreamSignal: (key, signal) => {
        this.#signalProducers(key, signal);
      },
      onDeliveryChange: (key) => {
        this.#checkpointer?.markDirty(key);
      },
      restore: (key) => {
        const restored = this.#restored.get(key);
        this.#restored.delete(key);
        return restored;
      },
    });
    this.#checkpointer =
      options.checkpoints === undefined
        ? undefined
        : new Checkpointer({
            ...options.checkpoint,
            store: options.checkpoints,
            clock: this.#clock,
            snapshot: (key) => this.#snapshot(key),
          });
    this.#tick = this.#clock.setInterval(() => {
      this.#reassembler.sweep();
      this.#streams.tick().catch((error: unknown) => {
        logSafely(() => this.#logger?.error('hub: background tick failed', { error: errorMessage(error) }));
      });
    }, tickMs);
  }

  /**
   * A hub that first loads what its checkpoints hold: each stream key's unacknowledged packets
   * are replayed to that step's next connector before anything new.
   */
  static async open(options: HubOptions = {}): Promise<Hub> {
    const hub = new Hub(options);
    try {
      await hub.#loadCheckpoints();
    } catch (error) {
      await hub.close();
      throw error;
    }
    return hub;
  }

  /** Makes `story` available to runs, by its name (a later story of the same name replaces it). */
  addStory(story: Story): void {
    this.#stories.set(story.name, story);
  }

  /** The names of the stories the hub knows. */
  storyNames(): string[] {
    return [...this.#stories.keys()];
  }

  /** Declares that run `run` in `namespace` follows the story named `storyName`. */
  startRun(namespace: string, run: string, storyName: string): void {
    const story = this.#stories.get(storyName);
    if (story === undefined) throw new ConfigError('storyName', `no story named ${storyName}`);
    const key = `${namespace}/${run}`;
    if (!this.#runs.has(key) && this.#runs.size >= this.#maxRuns) {
      throw new ConfigError('hub.maxRuns', `already ${this.#maxRuns} runs`);
    }
    this.#runs.set(key, story);
  }

  /** The HubService implementation, for a gRPC server of the caller's: `server.addService(...hub.service)`. */
  get service(): [typeof hubServiceDefinition, { process: (call: HubCall) => void }] {
    return [
      hubServiceDefinition,
      {
        process: (call: HubCall) => {
          const session = sessionOf(call);
          // Whatever fails in serving one connector ends that connector's call, never the process.
          this.accept(session).catch((error: unknown) => {
            this.#endWithError(session, error);
          });
        },
      },
    ];
  }

  /** Serves HubService on a gRPC server of its own; resolves with the bound port. */
  async listen(options: { port: number; host?: string; credentials?: ServerCredentials }): Promise<number> {
    if (this.#server !== undefined) throw new ConfigError('hub', 'already listening');
    const server = new Server(hubChannelOptions);
    server.addService(...this.service);
    const address = `${options.host ?? '127.0.0.1'}:${options.port}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, options.credentials ?? ServerCredentials.createInsecure(), (error, bound) => {
        if (error === null) resolve(bound);
        else reject(error);
      });
    });
    this.#server = server;
    return port;
  }

  stats(): HubStats {
    return {
      streams: this.#streams.stats(),
      runs: this.#runs.size,
      connections: this.#connectors.size,
      refused: { ...this.#refused },
      packetsIn: this.#packetsIn,
      disconnects: this.#disconnects,
      heartbeatsIn: this.#heartbeatsIn,
      sunk: this.#sunk,
      acksSent: this.#acksSent,
      signalsSent: this.#signalsSent,
      offloaded: this.#offloaded,
      offloadFailures: this.#offloadFailures,
      materialized: this.#materialized,
      materializeFailures: this.#materializeFailures,
    };
  }

  /** The delivery state of a stream key (`namespace/run/step`): sequences, acks, unacked packets. */
  delivery(key: string): ReturnType<StreamManager<DataPacket, ProcessResponse>['delivery']> {
    return this.#streams.delivery(key);
  }

  /** The checkpointer's counters, when the hub has a checkpoint store. */
  checkpointStats(): CheckpointerStats | undefined {
    return this.#checkpointer?.stats();
  }

  /** Ends every connector stream and stops serving. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#tick.cancel();
    await this.#checkpointer?.close();
    for (const connector of this.#connectors.values()) connector.connection.stream.close();
    const server = this.#server;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      });
    }
  }

  /**
   * Serves one connector until its stream ends: registration, then its requests. The gRPC service
   * calls this for each call; other transports (grid streams) call it with their own session.
   */
  async accept(call: ConnectorSession): Promise<void> {
    const admitted = this.#admit(call);
    if (admitted === undefined) return;
    const { registration, story } = admitted;
    const outbound = new OutboundStream<ProcessResponse>(call.transport, { clock: this.#clock });
    const options = streamOptionsOf(story.policyOf(registration.currentStepId));
    const added = await this.#streams.addStream(
      registration.key,
      outbound,
      registration.connectorGeneration ?? 0,
      options,
    );
    if (!added.added) {
      const superseded = added.reason === 'superseded';
      this.#endWith(
        call,
        superseded ? status.FAILED_PRECONDITION : status.RESOURCE_EXHAUSTED,
        superseded
          ? `generation ${registration.connectorGeneration ?? 0} is older than the active ${added.activeGeneration ?? 0}`
          : 'the hub serves its limit of connector streams',
      );
      return;
    }
    const connector: Connector = {
      registration,
      story,
      connection: added.connection,
      ledger: new AckLedger(this.#maxPendingPerProducer),
      ackScheduled: false,
      sender: `${registration.key}#${++this.#connectionIds}`,
      offload: story.policyOf(registration.currentStepId).offload,
      routes: story.downstreamOf(registration.currentStepId).map((step) => {
        const edge = story.edgePolicy(registration.currentStepId, step);
        return {
          key: `${registration.storyRunNamespace}/${registration.storyRunName}/${step}`,
          options: streamOptionsOf(edge),
          inject: edge.offload.policy === 'inject',
        };
      }),
    };
    // A producer waiting for room must not wait for ever once its stream is gone.
    call.transport.once('close', () => {
      connector.ledger.close();
    });
    this.#connectors.set(registration.key, connector);
    this.#tellPauseState(connector);
    try {
      for await (const request of call.requests) {
        if (request instanceof UndecodableRequest) {
          this.#endWithError(call, request.error);
          return;
        }
        const check = checkProcessRequest(request);
        if (!check.ok) {
          this.#endWithError(call, check.problem);
          return;
        }
        await this.#handle(connector, request);
      }
    } catch (error) {
      // A connector that went away (killed, cancelled) is an end, not a failure of the hub's.
      if (isDisconnect(error)) this.#disconnects++;
      // A reassembly refusal or a broken call ends this connector's stream, nobody else's.
      else this.#endWithError(call, error);
    } finally {
      if (this.#connectors.get(registration.key) === connector) this.#connectors.delete(registration.key);
      connector.ledger.close();
      this.#reassembler.discardSender(connector.sender);
      await this.#streams.removeStream(connector.connection);
    }
  }

  /** Registration and story lookup; ends the call with a status and returns undefined on failure. */
  #admit(call: ConnectorSession): { registration: Registration; story: Story } | undefined {
    if (this.#closed) {
      this.#endWith(call, status.UNAVAILABLE, 'the hub is closing');
      return undefined;
    }
    const parsed = parseRegistration(call.metadata);
    if (!parsed.ok) {
      this.#endWithError(call, parsed.problem);
      return undefined;
    }
    const { registration } = parsed;
    const story = this.#storyOf(registration, call.metadata);
    if (story === undefined) {
      this.#endWith(
        call,
        status.NOT_FOUND,
        `story run ${registration.storyRunNamespace}/${registration.storyRunName} is not known: start it, or name its story in "${STORY_NAME_KEY}"`,
      );
      return undefined;
    }
    if (!story.hasStep(registration.currentStepId)) {
      this.#endWith(call, status.NOT_FOUND, `story ${story.name} has no step ${registration.currentStepId}`);
      return undefined;
    }
    return { registration, story };
  }

  #storyOf(registration: Registration, metadata: Metadata): Story | undefined {
    const runKey = `${registration.storyRunNamespace}/${registration.storyRunName}`;
    const known = this.#runs.get(runKey);
    if (known !== undefined) return known;
    const named = metadata.get(STORY_NAME_KEY)[0];
    if (typeof named !== 'string') return undefined;
    const story = this.#stories.get(named);
    if (story === undefined || this.#runs.size >= this.#maxRuns) return undefined;
    this.#runs.set(runKey, story);
    return story;
  }

  /** One request: its flow first (as the reference hub), then its packet. */
  async #handle(connector: Connector, request: ProcessRequest): Promise<void> {
    const { key } = connector.registration;
    // A connector replaced by a newer one may still be sending: its flow is no longer the key's.
    if (request.flow !== undefined && this.#streams.isCurrent(connector.connection)) {
      await this.#streams.applyFlow(key, flowUpdateOf(request.flow));
    }
    const packet = request.packet;
    if (packet === undefined) return;
    if (isHeartbeat(packet)) {
      this.#heartbeatsIn++;
      return;
    }
    const result = this.#reassembler.add(packet, connector.sender);
    if (!result.complete) return;
    this.#packetsIn++;
    // A packet that came whole was measured as it was decoded (its request's size, which also
    // counts the request's few bytes of framing); a reassembled one is measured here.
    const size = result.packet === packet ? encodedRequestSizes.get(request) : undefined;
    await this.#route(connector, result.packet, size);
  }

  /** Sends a producer's packet to every step after it, and acknowledges it once all have settled. */
  async #route(connector: Connector, packet: DataPacket, measured: number | undefined): Promise<void> {
    const { routes: downstream, offload } = connector;
    const envelope = packet.envelope;
    const sequence = envelope?.sequence ?? 0n;
    const partition = envelope?.partition ?? '';
    // A producer past its window of unacknowledged packets waits here: the hub stops reading
    // its stream (gRPC's flow control then holds the producer) rather than lose track of a packet.
    if (sequence > 0n && !connector.ledger.hasRoom) await connector.ledger.waitForRoom();
    if (connector.ledger.closed) return;
    const ticket =
      sequence > 0n ? connector.ledger.accept(partition, sequence, downstream.length) : undefined;
    if (downstream.length === 0) {
      this.#sunk++;
      this.#scheduleAcks(connector);
      return;
    }
    // Without a blob store or a threshold nothing is offloaded: no promise per packet for it.
    const outgoing =
      this.#blobs === undefined || offload.thresholdBytes === 0
        ? stripOffloadMarkers(packet)
        : await this.#offload(offload, packet);
    const refs = offloadedRefsOf(outgoing);
    const size =
      outgoing === packet && measured !== undefined
        ? measured
        : toBinary(DataPacketSchema, outgoing).byteLength;
    const lane = laneOf(outgoing);
    // Each delivery settles once; when the last has, the producer's ack may advance and the
    // packet's offloaded blobs are no longer needed.
    let unsettled = downstream.length;
    const settle = (): void => {
      if (ticket !== undefined) {
        connector.ledger.settle(ticket);
        this.#scheduleAcks(connector);
      }
      unsettled--;
      if (unsettled === 0) this.#releaseBlobs(refs);
    };
    for (const route of downstream) {
      const message = refs.length > 0 && route.inject ? await this.#materialize(outgoing) : outgoing;
      const routed: RoutedPacket<DataPacket> = {
        message,
        size: message === outgoing ? size : toBinary(DataPacketSchema, message).byteLength,
        lane,
        envelope: { streamId: '', sequence: 0n, partition },
        settle,
      };
      await this.#streams.sendOrBuffer(route.key, routed, route.options);
    }
  }

  /**
   * The packet as it travels: a connector's own offload markers are removed (a reference it
   * names is not its to give), then bytes over the producing step's threshold go to the blob
   * store. A store that refuses (full) leaves the packet inline, counted.
   */
  async #offload(policy: OffloadPolicy, packet: DataPacket): Promise<DataPacket> {
    const inbound = stripOffloadMarkers(packet);
    const blobs = this.#blobs;
    if (blobs === undefined || policy.thresholdBytes === 0) return inbound;
    try {
      const result = await offloadPacket(inbound, { store: blobs, thresholdBytes: policy.thresholdBytes });
      this.#offloaded += result.offloaded.length;
      return result.packet;
    } catch (error) {
      this.#offloadFailures++;
      logSafely(() =>
        this.#logger?.warn('hub: offload failed; the packet travels inline', { error: errorMessage(error) }),
      );
      return inbound;
    }
  }

  /** The packet with its offloaded bytes back inline, for a step whose policy is `inject`. */
  async #materialize(packet: DataPacket): Promise<DataPacket> {
    const blobs = this.#blobs;
    if (blobs === undefined) return packet;
    try {
      const result = await materializePacket(packet, { store: blobs, maxBytes: MAX_MATERIALIZED_BYTES });
      this.#materialized++;
      return result.packet;
    } catch (error) {
      // Delivered by reference rather than not at all; the step sees the markers.
      this.#materializeFailures++;
      logSafely(() =>
        this.#logger?.warn('hub: materialize failed; delivered by reference', { error: errorMessage(error) }),
      );
      return packet;
    }
  }

  #releaseBlobs(refs: readonly string[]): void {
    const blobs = this.#blobs;
    if (blobs === undefined) return;
    for (const ref of refs) blobs.delete(ref).catch(() => undefined);
  }

  /** Sends the producer its advanced acks, once per turn of the event loop at most. */
  #scheduleAcks(connector: Connector): void {
    if (connector.ackScheduled) return;
    connector.ackScheduled = true;
    // After this turn's I/O, not after this microtask: the requests of one socket read are handled
    // in separate microtask chains, and would each send their own ack message.
    setImmediate(() => {
      connector.ackScheduled = false;
      const acks = connector.ledger.takeAcks();
      if (acks.size === 0) return;
      const flow = ackFlow(acks);
      this.#acksSent++;
      connector.connection.stream.sendFlow(create(ProcessResponseSchema, { flow })).catch(() => undefined);
    });
  }

  /** A producer that (re)connects while a step after it is paused hears so at once. */
  #tellPauseState(connector: Connector): void {
    const { story, registration } = connector;
    const paused = story
      .downstreamOf(registration.currentStepId)
      .some(
        (step) =>
          this.#streams.delivery(`${registration.storyRunNamespace}/${registration.storyRunName}/${step}`)
            ?.upstream.upstreamPaused === true,
      );
    if (!paused) return;
    const flow = create(FlowControlSchema, { signal: FlowControlSignal.PAUSE });
    this.#signalsSent++;
    connector.connection.stream.sendFlow(create(ProcessResponseSchema, { flow })).catch(() => undefined);
  }

  /** A downstream buffer filled or drained: tell the producers feeding it. */
  #signalProducers(key: string, signal: PauseSignal): void {
    const [namespace, run, step] = key.split('/');
    if (namespace === undefined || run === undefined || step === undefined) return;
    const story = this.#runs.get(`${namespace}/${run}`);
    if (story === undefined || !story.hasStep(step)) return;
    const flow = create(FlowControlSchema, {
      signal: signal === 'pause' ? FlowControlSignal.PAUSE : FlowControlSignal.RESUME,
    });
    for (const upstream of story.upstreamOf(step)) {
      const producer = this.#connectors.get(`${namespace}/${run}/${upstream}`);
      if (producer === undefined) continue;
      this.#signalsSent++;
      producer.connection.stream.sendFlow(create(ProcessResponseSchema, { flow })).catch(() => undefined);
    }
  }

  /** The checkpoint of `key` now: its acks and the packets sent and not yet acknowledged. */
  #snapshot(key: string): CheckpointSnapshot | undefined {
    const checkpoint = this.#streams.delivery(key)?.checkpoint();
    if (checkpoint === undefined || checkpoint.pending.length === 0) return undefined;
    return {
      lastAck: checkpoint.lastAck ?? 0n,
      partitionAcks: new Map(Object.entries(checkpoint.partitionAcks ?? {})),
      pending: checkpoint.pending.map((held) => ({
        seq: held.sequence,
        partition: held.partition,
        packet: toBinary(DataPacketSchema, encodeRouted(held.packet).packet as DataPacket),
      })),
    };
  }

  async #loadCheckpoints(): Promise<void> {
    const checkpointer = this.#checkpointer;
    if (checkpointer === undefined) return;
    for (const key of await checkpointer.keys()) {
      const checkpoint = await checkpointer.load(key);
      if (checkpoint === undefined) continue;
      const pending = [];
      for (const record of checkpoint.pending) {
        const message = fromBinary(DataPacketSchema, record.packet);
        pending.push({
          partition: record.partition,
          sequence: record.seq,
          size: record.packet.byteLength,
          packet: {
            message,
            size: record.packet.byteLength,
            lane: laneOf(message),
            envelope: {
              streamId: message.envelope?.streamId ?? key,
              sequence: record.seq,
              partition: record.partition,
            },
          },
        });
      }
      this.#restored.set(key, {
        lastAck: checkpoint.lastAck,
        partitionAcks: Object.fromEntries(checkpoint.partitionAcks),
        pending,
      });
    }
  }

  #endWithError(call: ConnectorSession, error: unknown): void {
    const { code, details } = grpcStatusOf(error);
    this.#endWith(call, code, details === '' ? errorMessage(error) : details);
  }

  #endWith(call: ConnectorSession, code: status, details: string): void {
    const name = status[code];
    this.#refused[name] = (this.#refused[name] ?? 0) + 1;
    if (code === status.INTERNAL) {
      logSafely(() => this.#logger?.error('hub: connector stream failed', { details }));
    }
    try {
      call.fail(code, details);
    } catch {
      // The stream is already gone.
    }
  }
}

/** True for the errors a stream's reader sees when the other side went away. */
function isDisconnect(error: unknown): boolean {
  const { code } = (error ?? {}) as { code?: unknown };
  return code === status.CANCELLED || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET';
}

/** The buffer lane of a packet: its frame kind, or `payload` when it carries none. */
function laneOf(packet: DataPacket): Lane {
  return (packet.frame.case as Lane | undefined) ?? 'payload';
}

/** The response that carries `routed` to its step, with that step's envelope. */
function encodeRouted(routed: RoutedPacket<DataPacket>, redelivery = false): ProcessResponse {
  const { message, envelope } = routed;
  // Plain message objects, every field set: \`create\` would do the same work per packet, slower.
  const packet: DataPacket = {
    ...message,
    metadata: redelivery ? { ...message.metadata, [REDELIVERED_METADATA_KEY]: 'true' } : message.metadata,
    // A reassembled packet has no chunk fields left; the step gets its own sequence space.
    envelope: {
      $typeName: 'transport.v1.StreamEnvelope',
      streamId: envelope.streamId,
      sequence: envelope.sequence,
      partition: envelope.partition,
      chunkId: '',
      chunkIndex: 0,
      chunkCount: 0,
      chunkBytes: 0,
      totalBytes: 0,
    },
  };
  return { $typeName: 'transport.v1.ProcessResponse', packet };
}

function flowUpdateOf(flow: NonNullable<ProcessRequest['flow']>): FlowUpdate {
  return {
    ack: flow.ack,
    creditsMessages: flow.creditsMessages,
    creditsBytes: flow.creditsBytes,
    partitionAcks: flow.partitionAcks.map((p) => ({ partition: p.partition, ack: p.ack })),
    signal:
      flow.signal === FlowControlSignal.PAUSE
        ? 'pause'
        : flow.signal === FlowControlSignal.RESUME
          ? 'resume'
          : 'unspecified',
  };
}

/** A gRPC call as a connector session. */
function sessionOf(call: HubCall): ConnectorSession {
  return {
    metadata: call.metadata,
    // Not destroyed when the connector half-closes: the hub still answers with its status.
    requests: call.iterator({ destroyOnReturn: false }) as AsyncIterable<IncomingRequest>,
    transport: transportOf(call),
    fail: (code, details) => {
      call.emit('error', { code, details });
    },
  };
}

/** The call as an outbound transport: its writes, backpressure, and end. */
function transportOf(call: HubCall): OutboundTransport<ProcessResponse> {
  return {
    write: (message) => call.write(message),
    once: (event, listener) => {
      if (event === 'close') {
        call.once('close', listener);
        call.once('cancelled', listener);
      } else call.once('drain', listener);
    },
    off: (event, listener) => {
      if (event === 'close') {
        call.off('close', listener);
        call.off('cancelled', listener);
      } else call.off('drain', listener);
    },
    end: () => call.end(),
  };
}
