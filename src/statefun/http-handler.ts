// The request-reply protocol over HTTP, as a StateFun runtime calls a remote function:
// POST, an `application/octet-stream` ToFunction body, a FromFunction body back.

import type http from 'node:http';

import { FunctionFailedError, InvalidRequestError, UnknownFunctionError } from './request-errors.ts';

/** Where the handler reports failures; `console` fits. */
export interface Logger {
  error(message: string, details?: Record<string, unknown>): void;
}

export interface HandlerOptions {
  readonly logger?: Logger | undefined;
  /** Largest request body accepted (the runtime's default payload limit is 32 MiB). */
  readonly maxBodyBytes?: number | undefined;
}

const OCTET_STREAM = 'application/octet-stream';

/**
 * Runs a request body; `signal` is called only if a function asks for its signal. Throws or
 * rejects on failure; returns the reply itself when it could answer synchronously.
 */
export type Invoke = (body: Uint8Array, signal: () => AbortSignal) => Uint8Array | Promise<Uint8Array>;

export function requestReplyHandler(
  invoke: Invoke,
  options: HandlerOptions = {},
): (request: http.IncomingMessage, response: http.ServerResponse) => void {
  const logger = options.logger ?? console;
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  return (request, response) => {
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST');
      fail(response, 405, 'only POST is served');
      request.resume();
      return;
    }
    const contentType = contentTypeOf(request.rawHeaders);
    if (
      contentType !== undefined &&
      contentType !== OCTET_STREAM &&
      contentType.split(';')[0]?.trim().toLowerCase() !== OCTET_STREAM
    ) {
      fail(response, 415, `the body must be ${OCTET_STREAM}`);
      request.resume();
      return;
    }
    // Aborted if the client goes away, and made only when a function reads its signal: an
    // AbortController and a 'close' listener per request are a measurable share of a small one.
    // Functions run once the whole body is in, so only the response can fail after that.
    let abandoned: AbortController | undefined;
    const signal = (): AbortSignal => {
      if (abandoned === undefined) {
        const controller = new AbortController();
        abandoned = controller;
        if (response.destroyed && !response.writableFinished) {
          controller.abort(new Error('the client went away'));
        } else {
          response.once('close', () => {
            if (!response.writableFinished) controller.abort(new Error('the client went away'));
          });
        }
      }
      return abandoned.signal;
    };
    let body: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        fail(response, 413, `the body exceeds ${maxBodyBytes} bytes`);
        request.destroy();
        return;
      }
      // Most bodies arrive in one chunk, which is used as it is.
      if (body === undefined) body = chunk;
      else (chunks ??= [body]).push(chunk);
    });
    request.on('end', () => {
      if (size > maxBodyBytes) return;
      if (body === undefined || size === 0) {
        fail(response, 400, 'the body is empty');
        return;
      }
      let result: Uint8Array | Promise<Uint8Array>;
      try {
        result = invoke(chunks === undefined ? body : Buffer.concat(chunks, size), signal);
      } catch (error) {
        refuse(response, logger, error);
        return;
      }
      // A batch of synchronous functions is answered at once, without a promise round.
      if (result instanceof Promise) {
        result.then(
          (reply) => {
            answer(response, reply);
          },
          (error: unknown) => {
            refuse(response, logger, error);
          },
        );
      } else {
        answer(response, result);
      }
    });
  };
}

function answer(response: http.ServerResponse, reply: Uint8Array): void {
  if (response.headersSent) return;
  // Set explicitly: the runtime checks this content type exactly.
  response.writeHead(200, ['Content-Type', OCTET_STREAM, 'Content-Length', String(reply.length)]);
  response.end(reply);
}

/** Answers a failed request: 400 and 404 for the caller's mistakes, 500 (logged) for the rest. */
function refuse(response: http.ServerResponse, logger: Logger, error: unknown): void {
  if (error instanceof InvalidRequestError) fail(response, 400, error.message);
  else if (error instanceof UnknownFunctionError) fail(response, 404, error.message);
  else {
    const message = error instanceof FunctionFailedError ? error.message : 'internal error';
    logger.error('stateful function request failed', { error });
    fail(response, 500, message.length > 1024 ? `${message.slice(0, 1024)}…` : message);
  }
}

/** A short text answer with `status`, unless an answer has begun already. */
function fail(response: http.ServerResponse, status: number, text: string): void {
  if (response.headersSent) return;
  const body = `${text}\n`;
  response.writeHead(status, [
    'Content-Type',
    'text/plain; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(body)),
  ]);
  response.end(body);
}

/**
 * The Content-Type header from the raw header list: reading `request.headers` would build
 * the whole header object for one value. A repeated Content-Type keeps the first, as Node does.
 */
function contentTypeOf(rawHeaders: readonly string[]): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length !== 12) continue;
    // Most clients send one of the two usual spellings; any other casing still matches.
    if (name === 'Content-Type' || name === 'content-type' || name.toLowerCase() === 'content-type') {
      return rawHeaders[i + 1];
    }
  }
  return undefined;
}
