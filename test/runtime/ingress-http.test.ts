// The HTTP ingress behind a real loopback server, spoken to with fetch (and raw sockets where a
// client misbehaves).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { httpIngressHandler, type HttpIngressOptions } from '../../src/runtime/ingress/http-ingress.ts';
import { FakeRuntimeInput } from './ingress-fake-input.ts';

const STRING_TYPE = 'io.statefun.types/string';

interface Served {
  readonly url: string;
  readonly port: number;
  readonly handler: ReturnType<typeof httpIngressHandler>;
  readonly server: http.Server;
}

async function serve(t: TestContext, input: FakeRuntimeInput, options?: HttpIngressOptions): Promise<Served> {
  const handler = httpIngressHandler(input, options);
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, port, handler, server };
}

function post(
  url: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'Weft-Message-Type': STRING_TYPE, ...headers } });
}

async function expectStatus(response: Response, status: number, reason?: RegExp): Promise<string> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  if (reason !== undefined) {
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(text, reason);
  }
  return text;
}

describe('http ingress', () => {
  test('a POST is appended to the addressed inbox and answered 202 once durable', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input);
    const response = await post(`${url}/ingress/shop/cart/7`, 'two apples');
    assert.equal(response.status, 202);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const appended = input.appended[0];
    assert.deepEqual(await response.json(), { seq: appended?.seq, duplicate: false });
    const [message] = await input.inbox(['shop', 'cart', '7']);
    assert.ok(message);
    assert.equal(message.argument.typename, STRING_TYPE);
    assert.equal(Buffer.from(message.argument.value).toString(), 'two apples');
    assert.equal(message.ingressId, undefined);
    assert.equal(message.caller, undefined);
    assert.equal(handler.stats().accepted, 1);
  });

  test('the last segment is the id, the one before the name, and the rest the namespace', async (t) => {
    const input = new FakeRuntimeInput(['example.com/shop/cart']);
    const { url } = await serve(t, input);
    const response = await post(`${url}/ingress/example.com/shop/cart/user%20%C3%A9%2F7?ignored=1`, '');
    await expectStatus(response, 202);
    const [message] = await input.inbox(['example.com/shop', 'cart', 'user é/7']);
    assert.ok(message !== undefined, 'stored under the decoded address');
    assert.equal(message.argument.value.length, 0, 'an empty body is an empty value');
  });

  test('a mounted prefix is honoured and paths outside it go to next', async (t) => {
    const input = new FakeRuntimeInput();
    const handler = httpIngressHandler(input, { pathPrefix: '/api/in/' });
    const server = http.createServer((request, response) => {
      handler(request, response, () => {
        response.writeHead(418).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as net.AddressInfo;
    await expectStatus(await post(`http://127.0.0.1:${port}/api/in/shop/cart/1`, 'x'), 202);
    await expectStatus(await post(`http://127.0.0.1:${port}/ingress/shop/cart/1`, 'x'), 418);
  });

  test('a path outside the prefix is a 404 without next', async (t) => {
    const { url, handler } = await serve(t, new FakeRuntimeInput());
    await expectStatus(await post(`${url}/elsewhere/shop/cart/1`, 'x'), 404, /not an ingress path/);
    assert.equal(handler.stats().badRequests, 1);
  });

  test('malformed paths are answered 400 with the reason', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input);
    const cases: [string, RegExp][] = [
      ['/ingress/shop/cart', /expected \/ingress\/\{namespace\}\/\{name\}\/\{id\}/],
      ['/ingress/shop//7', /segment 2 is empty/],
      ['/ingress/shop/cart/', /segment 3 is empty/],
      ['/ingress/shop/cart/%E0%A4%A', /segment 3 is not valid percent-encoding/],
      ['/ingress/shop/ca%2Frt/7', /the name contains a slash/],
    ];
    for (const [path, reason] of cases) await expectStatus(await post(`${url}${path}`, 'x'), 400, reason);
    assert.equal(handler.stats().badRequests, cases.length);
    assert.equal(input.sendCalls, 0);
  });

  test('a missing or invalid message type is a 400 naming the header', async (t) => {
    const input = new FakeRuntimeInput();
    const { url } = await serve(t, input);
    const missing = await fetch(`${url}/ingress/shop/cart/7`, { method: 'POST', body: 'x' });
    await expectStatus(missing, 400, /Weft-Message-Type/);
    await expectStatus(
      await post(`${url}/ingress/shop/cart/7`, 'x', { 'Weft-Message-Type': 'no-slash' }),
      400,
      /Weft-Message-Type.*expected namespace\/name/,
    );
    assert.equal(input.sendCalls, 0);
  });

  test('a function type nobody serves is a 404, before the body is read', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input);
    await expectStatus(await post(`${url}/ingress/shop/basket/7`, 'x'), 404, /shop\/basket/);
    assert.equal(input.sendCalls, 0);
    // Served when checked, refused when sent (its endpoint went away): a 404 too.
    input.servesType = () => true;
    await expectStatus(await post(`${url}/ingress/shop/basket/7`, 'x'), 404, /shop\/basket/);
    assert.equal(handler.stats().unknownType, 2);
  });

  test('anything but POST is a 405 with Allow', async (t) => {
    const { url } = await serve(t, new FakeRuntimeInput());
    const response = await fetch(`${url}/ingress/shop/cart/7`);
    await expectStatus(response, 405, /only POST/);
    assert.equal(response.headers.get('allow'), 'POST');
  });

  test('a retry with the same Idempotency-Key is stored once and answered as a duplicate', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input);
    const headers = { 'Idempotency-Key': 'order-7/attempt' };
    const first = await post(`${url}/ingress/shop/cart/7`, 'x', headers);
    const second = await post(`${url}/ingress/shop/cart/7`, 'x', headers);
    const firstBody = (await first.json()) as { seq: number; duplicate: boolean };
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.deepEqual(await second.json(), { seq: firstBody.seq, duplicate: true });
    assert.equal(firstBody.duplicate, false);
    const inbox = await input.inbox(['shop', 'cart', '7']);
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]?.ingressId, 'http:order-7/attempt');
    assert.deepEqual([handler.stats().accepted, handler.stats().duplicates], [1, 1]);
  });

  test('an Idempotency-Key that is not 1 to 256 visible ASCII characters is a 400', async (t) => {
    const input = new FakeRuntimeInput();
    const { url } = await serve(t, input);
    for (const key of ['has space', 'k'.repeat(257)]) {
      await expectStatus(
        await post(`${url}/ingress/shop/cart/7`, 'x', { 'Idempotency-Key': key }),
        400,
        /Idempotency-Key/,
      );
    }
    await expectStatus(
      await post(`${url}/ingress/shop/cart/7`, 'x', { 'Idempotency-Key': 'k'.repeat(256) }),
      202,
    );
    assert.equal(input.sendCalls, 1);
  });

  test('a declared body over the limit is a 413 without reading it', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input, { maxBodyBytes: 8 });
    await expectStatus(await post(`${url}/ingress/shop/cart/7`, '123456789'), 413, /exceeds 8 bytes/);
    await expectStatus(await post(`${url}/ingress/shop/cart/7`, '12345678'), 202);
    assert.equal(handler.stats().tooLarge, 1);
  });

  test('a streamed body that grows over the limit is a 413 and the connection is closed', async (t) => {
    const input = new FakeRuntimeInput();
    const { port, handler } = await serve(t, input, { maxBodyBytes: 1024 });
    const request = http.request({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/ingress/shop/cart/7',
      headers: { 'Weft-Message-Type': STRING_TYPE, 'Transfer-Encoding': 'chunked' },
    });
    request.on('error', () => undefined);
    const answered = new Promise<http.IncomingMessage>((resolve) => request.once('response', resolve));
    request.write(Buffer.alloc(1000));
    request.write(Buffer.alloc(1000));
    const response = await answered;
    assert.equal(response.statusCode, 413);
    assert.equal(response.headers.connection, 'close');
    response.resume();
    request.destroy();
    assert.equal(handler.stats().tooLarge, 1);
    assert.equal(input.sendCalls, 0);
  });

  test('under backpressure the answer is 503 with Retry-After, and nothing is stored', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input, { retryAfterSeconds: 3 });
    input.setBusy(true);
    const response = await post(`${url}/ingress/shop/cart/7`, 'x');
    await expectStatus(response, 503, /busy/);
    assert.equal(response.headers.get('retry-after'), '3');
    input.setBusy(false);
    await expectStatus(await post(`${url}/ingress/shop/cart/7`, 'x'), 202);
    assert.equal((await input.inbox(['shop', 'cart', '7'])).length, 1);
    assert.equal(handler.stats().refusedBusy, 1);
  });

  test('a closing runtime is a 503', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, handler } = await serve(t, input);
    input.closed = true;
    const response = await post(`${url}/ingress/shop/cart/7`, 'x');
    await expectStatus(response, 503, /shutting down/);
    assert.equal(response.headers.get('retry-after'), null);
    assert.equal(handler.stats().refusedClosed, 1);
  });

  test('any other failure is a logged 500 that tells the client nothing more', async (t) => {
    const input = new FakeRuntimeInput();
    const logged: unknown[] = [];
    const logger = { warn: () => undefined, error: (_: string, details?: unknown) => logged.push(details) };
    const { url, handler } = await serve(t, input, { logger });
    input.failure = new Error('disk on fire at /var/lib/secret');
    const text = await expectStatus(await post(`${url}/ingress/shop/cart/7`, 'x'), 500, /internal error/);
    assert.doesNotMatch(text, /secret/);
    assert.equal(logged.length, 1);
    assert.deepEqual(logged[0], { error: input.failure });
    assert.equal(handler.stats().failed, 1);
  });

  test('a client that disconnects mid-body stores nothing and harms no one', async (t) => {
    const input = new FakeRuntimeInput();
    const { url, port, handler, server } = await serve(t, input);
    const closed = new Promise<void>((resolve) => {
      server.once('request', (request: http.IncomingMessage) => request.once('close', resolve));
    });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      'POST /ingress/shop/cart/7 HTTP/1.1\r\nHost: x\r\n' +
        `Weft-Message-Type: ${STRING_TYPE}\r\nContent-Length: 100\r\n\r\n0123456789`,
    );
    // Reset, not a polite close: the request errors on the server side.
    socket.resetAndDestroy();
    await closed;
    assert.equal(handler.stats().abandoned, 1);
    assert.equal(input.sendCalls, 0);
    await expectStatus(await post(`${url}/ingress/shop/cart/7`, 'x'), 202);
  });
});
