// Test doubles for the stream manager: a transport that records what reaches the connector, a
// stream whose sends can be made to fail, an encoder, and packets that count their settlements.

import type { Lane } from '../../../src/hub/buffer/index.ts';
import { OutboundStream } from '../../../src/hub/outbound-stream.ts';
import type {
  HandoffEvent,
  OutboundEncoder,
  RoutedPacket,
  StreamManagerConfig,
} from '../../../src/hub/stream-manager.ts';
import { StreamManager } from '../../../src/hub/stream-manager.ts';
import type { PauseSignal } from '../../../src/hub/flow/index.ts';
import type { DropReason } from '../../../src/hub/buffer/index.ts';
import { FakeClock } from '../../../src/internal/fake-clock.ts';
import { FakeTransport as BaseTransport } from './fake-transport.ts';

/** The packet type the tests route. */
export interface TestMessage {
  readonly id: number;
}

/** What reaches the connector: a packet with the envelope it was sent under, or a heartbeat. */
export type Wire =
  | { readonly kind: 'packet'; readonly id: number; readonly sequence: bigint; readonly partition: string }
  | { readonly kind: 'heartbeat'; readonly n: number };

/** The fake transport, with what the stream manager's tests look for in what was written. */
export class FakeTransport extends BaseTransport<Wire> {
  /** Ids of the data packets written, in order. */
  get ids(): number[] {
    return this.packets.map((w) => w.id);
  }

  get packets(): Extract<Wire, { kind: 'packet' }>[] {
    return this.written.filter((w): w is Extract<Wire, { kind: 'packet' }> => w.kind === 'packet');
  }

  get heartbeats(): Extract<Wire, { kind: 'heartbeat' }>[] {
    return this.written.filter((w): w is Extract<Wire, { kind: 'heartbeat' }> => w.kind === 'heartbeat');
  }
}

/** An outbound stream whose next `failures` sends reject with a transient error (the stream stays open). */
export class FlakyStream extends OutboundStream<Wire> {
  readonly transport: FakeTransport;
  failures = 0;
  attempts = 0;

  constructor(clock: FakeClock, transport = new FakeTransport()) {
    super(transport, { clock });
    this.transport = transport;
  }

  override async send(message: Wire): Promise<void> {
    if (message.kind === 'packet') this.attempts++;
    if (message.kind === 'packet' && this.failures > 0) {
      this.failures--;
      throw new Error('transient send failure');
    }
    return super.send(message);
  }
}

export function makeEncoder(): OutboundEncoder<TestMessage, Wire> & { heartbeatsMade: Wire[] } {
  let n = 0;
  const heartbeatsMade: Wire[] = [];
  return {
    heartbeatsMade,
    packet: (p) => ({
      kind: 'packet',
      id: p.message.id,
      sequence: p.envelope.sequence,
      partition: p.envelope.partition,
    }),
    heartbeat: () => {
      const beat = { kind: 'heartbeat', n: ++n } as const;
      heartbeatsMade.push(beat);
      return beat;
    },
  };
}

/** A routed packet whose settlements are counted in `settled` by id. */
export function makePacket(
  id: number,
  settled: Map<number, number>,
  options: { partition?: string; size?: number; lane?: Lane; sequence?: bigint; streamId?: string } = {},
): RoutedPacket<TestMessage> {
  return {
    message: { id },
    size: options.size ?? 10,
    lane: options.lane ?? 'payload',
    envelope: {
      streamId: options.streamId ?? '',
      sequence: options.sequence ?? 0n,
      partition: options.partition ?? '',
    },
    settle: () => settled.set(id, (settled.get(id) ?? 0) + 1),
  };
}

/** A manager on a fake clock, with every callback recorded. */
export function makeManager(
  config: Partial<Omit<StreamManagerConfig<TestMessage, Wire>, 'encoder' | 'clock'>> = {},
): {
  clock: FakeClock;
  manager: StreamManager<TestMessage, Wire>;
  encoder: ReturnType<typeof makeEncoder>;
  handoffs: HandoffEvent[];
  signals: { key: string; signal: PauseSignal }[];
  drops: { key: string; reason: DropReason }[];
  settled: Map<number, number>;
  stream(): FlakyStream;
  packet(id: number, options?: Parameters<typeof makePacket>[2]): RoutedPacket<TestMessage>;
} {
  const clock = new FakeClock();
  const encoder = makeEncoder();
  const handoffs: HandoffEvent[] = [];
  const signals: { key: string; signal: PauseSignal }[] = [];
  const drops: { key: string; reason: DropReason }[] = [];
  const settled = new Map<number, number>();
  const manager = new StreamManager<TestMessage, Wire>({
    ...config,
    encoder,
    clock,
    onHandoff: (event) => handoffs.push(event),
    onUpstreamSignal: (key, signal) => signals.push({ key, signal }),
    onDrop: (key, reason) => drops.push({ key, reason }),
  });
  return {
    clock,
    manager,
    encoder,
    handoffs,
    signals,
    drops,
    settled,
    stream: () => new FlakyStream(clock),
    packet: (id, options) => makePacket(id, settled, options),
  };
}

/** The promise's outcome after the microtask queue has run a while, or undefined if still pending. */
export async function settledWithin<T>(
  promise: Promise<T>,
  turns = 50,
): Promise<{ value?: T; error?: unknown } | undefined> {
  let outcome: { value?: T; error?: unknown } | undefined;
  promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  for (let i = 0; i < turns && outcome === undefined; i++) await Promise.resolve();
  return outcome;
}

/** A small deterministic PRNG (mulberry32), so "random" interleavings replay exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
