// One POST of a ToFunction request and the read of its reply: one attempt, no retrying.
//
// It resolves with whatever the endpoint answered (status, content type, body) and leaves judging
// the answer to the invoker; it rejects with an `EndpointError` when there is no complete answer
// to judge: the connection could not be opened in time or broke, or the body grew past
// `maxReplyBytes` (the response is then destroyed, not drained, so a hostile endpoint cannot make
// us read without end). On abort it destroys the request and rejects with the signal's reason.

import http from 'node:http';
import https from 'node:https';

import { onAbort } from '../../internal/abort.ts';
import type { Clock, Timer } from '../../internal/clock.ts';
import { EndpointError } from '../errors.ts';

export const OCTET_STREAM = 'application/octet-stream';

export interface HttpPostOptions {
  readonly url: string;
  readonly agent: http.Agent;
  readonly body: Uint8Array;
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  readonly maxReplyBytes: number;
  readonly signal: AbortSignal;
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

export function httpPost(options: HttpPostOptions): Promise<HttpReply> {
  const { url, signal, clock } = options;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<HttpReply>((resolve, reject) => {
    let settled = false;
    let connectTimer: Timer | undefined;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      connectTimer?.cancel();
      stopListening();
      return true;
    };
    const fail = (error: unknown): void => {
      if (!finish()) return;
      // A half-read or half-written exchange must not go back to the pool.
      request.destroy();
      reject(error);
    };

    const transport = url.startsWith('https:') ? https : http;
    const request = transport.request(url, {
      method: 'POST',
      agent: options.agent,
      headers: {
        'Content-Type': OCTET_STREAM,
        Accept: OCTET_STREAM,
        'User-Agent': 'weft-runtime',
        'Content-Length': options.body.length,
      },
    });
    const stopListening = onAbort(signal, fail);

    request.on('socket', (socket) => {
      if (!socket.connecting) return;
      connectTimer = clock.setTimeout(() => {
        fail(new EndpointError(url, `no connection within ${options.connectTimeoutMs} ms`));
      }, options.connectTimeoutMs);
      socket.once('connect', () => connectTimer?.cancel());
    });
    // Stays attached after settling: a destroyed request may still emit, and must not crash.
    request.on('error', (error: NodeJS.ErrnoException) => {
      fail(new EndpointError(url, `request failed: ${error.code ?? error.message}`, { cause: error }));
    });

    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const tooLarge = (): EndpointError =>
        new EndpointError(url, `reply body larger than ${options.maxReplyBytes} bytes refused`, { status });
      const declared = Number(response.headers['content-length']);
      if (declared > options.maxReplyBytes) {
        fail(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > options.maxReplyBytes) fail(tooLarge());
        else chunks.push(chunk);
      });
      response.on('end', () => {
        if (!finish()) return;
        resolve({
          status,
          contentType: response.headers['content-type'],
          body: Buffer.concat(chunks, received),
        });
      });
      const broken = (error?: Error): void => {
        fail(new EndpointError(url, 'connection lost while reading the reply', { status, cause: error }));
      };
      response.on('error', broken);
      response.on('close', () => {
        if (!response.complete) broken();
      });
    });

    request.end(options.body);
  });
}
