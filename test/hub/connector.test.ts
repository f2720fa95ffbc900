// The connector SDK against a real hub on loopback: packets flow in order with acks, a newer
// generation of a consumer gets what was left unacked flagged as redelivered, a producer resends
// what a vanished hub never acknowledged, and PAUSE holds `send` until RESUME. The hub runs on a
// fake clock; the SDK's reconnect backoff uses real time with millisecond delays.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { create } from '@bufbuild/protobuf';

import { BinaryFrameSchema } from '../../src/gen/transport/v1/transport_pb.ts';
import {
  ConnectorRefusedError,
  HubConnector,
  type Delivery,
  type HubConnectorOptions,
  type PacketInit,
} from '../../src/hub/connector/index.ts';
import { Hub } from '../../src/hub/hub.ts';
import { parseStory } from '../../src/hub/story/index.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

function storyWith(transcribePolicy: object = {}): ReturnType<typeof parseStory> {
  return parseStory(
    JSON.stringify({
      apiVersion: 'weft.dev/v1',
      kind: 'Story',
      metadata: { name: 'pipeline', namespace: 'media' },
      spec: {
        defaults: { delivery: { mode: 'at_least_once', replay: 'unacked' } },
        steps: [{ id: 'ingest' }, { id: 'transcribe', needs: ['ingest'], policy: transcribePolicy }],
      },
    }),
    { format: 'json' },
  );
}

async function startHub(
  t: TestContext,
  options: { port?: number; story?: ReturnType<typeof parseStory> } = {},
): Promise<{ hub: Hub; port: number }> {
  const hub = new Hub({ stories: [options.story ?? storyWith()], clock: new FakeClock() });
  const port = await hub.listen({ port: options.port ?? 0 });
  t.after(() => hub.close());
  return { hub, port };
}

async function connector(
  t: TestContext,
  port: number,
  step: string,
  options: Partial<HubConnectorOptions> = {},
): Promise<HubConnector> {
  const c = await HubConnector.connect({
    address: `127.0.0.1:${port}`,
    namespace: 'media',
    run: 'run-1',
    step,
    story: 'pipeline',
    generation: 1,
    reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    // The hub does not end a half-closed stream (see the report); do not wait long for it.
    closeGraceMs: 50,
    ...options,
  });
  t.after(() => c.close());
  return c;
}

function text(value: string): PacketInit {
  return {
    frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: Buffer.from(value) }) },
  };
}

function textOf(delivery: Delivery): string {
  const frame = delivery.packet.frame;
  return frame.case === 'binary' ? Buffer.from(frame.value.payload).toString() : '';
}

/** Reads `count` deliveries from the connector. */
async function take(c: HubConnector, count: number): Promise<Delivery[]> {
  const taken: Delivery[] = [];
  if (count === 0) return taken;
  for await (const delivery of c.received()) {
    taken.push(delivery);
    if (taken.length === count) break;
  }
  return taken;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Whether the promise settled after a few real milliseconds of network turns. */
async function settledSoon(promise: Promise<unknown>, ms = 100): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

describe('hub connector SDK', () => {
  test('a producer’s packets reach the consumer in order, and its unacked empties as the consumer acks', async (t) => {
    const { hub, port } = await startHub(t);
    const consumer = await connector(t, port, 'transcribe');
    await until(() => hub.stats().connections === 1, 'consumer registered');
    const producer = await connector(t, port, 'ingest');

    const n = 50;
    const sends = [];
    for (let i = 1; i <= n; i++) sends.push(producer.send(text(`p${i}`)));
    const results = await Promise.all(sends);
    assert.deepEqual(
      results.map((r) => r.sequence),
      Array.from({ length: n }, (_, i) => BigInt(i + 1)),
      'the producer numbers its own packets',
    );

    const deliveries = await take(consumer, n);
    assert.deepEqual(
      deliveries.map(textOf),
      Array.from({ length: n }, (_, i) => `p${i + 1}`),
    );
    assert.ok(deliveries.every((d) => !d.redelivered));
    assert.ok(producer.stats().unacked > 0, 'nothing is acknowledged before the consumer acks');

    // Out of order: the cumulative ack waits for the gap to close.
    for (const d of deliveries.slice(1)) d.ack();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(producer.stats().unacked, n, 'the first is not acked, so nothing is');
    deliveries[0]?.ack();
    await producer.drained();
    const stats = producer.stats();
    assert.equal(stats.unacked, 0);
    assert.equal(stats.acked, n);
    assert.equal(stats.sent, n);
    assert.ok(consumer.stats().ackMessagesSent <= 3, 'acks are batched, not one message per packet');
  });

  test('a consumer that takes over as a newer generation gets what it left unacked, flagged redelivered', async (t) => {
    const { hub, port } = await startHub(t);
    const consumer = await connector(t, port, 'transcribe', { generation: 1 });
    await until(() => hub.stats().connections === 1, 'consumer registered');
    const producer = await connector(t, port, 'ingest');
    for (let i = 1; i <= 5; i++) await producer.send(text(`m${i}`));

    const first = await take(consumer, 5);
    first[0]?.ack();
    first[1]?.ack();
    await until(() => producer.stats().unacked === 3, 'the first two acknowledged upstream');

    consumer.reconnect({ generation: 2 });
    const again = await take(consumer, 3);
    assert.deepEqual(again.map(textOf), ['m3', 'm4', 'm5']);
    assert.ok(
      again.every((d) => d.redelivered),
      'each was delivered before and not acked',
    );
    first[2]?.ack();
    assert.equal(consumer.stats().staleAcks, 1, 'an ack of the ended stream’s delivery is not sent');

    await producer.send(text('m6'));
    const fresh = await take(consumer, 1);
    assert.deepEqual(fresh.map(textOf), ['m6']);
    assert.equal(fresh[0]?.redelivered, false);
    for (const d of [...again, ...fresh]) d.ack();
    await producer.drained();
    assert.equal(consumer.stats().reconnects, 1);
    assert.equal(consumer.stats().redelivered, 3);
  });

  test('when the hub goes away, the producer reconnects to its successor and resends what was never acknowledged, flagged', async (t) => {
    const first = await startHub(t);
    const producer = await connector(t, first.port, 'ingest');
    for (let i = 1; i <= 3; i++) await producer.send(text(`r${i}`));
    await until(() => first.hub.stats().streams.buffered === 3, 'buffered at the first hub');
    assert.equal(producer.stats().unacked, 3);

    await first.hub.close();
    const second = await startHub(t, { port: first.port });
    await until(() => second.hub.stats().streams.buffered === 3, 'resent to the second hub');
    assert.ok(producer.stats().reconnects >= 1);
    // Each stream that reopened got the three again, attempts that failed before the second hub
    // was up included: the second hub holds each of them once (buffered === 3 above).
    assert.ok(
      producer.stats().resent >= 3 && producer.stats().resent % 3 === 0,
      `resent ${producer.stats().resent}`,
    );

    const fourth = producer.send(text('r4'));
    const consumer = await connector(t, second.port, 'transcribe');
    await fourth;
    const deliveries = await take(consumer, 4);
    assert.deepEqual(deliveries.map(textOf), ['r1', 'r2', 'r3', 'r4'], 'resent ones before new ones');
    // The first hub may have passed them on before it went: the step after sees resends flagged.
    assert.deepEqual(
      deliveries.map((d) => d.redelivered),
      [true, true, true, false],
    );
    for (const d of deliveries) d.ack();
    await producer.drained();
    assert.equal(producer.stats().unacked, 0);
  });

  test("a producer whose stream breaks resends what the hub had already passed on: the consumer's second copy is flagged", async (t) => {
    const { port } = await startHub(t);
    const producer = await connector(t, port, 'ingest');
    const consumer = await connector(t, port, 'transcribe');
    await producer.send(text('once'));
    const [first] = await take(consumer, 1);
    assert.equal(first?.redelivered, false);

    producer.reconnect();
    const [second] = await take(consumer, 1);
    assert.equal(textOf(second as Delivery), 'once');
    assert.equal(second?.redelivered, true, 'the resent copy is flagged');
    for (const delivery of [first, second]) delivery.ack();
    await producer.drained();
    assert.equal(producer.stats().resent, 1);
  });

  test('PAUSE from the hub holds send until RESUME', async (t) => {
    const story = storyWith({ buffer: { maxMessages: 10 }, flow: { pausePct: 30, resumePct: 10 } });
    const { hub, port } = await startHub(t, { story });
    const producer = await connector(t, port, 'ingest');
    let sent = 0;
    while (!producer.stats().paused) {
      assert.ok(sent < 10, 'the hub paused the producer before its buffer filled');
      await producer.send(text(`b${++sent}`));
      await until(() => hub.stats().streams.buffered === sent, 'buffered');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(sent, 3, 'paused at 30 % of 10');

    const held = producer.send(text('held'));
    assert.equal(await settledSoon(held), false, 'send waits while paused');
    assert.equal(hub.stats().streams.buffered, 3, 'and nothing more reached the hub');
    assert.equal(producer.stats().waitingSends, 1);

    const consumer = await connector(t, port, 'transcribe');
    await held;
    assert.equal(producer.stats().paused, false);
    const deliveries = await take(consumer, 4);
    assert.deepEqual(deliveries.map(textOf), ['b1', 'b2', 'b3', 'held']);
  });

  test('send waits for room once maxUnacked packets are unacknowledged', async (t) => {
    const { port } = await startHub(t);
    const producer = await connector(t, port, 'ingest', { maxUnacked: 2 });
    await producer.send(text('a'));
    await producer.send(text('b'));
    const third = producer.send(text('c'));
    assert.equal(await settledSoon(third), false);
    const consumer = await connector(t, port, 'transcribe');
    const [a] = await take(consumer, 1);
    a?.ack();
    await third;
    assert.equal(producer.stats().unacked, 2);
  });

  test('a terminal status ends the connector with an error naming it', async (t) => {
    const { port } = await startHub(t);
    const lost = await connector(t, port, 'no-such-step');
    await assert.rejects(lost.closed, (error: unknown) => {
      assert.ok(error instanceof ConnectorRefusedError);
      assert.equal(error.status, 'NOT_FOUND');
      assert.match(error.message, /NOT_FOUND/);
      return true;
    });
    await assert.rejects(lost.send(text('x')), ConnectorRefusedError);
    await assert.rejects(lost.received().next(), ConnectorRefusedError);
  });

  test('close ends reading cleanly and refuses later sends', async (t) => {
    const { port } = await startHub(t);
    const c = await connector(t, port, 'transcribe');
    const reading = c.received().next();
    await c.close();
    assert.deepEqual(await reading, { done: true, value: undefined });
    await c.closed;
    await assert.rejects(c.send(text('late')), { code: 'WEFT_HUB_CONNECTOR_CLOSED' });
  });
});
