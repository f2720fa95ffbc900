// The webhook sink against a loopback HTTP server: what a receiver sees, and how a failing
// receiver is retried.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { FakeClock } from '../../src/internal/fake-clock.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { OutboxDrainer } from '../../src/runtime/egress/outbox-drainer.ts';
import { WebhookSink } from '../../src/runtime/egress/webhook-sink.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { OutboxRecord } from '../../src/runtime/store/state-store.ts';
import { RecordingLogger } from '../grid/recording-logger.ts';

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly method: string | undefined;
  readonly body: string;
}

/** A loopback server answering each request with the next status of `statuses` (then 200). */
async function receiver(
  t: TestContext,
  statuses: number[] = [],
): Promise<{ url: string; received: Received[]; next: () => Promise<Received> }> {
  const received: Received[] = [];
  const waiting: ((request: Received) => void)[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = {
        headers: request.headers,
        method: request.method,
        body: Buffer.concat(chunks).toString(),
      };
      received.push(entry);
      waiting.shift()?.(entry);
      const status = statuses.shift() ?? 200;
      if (status === 0) return; // never answer
      response.writeHead(status, { 'Content-Type': 'text/plain' });
      response.end(status === 200 ? 'ok' : 'receiver broke');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/orders`,
    received,
    next: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

const encoder = new TextEncoder();
const record = (seq: number, body: string): OutboxRecord => ({
  seq,
  egress: ['shop', 'orders'],
  value: { typename: 'shop/Order', value: encoder.encode(body) },
});

describe('WebhookSink', () => {
  test('POSTs each record with its type, an idempotency key and its bytes as the body', async (t) => {
    const server = await receiver(t);
    const sink = new WebhookSink({ url: server.url, headers: { Authorization: 'Bearer s3cret' } });
    t.after(() => sink.close());
    await sink.deliver([record(7, 'first'), record(8, 'second')]);
    assert.deepEqual(
      server.received.map((r) => r.body),
      ['first', 'second'],
    );
    const [first] = server.received;
    assert.ok(first);
    assert.equal(first.method, 'POST');
    assert.equal(first.headers['content-type'], 'application/octet-stream');
    assert.equal(first.headers['weft-type'], 'shop/Order');
    assert.equal(first.headers['idempotency-key'], 'weft-outbox-7');
    assert.equal(first.headers.authorization, 'Bearer s3cret');
    assert.equal(first.headers.connection, 'keep-alive');
  });

  test('an answer other than 2xx fails the delivery with its status and the start of its body', async (t) => {
    const server = await receiver(t, [503]);
    const sink = new WebhookSink({ url: server.url });
    t.after(() => sink.close());
    await assert.rejects(sink.deliver([record(1, 'x')]), {
      code: 'WEFT_EGRESS_DELIVERY_FAILED',
      status: 503,
      message: /answered 503 to outbox record 1: receiver broke/,
    });
  });

  test('a receiver that does not answer within timeoutMs (on the clock) fails the delivery', async (t) => {
    const server = await receiver(t, [0]);
    const clock = new FakeClock();
    const sink = new WebhookSink({ url: server.url, clock, timeoutMs: 1_000 });
    t.after(() => sink.close());
    const delivering = sink.deliver([record(1, 'x')]);
    await server.next();
    clock.advance(1_000);
    await assert.rejects(delivering, (error: Error & { code?: string; cause?: { code?: string } }) => {
      assert.equal(error.code, 'WEFT_EGRESS_DELIVERY_FAILED');
      assert.equal(error.cause?.code, 'WEFT_DEADLINE_EXCEEDED');
      return true;
    });
  });

  test('through the drainer: a 500 is retried after the backoff, with the same idempotency key', async (t) => {
    const server = await receiver(t, [500]);
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    await store.commit(
      [
        {
          address: ['shop', 'cart', 'c1'],
          egress: [
            { egress: ['shop', 'orders'], value: { typename: 'shop/Order', value: encoder.encode('o1') } },
          ],
        },
      ],
      0,
    );
    const drainer = new OutboxDrainer({
      store,
      clock,
      routes: new Map([['shop/orders', new WebhookSink({ url: server.url, clock })]]),
      logger: new RecordingLogger(),
      random: () => 0.5,
    });
    t.after(() => drainer.close());
    const failed = new Promise<void>((resolve) => {
      const unsubscribe = subscribeDiagnostics('weft:runtime:egress-failure', () => {
        unsubscribe();
        resolve();
      });
    });
    drainer.wake();
    await failed;
    assert.equal(server.received.length, 1);
    assert.equal((await store.outbox(10)).length, 1, 'not acknowledged after the 500');

    const retried = server.next();
    await clock.advanceAsync(100);
    await retried;
    await drainer.drained();
    assert.deepEqual(
      server.received.map((r) => r.headers['idempotency-key']),
      ['weft-outbox-1', 'weft-outbox-1'],
    );
    assert.deepEqual(await store.outbox(10), []);
    assert.equal(drainer.stats().delivered, 1);
  });

  test('a URL that is not http(s) and headers the sink sets itself are refused at construction', () => {
    assert.throws(() => new WebhookSink({ url: 'ftp://example.invalid/x' }), { code: 'WEFT_INVALID_CONFIG' });
    assert.throws(() => new WebhookSink({ url: 'http://127.0.0.1/x', headers: { 'Idempotency-Key': 'k' } }), {
      code: 'WEFT_INVALID_CONFIG',
    });
    assert.throws(() => new WebhookSink({ url: 'http://127.0.0.1/x', headers: { 'X-Evil': 'a\r\nb: c' } }), {
      code: 'WEFT_INVALID_CONFIG',
    });
  });
});
