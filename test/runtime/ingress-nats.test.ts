// The NATS ingresses against the server on this machine (WEFT_TEST_NATS_URL; skipped with the
// reason where it is absent, a failure where WEFT_REQUIRE_SERVICES=1). Each test gets a stream
// (or subject prefix) of its own, deleted afterwards. The server is real, so some waits poll it
// (consumer info) or the ingress's counters: each is bounded and ends as soon as the condition
// holds.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test, type TestContext } from 'node:test';

import { connect, headers as natsHeaders, type ConsumerInfo } from 'nats';

import {
  JetStreamIngress,
  type JetStreamIngressOptions,
} from '../../src/runtime/ingress/jetstream-ingress.ts';
import { NatsCoreIngress } from '../../src/runtime/ingress/nats-core-ingress.ts';
import type { SubjectRoute } from '../../src/runtime/ingress/subject-routes.ts';
import { natsService, serviceGate } from '../../src/testing/index.ts';
import { FakeRuntimeInput } from './ingress-fake-input.ts';

const STRING_TYPE = 'io.statefun.types/string';
const DURABLE = 'weft-ingress';
const gate = await serviceGate(natsService);

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function text(value: Uint8Array | undefined): string {
  return Buffer.from(value ?? []).toString();
}

if (gate.skip !== false) {
  test('NATS ingress', { skip: gate.skip }, () => undefined);
} else {
  const connection = await connect({ servers: gate.url });
  after(() => connection.close());
  const manager = await connection.jetstreamManager();
  const jetstream = connection.jetstream();

  interface Warning {
    readonly message: string;
    readonly details: Record<string, unknown> | undefined;
  }

  /** A fresh stream, a fake runtime, and a way to start an ingress; all torn down after the test. */
  async function fixture(t: TestContext) {
    const cleanups: (() => Promise<unknown>)[] = [];
    const input = new FakeRuntimeInput();
    t.after(async () => {
      input.release();
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    });
    const stream = `weft_ingress_${randomBytes(6).toString('hex')}`;
    await manager.streams.add({ name: stream, subjects: [`${stream}.>`] });
    cleanups.push(() => manager.streams.delete(stream));
    const warnings: Warning[] = [];
    const logger = {
      warn: (message: string, details?: Record<string, unknown>) => warnings.push({ message, details }),
      error: (message: string, details?: Record<string, unknown>) => warnings.push({ message, details }),
    };
    const routes: SubjectRoute[] = [{ subject: `${stream}.orders.*`, functionType: 'shop/cart' }];
    return {
      stream,
      input,
      warnings,
      async start(options: Partial<JetStreamIngressOptions> = {}) {
        const ingress = await JetStreamIngress.start(input, {
          connection,
          stream,
          durable: DURABLE,
          routes,
          logger,
          ...options,
        });
        cleanups.push(() => ingress.stop());
        return ingress;
      },
      publish(
        subject: string,
        body: string,
        headers: Record<string, string> = { 'Weft-Message-Type': STRING_TYPE },
      ) {
        const h = natsHeaders();
        for (const [name, value] of Object.entries(headers)) h.set(name, value);
        return jetstream.publish(`${stream}.${subject}`, Buffer.from(body), { headers: h });
      },
      consumer(): Promise<ConsumerInfo> {
        return manager.consumers.info(stream, DURABLE);
      },
    };
  }

  describe('JetStream ingress', () => {
    test('messages land in their targets’ inboxes as envelopes keyed by stream sequence, and are acked', async (t) => {
      const f = await fixture(t);
      await f.start({
        routes: [
          { subject: `${f.stream}.orders.*`, functionType: 'shop/cart' },
          {
            subject: `${f.stream}.orders.fixed.>`,
            functionType: 'shop/cart',
            messageType: 'example.com/Order',
            id: { header: 'Customer' },
          },
        ],
      });
      await f.publish('orders.7', 'apples');
      await f.publish('orders.8', 'pears', { 'Weft-Message-Type': STRING_TYPE, 'Weft-Id': 'customer 9' });
      await f.publish('orders.fixed.eu', '{"qty":1}', { Customer: 'c-3' });
      await f.input.until(() => f.input.appended.length === 3);

      const [seven] = await f.input.inbox(['shop', 'cart', '7']);
      const [nine] = await f.input.inbox(['shop', 'cart', 'customer 9']);
      const [fixed] = await f.input.inbox(['shop', 'cart', 'c-3']);
      assert.ok(seven && nine && fixed);
      assert.equal(text(seven.argument.value), 'apples');
      assert.equal(seven.argument.typename, STRING_TYPE);
      assert.equal(seven.ingressId, `nats:${f.stream}:1`);
      assert.equal(text(nine.argument.value), 'pears');
      assert.equal(nine.ingressId, `nats:${f.stream}:2`);
      assert.equal(fixed.argument.typename, 'example.com/Order');
      assert.equal(text(fixed.argument.value), '{"qty":1}');
      assert.equal(fixed.ingressId, `nats:${f.stream}:3`);

      await eventually('every message is acked', async () => {
        const info = await f.consumer();
        return info.num_ack_pending === 0 && info.num_pending === 0;
      });
    });

    test('a message is acked only after its append resolved; its redelivery is stored once', async (t) => {
      const f = await fixture(t);
      f.input.hold();
      const ingress = await f.start({ ackWaitMs: 500 });
      await f.publish('orders.7', 'apples');
      await f.input.until(() => f.input.sendCalls === 1);
      assert.equal((await f.consumer()).num_ack_pending, 1);

      // Unacked past ack_wait, so JetStream delivers it again.
      await eventually('the message is redelivered', () => ingress.stats().received >= 2);
      assert.equal(f.input.appended.length, 0);

      f.input.release();
      await eventually('the delivery and its redelivery are appended', () => f.input.appended.length >= 2);
      assert.equal((await f.input.inbox(['shop', 'cart', '7'])).length, 1);
      const [first, again] = f.input.appended;
      assert.ok(first && again);
      assert.equal(again.duplicate, true);
      assert.equal(again.seq, first.seq);
      await eventually('the message is acked', async () => (await f.consumer()).num_ack_pending === 0);
      const stats = ingress.stats();
      assert.equal(stats.accepted, 1);
      assert.ok(stats.duplicates >= 1);
    });

    test('under backpressure the ingress naks, stops pulling, and resumes once released', async (t) => {
      const f = await fixture(t);
      const ingress = await f.start({ nakDelayMs: 100 });
      await eventually('a pull is waiting', async () => (await f.consumer()).num_waiting === 1);

      f.input.setBusy(true);
      await f.publish('orders.1', 'first');
      await eventually('the ingress pauses', () => ingress.stats().paused);
      assert.equal(ingress.stats().refusedBusy, 1);
      await eventually('no pull is waiting', async () => (await f.consumer()).num_waiting === 0);
      await f.publish('orders.2', 'second');
      assert.equal((await f.consumer()).delivered.stream_seq, 1, 'nothing is delivered while paused');
      assert.equal(ingress.stats().received, 1, 'not even the refused message, whose nak delay is short');
      assert.equal(f.input.appended.length, 0);

      f.input.setBusy(false);
      await f.input.until(() => f.input.appended.length === 2);
      assert.equal(text((await f.input.inbox(['shop', 'cart', '1']))[0]?.argument.value), 'first');
      assert.equal(text((await f.input.inbox(['shop', 'cart', '2']))[0]?.argument.value), 'second');
      assert.equal(ingress.stats().paused, false);
      await eventually('both are acked', async () => {
        const info = await f.consumer();
        return info.num_ack_pending === 0 && info.num_pending === 0;
      });
    });

    test('a message that can never be mapped is terminated, counted and logged; the rest flow on', async (t) => {
      const f = await fixture(t);
      const ingress = await f.start({
        routes: [
          { subject: `${f.stream}.orders.*`, functionType: 'shop/cart' },
          { subject: `${f.stream}.baskets.*`, functionType: 'shop/basket' },
        ],
      });
      await f.publish('invoices.1', 'no route');
      await f.publish('orders.2', 'no type', {});
      await f.publish('baskets.3', 'nobody serves shop/basket');
      await f.publish('orders.4', 'fine');
      await f.input.until(() => f.input.appended.length === 1);
      assert.equal(f.input.appended[0]?.target[2], '4');
      assert.equal(ingress.stats().termed, 3);
      assert.deepEqual(
        f.warnings.map((w) => String(w.details?.['problem']).split(':')[0]),
        ['no-route', 'bad-type', 'unknown-type'],
      );
      assert.deepEqual(
        f.warnings.map((w) => w.details?.['seq']),
        [1, 2, 3],
      );
      await eventually('nothing is pending or redelivered', async () => {
        const info = await f.consumer();
        return info.num_ack_pending === 0 && info.num_pending === 0 && info.num_redelivered === 0;
      });
    });

    test('stop waits for the append in flight and acks it', async (t) => {
      const f = await fixture(t);
      f.input.hold();
      const ingress = await f.start();
      await f.publish('orders.7', 'apples');
      await f.input.until(() => f.input.sendCalls === 1);
      let stopped = false;
      const stopping = ingress.stop().then(() => {
        stopped = true;
      });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(stopped, false);
      f.input.release();
      await stopping;
      assert.deepEqual(
        [ingress.stats().accepted, ingress.stats().held, ingress.stats().stopped],
        [1, 0, true],
      );
      await eventually('the message is acked', async () => (await f.consumer()).num_ack_pending === 0);
    });

    test('a missing stream is a configuration error naming it', async () => {
      await assert.rejects(
        JetStreamIngress.start(new FakeRuntimeInput(), {
          connection,
          stream: `weft_missing_${randomBytes(4).toString('hex')}`,
          durable: DURABLE,
          routes: [{ subject: 'x.*', functionType: 'shop/cart' }],
        }),
        { code: 'WEFT_INVALID_CONFIG', field: 'stream' },
      );
    });
  });

  describe('core NATS ingress', () => {
    test('a published message is appended to its target’s inbox, at most once', async (t) => {
      const input = new FakeRuntimeInput();
      const prefix = `weft_core_${randomBytes(6).toString('hex')}`;
      const ingress = await NatsCoreIngress.start(input, {
        connection,
        routes: [{ subject: `${prefix}.orders.*`, functionType: 'shop/cart' }],
      });
      t.after(() => ingress.stop());
      const h = natsHeaders();
      h.set('Weft-Message-Type', STRING_TYPE);
      connection.publish(`${prefix}.orders.7`, Buffer.from('apples'), { headers: h });
      await input.until(() => input.appended.length === 1);
      const [message] = await input.inbox(['shop', 'cart', '7']);
      assert.equal(text(message?.argument.value), 'apples');
      assert.equal(message?.ingressId, undefined);
      assert.deepEqual(ingress.stats(), { received: 1, accepted: 1, dropped: 0, unmappable: 0, inFlight: 0 });
    });

    test('a message beyond maxInFlight is dropped and counted', async (t) => {
      const input = new FakeRuntimeInput();
      input.hold();
      const prefix = `weft_core_${randomBytes(6).toString('hex')}`;
      const ingress = await NatsCoreIngress.start(input, {
        connection,
        routes: [{ subject: `${prefix}.*`, functionType: 'shop/cart', messageType: STRING_TYPE }],
        maxInFlight: 1,
        logger: { warn: () => undefined, error: () => undefined },
      });
      t.after(async () => {
        input.release();
        await ingress.stop();
      });
      connection.publish(`${prefix}.1`, Buffer.from('kept'));
      connection.publish(`${prefix}.2`, Buffer.from('dropped'));
      await eventually('both arrived', () => ingress.stats().received === 2);
      input.release();
      await input.until(() => input.appended.length === 1);
      assert.equal(input.appended[0]?.target[2], '1');
      assert.equal(ingress.stats().dropped, 1);
    });
  });
}
