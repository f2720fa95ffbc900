// One POST of a ToFunction request and the read of its reply: one attempt, no retrying.
//
// Its `reply` resolves with whatever the endpoint answered (status, content type, body) and leaves
// judging the answer to the invoker; it rejects with an `EndpointError` when there is no complete
// answer to judge: the connection could not be opened in time or broke, or the body grew past
// `maxReplyBytes` (the response is then destroyed, not drained, so a hostile endpoint cannot make
// us read without end). `abort(reason)` destroys the request and rejects with `reason`.
//
// This runs once per invocation at full load, so it does no more than a bare keep-alive client
// would: the URL is parsed once (`httpTarget`), the headers go in as one raw list rather than
// through `setHeader`, the Content-Type comes from `rawHeaders` rather than the parsed header
// object, a reply that arrives in one chunk is used as it is, and the listeners call methods of
// one object per exchange rather than a set of named closures.

import http from 'node:http';
import https from 'node:https';

import type { Clock, Timer } from '../../internal/clock.ts';
import { EndpointError } from '../errors.ts';

export const OCTET_STREAM = 'application/octet-stream';

/** What every exchange with one endpoint shares. */
export interface HttpRoute {
  readonly agent: http.Agent;
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  readonly maxReplyBytes: number;
}

/** A URL parsed into what `http.request` needs, once rather than per request. */
export interface HttpTarget {
  readonly url: string;
  readonly request: typeof http.request;
  readonly hostname: string;
  /** Undefined for the scheme's default port, which the agent then supplies. */
  readonly port: number | undefined;
  /** Path and query. */
  readonly path: string;
  /** The Host header: the host name (bracketed for IPv6) and any non-default port. */
  readonly host: string;
}

export interface HttpReply {
  readonly status: number;
  /** The Content-Type header as sent, or undefined without one. */
  readonly contentType: string | undefined;
  readonly body: Uint8Array;
}

/** The first bytes of a body, as text for an operator; `EndpointError.body` holds this. */
export const ERROR_BODY_BYTES = 1024;

export function bodyExcerpt(body: Uint8Array): string | undefined {
  if (body.length === 0) return undefined;
  return Buffer.from(body.buffer, body.byteOffset, Math.min(body.length, ERROR_BODY_BYTES)).toString('utf8');
}

/** Parses `url` (http: or https:) as Node's `http.request(url)` would. */
export function httpTarget(url: string): HttpTarget {
  const parsed = new URL(url);
  const hostname = parsed.hostname;
  return {
    url,
    request: parsed.protocol === 'https:' ? https.request : http.request,
    // URL keeps the brackets of an IPv6 literal; a socket address has none.
    hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname,
    port: parsed.port === '' ? undefined : Number(parsed.port),
    path: `${parsed.pathname}${parsed.search}`,
    host: parsed.host,
  };
}

const EMPTY_BODY = Buffer.alloc(0);

/** One POST in flight. The request is sent by the constructor. */
export class HttpExchange {
  readonly reply: Promise<HttpReply>;
  readonly #route: HttpRoute;
  readonly #url: string;
  readonly #request: http.ClientRequest;
  #resolve!: (reply: HttpReply) => void;
  #reject!: (error: unknown) => void;
  #settled = false;
  #connectTimer: Timer | undefined;
  #status = 0;
  #contentType: string | undefined;
  /** The reply's first chunk, and all of them once there is more than one. */
  #firstChunk: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #received = 0;

  constructor(route: HttpRoute, target: HttpTarget, body: Uint8Array) {
    this.#route = route;
    this.#url = target.url;
    this.reply = new Promise<HttpReply>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const request = target.request({
      method: 'POST',
      agent: route.agent,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      // A raw list is stored as it is; an object goes through one `setHeader` per entry. A raw
      // list gets no Host header from Node, so it carries its own.
      headers: [
        'Host',
        target.host,
        'Content-Type',
        OCTET_STREAM,
        'Accept',
        OCTET_STREAM,
        'User-Agent',
        'weft-runtime',
        'Content-Length',
        String(body.length),
      ],
    });
    this.#request = request;
    request.on('socket', (socket) => {
      if (socket.connecting && !this.#settled) this.#awaitConnection(socket);
    });
    // Stays attached after settling: a destroyed request may still emit, and must not crash.
    request.on('error', (error: NodeJS.ErrnoException) => {
      this.#fail(
        new EndpointError(this.#url, `request failed: ${error.code ?? error.message}`, { cause: error }),
      );
    });
    request.on('response', (response) => {
      this.#read(response);
    });
    request.end(body);
  }

  /** Ends the exchange, unless it has settled, and rejects its reply with `reason`. */
  abort(reason: unknown): void {
    this.#fail(reason);
  }

  #awaitConnection(socket: NodeJS.Socket): void {
    const { clock, connectTimeoutMs } = this.#route;
    this.#connectTimer = clock.setTimeout(() => {
      this.#fail(new EndpointError(this.#url, `no connection within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('connect', () => this.#connectTimer?.cancel());
  }

  #read(response: http.IncomingMessage): void {
    this.#status = response.statusCode ?? 0;
    const raw = response.rawHeaders;
    let declaredLength = Number.NaN;
    // Node's header object keeps the first of repeated Content-Type and Content-Length headers.
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (
        name.length === 12 &&
        this.#contentType === undefined &&
        isHeader(name, 'Content-Type', 'content-type')
      ) {
        this.#contentType = raw[i + 1];
      } else if (
        name.length === 14 &&
        Number.isNaN(declaredLength) &&
        isHeader(name, 'Content-Length', 'content-length')
      ) {
        declaredLength = Number(raw[i + 1]);
      }
    }
    if (declaredLength > this.#route.maxReplyBytes) {
      this.#fail(this.#tooLarge());
      return;
    }
    response.on('data', (chunk: Buffer) => {
      this.#take(chunk);
    });
    response.on('end', () => {
      this.#complete();
    });
    response.on('error', (error) => {
      this.#broken(error);
    });
    response.on('close', () => {
      if (!response.complete) this.#broken(undefined);
    });
  }

  #take(chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#received > this.#route.maxReplyBytes) {
      this.#fail(this.#tooLarge());
    } else if (this.#firstChunk === undefined) {
      this.#firstChunk = chunk;
    } else {
      this.#chunks ??= [this.#firstChunk];
      this.#chunks.push(chunk);
    }
  }

  #complete(): void {
    if (!this.#finish()) return;
    let body = this.#firstChunk ?? EMPTY_BODY;
    if (this.#chunks !== undefined) body = Buffer.concat(this.#chunks, this.#received);
    this.#resolve({ status: this.#status, contentType: this.#contentType, body });
  }

  #broken(cause: Error | undefined): void {
    this.#fail(
      new EndpointError(this.#url, 'connection lost while reading the reply', {
        status: this.#status,
        cause,
      }),
    );
  }

  #tooLarge(): EndpointError {
    return new EndpointError(this.#url, `reply body larger than ${this.#route.maxReplyBytes} bytes refused`, {
      status: this.#status,
    });
  }

  #fail(error: unknown): void {
    if (!this.#finish()) return;
    // A half-read or half-written exchange must not go back to the pool.
    this.#request.destroy();
    this.#reject(error);
  }

  /** Marks the exchange settled; false if it already was. */
  #finish(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#connectTimer?.cancel();
    return true;
  }
}

/** `name` is the header `lowerCase` in any casing; the usual spellings are tried before lower-casing. */
function isHeader(name: string, canonical: string, lowerCase: string): boolean {
  return name === canonical || name === lowerCase || name.toLowerCase() === lowerCase;
}
