// The handlers a Manager serves, by handler id and optional static subroute.

import { ConfigError } from '../internal/errors.ts';
import { DEFAULT_STREAM_WINDOW } from './config.ts';
import { ProtocolError } from './errors.ts';
import { FIRST_USER_HANDLER, MAX_HANDLER } from './protocol.ts';
import { subrouteId, subrouteKey } from './subroute.ts';

export interface SingleHandlerContext {
  /**
   * Aborts at the caller's deadline, when the caller cancels (with a `CancelledError`), when
   * the caller's connection drops, or on shutdown.
   */
  readonly signal: AbortSignal;
  /** Host URL of the calling node. */
  readonly remote: string;
}

/** Serves one request. Throwing sends the error to the caller as a `RemoteError`. */
export type SingleHandler = (
  payload: Uint8Array | undefined,
  context: SingleHandlerContext,
) => Promise<Uint8Array | undefined> | Uint8Array | undefined;

export interface StreamHandlerContext {
  /** The payload the caller opened the stream with. */
  readonly initial: Uint8Array | undefined;
  /** Items the caller sends; ends when the caller calls `end()`. Empty when `inCapacity` is 0. */
  readonly requests: AsyncIterable<Uint8Array>;
  /**
   * Sends one response. On a stream, it resolves (true) when the caller's window had room
   * for the item, and rejects if the item cannot go out. On a stateless stream (opened with
   * `openStatelessStream`) it never waits for the caller: it resolves true if the item was
   * queued, false if it was dropped because the connection's send queue was full or the
   * socket is gone (counted in `dropped`); and it gives the event loop a turn every few
   * sends and after every drop, so a handler that sends in a loop until its signal aborts
   * lets the socket, timers and that abort run.
   */
  readonly send: (payload: Uint8Array) => Promise<boolean>;
  /** Items a stateless stream's `send` dropped so far; always 0 on a stream with credits. */
  readonly dropped: number;
  /** Aborts when the caller cancels, its connection drops, it stops pinging, or on shutdown. */
  readonly signal: AbortSignal;
  readonly remote: string;
}

export interface StreamHandler {
  /** Runs the stream; its return ends the stream, a throw ends it with the error. */
  readonly handle: (context: StreamHandlerContext) => Promise<void>;
  /**
   * Input items buffered on this side, the caller's input window; 0 = the stream takes no
   * input. Default `DEFAULT_STREAM_WINDOW` (32).
   */
  readonly inCapacity?: number | undefined;
}

/** A stream handler as registered: its window resolved. */
export interface RegisteredStream extends StreamHandler {
  readonly inCapacity: number;
}

export interface RegisterOptions {
  /** Serve this handler id on a static subroute (several routes may share one id). */
  readonly subroute?: string | undefined;
  /** Allow an id below 64, the range Weft's own modules use. */
  readonly reserved?: boolean | undefined;
}

function key(handler: number, subroute: Uint8Array | undefined): string {
  return subroute === undefined ? String(handler) : `${handler}/${subrouteKey(subroute)}`;
}

export function checkHandlerId(handler: number, reserved = false): void {
  const first = reserved ? 1 : FIRST_USER_HANDLER;
  if (!Number.isInteger(handler) || handler < first || handler > MAX_HANDLER) {
    throw new ConfigError(
      'handler',
      `must be an integer within [${first}, ${MAX_HANDLER}], got ${handler}` +
        (reserved ? '' : ' (ids below 64 are reserved for Weft modules)'),
    );
  }
}

export class HandlerRegistry {
  readonly #singles = new Map<string, SingleHandler>();
  readonly #streams = new Map<string, RegisteredStream>();
  /** The subroute names registered, by key: the wire carries only their ids. */
  readonly #routes = new Map<string, string>();

  registerSingle(handler: number, fn: SingleHandler, options: RegisterOptions = {}): void {
    this.#add(this.#singles, handler, fn, options);
  }

  registerStream(handler: number, stream: StreamHandler, options: RegisterOptions = {}): void {
    const inCapacity = stream.inCapacity ?? DEFAULT_STREAM_WINDOW;
    if (!Number.isInteger(inCapacity) || inCapacity < 0) {
      throw new ConfigError('inCapacity', `must be an integer >= 0, got ${String(inCapacity)}`);
    }
    this.#add(this.#streams, handler, { handle: stream.handle, inCapacity }, options);
  }

  single(handler: number, subroute: Uint8Array | undefined): SingleHandler | undefined {
    return this.#singles.get(key(handler, subroute));
  }

  stream(handler: number, subroute: Uint8Array | undefined): RegisteredStream | undefined {
    return this.#streams.get(key(handler, subroute));
  }

  /** The name of a registered subroute, for logs. */
  routeName(handler: number, subroute: Uint8Array | undefined): string | undefined {
    return subroute === undefined ? undefined : this.#routes.get(key(handler, subroute));
  }

  #add<T>(map: Map<string, T>, handler: number, value: T, options: RegisterOptions): void {
    checkHandlerId(handler, options.reserved === true);
    const id = options.subroute === undefined ? undefined : subrouteId(handler, options.subroute);
    const k = key(handler, id);
    if (this.#singles.has(k) || this.#streams.has(k)) {
      const where = options.subroute === undefined ? '' : ` on subroute ${options.subroute}`;
      throw new ConfigError('handler', `handler ${handler}${where} is already registered`);
    }
    map.set(k, value);
    if (options.subroute !== undefined) this.#routes.set(k, options.subroute);
  }
}

const callerFaults = new WeakSet<object>();

/**
 * Marks an error as the caller's doing (a payload that does not decode): it goes back to the
 * caller, who learns of it there, and the serving side does not log it as a handler failure.
 */
export function callerFault(error: unknown): Error {
  const marked =
    error instanceof Error ? error : new ProtocolError('the caller sent a bad payload', { cause: error });
  callerFaults.add(marked);
  return marked;
}

export function isCallerFault(error: unknown): boolean {
  return typeof error === 'object' && error !== null && callerFaults.has(error);
}
