// What the hub chaos test's processes share: the three-step story, the packet payload, the
// progress file of the source, the line format of the sink's record, and the child processes'
// configuration (passed as one JSON argument).
//
// A packet carries (n, life, upstreamReplay): n is its number in its partition (1…N), life the
// source process that sent it, and upstreamReplay says that a step before the sink may have
// delivered it already (a restarted source resending what its killed predecessor may have sent,
// or a relay forwarding a delivery the hub flagged as redelivered). The sink counts a duplicate
// as flagged when either its own delivery is flagged redelivered or the packet says so.

import { create } from '@bufbuild/protobuf';

import { BinaryFrameSchema } from '../../../src/gen/transport/v1/transport_pb.ts';
import type { DataPacket } from '../../../src/gen/transport/v1/hub_pb.ts';
import type { HubConnector, PacketInit } from '../../../src/hub/connector/index.ts';
import { parseStory, type Story } from '../../../src/hub/story/index.ts';

export const NAMESPACE = 'chaos';
export const RUN = 'run-1';
export const STORY_NAME = 'chaos';
export const STEPS = { source: 'source', relay: 'relay', sink: 'sink' } as const;
export type Role = keyof typeof STEPS;

/**
 * source → relay → sink, at least once, ordered per partition. Nothing may be dropped: buffers
 * hold far more than the producers' windows can leave in them, and a failing flush is retried
 * (almost) forever instead of dropping the buffer after the default 3 tries.
 */
export function chaosStory(): Story {
  return parseStory(
    JSON.stringify({
      apiVersion: 'weft.dev/v1',
      kind: 'Story',
      metadata: { name: STORY_NAME, namespace: NAMESPACE },
      spec: {
        defaults: {
          buffer: { maxMessages: 1_000_000, maxBytes: 1024 * 1024 * 1024, dropPolicy: 'drop_newest' },
          retry: { maxRetries: 1000, delayMs: 20, backoff: 'constant', maxDelayMs: 1000 },
          delivery: {
            mode: 'at_least_once',
            ordering: 'per_partition',
            replay: 'unacked',
            maxInFlight: 2000,
          },
        },
        steps: [
          { id: STEPS.source },
          { id: STEPS.relay, needs: [STEPS.source] },
          { id: STEPS.sink, needs: [STEPS.relay] },
        ],
      },
    }),
    { format: 'json' },
  );
}

export function partitionName(index: number): string {
  return `p${index}`;
}

export function partitionIndex(name: string): number {
  const index = Number(name.slice(1));
  if (!name.startsWith('p') || !Number.isSafeInteger(index))
    throw new Error(`not a chaos partition: ${name}`);
  return index;
}

export interface Payload {
  readonly n: number;
  readonly life: number;
  readonly upstreamReplay: boolean;
}

const PAYLOAD_BYTES = 9;

export function packetOf(payload: Payload): PacketInit {
  const bytes = Buffer.alloc(PAYLOAD_BYTES);
  bytes.writeUInt32BE(payload.n, 0);
  bytes.writeUInt32BE(payload.life, 4);
  bytes.writeUInt8(payload.upstreamReplay ? 1 : 0, 8);
  return { frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: bytes }) } };
}

export function payloadOf(packet: DataPacket): Payload {
  const frame = packet.frame;
  if (frame.case !== 'binary' || frame.value.payload.byteLength !== PAYLOAD_BYTES) {
    throw new Error(`not a chaos packet: ${frame.case ?? 'no frame'}`);
  }
  const bytes = Buffer.from(frame.value.payload.buffer, frame.value.payload.byteOffset, PAYLOAD_BYTES);
  return { n: bytes.readUInt32BE(0), life: bytes.readUInt32BE(4), upstreamReplay: bytes.readUInt8(8) === 1 };
}

/**
 * The source's progress, rewritten atomically as it goes: per partition, `acked` is a lower bound
 * of the numbers the hub has acknowledged (a restarted source resumes after it), `intent` the
 * highest number any life may have sent (resends up to it are marked upstreamReplay).
 */
export interface SourceProgress {
  readonly acked: number[];
  readonly intent: number[];
  readonly done: boolean;
}

export interface ConnectorConfig {
  readonly address: string;
  readonly generation: number;
  /** Source: the number of this life (1, 2, …), written into every packet. */
  readonly life: number;
  readonly partitions: number;
  /** Source: packets per partition. */
  readonly perPartition: number;
  /** Source: its progress file. Sink: the file its records are appended to. */
  readonly file: string;
}

/** One sink record: `<ms> <partition> <n> <redelivered 0|1><upstreamReplay 0|1>`. */
export function recordLine(ms: number, partition: number, payload: Payload, redelivered: boolean): string {
  return `${ms} ${partition} ${payload.n} ${redelivered ? 1 : 0}${payload.upstreamReplay ? 1 : 0}\n`;
}

export interface SinkRecord {
  readonly ms: number;
  readonly partition: number;
  readonly n: number;
  readonly redelivered: boolean;
  readonly upstreamReplay: boolean;
}

export function parseRecordLine(line: string): SinkRecord {
  const [ms, partition, n, flags] = line.split(' ');
  if (ms === undefined || partition === undefined || n === undefined || flags?.length !== 2) {
    throw new Error(`not a sink record: ${JSON.stringify(line)}`);
  }
  return {
    ms: Number(ms),
    partition: Number(partition),
    n: Number(n),
    redelivered: flags[0] === '1',
    upstreamReplay: flags[1] === '1',
  };
}

export function parseConfig(text: string | undefined): ConnectorConfig {
  if (text === undefined) throw new Error('usage: <script> <config json>');
  return JSON.parse(text) as ConnectorConfig;
}

/** The test is gone when stdin closes: a child never outlives it. */
export function exitWithParent(): void {
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

/** The connector's counters on stderr every 2 s: the test shows the last lines when a run stalls. */
export function reportStats(name: string, connector: HubConnector): void {
  setInterval(() => {
    process.stderr.write(`${name}: ${JSON.stringify(connector.stats())}\n`);
  }, 2000).unref();
}

/** Connector options every chaos connector uses. */
export function connectorOptions(config: ConnectorConfig, role: Role) {
  return {
    address: config.address,
    namespace: NAMESPACE,
    run: RUN,
    step: STEPS[role],
    story: STORY_NAME,
    generation: config.generation,
    maxUnacked: 4000,
    // Above what the hub keeps in flight to a step (maxInFlight 2000 × 4 partitions): the SDK
    // stops reading the stream past this, and with it the hub's acks for what the step sent, so
    // a relay waiting for those acks before it acks its input would wait forever.
    maxUnackedReceived: 10_000,
    maxWaitingSends: 20_000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 250 },
    closeGraceMs: 200,
  } as const;
}
