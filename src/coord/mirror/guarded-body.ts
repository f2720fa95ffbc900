// A response body handed on as a stream that fails, rather than hangs, when the sender goes
// quiet: no bytes for `idleTimeoutMs` (on the injected clock), the connection closing before the
// body ended, or the caller's signal aborting. The origin client and the peer client both stream
// blobs this way; each says what a failure means in its own error.

import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

import { onAbort } from '../../internal/abort.ts';
import type { Clock, Timer } from '../../internal/clock.ts';
import { DeadlineExceededError } from '../../internal/errors.ts';

export interface GuardOptions {
  readonly clock: Clock;
  /** Longest gap between chunks before the body fails. */
  readonly idleTimeoutMs: number;
  /** Aborting fails the body with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** The error the body fails with, given what went wrong (not used for an abort). */
  readonly failure: (cause: unknown) => Error;
}

const BODY_BUFFER_BYTES = 1024 * 1024;

export function guardBody(response: IncomingMessage, options: GuardOptions): Readable {
  const { clock, idleTimeoutMs, signal } = options;
  // Room for a burst from the socket, so it is not paused and resumed for every chunk.
  const body = new PassThrough({ highWaterMark: BODY_BUFFER_BYTES });
  // Whoever reads the body sees its error; until someone does, an error must not be unhandled
  // (a store write may still be waiting for another write of the same digest).
  body.on('error', () => undefined);
  let lastChunkAt = clock.now();
  let idleTimer: Timer | undefined;
  let finished = false;
  const finish = (): void => {
    finished = true;
    idleTimer?.cancel();
    stopListening();
  };
  const fail = (cause: unknown): void => {
    if (finished) return;
    finish();
    const reason = signal?.aborted === true ? (signal.reason as Error) : options.failure(cause);
    response.destroy();
    body.destroy(reason);
  };
  const checkIdle = (): void => {
    // Paused by our own reader (a slow disk or client downstream): not the sender's silence.
    if (response.isPaused()) lastChunkAt = clock.now();
    const idleMs = clock.now() - lastChunkAt;
    if (idleMs >= idleTimeoutMs) {
      fail(new DeadlineExceededError(`no bytes for ${idleTimeoutMs} ms`, { timeoutMs: idleTimeoutMs }));
    } else {
      idleTimer = clock.setTimeout(checkIdle, idleTimeoutMs - idleMs);
    }
  };
  idleTimer = clock.setTimeout(checkIdle, idleTimeoutMs);
  const stopListening = onAbort(signal, fail);
  response.on('data', (chunk: Buffer) => {
    lastChunkAt = clock.now();
    if (!body.write(chunk)) response.pause();
  });
  body.on('drain', () => {
    lastChunkAt = clock.now();
    response.resume();
  });
  response.once('end', () => {
    if (finished) return;
    finish();
    body.end();
  });
  response.once('error', fail);
  response.once('close', () => {
    if (!response.complete) fail(new Error('connection closed before the body ended'));
  });
  body.once('close', () => {
    if (!finished) {
      finish();
      response.destroy();
    }
  });
  return body;
}
