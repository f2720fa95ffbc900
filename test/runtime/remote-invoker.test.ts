// The client for remote functions against real HTTP servers on loopback, created here, and the
// official Apache Flink StateFun JavaScript SDK served by node:http. Time is a FakeClock: `settle`
// moves it in 1 ms steps, yielding to the event loop between steps so that the sockets do their
// work, until the invocation settles. Nothing sleeps on wall time, and only fake time is asserted.

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { callScope } from '../../src/internal/deadline.ts';
import {
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
} from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import {
  EndpointError,
  InvalidReplyError,
  InvocationFailedError,
  UnknownFunctionTypeError,
} from '../../src/runtime/errors.ts';
import type { FunctionType } from '../../src/runtime/function-invoker.ts';
import type { EndpointSpec } from '../../src/runtime/remote/endpoint-config.ts';
import {
  RemoteInvoker,
  remoteRetryChannel,
  type RemoteRetryEvent,
} from '../../src/runtime/remote/remote-invoker.ts';
import { stringType } from '../../src/statefun/primitive-types.ts';
import { describeReply, official, toFunction, typed } from '../compat/official-sdk.ts';

const OCTET_STREAM = 'application/octet-stream';
const cart: FunctionType = { namespace: 'shop', name: 'cart' };
const request = new Uint8Array([0xa2, 0x06, 0x00, 0x01, 0x02, 0xff]);
const asText = (reply: Uint8Array): string => Buffer.from(reply).toString('utf8');

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly received: Received[];
  /** Exchanges whose connection closed before the server answered. */
  readonly abandoned: () => number;
}

/** A loopback server that records each request and lets `respond` answer it (or not). */
async function serve(
  t: TestContext,
  respond: (res: http.ServerResponse, index: number, req: Received) => unknown,
  host = '127.0.0.1',
): Promise<TestServer> {
  const received: Received[] = [];
  let abandoned = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      received.push(entry);
      res.on('close', () => {
        if (!res.writableFinished) abandoned += 1;
      });
      respond(res, received.length - 1, entry);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { origin, received, abandoned: () => abandoned };
}

/** An origin where nothing listens: a port that was just free. */
async function deadOrigin(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const octets = (res: http.ServerResponse, body: string | Uint8Array, status = 200): http.ServerResponse =>
  res.writeHead(status, { 'Content-Type': OCTET_STREAM }).end(body);

function invokerFor(
  t: TestContext,
  endpoints: readonly EndpointSpec[],
  maxInFlight?: number,
): { invoker: RemoteInvoker; clock: FakeClock } {
  const clock = new FakeClock();
  const invoker = new RemoteInvoker({
    endpoints,
    clock,
    random: () => 0.5,
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
  });
  t.after(() => invoker.close());
  return { invoker, clock };
}

/** Moves fake time in small steps, letting real I/O run in between, until `promise` settles. */
async function settle(clock: FakeClock, promise: Promise<unknown>, stepMs = 1): Promise<void> {
  const state = { settled: false };
  const done = (): void => {
    state.settled = true;
  };
  promise.then(done, done);
  for (let steps = 0; !state.settled; steps += 1) {
    if (steps > 200_000) throw new Error('the invocation never settled');
    await clock.advanceAsync(stepMs);
  }
}

/** Lets real I/O run without moving fake time, until `done()` holds. */
async function untilIo(done: () => boolean): Promise<void> {
  for (let turns = 0; !done(); turns += 1) {
    if (turns > 100_000) throw new Error('the expected I/O never happened');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Collects the retry events published while a test runs. */
function recordRetries(t: TestContext): RemoteRetryEvent[] {
  const events: RemoteRetryEvent[] = [];
  t.after(
    subscribeDiagnostics(remoteRetryChannel.name, (message) => events.push(message as RemoteRetryEvent)),
  );
  return events;
}

describe('RemoteInvoker: requests', () => {
  test('routes ns/* and ns/name to their URLs, with the function name percent-encoded', async (t) => {
    const server = await serve(t, (res, _i, req) => octets(res, req.url));
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/any/{function.name}` },
      { functions: 'shop/cart', urlPathTemplate: `${server.origin}/cart-only?fn={function.name}` },
      { functions: 'com.example/shop/*', urlPathTemplate: `${server.origin}/nested/{function.name}/x` },
      { functions: 'all/*', urlPathTemplate: `${server.origin}/statefun` },
    ]);
    const pathFor = async (type: FunctionType): Promise<string> => {
      const reply = invoker.invoke(type, request, asText);
      await settle(clock, reply);
      return reply;
    };
    assert.equal(await pathFor(cart), '/cart-only?fn=cart');
    assert.equal(await pathFor({ namespace: 'shop', name: 'checkout' }), '/any/checkout');
    assert.equal(await pathFor({ namespace: 'shop', name: 'a b/ü?' }), '/any/a%20b%2F%C3%BC%3F');
    assert.equal(await pathFor({ namespace: 'com.example/shop', name: 'order' }), '/nested/order/x');
    assert.equal(await pathFor({ namespace: 'all', name: 'anything' }), '/statefun');

    assert.equal(invoker.serves({ namespace: 'shop', name: 'x' }), true);
    assert.equal(invoker.serves({ namespace: 'shop/sub', name: 'x' }), false, 'ns/* is one namespace only');
    assert.equal(invoker.serves({ namespace: 'com.example', name: 'shop' }), false);
    await assert.rejects(
      invoker.invoke({ namespace: 'other', name: 'x' }, request, asText),
      UnknownFunctionTypeError,
    );
  });

  test('sends a POST with the StateFun headers and the request bytes, and accepts a 200 octet-stream', async (t) => {
    const server = await serve(t, (res) => octets(res, 'reply bytes'));
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/{function.name}` },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    assert.equal(await reply, 'reply bytes');

    const [received] = server.received;
    assert.ok(received);
    assert.equal(received.method, 'POST');
    assert.equal(received.url, '/cart');
    assert.equal(received.headers['content-type'], OCTET_STREAM);
    assert.equal(received.headers.accept, OCTET_STREAM);
    assert.equal(received.headers['user-agent'], 'weft-runtime');
    assert.equal(received.headers['content-length'], String(request.length));
    assert.equal(received.headers.host, new URL(server.origin).host);
    assert.deepEqual(new Uint8Array(received.body), request);
    assert.deepEqual(invoker.stats(), {
      attempts: 1,
      retries: 0,
      succeeded: 1,
      failed: 0,
      aborted: 0,
      refused: 0,
      inFlight: 0,
    });
  });

  test('a reply that arrives in several chunks is accepted whole', async (t) => {
    const server = await serve(t, (res) => {
      res.writeHead(200, { 'Content-Type': OCTET_STREAM });
      res.write('first, ');
      setImmediate(() => res.write('second, '));
      setImmediate(() => setImmediate(() => res.end('third')));
    });
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    assert.equal(await reply, 'first, second, third');
  });

  test('an endpoint on an IPv6 literal is reached, with the Host header it is named by', async (t) => {
    const server = await serve(t, (res) => octets(res, 'over IPv6'), '::1').catch(() => undefined);
    if (server === undefined) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/{function.name}` },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    assert.equal(await reply, 'over IPv6');
    assert.equal(server.received[0]?.headers.host, new URL(server.origin).host);
  });

  test('the content type is compared case-insensitively', async (t) => {
    const server = await serve(t, (res) =>
      res.writeHead(200, { 'Content-Type': 'Application/Octet-Stream' }).end('ok'),
    );
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    assert.equal(await reply, 'ok');
  });

  test('an endpoint that fails twice and then answers is retried until it answers', async (t) => {
    const server = await serve(t, (res, index) => {
      if (index < 2) res.writeHead(503).end('warming up');
      else octets(res, 'finally');
    });
    const retries = recordRetries(t);
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    assert.equal(await reply, 'finally');
    assert.equal(server.received.length, 3);
    assert.ok(
      server.received.every((r) => r.body.equals(request)),
      'the whole request is sent again',
    );
    assert.deepEqual(
      retries.map((e) => [e.functionType, e.attempt, e.error.status, e.delayMs]),
      [
        ['shop/cart', 1, 503, 2],
        ['shop/cart', 2, 503, 4],
      ],
    );
    assert.equal(invoker.stats().retries, 2);
  });
});

describe('RemoteInvoker: failures are retried within the call budget, then surfaced', () => {
  const budgetMs = 300;

  interface Case {
    readonly name: string;
    /** Answers each request; undefined: nothing listens. */
    readonly respond: ((res: http.ServerResponse) => unknown) | undefined;
    readonly accept?: (reply: Uint8Array) => string;
    readonly status: number | undefined;
    readonly body: string | undefined;
    readonly failure: RegExp;
  }

  const refuseGarbage = (reply: Uint8Array): string => {
    throw new InvalidReplyError(`not a FromFunction: ${asText(reply)}`);
  };

  const cases: Case[] = [
    {
      name: 'an endpoint that is down',
      respond: undefined,
      status: undefined,
      body: undefined,
      failure: /ECONNREFUSED/,
    },
    {
      name: 'one that resets the connection',
      respond: (res) => res.socket?.destroy(),
      status: undefined,
      body: undefined,
      failure: /request failed/,
    },
    {
      name: 'one that answers 500 with a body',
      respond: (res) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end('boom: state type mismatch'),
      status: 500,
      body: 'boom: state type mismatch',
      failure: /status 500/,
    },
    {
      name: 'one that answers 200 as application/json',
      respond: (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}'),
      status: 200,
      body: '{"ok":true}',
      failure: /content type "application\/json"/,
    },
    {
      name: 'one that answers 200 as text/plain',
      respond: (res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('hello'),
      status: 200,
      body: 'hello',
      failure: /content type "text\/plain"/,
    },
    {
      name: 'one that adds a charset to the content type',
      respond: (res) => res.writeHead(200, { 'Content-Type': `${OCTET_STREAM}; charset=utf-8` }).end('x'),
      status: 200,
      body: 'x',
      failure: /charset/,
    },
    {
      name: 'one that answers 200 without a body',
      respond: (res) => octets(res, ''),
      status: 200,
      body: undefined,
      failure: /empty body/,
    },
    {
      name: 'one that answers garbage the decoder refuses',
      respond: (res) => octets(res, 'garbage'),
      accept: refuseGarbage,
      status: 200,
      body: 'garbage',
      failure: /reply refused: not a FromFunction: garbage/,
    },
  ];

  for (const c of cases) {
    test(`${c.name}: retried, then an InvocationFailedError naming the last failure`, async (t) => {
      const server = c.respond === undefined ? undefined : await serve(t, c.respond);
      const origin = server?.origin ?? (await deadOrigin());
      const url = `${origin}/fn/cart`;
      const retries = recordRetries(t);
      const { invoker, clock } = invokerFor(t, [
        { functions: 'shop/*', urlPathTemplate: `${origin}/fn/{function.name}`, callTimeoutMs: budgetMs },
      ]);
      const reply = invoker.invoke(cart, request, c.accept ?? asText);
      await settle(clock, reply);

      const attempts = invoker.stats().attempts;
      assert.ok(attempts > 1, `retried (${attempts} attempts)`);
      if (server !== undefined)
        assert.equal(server.received.length, attempts, 'every attempt reached the server');
      assert.equal(retries.length, attempts - 1);
      assert.ok(retries.every((e) => e.url === url && e.functionType === 'shop/cart'));
      await assert.rejects(reply, (error: unknown) => {
        assert.ok(error instanceof InvocationFailedError);
        assert.equal(error.functionType, 'shop/cart');
        assert.equal(error.retryable, true);
        assert.match(error.message, /shop\/cart/);
        assert.ok(error.message.includes(url), error.message);
        assert.match(error.message, new RegExp(`after ${attempts} attempts`));
        assert.match(error.message, c.failure);
        assert.ok(error.cause instanceof EndpointError);
        assert.equal(error.cause.url, url);
        assert.equal(error.cause.status, c.status);
        assert.equal(error.cause.body, c.body);
        return true;
      });
      assert.deepEqual(
        { failed: invoker.stats().failed, inFlight: invoker.stats().inFlight },
        { failed: 1, inFlight: 0 },
      );
      assert.equal(clock.pendingTimers, 0, 'no timer left behind');
    });
  }

  test('an error body is cut to its first 1 KiB', async (t) => {
    const server = await serve(t, (res) => res.writeHead(500).end('e'.repeat(5_000)));
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f`, callTimeoutMs: 20 },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    await assert.rejects(reply, (error: unknown) => {
      assert.ok(error instanceof InvocationFailedError && error.cause instanceof EndpointError);
      assert.equal(error.cause.body, 'e'.repeat(1024));
      return true;
    });
  });

  test('an endpoint that never answers: the attempt is aborted when the budget ends, not before', async (t) => {
    const server = await serve(t, () => undefined);
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f`, callTimeoutMs: budgetMs },
    ]);
    const state = { settled: false };
    const reply = invoker.invoke(cart, request, asText);
    const done = (): void => {
      state.settled = true;
    };
    reply.then(done, done);
    await untilIo(() => server.received.length === 1);
    await clock.advanceAsync(budgetMs - 1);
    assert.equal(state.settled, false, 'still waiting within the budget');
    await settle(clock, reply);
    await assert.rejects(reply, (error: unknown) => {
      assert.ok(error instanceof InvocationFailedError && error.cause instanceof EndpointError);
      assert.match(error.message, /after 1 attempt within 300 ms: no reply before the call budget ran out/);
      return true;
    });
    await untilIo(() => server.abandoned() === 1);
    assert.equal(server.received.length, 1);
  });

  test('a reply larger than maxReplyBytes is refused, whether declared or streamed', async (t) => {
    const server = await serve(t, (res, index) => {
      if (index % 2 === 0) {
        octets(res, 'x'.repeat(100));
      } else {
        // No Content-Length: chunked, refused once the bytes pass the limit.
        res.writeHead(200, { 'Content-Type': OCTET_STREAM });
        res.write('y'.repeat(10));
        res.write('y'.repeat(10));
        res.end();
      }
    });
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f`, callTimeoutMs: 50, maxReplyBytes: 16 },
    ]);
    const reply = invoker.invoke(cart, request, asText);
    await settle(clock, reply);
    await assert.rejects(reply, /reply body larger than 16 bytes refused/);
    assert.ok(server.received.length >= 2, 'both kinds were tried');
  });

  test('a remote failure shows the stack of the code that invoked', async (t) => {
    const origin = await deadOrigin();
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${origin}/f`, callTimeoutMs: 10 },
    ]);
    async function placeOrderForTest(): Promise<string> {
      return await invoker.invoke(cart, request, asText);
    }
    const reply = placeOrderForTest();
    await settle(clock, reply);
    await assert.rejects(reply, (error: unknown) => {
      assert.ok(error instanceof InvocationFailedError);
      assert.match(error.stack ?? '', /placeOrderForTest/);
      return true;
    });
  });
});

describe('RemoteInvoker: aborting and closing', () => {
  test('the caller’s signal aborts the invocation with its reason, and the request with it', async (t) => {
    const server = await serve(t, () => undefined);
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const controller = new AbortController();
    const reason = new Error('the batch was cancelled');
    const reply = invoker.invoke(cart, request, asText, controller.signal);
    await untilIo(() => server.received.length === 1);
    controller.abort(reason);
    await settle(clock, reply);
    await assert.rejects(reply, (error) => error === reason);
    await untilIo(() => server.abandoned() === 1);
    assert.equal(invoker.stats().aborted, 1);
    assert.equal(clock.pendingTimers, 0);

    const already = AbortSignal.abort(reason);
    await assert.rejects(invoker.invoke(cart, request, asText, already), (error) => error === reason);
    assert.equal(server.received.length, 1, 'an aborted signal sends nothing');
  });

  test('a signal that aborts during the wait between attempts ends the invocation', async (t) => {
    const server = await serve(t, (res) => res.writeHead(500).end());
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const controller = new AbortController();
    const reply = invoker.invoke(cart, request, asText, controller.signal);
    await untilIo(() => server.received.length === 1 && invoker.stats().retries === 1);
    controller.abort(new Error('stop'));
    await settle(clock, reply);
    await assert.rejects(reply, /stop/);
    assert.equal(server.received.length, 1);
  });

  test('one signal shared by many invocations aborts them all, and keeps no listener after', async (t) => {
    const server = await serve(t, (res, _i, req) => {
      if (req.url === '/quick') octets(res, 'done');
    });
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/{function.name}` },
    ]);
    const quick: FunctionType = { namespace: 'shop', name: 'quick' };
    const stuck: FunctionType = { namespace: 'shop', name: 'stuck' };
    const controller = new AbortController();
    const { signal } = controller;

    const answered = [1, 2, 3].map(() => invoker.invoke(quick, request, asText, signal));
    await settle(clock, Promise.all(answered));
    assert.deepEqual(await Promise.all(answered), ['done', 'done', 'done']);
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'no listener once none is in flight');

    const waiting = [1, 2].map(() => invoker.invoke(stuck, request, asText, signal));
    const other = invoker.invoke(stuck, request, asText);
    await untilIo(() => server.received.length === 6);
    const reason = new Error('the batch was cancelled');
    controller.abort(reason);
    await settle(clock, Promise.allSettled(waiting));
    for (const reply of waiting) await assert.rejects(reply, (error) => error === reason);
    assert.equal(invoker.stats().inFlight, 1, 'an invocation without the signal goes on');
    await untilIo(() => server.abandoned() === 2);
    assert.equal(invoker.stats().aborted, 2);
    await invoker.close();
    await settle(
      clock,
      other.catch(() => undefined),
    );
  });

  test('a caller signal that carries a deadline ends the invocation there, before its budget', async (t) => {
    const server = await serve(t, () => undefined);
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f`, callTimeoutMs: 10_000 },
    ]);
    const scope = callScope(clock, { timeoutMs: 50 });
    t.after(() => {
      scope.dispose();
    });
    const state = { settled: false };
    const reply = invoker.invoke(cart, request, asText, scope.signal);
    const done = (): void => {
      state.settled = true;
    };
    reply.then(done, done);
    await untilIo(() => server.received.length === 1);
    await clock.advanceAsync(49);
    assert.equal(state.settled, false);
    await settle(clock, reply);
    await assert.rejects(reply, DeadlineExceededError);
    assert.equal(clock.now(), 50);
    await untilIo(() => server.abandoned() === 1);
    assert.equal(clock.pendingTimers, 0);
  });

  test('close() aborts what is in flight with a ClosedError and refuses later invocations', async (t) => {
    const server = await serve(t, () => undefined);
    const { invoker, clock } = invokerFor(t, [
      { functions: 'shop/*', urlPathTemplate: `${server.origin}/f` },
    ]);
    const first = invoker.invoke(cart, request, asText);
    const second = invoker.invoke({ namespace: 'shop', name: 'order' }, request, asText);
    await untilIo(() => server.received.length === 2);
    await invoker.close();
    await settle(clock, Promise.allSettled([first, second]));
    await assert.rejects(first, ClosedError);
    await assert.rejects(second, ClosedError);
    await untilIo(() => server.abandoned() === 2);
    await assert.rejects(invoker.invoke(cart, request, asText), ClosedError);
    assert.equal(invoker.stats().inFlight, 0);
  });

  test('invocations past maxInFlight are refused and counted', async (t) => {
    const server = await serve(t, () => undefined);
    const { invoker } = invokerFor(t, [{ functions: 'shop/*', urlPathTemplate: `${server.origin}/f` }], 1);
    const first = invoker.invoke(cart, request, asText);
    first.catch(() => undefined);
    await assert.rejects(invoker.invoke(cart, request, asText), CapacityExceededError);
    assert.equal(invoker.stats().refused, 1);
  });
});

describe('RemoteInvoker: endpoint specs', () => {
  const ok = { functions: 'shop/*', urlPathTemplate: 'http://127.0.0.1:1/{function.name}' };
  const cases: [string, unknown, string][] = [
    ['not a list', 'shop/*', 'endpoints'],
    ['a spec that is not an object', [null], 'endpoints[0]'],
    ['functions without a slash', [{ ...ok, functions: 'shop' }], 'endpoints[0].functions'],
    ['functions with an empty name', [{ ...ok, functions: 'shop/' }], 'endpoints[0].functions'],
    ['functions with an empty namespace', [{ ...ok, functions: '/cart' }], 'endpoints[0].functions'],
    ['a wildcard in the namespace', [{ ...ok, functions: '*/cart' }], 'endpoints[0].functions'],
    ['a partial wildcard', [{ ...ok, functions: 'shop/ca*' }], 'endpoints[0].functions'],
    ['a missing template', [{ functions: 'shop/*' }], 'endpoints[0].urlPathTemplate'],
    [
      'a template that is no URL',
      [{ ...ok, urlPathTemplate: 'not a url/{function.name}' }],
      'endpoints[0].urlPathTemplate',
    ],
    [
      'a template of another scheme',
      [{ ...ok, urlPathTemplate: 'ftp://host/{function.name}' }],
      'endpoints[0].urlPathTemplate',
    ],
    [
      'the name in the host',
      [{ ...ok, urlPathTemplate: 'http://{function.name}.svc/' }],
      'endpoints[0].urlPathTemplate',
    ],
    [
      'credentials in the URL',
      [{ ...ok, urlPathTemplate: 'http://u:p@host/f' }],
      'endpoints[0].urlPathTemplate',
    ],
    ['a fragment', [{ ...ok, urlPathTemplate: 'http://host/f#x' }], 'endpoints[0].urlPathTemplate'],
    ['a zero timeout', [{ ...ok, callTimeoutMs: 0 }], 'endpoints[0].callTimeoutMs'],
    ['a fractional connect timeout', [{ ...ok, connectTimeoutMs: 1.5 }], 'endpoints[0].connectTimeoutMs'],
    ['a negative pool size', [{ ...ok, maxConnections: -1 }], 'endpoints[0].maxConnections'],
    ['a string pool TTL', [{ ...ok, poolTtlMs: '15s' }], 'endpoints[0].poolTtlMs'],
    ['an infinite reply limit', [{ ...ok, maxReplyBytes: Infinity }], 'endpoints[0].maxReplyBytes'],
    ['a misspelt field', [{ ...ok, callTimeout: 5 }], 'endpoints[0].callTimeout'],
    ['the same pattern twice', [ok, { ...ok }], 'endpoints[1].functions'],
    [
      'the same function twice',
      [{ ...ok, functions: 'a/b' }, ok, { ...ok, functions: 'a/b' }],
      'endpoints[2].functions',
    ],
  ];
  for (const [name, endpoints, field] of cases) {
    test(`${name} is a ConfigError naming ${field}`, () => {
      assert.throws(
        () => new RemoteInvoker({ endpoints: endpoints as EndpointSpec[] }),
        (error: unknown) => error instanceof ConfigError && error.field === field,
      );
    });
  }

  test('a specific spec and its namespace’s wildcard are not duplicates', () => {
    const invoker = new RemoteInvoker({
      endpoints: [ok, { functions: 'shop/cart', urlPathTemplate: 'https://cart.example/f' }],
    });
    assert.equal(invoker.serves(cart), true);
    return invoker.close();
  });
});

describe('RemoteInvoker: the official StateFun JS SDK as the remote function', () => {
  test('its handler accepts our requests and its replies are accepted', async (t) => {
    const statefun = new official.StateFun();
    statefun.bind<{ seen: number | null }>({
      typename: 'example/greeter',
      specs: [{ name: 'seen', type: official.StateFun.intType() }],
      fn(context) {
        context.storage.seen = (context.storage.seen ?? 0) + 1;
      },
    });
    const handle = statefun.handler();
    const server = http.createServer((req, res) => {
      void handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const { port } = server.address() as AddressInfo;
    const { invoker, clock } = invokerFor(t, [
      { functions: 'example/*', urlPathTemplate: `http://127.0.0.1:${port}/statefun/{function.name}` },
    ]);
    const greeter: FunctionType = { namespace: 'example', name: 'greeter' };

    const first = invoker.invoke(
      greeter,
      toFunction('example/greeter/alice', [], [{ argument: typed(stringType, 'Bob') }]),
      describeReply,
    );
    await settle(clock, first);
    const incomplete = await first;
    assert.equal(incomplete.kind, 'incomplete');
    assert.deepEqual(
      incomplete.missing.map((m) => m.name),
      ['seen'],
    );

    const second = invoker.invoke(
      greeter,
      toFunction('example/greeter/alice', [['seen', undefined]], [{ argument: typed(stringType, 'Bob') }]),
      describeReply,
    );
    await settle(clock, second);
    const result = await second;
    assert.equal(result.kind, 'result');
    assert.deepEqual(
      result.mutations.map((m) => [m.type, m.name, m.value?.value]),
      [['MODIFY', 'seen', 1]],
    );
    assert.equal(invoker.stats().attempts, 2, 'neither reply was refused');
  });
});
