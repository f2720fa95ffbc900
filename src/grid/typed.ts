// Typed handlers: one definition, used by the serving node to register and by the
// calling node as its client, so both sides agree on the handler id, the subroute,
// the codecs and the stream windows by construction.
//
// Values travel as plain MessagePack (msgpackr without its extensions), so a peer in
// another language can speak to the same handler. A payload that does not decode is
// answered with a `ProtocolError`, never a crash.

import { Packr } from 'msgpackr';

import type { CallOptions } from '../internal/deadline.ts';
import type { GridStream } from './client-stream.ts';
import type { Connection } from './connection.ts';
import { ProtocolError } from './errors.ts';
import { checkHandlerId, type SingleHandlerContext, type StreamHandlerContext } from './handler-registry.ts';
import type { Manager } from './manager.ts';
import { subrouteId } from './subroute.ts';

export interface Codec<T> {
  encode(value: T): Uint8Array | undefined;
  decode(bytes: Uint8Array | undefined): T;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

// One codec for every type: it holds no state, so callers need not build their own.
const msgpack: Codec<unknown> = {
  encode: (value) => (value === undefined ? undefined : packr.pack(value)),
  decode(bytes) {
    // An absent payload, and an empty stream item (streams carry no absent items), are `undefined`.
    if (bytes === undefined || bytes.length === 0) return undefined;
    try {
      return packr.unpack(bytes) as unknown;
    } catch (error) {
      throw new ProtocolError('payload is not valid MessagePack', { cause: error });
    }
  },
};

/** MessagePack, with `undefined` sent as an absent payload. */
export function msgpackCodec<T>(): Codec<T> {
  return msgpack as Codec<T>;
}

interface DefinitionOptions {
  readonly subroute?: string;
  /** For Weft's own modules: ids below 64. */
  readonly reserved?: boolean;
}

export interface SingleDefinition<Req, Resp> {
  readonly handler: number;
  readonly subroute: string | undefined;
  register(manager: Manager, fn: (request: Req, context: SingleHandlerContext) => Promise<Resp> | Resp): void;
  call(connection: Connection, request: Req, options?: CallOptions): Promise<Resp>;
}

export function defineSingle<Req, Resp>(
  handler: number,
  options: DefinitionOptions & { request?: Codec<Req>; response?: Codec<Resp> } = {},
): SingleDefinition<Req, Resp> {
  checkHandlerId(handler, options.reserved === true);
  const requestCodec = options.request ?? msgpackCodec<Req>();
  const responseCodec = options.response ?? msgpackCodec<Resp>();
  const subroute = options.subroute === undefined ? undefined : subrouteId(handler, options.subroute);
  return {
    handler,
    subroute: options.subroute,
    register(manager, fn) {
      manager.registerSingle(
        handler,
        async (payload, context) => responseCodec.encode(await fn(requestCodec.decode(payload), context)),
        { subroute: options.subroute, reserved: options.reserved },
      );
    },
    async call(connection, request, callOptions = {}) {
      const payload = await connection.request(handler, requestCodec.encode(request), {
        ...callOptions,
        subroute,
      });
      return responseCodec.decode(payload);
    },
  };
}

/** A typed stream as its caller sees it. */
export interface TypedStream<Req, Resp> extends AsyncIterable<Resp> {
  send(request: Req, options?: { signal?: AbortSignal | undefined }): Promise<void>;
  end(): void;
  cancel(reason?: unknown): void;
}

/** What a typed stream handler gets. */
export interface TypedStreamContext<P, Req, Resp> {
  readonly params: P;
  readonly requests: AsyncIterable<Req>;
  /** As `StreamHandlerContext.send`: false when a stateless stream dropped the item. */
  readonly send: (response: Resp) => Promise<boolean>;
  /** Items a stateless stream's `send` dropped so far (see `StreamHandlerContext.dropped`). */
  readonly dropped: number;
  readonly signal: AbortSignal;
  readonly remote: string;
}

export interface StreamDefinition<P, Req, Resp> {
  readonly handler: number;
  register(manager: Manager, handle: (context: TypedStreamContext<P, Req, Resp>) => Promise<void>): void;
  open(connection: Connection, params: P, options?: CallOptions): TypedStream<Req, Resp>;
}

export function defineStream<P, Req, Resp>(
  handler: number,
  options: DefinitionOptions & {
    /** Requests buffered by the handler side; 0 = the stream takes no input. Default 1. */
    inCapacity?: number;
    /** Responses buffered by the caller side. Default 1. */
    outCapacity?: number;
    params?: Codec<P>;
    request?: Codec<Req>;
    response?: Codec<Resp>;
  } = {},
): StreamDefinition<P, Req, Resp> {
  checkHandlerId(handler, options.reserved === true);
  const paramsCodec = options.params ?? msgpackCodec<P>();
  const requestCodec = options.request ?? msgpackCodec<Req>();
  const responseCodec = options.response ?? msgpackCodec<Resp>();
  const subroute = options.subroute === undefined ? undefined : subrouteId(handler, options.subroute);
  return {
    handler,
    register(manager, handle) {
      manager.registerStream(
        handler,
        {
          inCapacity: options.inCapacity ?? 1,
          handle: (context: StreamHandlerContext) =>
            handle({
              params: paramsCodec.decode(context.initial),
              requests: mapAsync(context.requests, (bytes) => requestCodec.decode(bytes)),
              send: (response) => context.send(responseCodec.encode(response) ?? new Uint8Array(0)),
              get dropped() {
                return context.dropped;
              },
              signal: context.signal,
              remote: context.remote,
            }),
        },
        { subroute: options.subroute, reserved: options.reserved },
      );
    },
    open(connection, params, callOptions = {}) {
      const stream: GridStream = connection.openStream(handler, {
        ...callOptions,
        initial: paramsCodec.encode(params),
        outCapacity: options.outCapacity ?? 1,
        subroute,
      });
      return {
        send: (request, sendOptions) =>
          stream.send(requestCodec.encode(request) ?? new Uint8Array(0), sendOptions),
        end: () => {
          stream.end();
        },
        cancel: (reason) => {
          stream.cancel(reason);
        },
        [Symbol.asyncIterator]: () =>
          mapAsync(stream, (bytes) => responseCodec.decode(bytes))[Symbol.asyncIterator](),
      };
    },
  };
}

function mapAsync<A, B>(source: AsyncIterable<A>, map: (a: A) => B): AsyncIterable<B> {
  return {
    [Symbol.asyncIterator]() {
      const inner = source[Symbol.asyncIterator]();
      return {
        async next() {
          const result = await inner.next();
          if (result.done === true) return { done: true, value: undefined };
          try {
            return { done: false, value: map(result.value) };
          } catch (error) {
            // A for-await loop does not call return() when next() throws: end the source here.
            await inner.return?.();
            throw error;
          }
        },
        async return() {
          await inner.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
