// The HTTP face of views: Consul-style blocking queries and Server-Sent Events.
//
// `GET <prefix><name>?index=N&wait=30s` answers with the view's value as JSON once its
// index is above N, or when the wait runs out with the value it has then (a timeout is not
// an error), and puts the index in `X-Weft-Index`: the client sends it back to wait for the
// next change. An N above the view's index (the server restarted and its indexes started
// over) is answered at once with the lower index, which tells the client to start again.
// The wait is capped at `maxWaitMs` and, as in Consul, stretched by up to a sixteenth at
// random, so clients woken together do not all come back together. A view with no value
// yet when the wait runs out is a 503, never an empty value at index 0.
//
// With `Accept: text/event-stream` the same path streams every new value as an event whose
// id is `<generation>-<index>`; a reconnecting EventSource sends `Last-Event-ID` and resumes
// after it within the same generation, and gets the current value at once from any other
// (a restarted server's indexes mean other states). A client that reads slowly is never
// queued for: while the socket is full only the latest value is kept, and it is encoded
// when the socket drains.
//
// A request for a path outside the prefix, or for a view it does not serve, goes to the
// `next` callback when one is given, so the handler can sit in front of an application.

import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';

import { systemClock, type Clock, type Timer } from '../internal/clock.ts';
import { CancelledError, ClosedError, ConfigError, WeftError } from '../internal/errors.ts';
import { wholeNumberOption } from './config.ts';
import { parseDuration } from './duration.ts';
import {
  hasErrorCode,
  isTerminalViewError,
  MaterializerStoppedError,
  UnauthorizedError,
  UnknownTopicError,
} from './errors.ts';
import type { ViewRequest, ViewStore, ViewUpdate } from './store.ts';

/**
 * Builds the store request for one query of a view. `query` holds the request's query
 * parameters (`index` and `wait` among them), for views that take their own, e.g. a
 * subject: `(query) => membersOf(query.get('dc') ?? 'dc1')`. Requests with the same `key`
 * share one materializer, so derive the key from every parameter the view depends on.
 * Throw a TypeError for bad parameters: it is answered 400 with its message.
 */
export type ViewFactory = (query: URLSearchParams) => ViewRequest<unknown>;

/** Where the handler reports failures that are not the client's; `console` fits. */
export interface Logger {
  error(message: string, details?: Record<string, unknown>): void;
}

export interface ViewsHttpOptions {
  /** The views served, by name: `<prefix><name>`. */
  readonly views: Readonly<Record<string, ViewFactory>>;
  /**
   * The path under which views are served: view `name` is at `<prefix><name>` (the name
   * percent-decoded). Must start with "/"; end it with "/" too. Default '/v1/views/'.
   */
  readonly prefix?: string | undefined;
  /** Longest wait a query may ask for. Default 10 minutes (Consul's). */
  readonly maxWaitMs?: number | undefined;
  /** Wait of a query that names none (or `wait=0`, as in Consul). Default 5 minutes. */
  readonly defaultWaitMs?: number | undefined;
  /** Event streams open at once; more are refused with 503. Default 1000. */
  readonly maxStreams?: number | undefined;
  /** Interval of the comment an idle event stream sends to keep proxies from closing it. Default 15 s. */
  readonly heartbeatMs?: number | undefined;
  /**
   * Makes a view's value JSON-ready. Default: a Map becomes an object, anything else is
   * kept. Called once per value object: its JSON is shared by every query and stream that
   * sends that value.
   */
  readonly encode?: ((value: unknown) => unknown) | undefined;
  /** For the wait's jitter. Default Math.random. */
  readonly random?: (() => number) | undefined;
  readonly clock?: Clock | undefined;
  readonly logger?: Logger | undefined;
}

export interface ViewsHttpStats {
  /** Blocking queries answered with a value. */
  readonly served: number;
  /** Blocking queries answered 503 because the view had no value yet when their wait ran out. */
  readonly notReady: number;
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

/**
 * Serves a request for a view. A request that is not for a view (a path outside the
 * prefix, an unknown or undecodable view name) goes to `next` when it is given, untouched
 * (its body unread), and is answered 404 (400 for an undecodable name) when it is not. The
 * signature is Connect's, so the handler also mounts as Express middleware.
 */
export type ViewsHttpHandler = ((
  request: http.IncomingMessage,
  response: http.ServerResponse,
  next?: () => void,
) => void) & {
  stats(): ViewsHttpStats;
};

const JSON_TYPE = 'application/json';
const EVENT_STREAM = 'text/event-stream';
const MAX_REASON_CHARS = 512;
/**
 * Retry-After (seconds) of a query whose view had no value yet when its wait ran out. Short:
 * the next query waits for the first snapshot again, so asking soon costs no busy loop.
 */
const NOT_READY_RETRY_AFTER_S = 1;
/** Characters of an event id's generation: 16 of base64url are 96 bits. */
const GENERATION_CHARS = 16;
/** `<generation>-<index>`: the generation is base64url (which has "-"); the index follows the last "-". */
const EVENT_ID = /^([A-Za-z0-9_-]{1,64})-([0-9]{1,16})$/;

/** A query the handler refuses with 400; the message is the reason sent. */
class BadRequest extends Error {}

/** The index a stream's client holds, and the generation it is of when it came from an event id. */
interface Held {
  readonly index: number;
  /** Undefined for a plain `?index=N`, which says nothing of the generation. */
  readonly generation: string | undefined;
}

/** Where a request goes: a view of this handler, or not (with the status to answer without `next`). */
type Target =
  | { readonly name: string; readonly factory: ViewFactory; readonly search: URLSearchParams }
  | { readonly name: undefined; readonly status: number; readonly reason: string };

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
  // The generation of event ids for views that report none: new with every handler, so
  // with every process start.
  const ownGeneration = randomBytes((GENERATION_CHARS * 3) / 4).toString('base64url');
  /** JSON of the values encoded so far, by value: one encoding per value, however many clients get it. */
  const encoded = new WeakMap<object, string>();
  /** Views whose topic was found missing and logged: each is logged once, not at every request. */
  const unknownTopicLogged = new Set<string>();
  const counters = {
    served: 0,
    notReady: 0,
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

  /** A view over a missing topic is a mistake of configuration: worth one log line, not one per request. */
  const noteUnknownTopic = (view: string, error: unknown): void => {
    if (unknownTopicLogged.has(view)) return;
    unknownTopicLogged.add(view);
    logger.error('a view reads a topic that does not exist', { view, error });
  };

  /** Answers a failure of the store or the view with the status its kind deserves. */
  const failWith = (response: http.ServerResponse, view: string, error: unknown): void => {
    if (hasErrorCode(error, UnknownTopicError)) {
      noteUnknownTopic(view, error);
      fail(response, 404, reasonOf(error));
      return;
    }
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
    const shared = typeof value === 'object' && value !== null;
    if (shared) {
      const text = encoded.get(value);
      if (text !== undefined) return text;
    }
    let text: string;
    try {
      // `undefined` (or a function) has no JSON text, whatever the type says; null tells a client "no value".
      const json = JSON.stringify(encode(value)) as string | undefined;
      text = json ?? 'null';
    } catch (error) {
      logger.error('a view value cannot be encoded as JSON', { view, error });
      return undefined;
    }
    if (shared) encoded.set(value, text);
    return text;
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
    // An index ahead of the view is from before a restart: the lower index, at once, tells the client to reset.
    const fetchOptions = { minIndex, timeoutMs: waitMs, signal: controller.signal, returnIfBehind: true };
    store.get(request, fetchOptions).then(
      (result) => {
        counters.waiting -= 1;
        if (controller.signal.aborted) return;
        if (result.index === 0) {
          // No first snapshot within the wait: index 0 and an empty value would pass for a real, empty state.
          counters.notReady += 1;
          fail(response, 503, `view ${JSON.stringify(view)} has no value yet`, {
            'Retry-After': String(NOT_READY_RETRY_AFTER_S),
          });
          return;
        }
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
    held: Held | undefined,
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
    /**
     * The newest event not written while the socket was full: all a slow client is owed. A
     * builder, not the text: an event replaced before the socket drains is never encoded.
     */
    let owed: (() => string) | undefined;
    // What the client holds is not news, until the first value that is.
    let resumeAfter = held;
    // The last generation seen and its event-id form: one hash per generation, not per event.
    let generationSeen: string | undefined;
    let generationSeenId = ownGeneration;

    const finish = (): void => {
      if (ended) return;
      ended = true;
      heartbeat.cancel();
      counters.streams -= 1;
    };
    // The status line waits until the view has a value (or fails, or a heartbeat is due), so
    // that a stream refused before (an unknown topic, a denied token) gets a status code, on
    // which an EventSource gives up rather than reconnecting forever.
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
    const write = (frame: string): void => {
      if (!response.write(frame)) blocked = true;
    };
    /** Writes an event now, or, while the socket is full, keeps it as the one owed. */
    const deliver = (frame: () => string): void => {
      if (ended || response.destroyed) return;
      openStream();
      if (blocked) {
        if (owed !== undefined) counters.coalesced += 1;
        owed = frame;
        return;
      }
      write(frame());
    };
    /** Ends the stream with what the client is still owed, then `final` (why it ends). */
    const end = (final?: string): void => {
      const last = owed;
      owed = undefined;
      openStream();
      finish();
      if (last !== undefined) response.write(last());
      if (final === undefined) response.end();
      else response.end(final);
    };
    /** Refuses the stream with a status code: only while nothing was sent. */
    const refuse = (error: unknown): void => {
      finish();
      failWith(response, view, error);
      controller.abort(new CancelledError('the event stream was refused'));
    };
    const idOf = (generation: string | undefined): string => {
      if (generation === undefined) return ownGeneration;
      if (generation !== generationSeen) {
        generationSeen = generation;
        generationSeenId = eventIdGeneration(generation);
      }
      return generationSeenId;
    };

    // Also opens a stream whose view has no value yet, so that the client and proxies see it alive.
    const heartbeat: Timer = clock.setInterval(() => {
      if (ended || response.destroyed || blocked) return;
      openStream();
      write(': keep-alive\n\n');
    }, heartbeatMs);
    response.on('drain', () => {
      blocked = false;
      const next = owed;
      owed = undefined;
      if (next !== undefined && !ended && !response.destroyed) write(next());
    });
    // A write to a socket the client has just closed reports here; 'close' does the cleanup.
    response.on('error', noop);
    response.once('close', () => {
      finish();
      controller.abort(new CancelledError('the client went away'));
    });

    const onUpdate = (update: ViewUpdate<unknown>): void => {
      const { error } = update;
      if (error !== undefined) {
        if (!open && endsView(error)) {
          refuse(error);
          return;
        }
        if (hasErrorCode(error, UnknownTopicError)) noteUnknownTopic(view, error);
        else if (!(error instanceof WeftError)) logger.error('view stream failed', { view, error });
        const frame = errorFrame(describe(error));
        deliver(() => frame);
        return;
      }
      // The view has a value: the stream is on, whether this value is news to the client or not.
      openStream();
      const generation = idOf(update.generation);
      if (resumeAfter !== undefined) {
        if (!isNews(update.index, generation, resumeAfter)) return;
        // From here every value notify hands over is news, even a lower index from a rebuilt view.
        resumeAfter = undefined;
      }
      const { index, value } = update;
      deliver(() => {
        const data = toJson(view, value);
        return data === undefined
          ? errorFrame({ error: 'the view value cannot be encoded as JSON' })
          : `id: ${generation}-${index}\nevent: update\ndata: ${data}\n\n`;
      });
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
          refuse(error);
          return;
        }
        counters.failed += 1;
        if (!(error instanceof WeftError)) logger.error('view stream failed', { view, error });
        end(errorFrame(describe(error)));
      },
    );
  };

  /** Which view a request is for, if any. */
  const locate = (url: string): Target => {
    const mark = url.indexOf('?');
    const path = mark === -1 ? url : url.slice(0, mark);
    if (!path.startsWith(prefix)) return { name: undefined, status: 404, reason: 'not found' };
    let name: string;
    try {
      name = decodeURIComponent(path.slice(prefix.length));
    } catch {
      return { name: undefined, status: 400, reason: 'Invalid view name' };
    }
    // Own properties only: "constructor" or "__proto__" are not views.
    const factory = Object.hasOwn(views, name) ? views[name] : undefined;
    if (factory === undefined) {
      return { name: undefined, status: 404, reason: `unknown view ${JSON.stringify(name)}` };
    }
    return { name, factory, search: new URLSearchParams(mark === -1 ? '' : url.slice(mark + 1)) };
  };

  const serveView = (
    request: http.IncomingMessage,
    response: http.ServerResponse,
    target: Extract<Target, { name: string }>,
  ): void => {
    // No view reads a body; let one that was sent drain.
    request.resume();
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      fail(response, 405, 'only GET and HEAD are served', { Allow: 'GET, HEAD' });
      return;
    }
    const { name, factory, search } = target;
    let index: number;
    let held: Held | undefined;
    let waitMs: number;
    let viewRequest: ViewRequest<unknown>;
    const wantsStream =
      request.method === 'GET' && (request.headers.accept ?? '').toLowerCase().includes(EVENT_STREAM);
    try {
      index = parseIndex(search.get('index'), 'index') ?? 0;
      if (wantsStream) {
        held = index > 0 ? { index, generation: undefined } : undefined;
        const lastId = lastEventId(request);
        // An id of another form (an older server's, a garbled one) holds nothing: the current value is news.
        if (lastId !== undefined) held = parseEventId(lastId);
      }
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
    if (wantsStream) stream(response, name, viewRequest, held);
    else query(response, name, viewRequest, index, waitMs);
  };

  const handle = (request: http.IncomingMessage, response: http.ServerResponse, next?: () => void): void => {
    const target = locate(request.url ?? '/');
    if (target.name === undefined) {
      // Not ours: the application's next route, outside our try (its failures are its own).
      if (next !== undefined) next();
      else fail(response, target.status, target.reason);
      return;
    }
    try {
      serveView(request, response, target);
    } catch (error) {
      // A factory that failed for a reason other than its parameters, or a bug: never a crash.
      logger.error('view request failed', { url: request.url, error });
      counters.failed += 1;
      fail(response, 500, 'internal error');
    }
  };

  return Object.assign(handle, { stats: (): ViewsHttpStats => ({ ...counters }) });
}

/**
 * Is a value at `index` of generation `generation` news to a client holding `held`? Within
 * a generation, only a higher index is. A value of another generation always is. With a
 * plain index (no generation known), any other index is, as in Consul: a lower one means
 * the view restarted, and the client must start again from it.
 */
function isNews(index: number, generation: string, held: Held): boolean {
  if (held.generation === undefined) return index !== held.index;
  return generation !== held.generation || index > held.index;
}

/** The event-id form of a view's generation: short, and safe in an `id:` line whatever the publisher sent. */
function eventIdGeneration(generation: string): string {
  return createHash('sha256').update(generation).digest('base64url').slice(0, GENERATION_CHARS);
}

/** An event id this handler wrote, `<generation>-<index>`; undefined for anything else. */
function parseEventId(id: string): Held | undefined {
  const match = EVENT_ID.exec(id);
  if (match === null) return undefined;
  const index = Number(match[2]);
  return Number.isSafeInteger(index) ? { index, generation: match[1] } : undefined;
}

/** Failures after which a view gives no more values: unknown topic, denied, stopped, closed. */
function endsView(error: unknown): boolean {
  return (
    isTerminalViewError(error) ||
    hasErrorCode(error, MaterializerStoppedError) ||
    error instanceof ClosedError
  );
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
