// The NATS core peer of the grid at-most-once case: the same 1 KiB packets published on a
// subject and read by a subscription on the same connection, no acks, no persistence: what a
// fire-and-forget broker on loopback does. Each pair uses a fresh subject.

import { randomUUID } from 'node:crypto';

import { connect, type NatsConnection, type Subscription } from 'nats';

import { natsServer } from './jetstream.ts';
import { Countdown, indexOf, payloadOf } from './workload.ts';

export class NatsCorePair {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly #subscription: Subscription;
  readonly #received = new Countdown();
  #sent = 0;
  #outOfOrder = 0;

  private constructor(nc: NatsConnection, subject: string) {
    this.#nc = nc;
    this.#subject = subject;
    this.#subscription = nc.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) return;
        if (indexOf(message.data) !== this.#received.count) this.#outOfOrder++;
        this.#received.add();
      },
    });
  }

  static async open(): Promise<NatsCorePair> {
    const nc = await connect({ servers: natsServer });
    const pair = new NatsCorePair(nc, `hub-bench-core.${randomUUID().replaceAll('-', '')}`);
    // The subscription is registered with the server before anything is published.
    await nc.flush();
    return pair;
  }

  async deliver(count: number): Promise<void> {
    const target = this.#sent + count;
    while (this.#sent < target) this.#nc.publish(this.#subject, payloadOf(this.#sent++));
    await this.#received.reach(target, 'NATS core');
  }

  check(): void {
    if (this.#outOfOrder > 0) throw new Error(`${this.#outOfOrder} NATS core messages out of order`);
  }

  async close(): Promise<void> {
    this.#subscription.unsubscribe();
    await this.#nc.close();
  }
}
