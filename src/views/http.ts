// The HTTP face of views: Consul-style blocking queries and Server-Sent Events.
//
// `GET <prefix><name>?index=N&wait=30s` answers with the view's value as JSON once its
// index is above N, or when the wait runs out with the value it has then (a timeout is not
// an error), and puts the index in `X-Weft-Index`: the client sends it back to wait for the
// next change. The wait is capped at `maxWaitMs` and, as in Consul, stretched by up to a
// sixteenth at random, so clients woken together do not all come back together.
//
// With `Accept: text/event-stream` the same path streams every new value as an event whose
// id is its index; a reconnecting EventSource sends `Last-Event-ID` and resumes after it. A
// client that reads slowly is never queued for: while the socket is full only the latest
// event is kept, and written when it drains.

import type http from 'node:http';

import { systemClock, type Clock, type Timer } from '../internal/clock.ts';
import { CancelledError, ClosedError, ConfigError, WeftError } from '../internal/errors.ts';
import { wholeNumberOption } from './config.ts';
import { parseDuration } from './duration.ts';
import { hasErrorCode, MaterializerStoppedError, UnauthorizedError } from './errors.ts';
import type { ViewRequest, ViewStore, ViewUpdate } from './store.ts';

/** Builds the store request for one query of a view; throws a TypeError for bad parameters (400). */
export type ViewFactory = (query: URLSearchParams) => ViewRequest<unknown>;

/** Where the handler reports failures that are not the client's; `console` fits. */
export interface Logger {
  error(message: string, details?: Record<string, unknown>): void;
}

export interface ViewsHttpOptions {
  /** The views served, by name: `<prefix><name>`. */
  readonly views: Readonly<Record<string, ViewFactory>>;
  /** Default '/v1/views/'. */
  readonly prefix?: string | undefined;
  /** Longest wait a query may ask for. Default 10 minutes (Consul's). */
  readonly maxWaitMs?: number | undefined;
  /** Wait of a query that names none (or `wait=0`, as in Consul). Default 5 minutes. */
  readonly defaultWaitMs?: number | undefined;
  /** Event streams open at once; more are refused with 503. Default 1000. */
  readonly maxStreams?: number | undefined;
  /** Interval of the comment an idle event stream sends to keep proxies from closing it. Default 15 s. */
  readonly heartbeatMs?: number | undefined;
  /** Makes a view's value JSON-ready. Default: a Map becomes an object, anything else is kept. */
  readonly encode?: ((value: unknown) => unknown) | undefined;
  /** For the wait's jitter. Default Math.random. */
  readonly random?: (() => number) | undefined;
  readonly clock?: Clock | undefined;
  readonly logger?: Logger | undefined;
}

export interface ViewsHttpStats {
  /** Blocking queries answered with a value. */
  readonly served: number;
  /** Blocking queries waiting now. */
  readonly waiting: number;
  readonly badRequests: number;
  readonly notFound: number;
  /** Queries and streams that failed with a server error (5xx, or an error that ended a stream). */
  readonly failed: number;
  /** Event streams open now. */
  readonly streams: number;
  readonly streamsOpened: number;
  /** Event streams refused because `maxStreams` were open. */
  readonly refused: number;
  /** Events a slow stream client never got because a newer one replaced them. */
  readonly coalesced: number;
}

export type ViewsHttpHandler = ((request: http.IncomingMessage, response: http.ServerResponse) => void) & {
  stats(): ViewsHttpStats;
};

const JSON_TYPE = 'application/json';
const EVENT_STREAM = 'text/event-stream';
const MAX_REASON_CHARS = 512;

/** A query the handler refuses with 400; the message is the reason sent. */
class BadRequest extends Error {}

export function viewsHttpHandler(store: ViewStore, options: ViewsHttpOptions): ViewsHttpHandler {
  // Checked for JavaScript callers, whose options the types do not cover.
  const views = options.views as ViewsHttpOptions['views'] | null | undefined;
  if (typeof views !== 'object' || views === null)
    throw new ConfigError('views', 'must be an object of factories');
  for (const [name, factory] of Object.entries(views)) {
    if (typeof factory !== 'function') throw new ConfigError(`views.${name}`, 'is not a function');
  }
  const prefix = options.prefix ?? '/v1/views/';
  if (!prefix.startsWith('/')) throw new ConfigError('prefix', 'must start with "/"');
  const maxWaitMs = wholeNumberOption(options.maxWaitMs ?? 600_000, 'maxWaitMs', 0);
  const defaultWaitMs = wholeNumberOption(options.defaultWaitMs ?? 300_000, 'defaultWaitMs', 0);
  const maxStreams = wholeNumberOption(options.maxStreams ?? 1000, 'maxStreams', 0);
  const heartbeatMs = wholeNumberOption(options.heartbeatMs ?? 15_000, 'heartbeatMs', 1);
  const encode = options.encode ?? mapToObject;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? console;
  const counters = {
    served: 0,
    waiting: 0,
    badRequests: 0,
    notFound: 0,
    failed: 0,
    streams: 0,
    streamsOpened: 0,
    refused: 0,
    coalesced: 0,
  };

  const fail = (
    response: http.ServerResponse,
    status: number,
    reason: string,
    headers: Record<string, string> = {},
  ): void => {
    if (status === 400) counters.badRequests += 1;
    else if (status === 404) counters.notFound += 1;
    if (response.headersSent || response.destroyed) return;
    const body = `${reason}\n`;
    response.writeHead(status, {
      ...headers,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      'Cache-Control': 'no-store',
    });
    response.end(body);
  };

  /** Answers a failure of the store or the view with the status its kind deserves. */
  const failWith = (response: http.ServerResponse, view: string, error: unknown): void => {
    counters.failed += 1;
    if (hasErrorCode(error, UnauthorizedError)) {
      fail(response, 403, reasonOf(error));
    } else if (error instanceof WeftError && error.retryable) {
      // The view may come back (an entry being evicted, a full store): ask again shortly.
      fail(response, 503, reasonOf(error), { 'Retry-After': '1' });
    } else if (error instanceof ClosedError || error instanceof MaterializerStoppedError) {
      // Shutting down (the store closed under the query): not a fault worth a log line.
      fail(response, 503, reasonOf(error));
    } else {
      logger.error('view query failed', { view, error });
      fail(response, 500, reasonOf(error));
    }
  };

  /** The JSON text of a value, or undefined (logged) when it has none. */
  const toJson = (view: string, value: unknown): string | undefined => {
    try {
      // `undefined` (or a function) has no JSON text, whatever the type says; null tells a client "no value".
      const text = JSON.stringify(encode(value)) as string | undefined;
      return text ?? 'null';
    } catch (error) {
      logger.error('a view value cannot be encoded as JSON', { view, error });
      return undefined;
    }
  };

  /** Wait of a query, capped, with Consul's jitter (up to wait/16). */
  const waitOf = (query: URLSearchParams): number => {
    const text = query.get('wait');
    let wait = defaultWaitMs;
    if (text !== null) {
      let parsed: number;
      try {
        parsed = parseDuration(text);
      } catch (error) {
        throw new BadRequest(`Invalid wait: ${(error as Error).message}`);
      }
      if (parsed < 0) throw new BadRequest(`Invalid wait: ${JSON.stringify(text)} is negative`);
      // Zero asks for the default, as in Consul.
      if (parsed > 0) wait = Math.ceil(parsed);
    }
    wait = Math.min(wait, maxWaitMs);
    const draw = random();
    return draw > 0 && draw < 1 ? wait + Math.floor(draw * (wait / 16)) : wait;
  };

  const query = (
    response: http.ServerResponse,
    view: string,
    request: ViewRequest<unknown>,
    minIndex: number,
    waitMs: number,
  ): void => {
    const controller = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) controller.abort(new CancelledError('the client went away'));
    });
    counters.waiting += 1;
    store.get(request, { minIndex, timeoutMs: waitMs, signal: controller.signal }).then(
      (result) => {
        counters.waiting -= 1;
        if (controller.signal.aborted) return;
        const body = toJson(view, result.value);
        if (body === undefined) {
          counters.failed += 1;
          fail(response, 500, 'the view value cannot be encoded as JSON');
          return;
        }
        counters.served += 1;
        response.writeHead(200, {
          'Content-Type': JSON_TYPE,
          'Content-Length': String(Buffer.byteLength(body)),
          'Cache-Control': 'no-store',
          'X-Weft-Index': String(result.index),
        });
        response.end(body);
      },
      (error: unknown) => {
        counters.waiting -= 1;
        if (!controller.signal.aborted) failWith(response, view, error);
      },
    );
  };

  const stream = (
    response: http.ServerResponse,
    view: string,
    request: ViewRequest<unknown>,
    startIndex: number,
  ): void => {
    if (counters.streams >= maxStreams) {
      counters.refused += 1;
      fail(response, 503, `too many event streams (limit ${maxStreams})`, { 'Retry-After': '1' });
      return;
    }
    counters.streams += 1;
    counters.streamsOpened += 1;
    const controller = new AbortController();
    let open = false;
    let ended = false;
    let blocked = false;
    /** The newest frame not written while the socket was full: all a slow client is owed. */
    let pending: string | undefined;
    // Values at or below the index the client holds are not news, until the first one that is.
    let skipUpTo = startIndex;

    const finish = (): void => {
      if (ended) return;
      ended = true;
      heartbeat.cancel();
      counters.streams -= 1;
    };
    const openStream = (): void => {
      if (open || ended || response.headersSent) return;
      open = true;
      response.writeHead(200, {
        'Content-Type': EVENT_STREAM,
        'Cache-Control': 'no-store',
        // Tells nginx-style proxies not to buffer the stream.
        'X-Accel-Buffering': 'no',
      });
      response.flushHeaders();
    };
    const send = (frame: string, coalesce: boolean): void => {
      if (ended || response.destroyed) return;
      openStream();
      if (blocked) {
        // A heartbeat is pointless while data waits; an event replaces the one waiting.
        if (!coalesce) return;
        if (pending !== undefined) counters.coalesced += 1;
        pending = frame;
        return;
      }
      if (!response.write(frame)) blocked = true;
    };
    /** Ends the stream with what the client is still owed, then `final` (why it ends). */
    const end = (final?: string): void => {
      const owed = pending;
      pending = undefined;
      openStream();
      finish();
      if (owed !== undefined) response.write(owed);
      if (final === undefined) response.end();
      else response.end(final);
    };

    const heartbeat: Timer = clock.setInterval(() => {
      send(': keep-alive\n\n', false);
    }, heartbeatMs);
    response.on('drain', () => {
      blocked = false;
      const next = pending;
      pending = undefined;
      if (next !== undefined && !ended && !response.destroyed && !response.write(next)) blocked = true;
    });
    // A write to a socket the client has just closed reports here; 'close' does the cleanup.
    response.on('error', noop);
    response.once('close', () => {
      finish();
      controller.abort(new CancelledError('the client went away'));
    });

    const onUpdate = (update: ViewUpdate<unknown>): void => {
      if (update.error !== undefined) {
        if (!(update.error instanceof WeftError))
          logger.error('view stream failed', { view, error: update.error });
        send(errorFrame(describe(update.error)), true);
        return;
      }
      if (update.index <= skipUpTo) return;
      // From here every value notify hands over is news, even a lower index from a rebuilt view.
      skipUpTo = 0;
      const data = toJson(view, update.value);
      if (data === undefined) {
        send(errorFrame({ error: 'the view value cannot be encoded as JSON' }), true);
        return;
      }
      send(`id: ${update.index}\nevent: update\ndata: ${data}\n\n`, true);
    };
    store.notify(request, onUpdate, { signal: controller.signal }).then(
      () => {
        // The materializer stopped (its error was the last event), or the client left.
        if (!controller.signal.aborted) end();
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        if (!open) {
          // Refused before anything was sent (e.g. an entry being evicted): a plain status says it best.
          finish();
          failWith(response, view, error);
          return;
        }
        counters.failed += 1;
        if (!(error instanceof WeftError)) logger.error('view stream failed', { view, error });
        end(errorFrame(describe(error)));
      },
    );
    // A store that refuses the request rejects before this runs, and gets its status code.
    queueMicrotask(openStream);
  };

  const route = (request: http.IncomingMessage, response: http.ServerResponse): void => {
    // No view reads a body; let one that was sent drain.
    request.resume();
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      fail(response, 405, 'only GET and HEAD are served', { Allow: 'GET, HEAD' });
      return;
    }
    const url = request.url ?? '/';
    const mark = url.indexOf('?');
    const path = mark === -1 ? url : url.slice(0, mark);
    const search = new URLSearchParams(mark === -1 ? '' : url.slice(mark + 1));
    if (!path.startsWith(prefix)) {
      fail(response, 404, 'not found');
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(path.slice(prefix.length));
    } catch {
      fail(response, 400, 'Invalid view name');
      return;
    }
    // Own properties only: "constructor" or "__proto__" are not views.
    const factory = Object.hasOwn(views, name) ? views[name] : undefined;
    if (factory === undefined) {
      fail(response, 404, `unknown view ${JSON.stringify(name)}`);
      return;
    }
    let index: number;
    let waitMs: number;
    let viewRequest: ViewRequest<unknown>;
    const wantsStream =
      request.method === 'GET' && (request.headers.accept ?? '').toLowerCase().includes(EVENT_STREAM);
    try {
      index = parseIndex(search.get('index'), 'index') ?? 0;
      if (wantsStream) index = parseIndex(lastEventId(request), 'Last-Event-ID') ?? index;
      waitMs = waitOf(search);
      try {
        viewRequest = factory(search);
      } catch (error) {
        if (error instanceof TypeError) throw new BadRequest(error.message);
        throw error;
      }
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      fail(response, 400, truncate(error.message));
      return;
    }
    if (wantsStream) stream(response, name, viewRequest, index);
    else query(response, name, viewRequest, index, waitMs);
  };

  const handle = (request: http.IncomingMessage, response: http.ServerResponse): void => {
    try {
      route(request, response);
    } catch (error) {
      // A factory that failed for a reason other than its parameters, or a bug: never a crash.
      logger.error('view request failed', { url: request.url, error });
      counters.failed += 1;
      fail(response, 500, 'internal error');
    }
  };

  return Object.assign(handle, { stats: (): ViewsHttpStats => ({ ...counters }) });
}

/** An index as Consul reads one: decimal digits, no sign, here also within a double's exact range. */
function parseIndex(text: string | undefined | null, what: string): number | undefined {
  if (text === null || text === undefined) return undefined;
  const index = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(index)) {
    throw new BadRequest(
      `Invalid ${what}: ${JSON.stringify(truncate(text))} is not a whole number from 0 to 2^53-1`,
    );
  }
  return index;
}

/** The EventSource resume header; empty means the client holds no event. */
function lastEventId(request: http.IncomingMessage): string | undefined {
  const header = request.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** What an error event carries: the reason, and the stable code of our own errors. */
function describe(error: unknown): { error: string; code?: string } {
  return error instanceof WeftError
    ? { error: reasonOf(error), code: error.code }
    : { error: reasonOf(error) };
}

function errorFrame(body: { error: string; code?: string }): string {
  return `event: error\ndata: ${JSON.stringify(body)}\n\n`;
}

/** Our own errors say what went wrong in words meant to be read; anything else is not shown. */
function reasonOf(error: unknown): string {
  return error instanceof WeftError ? truncate(error.message) : 'internal error';
}

function mapToObject(value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}

function truncate(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
}

function noop(): void {
  // Errors of a stream's socket end in 'close'.
}
