// Ours: a producer and a consumer HubConnector on one story run, through the hub in the server
// process. The consumer acks every delivery as it reads it (what a step does); a call of
// `deliver` resolves once every packet it sent has arrived and, under at-least-once, once the
// hub has acknowledged all of them to the producer (which it does only after the consumer's ack).

import { create } from '@bufbuild/protobuf';

import { BinaryFrameSchema } from '../../src/gen/transport/v1/transport_pb.ts';
import type { HubConnector, HubConnectorOptions } from '../../src/hub/connector/index.ts';
import type { HubGridTarget } from '../../src/hub/grid/index.ts';
import type { HubModule } from './load-hub.ts';
import {
  consumerStep,
  Countdown,
  type DeliveryMode,
  indexOf,
  namespace,
  payloadOf,
  producerStep,
  storyName,
} from './workload.ts';

/** Where a connector reaches the hub: a gRPC address, or the hub's node over the grid. */
export type HubTarget = string | HubGridTarget;

export function connectorOptions(
  target: HubTarget,
  run: string,
  mode: DeliveryMode,
  step: string,
): HubConnectorOptions {
  return {
    ...(typeof target === 'string' ? { address: target } : { grid: target }),
    namespace,
    run,
    step,
    story: storyName(mode),
    generation: 1,
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    closeGraceMs: 50,
  };
}

/** The packet a producer sends: a binary frame carrying the numbered payload. */
export function packetOf(index: number): Parameters<HubConnector['send']>[0] {
  return { frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: payloadOf(index) }) } };
}

/** The payload of a delivered packet. */
export function payloadOfPacket(packet: {
  frame: { case: string | undefined; value?: unknown };
}): Uint8Array {
  const frame = packet.frame;
  if (frame.case !== 'binary') throw new Error(`a delivery without a binary frame (${String(frame.case)})`);
  return (frame.value as { payload: Uint8Array }).payload;
}

export class ConnectorPair {
  readonly #mode: DeliveryMode;
  readonly #producer: HubConnector;
  readonly #consumer: HubConnector;
  readonly #received = new Countdown();
  readonly #reading: Promise<void>;
  #sent = 0;
  #outOfOrder = 0;
  #failure: unknown;

  private constructor(mode: DeliveryMode, producer: HubConnector, consumer: HubConnector) {
    this.#mode = mode;
    this.#producer = producer;
    this.#consumer = consumer;
    this.#reading = this.#read().catch((error: unknown) => {
      this.#failure ??= error;
    });
  }

  static async open(
    hub: HubModule,
    target: HubTarget,
    run: string,
    mode: DeliveryMode,
  ): Promise<ConnectorPair> {
    const consumer = await hub.HubConnector.connect(connectorOptions(target, run, mode, consumerStep));
    const producer = await hub.HubConnector.connect(connectorOptions(target, run, mode, producerStep));
    return new ConnectorPair(mode, producer, consumer);
  }

  async #read(): Promise<void> {
    for await (const delivery of this.#consumer.received()) {
      if (indexOf(payloadOfPacket(delivery.packet)) !== this.#received.count) this.#outOfOrder++;
      delivery.ack();
      this.#received.add();
    }
  }

  /** Sends `count` packets and resolves once all have arrived (and, at-least-once, are acknowledged). */
  async deliver(count: number): Promise<void> {
    const target = this.#sent + count;
    const sends: Promise<unknown>[] = [];
    while (this.#sent < target) sends.push(this.#producer.send(packetOf(this.#sent++)));
    await Promise.all(sends);
    await this.#received.reach(target, `hub ${this.#mode}`);
    if (this.#mode === 'at_least_once') await this.#producer.drained();
  }

  /** Throws if a connector failed, reconnected, saw a redelivery, or a packet came out of order. */
  check(): void {
    if (this.#failure !== undefined) throw this.#failure as Error;
    if (this.#outOfOrder > 0) throw new Error(`${this.#outOfOrder} deliveries out of order`);
    for (const [who, c] of [
      ['producer', this.#producer],
      ['consumer', this.#consumer],
    ] as const) {
      const stats = c.stats();
      if (stats.reconnects > 0 || stats.redelivered > 0 || stats.refusedSends > 0 || !stats.connected) {
        throw new Error(`the ${who} had trouble: ${JSON.stringify(stats)}`);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#producer.close(), this.#consumer.close()]);
    await this.#reading;
  }
}
