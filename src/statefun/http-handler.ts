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

export type Invoke = (body: Uint8Array, options: { signal: AbortSignal }) => Promise<Uint8Array>;

export function requestReplyHandler(
  invoke: Invoke,
  options: HandlerOptions = {},
): (request: http.IncomingMessage, response: http.ServerResponse) => void {
  const logger = options.logger ?? console;
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  return (request, response) => {
    const reply = (status: number, body: Uint8Array | string, contentType: string): void => {
      if (response.headersSent) return;
      response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    };
    const fail = (status: number, text: string): void => {
      reply(status, `${text}\n`, 'text/plain; charset=utf-8');
    };
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST');
      fail(405, 'only POST is served');
      request.resume();
      return;
    }
    const contentType = request.headers['content-type'];
    if (contentType !== undefined && contentType.split(';')[0]?.trim().toLowerCase() !== OCTET_STREAM) {
      fail(415, `the body must be ${OCTET_STREAM}`);
      request.resume();
      return;
    }
    // Aborted if the client goes away: the functions' signals follow it.
    const abandoned = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) abandoned.abort(new Error('the client went away'));
    });
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        fail(413, `the body exceeds ${maxBodyBytes} bytes`);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.once('error', () => {
      abandoned.abort(new Error('the request failed'));
    });
    request.once('end', () => {
      if (size > maxBodyBytes) return;
      const body = Buffer.concat(chunks);
      if (body.length === 0) {
        fail(400, 'the body is empty');
        return;
      }
      invoke(body, { signal: abandoned.signal }).then(
        (result) => {
          // Set explicitly: the runtime checks this content type exactly.
          reply(200, result, OCTET_STREAM);
        },
        (error: unknown) => {
          if (error instanceof InvalidRequestError) fail(400, error.message);
          else if (error instanceof UnknownFunctionError) fail(404, error.message);
          else {
            const message = error instanceof FunctionFailedError ? error.message : 'internal error';
            logger.error('stateful function request failed', { error });
            fail(500, message.length > 1024 ? `${message.slice(0, 1024)}…` : message);
          }
        },
      );
    });
  };
}
