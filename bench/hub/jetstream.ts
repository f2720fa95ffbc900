// The JetStream peer of the at-least-once case: the same 1 KiB packets published with ack (each
// `js.publish` resolves with the stream's PubAck), read by a pull consumer with explicit acks,
// each message acked as it is read. Memory storage, like the hub without a checkpoint store.
// Every pair makes a fresh stream and durable consumer and deletes them on close.

import { randomUUID } from 'node:crypto';

import {
  AckPolicy,
  connect,
  type ConsumerMessages,
  type JetStreamClient,
  type NatsConnection,
  StorageType,
} from 'nats';

import { Countdown, indexOf, payloadOf } from './workload.ts';

export const natsServer = '127.0.0.1:4222';

export class JetStreamPair {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #stream: string;
  readonly #subject: string;
  readonly #messages: ConsumerMessages;
  readonly #received = new Countdown();
  readonly #reading: Promise<void>;
  #sent = 0;
  #outOfOrder = 0;
  #failure: unknown;

  private constructor(nc: NatsConnection, stream: string, subject: string, messages: ConsumerMessages) {
    this.#nc = nc;
    this.#js = nc.jetstream();
    this.#stream = stream;
    this.#subject = subject;
    this.#messages = messages;
    this.#reading = this.#read().catch((error: unknown) => {
      this.#failure ??= error;
    });
  }

  static async open(): Promise<JetStreamPair> {
    const nc = await connect({ servers: natsServer });
    try {
      const id = randomUUID().replaceAll('-', '');
      const stream = `HUB_BENCH_${id}`;
      const subject = `hub-bench.${id}`;
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.Memory });
      await jsm.consumers.add(stream, { durable_name: 'consume', ack_policy: AckPolicy.Explicit });
      const consumer = await nc.jetstream().consumers.get(stream, 'consume');
      const messages = await consumer.consume({ max_messages: 1000 });
      return new JetStreamPair(nc, stream, subject, messages);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  async #read(): Promise<void> {
    for await (const message of this.#messages) {
      if (indexOf(message.data) !== this.#received.count) this.#outOfOrder++;
      message.ack();
      this.#received.add();
    }
  }

  async deliver(count: number): Promise<void> {
    const target = this.#sent + count;
    const publishes: Promise<unknown>[] = [];
    while (this.#sent < target) publishes.push(this.#js.publish(this.#subject, payloadOf(this.#sent++)));
    await Promise.all(publishes);
    await this.#received.reach(target, 'JetStream');
  }

  check(): void {
    if (this.#failure !== undefined) throw this.#failure as Error;
    if (this.#outOfOrder > 0)
      throw new Error(`${this.#outOfOrder} JetStream messages out of order or redelivered`);
  }

  async close(): Promise<void> {
    this.#messages.stop();
    await this.#reading;
    try {
      const jsm = await this.#nc.jetstreamManager();
      await jsm.streams.delete(this.#stream);
    } finally {
      await this.#nc.close();
    }
  }
}
