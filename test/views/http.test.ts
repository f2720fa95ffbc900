// The views HTTP handler on a real loopback server: Consul-style blocking queries and
// Server-Sent Events over a real publisher, materializer and store. Every timer (waits,
// heartbeats, idle expiry) runs on a FakeClock; the tests follow socket I/O turn by turn
// and never sleep.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import fc from 'fast-check';

import { FakeClock } from '../../src/testing/index.ts';
import {
  EntryEvictingError,
  EventPublisher,
  Materializer,
  MapView,
  putEvent,
  UnauthorizedError,
  UnknownTopicError,
  ViewStore,
  viewsHttpHandler,
  type FetchOptions,
  type MapChange,
  type SharedMaterializer,
  type ViewFactory,
  type ViewResult,
  type ViewsHttpHandler,
  type ViewsHttpOptions,
} from '../../src/views/index.ts';
import { eventually, turn } from '../grid/reliability-harness.ts';

interface Harness {
  readonly clock: FakeClock;
  readonly publisher: EventPublisher;
  readonly store: ViewStore;
  readonly handler: ViewsHttpHandler;
  /** Every response the server made, in order, to look at its buffering. */
  readonly responses: http.ServerResponse[];
  readonly logged: string[];
  readonly base: string;
  /** Sets `key` in the `members` topic; returns the new index. */
  put(key: string, value: unknown): number;
  url(path: string): string;
}

async function serve(t: TestContext, options: Partial<ViewsHttpOptions> = {}): Promise<Harness> {
  const clock = new FakeClock();
  const publisher = new EventPublisher();
  const state = new Map<string, unknown>();
  publisher.registerTopic<MapChange<unknown>>('members', {
    snapshot: () => ({
      index: publisher.index('members'),
      events: [...state].map(([key, value]) => putEvent(key, value)),
    }),
  });
  const store = new ViewStore({ clock });
  const members: ViewFactory = (query) => {
    if (query.has('near')) throw new TypeError('near cannot be served from a view');
    return {
      key: 'members',
      newMaterializer: () =>
        new Materializer({
          source: (request, signal) => publisher.subscribe<MapChange<unknown>>(request, { signal }),
          request: { topic: 'members' },
          view: new MapView<unknown>(),
          clock,
        }),
    };
  };
  const logged: string[] = [];
  const handler = viewsHttpHandler(store, {
    clock,
    random: () => 0,
    logger: { error: (message) => logged.push(message) },
    ...options,
    views: { members, ...options.views },
  });
  const responses: http.ServerResponse[] = [];
  const server = http.createServer((request, response) => {
    responses.push(response);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    store.close();
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    clock,
    publisher,
    store,
    handler,
    responses,
    logged,
    base,
    put(key, value) {
      state.set(key, value);
      return publisher.publish('members', [putEvent(key, value)]);
    },
    url: (path) => `${base}/v1/views/${path}`,
  };
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  readonly index: string | null;
}

async function get(url: string, init?: RequestInit): Promise<Answer> {
  const response = await fetch(url, init);
  const body = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body,
    index: response.headers.get('x-weft-index'),
  };
}

/** A raw GET, for paths `fetch` would normalise. */
function rawGet(base: string, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        const copy = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (typeof value === 'string') copy.set(name, value);
        }
        resolve({ status: response.statusCode ?? 0, headers: copy, body, index: copy.get('x-weft-index') });
      });
    });
    request.on('error', reject);
  });
}

interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
}

function parseEvent(block: string): SseEvent {
  const fields: Record<string, string> = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) fields['comment'] = line.slice(1).trim();
    else {
      const colon = line.indexOf(':');
      fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
    }
  }
  return fields;
}

/** An event id as the handler writes it: `<generation>-<index>` (docs/views.md). */
const EVENT_ID = /^([A-Za-z0-9_-]{16})-([0-9]+)$/;

/** The event with its id cut down to the index, once the id is checked to be of that form. */
function byIndex(event: SseEvent): SseEvent {
  if (event.id === undefined) return event;
  const match = EVENT_ID.exec(event.id);
  assert.ok(match !== null, `event id ${event.id} is <generation>-<index>`);
  return { ...event, id: match[2] ?? '' };
}

/** The generation part of an event's id. */
function generationOf(event: SseEvent): string {
  const match = EVENT_ID.exec(event.id ?? '');
  assert.ok(match?.[1] !== undefined, `event id ${String(event.id)} is <generation>-<index>`);
  return match[1];
}

/** An event-stream client that hands over one event (or comment) block at a time. */
interface EventClient {
  readonly response: http.IncomingMessage;
  next(): Promise<SseEvent>;
  /** The whole body, once the server ends it. */
  readonly ended: Promise<string>;
  close(): void;
}

function openEvents(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<EventClient> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
      let buffer = '';
      let all = '';
      const blocks: string[] = [];
      const waiting: ((event: SseEvent) => void)[] = [];
      let finished!: (body: string) => void;
      const ended = new Promise<string>((done) => (finished = done));
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        all += response.statusCode === 200 ? '' : chunk;
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          blocks.push(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        while (blocks.length > 0 && waiting.length > 0) waiting.shift()?.(parseEvent(blocks.shift() ?? ''));
      });
      response.on('end', () => {
        finished(response.statusCode === 200 ? buffer : all);
      });
      response.on('error', () => {
        finished(all);
      });
      resolve({
        response,
        ended,
        next: () => {
          const block = blocks.shift();
          if (block !== undefined) return Promise.resolve(parseEvent(block));
          return new Promise((resolveNext) => waiting.push(resolveNext));
        },
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

const noStats = {
  index: 0,
  updates: 0,
  resets: 0,
  failures: 0,
  waiters: 0,
  subscriptions: 0,
  refusedSnapshots: 0,
} as const;

/** A materializer run by the test: `stop()` ends its run as a terminal failure would. */
function stubMaterializer(fetchImpl: (options: FetchOptions) => Promise<ViewResult<unknown>>): {
  readonly materializer: SharedMaterializer<unknown>;
  stop(reason: unknown): void;
} {
  let stopRun!: () => void;
  const ran = new Promise<void>((resolve) => (stopRun = resolve));
  let stoppedBy: unknown;
  return {
    materializer: {
      run: () => ran,
      fetch: fetchImpl,
      get stoppedBy() {
        return stoppedBy;
      },
      stats: () => noStats,
    },
    stop(reason) {
      stoppedBy = reason;
      stopRun();
    },
  };
}

/** A fetch that waits until its caller gives up. */
function fetchUntilAborted(options: FetchOptions): Promise<ViewResult<unknown>> {
  return new Promise((_resolve, reject) => {
    options.signal?.addEventListener(
      'abort',
      () => {
        reject(options.signal?.reason as Error);
      },
      { once: true },
    );
  });
}

/** Runs the clock in steps until `promise` settles: for answers that wait on retry timers. */
async function whileTicking<T>(clock: FakeClock, promise: Promise<T>, stepMs = 100): Promise<T> {
  const state = { settled: false };
  const done = promise.finally(() => (state.settled = true));
  for (let step = 0; !state.settled; step++) {
    assert.ok(step < 10_000, 'never settled');
    await clock.advanceAsync(stepMs);
    await turn();
  }
  return done;
}

/** A view `name` over topic `topic` of the harness's publisher (which may not have it). */
function topicView(h: () => Harness, topic: string): ViewFactory {
  return () => ({
    key: topic,
    newMaterializer: () =>
      new Materializer({
        source: (request, signal) => h().publisher.subscribe<MapChange<unknown>>(request, { signal }),
        request: { topic },
        view: new MapView<unknown>(),
        clock: h().clock,
      }),
  });
}

/** A topic whose first snapshot is held back until `release()`. */
function registerSlowTopic(h: Harness, topic: string): { release(): void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  h.publisher.registerTopic<MapChange<unknown>>(topic, {
    snapshot: async () => {
      await held;
      return { index: h.publisher.index(topic), events: [] };
    },
  });
  return { release };
}

/**
 * Opens a stream (the only one of `h`) and, once a heartbeat is due, reads its first block:
 * a value sent at once comes before the keep-alive, one held back would come after it.
 */
async function firstBlock(
  h: Harness,
  url: string,
  headers: http.OutgoingHttpHeaders,
): Promise<{ client: EventClient; first: SseEvent }> {
  const opening = openEvents(url, headers);
  await eventually(() => h.handler.stats().streams === 1, 'the stream to start');
  await h.clock.advanceAsync(15_000);
  const client = await opening;
  return { client, first: await client.next() };
}

describe('views HTTP: blocking queries', () => {
  test('answers 200 with the value as JSON, its index in X-Weft-Index, and no-store', async (t) => {
    const h = await serve(t);
    h.put('a', 1);
    const index = h.put('b', { up: true });
    const answer = await get(h.url('members'));
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'application/json');
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal(answer.index, String(index));
    assert.deepEqual(JSON.parse(answer.body), { a: 1, b: { up: true } });

    const head = await get(h.url('members'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.index, String(index));
    assert.equal(head.body, '');
    assert.equal(h.handler.stats().served, 2);
  });

  test('blocks while the view is at the index the client holds, and answers with the next publish', async (t) => {
    const h = await serve(t);
    const first = await get(h.url('members'));
    assert.equal(first.index, '1');

    const pending = get(h.url(`members?index=${first.index}&wait=30s`));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    await h.clock.advanceAsync(29_000);
    assert.equal(h.handler.stats().waiting, 1, 'still waiting before the wait runs out');

    const index = h.put('a', 'up');
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.equal(answer.index, String(index));
    assert.deepEqual(JSON.parse(answer.body), { a: 'up' });
  });

  test('when the wait runs out it answers 200 with the value it has and that index, not an error', async (t) => {
    const h = await serve(t);
    const index = h.put('a', 1);
    await get(h.url('members'));

    const pending = get(h.url(`members?index=${index}&wait=30s`));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    await h.clock.advanceAsync(29_999);
    assert.equal(h.handler.stats().waiting, 1);
    await h.clock.advanceAsync(1);
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.equal(answer.index, String(index));
    assert.deepEqual(JSON.parse(answer.body), { a: 1 });
  });

  test('a wait is stretched by up to a sixteenth at random, as Consul does', async (t) => {
    const h = await serve(t, { random: () => 0.5 });
    await get(h.url('members'));
    // 32 s + 0.5 × 32 s / 16 = 33 s.
    const pending = get(h.url('members?index=1&wait=32s'));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    await h.clock.advanceAsync(32_999);
    assert.equal(h.handler.stats().waiting, 1);
    await h.clock.advanceAsync(1);
    assert.equal((await pending).status, 200);
  });

  test('a wait is capped at maxWaitMs; without one, or with wait=0, the default wait applies', async (t) => {
    const h = await serve(t, { maxWaitMs: 60_000, defaultWaitMs: 5_000 });
    await get(h.url('members'));
    for (const [query, waitMs] of [
      ['index=1&wait=10m', 60_000],
      ['index=1&wait=2h', 60_000],
      ['index=1', 5_000],
      ['index=1&wait=0', 5_000],
      ['index=1&wait=1500ms', 1_500],
    ] as const) {
      const pending = get(h.url(`members?${query}`));
      await eventually(() => h.handler.stats().waiting === 1, `${query} to wait`);
      await h.clock.advanceAsync(waitMs - 1);
      assert.equal(h.handler.stats().waiting, 1, `${query} waits ${waitMs} ms`);
      await h.clock.advanceAsync(1);
      const answer = await pending;
      assert.equal(answer.status, 200, query);
      assert.equal(answer.index, '1', query);
    }
  });

  test('a view with no value yet when the wait runs out is a 503 with Retry-After, not index 0 and an empty value', async (t) => {
    const h: Harness = await serve(t, { views: { slow: topicView(() => h, 'slow') } });
    const slow = registerSlowTopic(h, 'slow');
    for (const query of ['wait=2s', 'index=5&wait=2s']) {
      const pending = get(h.url(`slow?${query}`));
      await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
      await h.clock.advanceAsync(1_999);
      assert.equal(h.handler.stats().waiting, 1, 'it waits for the first snapshot, at most the wait');
      await h.clock.advanceAsync(1);
      const answer = await pending;
      assert.equal(answer.status, 503, query);
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.equal(answer.index, null, 'no index: there is no value');
      assert.equal(answer.body, 'view "slow" has no value yet\n');
    }
    assert.equal(h.handler.stats().notReady, 2);
    assert.equal(h.handler.stats().served, 0);

    // Once the snapshot is in, the empty state is a value: 200 with its index.
    slow.release();
    const ready = await get(h.url('slow'));
    assert.equal(ready.status, 200);
    assert.equal(ready.index, '1');
    assert.equal(ready.body, '{}');
  });

  test('an index ahead of the view (the server restarted) is answered at once with the lower index', async (t) => {
    const h = await serve(t);
    const index = h.put('a', 1);
    await get(h.url('members'));
    let answer: Answer | undefined;
    void get(h.url(`members?index=${index + 40}&wait=30s`)).then((a) => (answer = a));
    // The clock does not move: only an answer that does not wait for it can arrive.
    await eventually(() => answer !== undefined, 'the answer, without waiting');
    assert.equal(answer?.status, 200);
    assert.equal(answer.index, String(index));
    assert.deepEqual(JSON.parse(answer.body), { a: 1 });
    assert.equal(h.handler.stats().waiting, 0);

    // With the index it was given, the client waits for the next change as usual.
    const next = get(h.url(`members?index=${index}&wait=30s`));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    const changed = h.put('b', 2);
    assert.equal((await next).index, String(changed));
  });

  test('an index ahead of a view that has no value yet is answered with its first snapshot', async (t) => {
    const h: Harness = await serve(t, { views: { slow: topicView(() => h, 'slow') } });
    const slow = registerSlowTopic(h, 'slow');
    let answer: Answer | undefined;
    void get(h.url('slow?index=99&wait=1m')).then((a) => (answer = a));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    slow.release();
    await eventually(() => answer !== undefined, 'the answer, once the snapshot is in');
    assert.equal(answer?.status, 200);
    assert.equal(answer.index, '1');
  });

  test('a view over a topic that does not exist is a 404 with the reason, logged once, for queries and streams', async (t) => {
    const h: Harness = await serve(t, { views: { ghost: topicView(() => h, 'ghost') } });
    for (const query of ['', '?index=3&wait=1m', '?wait=5s']) {
      const answer = await whileTicking(h.clock, get(h.url(`ghost${query}`)));
      assert.equal(answer.status, 404, query);
      assert.equal(answer.body, 'unknown topic "ghost"\n');
    }
    const stream = await whileTicking(h.clock, openEvents(h.url('ghost')));
    // A status code, on which an EventSource gives up, rather than an error event and a reconnection.
    assert.equal(stream.response.statusCode, 404);
    assert.equal(await stream.ended, 'unknown topic "ghost"\n');
    assert.deepEqual(h.logged, ['a view reads a topic that does not exist']);
    assert.deepEqual([h.handler.stats().notFound, h.handler.stats().failed], [4, 0]);
    await eventually(() => h.handler.stats().streams === 0, 'the stream to be counted closed');
  });

  test('with a next callback, a request that is not for a view goes on to the application, its body unread', async (t) => {
    const h = await serve(t);
    h.put('a', 1);
    const app = http.createServer((request, response) => {
      h.handler(request, response, () => {
        let body = '';
        request.setEncoding('utf8');
        request.on('data', (chunk: string) => (body += chunk));
        request.on('end', () => response.end(`app: ${request.method ?? ''} ${request.url ?? ''} ${body}`));
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      app.closeAllConnections();
      app.close();
    });
    const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    for (const path of [
      '/',
      '/healthz',
      '/v1/other/members',
      '/v1/views/nope',
      '/v1/views/%E0%A4%A',
      '/v1/views',
    ]) {
      const answer = await rawGet(base, path);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.body, `app: GET ${path} `);
    }
    const posted = await get(`${base}/v1/submit`, { method: 'POST', body: 'hello' });
    assert.equal(posted.body, 'app: POST /v1/submit hello');

    // A view's own requests stay with the handler, its refusals included.
    const view = await get(`${base}/v1/views/members`);
    assert.equal(view.status, 200);
    assert.deepEqual(JSON.parse(view.body), { a: 1 });
    assert.equal((await get(`${base}/v1/views/members`, { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await get(`${base}/v1/views/members?index=x`)).status, 400);
    assert.deepEqual([h.handler.stats().notFound, h.handler.stats().badRequests], [0, 1]);
  });

  test('a client that goes away stops its query and lets go of the view', async (t) => {
    const h = await serve(t);
    await get(h.url('members'));
    const controller = new AbortController();
    const pending = fetch(h.url('members?index=1&wait=5m'), { signal: controller.signal });
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    assert.equal(h.store.stats().idle, 0);
    controller.abort();
    await assert.rejects(pending);
    await eventually(() => h.handler.stats().waiting === 0 && h.store.stats().idle === 1, 'the query to end');
    assert.equal(h.handler.stats().served, 1);
  });

  test('a malformed index or wait is refused with 400 and the reason', async (t) => {
    const h = await serve(t);
    const cases: readonly [string, string, RegExp][] = [
      ['index', '-1', /^Invalid index/],
      ['index', '1.5', /^Invalid index/],
      ['index', 'abc', /^Invalid index/],
      ['index', '', /^Invalid index/],
      ['index', '99999999999999999999', /^Invalid index/],
      ['index', '9007199254740992', /^Invalid index/],
      ['index', '+1', /^Invalid index/],
      ['index', ' 1', /^Invalid index/],
      ['index', '1e3', /^Invalid index/],
      ['index', '0x10', /^Invalid index/],
      ['wait', '10', /^Invalid wait: missing unit in duration "10"/],
      ['wait', '5x', /^Invalid wait: unknown unit "x"/],
      ['wait', '-1s', /^Invalid wait: "-1s" is negative/],
      ['wait', '', /^Invalid wait/],
      ['wait', 'forever', /^Invalid wait/],
      ['wait', '1 s', /^Invalid wait/],
    ];
    for (const [name, value, reason] of cases) {
      const answer = await get(h.url(`members?${name}=${encodeURIComponent(value)}`));
      assert.equal(answer.status, 400, `${name}=${JSON.stringify(value)}`);
      assert.match(answer.body, reason, `${name}=${JSON.stringify(value)}`);
    }
    assert.equal(h.handler.stats().badRequests, cases.length);
    assert.equal(h.handler.stats().waiting, 0);
    // Leading zeros are a number, as Go's ParseUint reads them.
    const zeros = await get(h.url('members?index=0000'));
    assert.equal(zeros.status, 200);
    assert.equal(zeros.index, '1');
  });

  test('an unknown view is 404, another method 405 with Allow, a factory TypeError 400', async (t) => {
    const h = await serve(t);
    for (const path of [
      '/v1/views/nope',
      '/v1/views/constructor',
      '/v1/views/__proto__',
      '/v1/views/',
      '/v1/other/members',
      '/',
    ]) {
      assert.equal((await rawGet(h.base, path)).status, 404, path);
    }
    assert.equal((await rawGet(h.base, '/v1/views/%E0%A4%A')).status, 400);
    assert.equal((await rawGet(h.base, '/v1/views/%6Dembers')).status, 200);

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const answer = await get(h.url('members'), { method });
      assert.equal(answer.status, 405, method);
      assert.equal(answer.headers.get('allow'), 'GET, HEAD');
    }

    const refused = await get(h.url('members?near=_agent'));
    assert.equal(refused.status, 400);
    assert.match(refused.body, /near cannot be served from a view/);
  });

  test('a factory that fails otherwise, or a view failure, is a 500 with a short reason, logged', async (t) => {
    const h = await serve(t, {
      views: {
        broken: () => {
          throw new Error('bug in the factory');
        },
        failing: () => ({
          key: 'failing',
          newMaterializer: () =>
            stubMaterializer(() => Promise.reject(new Error('secret detail'))).materializer,
        }),
        bigint: () => ({
          key: 'bigint',
          newMaterializer: () =>
            stubMaterializer(() => Promise.resolve({ index: 3, value: 1n, cached: true })).materializer,
        }),
        denied: () => ({
          key: 'denied',
          newMaterializer: () => stubMaterializer(() => Promise.reject(new UnauthorizedError())).materializer,
        }),
      },
    });
    const broken = await get(h.url('broken'));
    assert.equal(broken.status, 500);
    assert.equal(broken.body, 'internal error\n');
    const failing = await get(h.url('failing'));
    assert.equal(failing.status, 500);
    assert.equal(failing.body, 'internal error\n', 'a foreign error message is not shown');
    const bigint = await get(h.url('bigint'));
    assert.equal(bigint.status, 500);
    assert.match(bigint.body, /cannot be encoded as JSON/);
    const denied = await get(h.url('denied'));
    assert.equal(denied.status, 403);
    assert.match(denied.body, /not authorized/);
    assert.equal(h.logged.length, 3);
    assert.equal(h.handler.stats().failed, 4);
  });

  test('an entry being evicted is a 503 with Retry-After, and served again once it is gone', async (t) => {
    let current = stubMaterializer(fetchUntilAborted);
    let made = 0;
    const h = await serve(t, {
      views: {
        flaky: () => ({
          key: 'flaky',
          newMaterializer: () => {
            made += 1;
            return current.materializer;
          },
        }),
      },
    });
    const holder = new AbortController();
    const held = fetch(h.url('flaky?index=7'), { signal: holder.signal });
    await eventually(() => h.handler.stats().waiting === 1, 'the first query to hold the entry');
    current.stop(new UnknownTopicError('flaky'));
    await turn();

    const refused = await get(h.url('flaky'));
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.body, /marked for eviction/);

    holder.abort();
    await assert.rejects(held);
    await eventually(() => h.store.stats().entries === 0, 'the evicting entry to go');
    current = stubMaterializer(() => Promise.resolve({ index: 8, value: ['back'], cached: true }));
    const served = await get(h.url('flaky'));
    assert.equal(served.status, 200);
    assert.equal(served.body, '["back"]');
    assert.equal(made, 2);
  });

  test('a closed store (shutting down) is a 503 for waiting and new queries, and nothing is logged', async (t) => {
    const h = await serve(t);
    h.put('a', 1);
    const first = await get(h.url('members'));
    const waiting = get(h.url(`members?index=${first.index ?? ''}&wait=1m`));
    await eventually(() => h.handler.stats().waiting === 1, 'the query to wait');
    h.store.close();
    assert.equal((await waiting).status, 503);
    assert.equal((await get(h.url('members'))).status, 503);
    assert.deepEqual(h.logged, []);
  });

  test('the encode option shapes the JSON', async (t) => {
    const h = await serve(t, {
      encode: (value) => [...(value as Map<string, unknown>).keys()].sort(),
    });
    h.put('b', 1);
    h.put('a', 2);
    assert.equal((await get(h.url('members'))).body, '["a","b"]');
  });

  test('no path or query makes it crash or answer anything but 200, 400 or 404', async (t) => {
    const h = await serve(t, { maxWaitMs: 1_000 });
    h.put('a', 1);
    const piece = fc.constantFrom(
      ...[
        'index',
        'wait',
        '=',
        '&',
        '?',
        '/',
        '%',
        '%2',
        '%zz',
        '%00',
        '0',
        '1',
        '9',
        '.',
        '-',
        '+',
        's',
        'm',
        'h',
        'members',
        'x',
        '~',
        ':',
      ],
    );
    const path = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/views/members?', '/v1/views/', '/'),
        path,
        async (start, rest) => {
          let answer: Answer | undefined;
          const pending = rawGet(h.base, start + rest).then((a) => (answer = a));
          while (answer === undefined) {
            // Let a valid blocking query run out its (capped) wait.
            await h.clock.advanceAsync(1_100);
            await turn();
          }
          await pending;
          assert.ok([200, 400, 404].includes(answer.status), `${start + rest} → ${answer.status}`);
        },
      ),
      { numRuns: 150 },
    );
    assert.equal(h.handler.stats().failed, 0);
  });
});

describe('views HTTP: Server-Sent Events', () => {
  test('streams each new value as an event whose id is its generation and index, in order', async (t) => {
    const h = await serve(t);
    const client = await openEvents(h.url('members'));
    assert.equal(client.response.statusCode, 200);
    assert.equal(client.response.headers['content-type'], 'text/event-stream');
    assert.equal(client.response.headers['cache-control'], 'no-store');

    const first = await client.next();
    assert.deepEqual(byIndex(first), { id: '1', event: 'update', data: '{}' });
    const a = h.put('a', 1);
    const second = await client.next();
    assert.deepEqual(byIndex(second), { id: String(a), event: 'update', data: '{"a":1}' });
    const b = h.put('b', 2);
    assert.deepEqual(byIndex(await client.next()), { id: String(b), event: 'update', data: '{"a":1,"b":2}' });
    assert.equal(generationOf(second), generationOf(first), 'one generation while the view lives');
    client.close();
  });

  test('Last-Event-ID resumes after the event the client holds, ?index after that index', async (t) => {
    const h = await serve(t);
    const first = await openEvents(h.url('members'));
    await first.next();
    h.put('a', 1);
    await first.next();
    const held = h.put('b', 2);
    const heldEvent = await first.next();
    assert.equal(byIndex(heldEvent).id, String(held));
    first.close();

    const resumed = await openEvents(h.url('members?index=1'), { 'last-event-id': heldEvent.id ?? '' });
    const fromIndex = await openEvents(h.url(`members?index=${held}`));
    const behind = await openEvents(h.url('members'), {
      'last-event-id': `${generationOf(heldEvent)}-${held - 1}`,
    });
    assert.deepEqual(byIndex(await behind.next()), {
      id: String(held),
      event: 'update',
      data: '{"a":1,"b":2}',
    });

    const next = h.put('c', 3);
    // The first thing the resumed clients see is the new value: nothing at or below their index.
    for (const client of [resumed, fromIndex]) {
      assert.equal(client.response.statusCode, 200);
      assert.deepEqual(byIndex(await client.next()), {
        id: String(next),
        event: 'update',
        data: '{"a":1,"b":2,"c":3}',
      });
    }
    assert.equal(byIndex(await behind.next()).id, String(next));
    for (const client of [resumed, fromIndex, behind]) client.close();
  });

  test('a Last-Event-ID of another form (garbled, or the plain index an older server sent) gets the current value at once', async (t) => {
    const h = await serve(t);
    h.put('a', 1);
    const index = h.put('b', 2);
    await get(h.url('members'));
    for (const id of ['x1', String(index), String(index + 5), 'abc-', '-7', `${'a'.repeat(65)}-1`, 'é-1']) {
      const { client, first } = await firstBlock(h, h.url('members'), { 'last-event-id': id });
      assert.equal(client.response.statusCode, 200, id);
      assert.deepEqual(byIndex(first), { id: String(index), event: 'update', data: '{"a":1,"b":2}' }, id);
      client.close();
      await eventually(() => h.handler.stats().streams === 0, 'the stream to end');
    }
  });

  test('after a restart, a client resuming from the old generation gets the current value at once', async (t) => {
    const before = await serve(t);
    const old = await openEvents(before.url('members'));
    await old.next();
    before.put('a', 'old');
    const atTwo = await old.next();
    before.put('b', 'old');
    before.put('c', 'old');
    before.put('d', 'old');
    let atFive = await old.next();
    while (byIndex(atFive).id !== '5') atFive = await old.next();
    old.close();

    // The restarted server: a new publisher, whose index starts over.
    const after = await serve(t);
    const index = after.put('x', 'new');
    assert.equal(index, 2);
    await get(after.url('members'));
    const resumes: readonly [string, http.OutgoingHttpHeaders][] = [
      ['an id above the new index', { 'last-event-id': atFive.id ?? '' }],
      ['an id at the same index, of the old generation', { 'last-event-id': atTwo.id ?? '' }],
      ['a plain ?index above the new index', {}],
    ];
    for (const [what, headers] of resumes) {
      const path = what.includes('?index') ? 'members?index=5' : 'members';
      const { client, first } = await firstBlock(after, after.url(path), headers);
      assert.deepEqual(byIndex(first), { id: '2', event: 'update', data: '{"x":"new"}' }, what);
      assert.notEqual(generationOf(first), generationOf(atTwo), 'a new generation');
      client.close();
      await eventually(() => after.handler.stats().streams === 0, 'the stream to end');
    }
  });

  test('an event stream of a view with no value yet waits for it: a heartbeat opens it, the first snapshot follows', async (t) => {
    const h: Harness = await serve(t, { views: { slow: topicView(() => h, 'slow') } });
    const slow = registerSlowTopic(h, 'slow');
    const opening = openEvents(h.url('slow'));
    await eventually(() => h.handler.stats().streams === 1, 'the stream to start');
    await h.clock.advanceAsync(15_000);
    const client = await opening;
    assert.equal(client.response.statusCode, 200);
    assert.deepEqual(await client.next(), { comment: 'keep-alive' });
    slow.release();
    assert.deepEqual(byIndex(await client.next()), { id: '1', event: 'update', data: '{}' });
    client.close();
  });

  test('an idle stream gets a keep-alive comment every 15 s of the clock', async (t) => {
    const h = await serve(t);
    const client = await openEvents(h.url('members'));
    assert.equal(byIndex(await client.next()).id, '1');

    await h.clock.advanceAsync(14_999);
    const index = h.put('a', 1);
    // Had a heartbeat been sent early, it would come before this event.
    assert.equal(byIndex(await client.next()).id, String(index));
    await h.clock.advanceAsync(1);
    assert.deepEqual(await client.next(), { comment: 'keep-alive' });
    await h.clock.advanceAsync(15_000);
    assert.deepEqual(await client.next(), { comment: 'keep-alive' });
    client.close();
  });

  test('a client that goes away stops the notify: the store entry is released and the heartbeat cancelled', async (t) => {
    const h = await serve(t);
    const client = await openEvents(h.url('members'));
    await client.next();
    assert.deepEqual([h.handler.stats().streams, h.store.stats().entries, h.store.stats().idle], [1, 1, 0]);
    client.close();
    await eventually(
      () => h.handler.stats().streams === 0 && h.store.stats().idle === 1,
      'the stream to end',
    );
    // Nothing holds the entry: it expires after the idle TTL, leaving no timer behind.
    await h.clock.advanceAsync(20 * 60_000);
    assert.equal(h.store.stats().entries, 0);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('a slow client is owed only the latest event: buffering stays bounded while updates pile up', async (t) => {
    const h = await serve(t);
    const client = await openEvents(h.url('members'));
    await client.next();
    const response = h.responses[0];
    assert.ok(response !== undefined);
    client.response.pause();

    const padding = 'x'.repeat(128 * 1024);
    let published = 0;
    let last = 0;
    // Fill the socket until the handler stops writing and starts replacing.
    while (h.handler.stats().coalesced < 2) {
      assert.ok(published < 1000, 'the socket never filled');
      last = h.put('big', `${published}:${padding}`);
      published += 1;
      await turn();
      await turn();
    }
    const frameBytes = padding.length + 100;
    const buffered = response.writableLength;
    assert.ok(
      buffered <= response.writableHighWaterMark + 2 * frameBytes,
      `buffered ${buffered} bytes beyond one frame over the high-water mark`,
    );
    const coalescedBefore = h.handler.stats().coalesced;
    for (let i = 0; i < 20; i++) {
      last = h.put('big', `${published}:${padding}`);
      published += 1;
      await turn();
      await turn();
    }
    assert.equal(response.writableLength, buffered, 'nothing more was queued');
    assert.ok(h.handler.stats().coalesced >= coalescedBefore + 19);

    client.response.resume();
    const ids: number[] = [];
    for (;;) {
      const event = await client.next();
      const id = byIndex(event).id;
      ids.push(Number(id));
      if (id === String(last)) {
        assert.equal((JSON.parse(event.data ?? '') as { big: string }).big, `${published - 1}:${padding}`);
        break;
      }
    }
    assert.ok(
      ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0)),
      'ids only go up',
    );
    assert.ok(ids.length < published, `${ids.length} events for ${published} updates`);
    client.close();
  });

  test('a slow client costs one encoding, of the latest value, when its socket drains; what it missed is never encoded', async (t) => {
    let encodes = 0;
    const h = await serve(t, {
      encode: (value) => {
        encodes += 1;
        return value instanceof Map ? Object.fromEntries(value as Map<string, unknown>) : value;
      },
    });
    const client = await openEvents(h.url('members'));
    await client.next();
    const response = h.responses[0];
    assert.ok(response !== undefined);
    client.response.pause();

    const padding = 'x'.repeat(128 * 1024);
    let published = 0;
    // Fill the socket until the handler finds it full.
    while (!response.writableNeedDrain) {
      assert.ok(published < 1000, 'the socket never filled');
      h.put('big', `${published}:${padding}`);
      published += 1;
      await turn();
      await turn();
    }
    const written = h.publisher.index('members');
    const encodesBefore = encodes;
    let last = 0;
    for (let i = 0; i < 20; i++) {
      last = h.put('big', `${published}:${padding}`);
      published += 1;
      await turn();
      await turn();
    }
    assert.ok(response.writableNeedDrain, 'the socket never drained');
    assert.equal(encodes - encodesBefore, 0, 'nothing is encoded for a client that cannot take it');
    assert.ok(h.handler.stats().coalesced > 0, 'later values replaced the one owed');

    client.response.resume();
    const ids: number[] = [];
    for (;;) {
      const event = byIndex(await client.next());
      ids.push(Number(event.id));
      if (Number(event.id) === last) {
        assert.equal((JSON.parse(event.data ?? '') as { big: string }).big, `${published - 1}:${padding}`);
        break;
      }
    }
    assert.deepEqual(
      ids.filter((id) => id > written),
      [last],
      'after the socket filled, only the latest value is sent',
    );
    assert.equal(encodes - encodesBefore, 1, 'one encoding, when the socket drained');
    client.close();
  });

  test('every client sent one value shares one encoding of it', async (t) => {
    let encodes = 0;
    const h = await serve(t, {
      encode: (value) => {
        encodes += 1;
        return value instanceof Map ? Object.fromEntries(value as Map<string, unknown>) : value;
      },
    });
    const clients = await Promise.all([1, 2, 3].map(() => openEvents(h.url('members'))));
    for (const client of clients) await client.next();
    const before = encodes;
    const index = h.put('a', 1);
    for (const client of clients) assert.equal(byIndex(await client.next()).id, String(index));
    assert.equal((await get(h.url('members'))).index, String(index));
    assert.equal(encodes - before, 1);
    for (const client of clients) client.close();
  });

  test('streams beyond maxStreams are refused with 503 and counted; blocking queries are not limited', async (t) => {
    const h = await serve(t, { maxStreams: 1 });
    const first = await openEvents(h.url('members'));
    await first.next();

    const refused = await openEvents(h.url('members'));
    assert.equal(refused.response.statusCode, 503);
    assert.equal(refused.response.headers['retry-after'], '1');
    assert.match(await refused.ended, /too many event streams \(limit 1\)/);
    assert.equal((await get(h.url('members'))).status, 200);
    assert.deepEqual([h.handler.stats().refused, h.handler.stats().streams], [1, 1]);

    first.close();
    await eventually(() => h.handler.stats().streams === 0, 'the first stream to end');
    const again = await openEvents(h.url('members'));
    assert.equal(byIndex(await again.next()).id, '1');
    assert.equal(h.handler.stats().streamsOpened, 2);
    again.close();
  });

  test('failures arrive as error events; when the materializer stops the stream ends', async (t) => {
    const h = await serve(t, {
      views: {
        doomed: () => {
          let calls = 0;
          const stub = stubMaterializer(() => {
            calls += 1;
            if (calls === 1) return Promise.resolve({ index: 5, value: new Map([['k', 'v']]), cached: true });
            const failure = new UnknownTopicError('doomed');
            stub.stop(failure);
            return Promise.reject(failure);
          });
          return { key: 'doomed', newMaterializer: () => stub.materializer };
        },
      },
    });
    const client = await openEvents(h.url('doomed'));
    assert.deepEqual(byIndex(await client.next()), { id: '5', event: 'update', data: '{"k":"v"}' });
    const error = await client.next();
    assert.equal(error.event, 'error');
    assert.deepEqual(JSON.parse(error.data ?? ''), {
      error: 'unknown topic "doomed"',
      code: 'WEFT_VIEWS_UNKNOWN_TOPIC',
    });
    assert.equal(await client.ended, '');
    await eventually(() => h.handler.stats().streams === 0, 'the stream to be counted closed');
  });

  test('a value with no JSON form is an error event, not a broken stream or a crash', async (t) => {
    let value: unknown = 1n;
    let index = 1;
    const stub = stubMaterializer((options) =>
      (options.minIndex ?? 0) < index
        ? Promise.resolve({ index, value, cached: true })
        : fetchUntilAborted(options),
    );
    const h = await serve(t, {
      views: { odd: () => ({ key: 'odd', newMaterializer: () => stub.materializer }) },
    });
    const client = await openEvents(h.url('odd'));
    const error = await client.next();
    assert.equal(error.event, 'error');
    assert.deepEqual(JSON.parse(error.data ?? ''), { error: 'the view value cannot be encoded as JSON' });
    assert.equal(h.logged.length, 1);
    client.close();
    await eventually(() => h.handler.stats().streams === 0, 'the stream to end');
    value = 'fine';
    index = 2;
    const again = await openEvents(h.url('odd'));
    assert.deepEqual(byIndex(await again.next()), { id: '2', event: 'update', data: '"fine"' });
    again.close();
  });

  test('a stream the store refuses gets a status code, not an empty stream', async (t) => {
    const h = await serve(t, {
      views: {
        evicting: () => ({
          key: 'evicting',
          newMaterializer: () => {
            throw new EntryEvictingError('evicting');
          },
        }),
      },
    });
    const client = await openEvents(h.url('evicting'));
    assert.equal(client.response.statusCode, 503);
    assert.match(await client.ended, /marked for eviction/);
    assert.equal(h.handler.stats().streams, 0);
  });
});
