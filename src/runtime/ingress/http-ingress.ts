// The HTTP ingress: a request handler that appends one message to a function's inbox per POST, for
// any node:http server (or Connect/Express, whose signature it has).
//
//   POST {prefix}/{namespace}/{name}/{id}          prefix default '/ingress'
//   Weft-Message-Type: io.statefun.types/string    the message's type name, required
//   Idempotency-Key: order-7-attempt              optional, 1 to 256 visible ASCII characters
//   <body>                                         the message's value bytes, as they are
//
// Path: each segment is percent-decoded; the last is the id, the one before the function's name
// and everything before that, joined with '/', its namespace (a namespace may contain slashes:
// `/ingress/example.com/shop/cart/7` is `example.com/shop/cart`, id 7). An encoded slash (%2F)
// counts as a slash in the namespace and as part of the id, and is refused in the name. The query
// string is ignored. The body is the value exactly as its type encodes it (JSON text for a JSON
// type, the wrapper message for `io.statefun.types/*`); its Content-Type is not looked at.
//
// Answers (every error a text/plain reason):
//   202 {"seq":n,"duplicate":false}  durable in the target's inbox (the append resolved)
//   202 {"seq":n,"duplicate":true}   a retry: the Idempotency-Key was stored within the dedup
//                                    window (the key is global, not per target: make it unique)
//   400  bad path (empty segment, bad percent-encoding, a type name the SDK refuses), missing or
//        bad Weft-Message-Type, bad Idempotency-Key
//   404  no function of that type is served (checked before the body is read)
//   405  not a POST (with Allow: POST)
//   413  the body is larger than maxBodyBytes (reading stops; the connection is closed)
//   503  the runtime pushes back (with Retry-After, seconds) or is shutting down; in a cluster,
//        also when the node owning the address cannot be reached (any retryable error)
//   500  anything else, logged; the answer says no more than "internal error"
//
// A request outside the prefix goes to `next` when one is given, else gets a 404. A refusal
// sent before the body is read closes the connection unless the body is declared small (64 KiB),
// so a large unread body is never drained.

import type http from 'node:http';

import { CapacityExceededError, ClosedError, ConfigError, isRetryable } from '../../internal/errors.ts';
import { TypeName } from '../../statefun/index.ts';
import { UnknownFunctionTypeError } from '../errors.ts';
import type { RuntimeInput } from '../runtime-input.ts';
import type { Appended, Envelope } from '../store/state-store.ts';
import { wholeNumberOption } from './ingress-config.ts';
import { logSafely } from '../../internal/log-safely.ts';
import type { IngressLogger } from './ingress-logger.ts';
import { MESSAGE_TYPE_HEADER } from './subject-routes.ts';

export interface HttpIngressOptions {
  /** Where the ingress is mounted: '' or a path starting with '/'. Default '/ingress'. */
  readonly pathPrefix?: string | undefined;
  /** Largest body accepted; a larger one is answered 413. Default 4 MiB. */
  readonly maxBodyBytes?: number | undefined;
  /** The Retry-After of a 503 under backpressure, in seconds. Default 1. */
  readonly retryAfterSeconds?: number | undefined;
  /** Where failures that are not the client's go; default `console`. */
  readonly logger?: IngressLogger | undefined;
}

export interface HttpIngressStats {
  /** Messages appended (202, not a duplicate). */
  readonly accepted: number;
  /** Retries answered 202 with the seq their Idempotency-Key was first stored under. */
  readonly duplicates: number;
  /** 503 because the runtime pushed back. */
  readonly refusedBusy: number;
  /** 503 because the runtime is shutting down. */
  readonly refusedClosed: number;
  /** 400, 405, and 404 for a path outside the prefix (when no `next` takes it). */
  readonly badRequests: number;
  /** 404 for a function type nobody serves. */
  readonly unknownType: number;
  /** 413. */
  readonly tooLarge: number;
  /** 500. */
  readonly failed: number;
  /** Clients that went away before their body was in; nothing of theirs was appended. */
  readonly abandoned: number;
}

/** A node:http request listener with the ingress's counters; `next` takes paths outside the prefix. */
export type HttpIngressHandler = ((
  request: http.IncomingMessage,
  response: http.ServerResponse,
  next?: () => void,
) => void) & {
  stats(): HttpIngressStats;
};

export const defaultHttpIngressConfig = {
  pathPrefix: '/ingress',
  maxBodyBytes: 4 * 1024 * 1024,
  retryAfterSeconds: 1,
} as const;

/** The header that makes a retried request idempotent. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

// 1 to 256 visible ASCII characters (0x21 to 0x7E): no spaces, no controls.
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,256}$/;
// Larger than any body limit worth configuring; a number of bytes that stays a safe integer.
const MAX_BODY_LIMIT = 2 ** 31 - 1;
// The most of an unwanted body (a refused request's) read and dropped to keep the connection.
const DRAIN_LIMIT_BYTES = 64 * 1024;

type Counters = { -readonly [K in keyof HttpIngressStats]: HttpIngressStats[K] };

interface Target {
  readonly namespace: string;
  readonly name: string;
  readonly id: string;
}

export function httpIngressHandler(
  input: RuntimeInput,
  options: HttpIngressOptions = {},
): HttpIngressHandler {
  const prefix = prefixOption(options.pathPrefix ?? defaultHttpIngressConfig.pathPrefix);
  const maxBodyBytes = wholeNumberOption(
    'maxBodyBytes',
    options.maxBodyBytes ?? defaultHttpIngressConfig.maxBodyBytes,
    0,
    MAX_BODY_LIMIT,
  );
  const retryAfter = String(
    wholeNumberOption(
      'retryAfterSeconds',
      options.retryAfterSeconds ?? defaultHttpIngressConfig.retryAfterSeconds,
      0,
      86_400,
    ),
  );
  const logger = options.logger ?? console;
  const counts: Counters = {
    accepted: 0,
    duplicates: 0,
    refusedBusy: 0,
    refusedClosed: 0,
    badRequests: 0,
    unknownType: 0,
    tooLarge: 0,
    failed: 0,
    abandoned: 0,
  };

  const fail = (request: http.IncomingMessage, response: http.ServerResponse, error: unknown): void => {
    counts.failed += 1;
    logSafely(() => {
      logger.error('http ingress request failed', { error });
    });
    refuse(request, response, 500, 'internal error');
  };

  const deliver = (
    request: http.IncomingMessage,
    response: http.ServerResponse,
    envelope: Envelope,
  ): void => {
    let sent: Promise<Appended[]>;
    try {
      sent = input.send([envelope]);
    } catch (error) {
      fail(request, response, error);
      return;
    }
    sent.then(
      (appended) => {
        const first = appended[0];
        if (first === undefined) {
          fail(request, response, new Error('RuntimeInput.send returned no Appended for the envelope'));
          return;
        }
        if (first.duplicate) counts.duplicates += 1;
        else counts.accepted += 1;
        const body = JSON.stringify({ seq: first.seq, duplicate: first.duplicate });
        answer(request, response, 202, ['Content-Type', 'application/json'], body);
      },
      (error: unknown) => {
        if (error instanceof CapacityExceededError) {
          counts.refusedBusy += 1;
          refuse(request, response, 503, 'the runtime is busy, retry later', ['Retry-After', retryAfter]);
        } else if (error instanceof ClosedError) {
          counts.refusedClosed += 1;
          refuse(request, response, 503, 'the runtime is shutting down');
        } else if (error instanceof UnknownFunctionTypeError) {
          counts.unknownType += 1;
          refuse(request, response, 404, error.message);
        } else if (isRetryable(error)) {
          // In a cluster: the node owning the address is unreachable for now.
          counts.refusedBusy += 1;
          refuse(request, response, 503, 'the message cannot be stored now, retry later', [
            'Retry-After',
            retryAfter,
          ]);
        } else {
          fail(request, response, error);
        }
      },
    );
  };

  const handler = (request: http.IncomingMessage, response: http.ServerResponse, next?: () => void): void => {
    // Registered first and never removed: a client that resets mid-body must not crash the process.
    request.on('error', ignore);
    const path = pathOf(request.url ?? '', prefix);
    if (path === undefined) {
      if (next !== undefined) {
        next();
        return;
      }
      counts.badRequests += 1;
      refuse(request, response, 404, `not an ingress path; POST ${prefix}/{namespace}/{name}/{id}`);
      return;
    }
    if (request.method !== 'POST') {
      counts.badRequests += 1;
      refuse(request, response, 405, 'only POST is served', ['Allow', 'POST']);
      return;
    }
    const target = parseTarget(path, prefix);
    if (typeof target === 'string') {
      counts.badRequests += 1;
      refuse(request, response, 400, target);
      return;
    }
    let served: boolean;
    try {
      served = input.servesType(target.namespace, target.name);
    } catch (error) {
      fail(request, response, error);
      return;
    }
    if (!served) {
      counts.unknownType += 1;
      refuse(request, response, 404, `no function of type ${target.namespace}/${target.name} is served`);
      return;
    }
    const typename = messageTypeOf(request);
    if (typename.problem !== undefined) {
      counts.badRequests += 1;
      refuse(request, response, 400, typename.problem);
      return;
    }
    const key = idempotencyKeyOf(request);
    if (key.problem !== undefined) {
      counts.badRequests += 1;
      refuse(request, response, 400, key.problem);
      return;
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      counts.tooLarge += 1;
      refuse(request, response, 413, `the body exceeds ${maxBodyBytes} bytes`);
      return;
    }
    readBody(request, maxBodyBytes, (body) => {
      if (body === 'abandoned') {
        counts.abandoned += 1;
        return;
      }
      if (body === 'too-large') {
        counts.tooLarge += 1;
        refuse(request, response, 413, `the body exceeds ${maxBodyBytes} bytes`);
        return;
      }
      deliver(request, response, {
        target: [target.namespace, target.name, target.id],
        argument: { typename: typename.value, value: body },
        ingressId: key.value === undefined ? undefined : `http:${key.value}`,
      });
    });
  };
  return Object.assign(handler, { stats: (): HttpIngressStats => ({ ...counts }) });
}

function prefixOption(prefix: string): string {
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/')) || /[?#\s]/.test(prefix)) {
    throw new ConfigError(
      'pathPrefix',
      `must be '' or a path starting with '/', got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

/** The path below `prefix` (without the slash after it), or undefined when the URL is not under it. */
function pathOf(url: string, prefix: string): string | undefined {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (!path.startsWith(`${prefix}/`)) return undefined;
  return path.slice(prefix.length + 1);
}

/** The address a path names, or why it names none. */
function parseTarget(path: string, prefix: string): Target | string {
  const segments = path.split('/');
  if (segments.length < 3) return `expected ${prefix}/{namespace}/{name}/{id}`;
  const decoded: string[] = [];
  for (const [i, segment] of segments.entries()) {
    if (segment === '') return `path segment ${i + 1} is empty`;
    try {
      decoded.push(decodeURIComponent(segment));
    } catch {
      return `path segment ${i + 1} is not valid percent-encoding`;
    }
  }
  const id = decoded.pop() ?? '';
  const name = decoded.pop() ?? '';
  try {
    const type = TypeName.of(decoded.join('/'), name);
    return { namespace: type.namespace, name: type.name, id };
  } catch (error) {
    return (error as Error).message;
  }
}

function messageTypeOf(
  request: http.IncomingMessage,
): { value: string; problem?: undefined } | { problem: string } {
  const values = request.headersDistinct['weft-message-type'] ?? [];
  if (values.length !== 1) {
    return {
      problem: `expected one ${MESSAGE_TYPE_HEADER} header naming the message's type, got ${values.length}`,
    };
  }
  const value = values[0] ?? '';
  try {
    return { value: TypeName.parse(value).toString() };
  } catch (error) {
    return { problem: `${MESSAGE_TYPE_HEADER}: ${(error as Error).message}` };
  }
}

function idempotencyKeyOf(
  request: http.IncomingMessage,
): { value: string | undefined; problem?: undefined } | { problem: string } {
  const values = request.headersDistinct['idempotency-key'];
  if (values === undefined) return { value: undefined };
  const value = values[0] ?? '';
  if (values.length !== 1 || !IDEMPOTENCY_KEY.test(value)) {
    return { problem: `${IDEMPOTENCY_KEY_HEADER} must be one value of 1 to 256 visible ASCII characters` };
  }
  return { value };
}

/** Reads the body up to `maxBytes`; reports it, 'too-large' at the first byte over, or 'abandoned'. */
function readBody(
  request: http.IncomingMessage,
  maxBytes: number,
  done: (body: Buffer | 'too-large' | 'abandoned') => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const finish = (body: Buffer | 'too-large' | 'abandoned'): void => {
    request.off('data', onData);
    request.off('end', onEnd);
    request.off('close', onClose);
    done(body);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > maxBytes) finish('too-large');
    else chunks.push(chunk);
  };
  const onEnd = (): void => {
    finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  };
  // 'close' before 'end': the client went away (an error, if any, went to the ignoring listener).
  const onClose = (): void => {
    finish('abandoned');
  };
  request.on('data', onData);
  request.on('end', onEnd);
  request.on('close', onClose);
}

/** A text/plain answer with the reason. */
function refuse(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  status: number,
  reason: string,
  headers: readonly string[] = [],
): void {
  answer(request, response, status, ['Content-Type', 'text/plain; charset=utf-8', ...headers], `${reason}\n`);
}

/**
 * Answers unless the client is gone or an answer has begun. An answer sent before the body was
 * read in full closes the connection, unless the body is declared small: draining any body
 * nobody reads, to keep the connection, would let a client make the server read gigabytes.
 */
function answer(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  status: number,
  headers: readonly string[],
  body: string,
): void {
  if (response.headersSent || response.destroyed) return;
  const declared = request.headers['content-length'];
  const close = !request.complete && (declared === undefined || Number(declared) > DRAIN_LIMIT_BYTES);
  response.writeHead(status, [
    ...headers,
    ...(close ? ['Connection', 'close'] : []),
    'Content-Length',
    String(Buffer.byteLength(body)),
  ]);
  response.end(body);
  // Flowing with no 'data' listener: what still arrives is dropped, not buffered (node:http
  // does the same with a small body once the answer is out).
  if (!request.complete) request.resume();
}

function ignore(): void {
  // A client's socket error: its request is abandoned and counted where it is noticed.
}
