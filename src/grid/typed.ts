// Typed handlers: one definition, used by the serving node to register and by the
// calling node as its client, so both sides agree on the handler id, the subroute,
// the codecs and the stream windows by construction.
//
// Values travel as plain MessagePack (msgpackr without its records and extension types),
// so a peer in another language can speak to the same handler. Plain MessagePack does not
// keep every JavaScript type (a Map would arrive as an object, a Set as an array): the
// default codec refuses those where they are sent, and the definitions ask for a codec of
// your own for a type that would not survive (msgpack-value.ts). A payload that does not
// decode is answered with a `ProtocolError`, never a crash.

import { Packr } from 'msgpackr';

import type { CallOptions } from '../internal/deadline.ts';
import type { GridStream } from './client-stream.ts';
import type { GridConnection } from './grid-connection.ts';
import { ProtocolError } from './errors.ts';
import {
  callerFault,
  checkHandlerId,
  type SingleHandlerContext,
  type StreamHandlerContext,
} from './handler-registry.ts';
import type { Manager } from './manager.ts';
import { checkMsgpackable, type Msgpackable } from './msgpack-value.ts';
import { subrouteId } from './subroute.ts';

export interface Codec<T> {
  encode(value: T): Uint8Array | undefined;
  decode(bytes: Uint8Array | undefined): T;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

// One codec for every type: it holds no state, so callers need not build their own.
const msgpack: Codec<unknown> = {
  encode(value) {
    if (value === undefined) return undefined;
    checkMsgpackable(value);
    return packr.pack(value);
  },
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

/**
 * MessagePack, with `undefined` sent as an absent payload. For the types that survive the
 * round trip (`Msgpackable`): for any other `T` the call does not compile, and encoding a
 * value that would not survive (a Map, a Set…) throws a `TypeError` naming where it is,
 * rather than send something else.
 */
export function msgpackCodec<T>(
  ..._check: [T] extends [Msgpackable<T>] ? [] : [typeMessagePackDoesNotKeep: never]
): Codec<T> {
  return msgpack as Codec<T>;
}

/**
 * A codec option: optional for a type `msgpackCodec` carries unchanged, required for one it
 * does not (a Map, a Set, a class with methods…), so a definition never claims a type the
 * wire would not keep.
 */
export type CodecOption<Name extends string, T> = [T] extends [Msgpackable<T>]
  ? { readonly [K in Name]?: Codec<T> }
  : { readonly [K in Name]: Codec<T> };

export interface DefinitionOptions {
  readonly subroute?: string;
  /** For Weft's own modules: ids below 64. */
  readonly reserved?: boolean;
}

export interface SingleDefinition<Req, Resp> {
  readonly handler: number;
  readonly subroute: string | undefined;
  register(manager: Manager, fn: (request: Req, context: SingleHandlerContext) => Promise<Resp> | Resp): void;
  call(connection: GridConnection, request: Req, options?: CallOptions): Promise<Resp>;
}

/** Options of `defineSingle`: a codec is required for a type MessagePack does not keep. */
export type SingleDefinitionOptions<Req, Resp> = DefinitionOptions &
  CodecOption<'request', Req> &
  CodecOption<'response', Resp>;

export function defineSingle<Req, Resp>(
  handler: number,
  // May be left out when nothing in it is required.
  ...[given]: object extends SingleDefinitionOptions<Req, Resp>
    ? [options?: SingleDefinitionOptions<Req, Resp>]
    : [options: SingleDefinitionOptions<Req, Resp>]
): SingleDefinition<Req, Resp> {
  // The conditional codec types resolve only at the call site; here each codec may be absent.
  const options = (given ?? {}) as DefinitionOptions & { request?: Codec<Req>; response?: Codec<Resp> };
  checkHandlerId(handler, options.reserved === true);
  const requestCodec = options.request ?? (msgpack as Codec<Req>);
  const responseCodec = options.response ?? (msgpack as Codec<Resp>);
  const subroute = options.subroute === undefined ? undefined : subrouteId(handler, options.subroute);
  return {
    handler,
    subroute: options.subroute,
    register(manager, fn) {
      manager.registerSingle(
        handler,
        async (payload, context) =>
          responseCodec.encode(await fn(fromCaller(requestCodec, payload), context)),
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
  open(connection: GridConnection, params: P, options?: CallOptions): TypedStream<Req, Resp>;
}

/** Options of `defineStream`: a codec is required for a type MessagePack does not keep. */
export type StreamDefinitionOptions<P, Req, Resp> = DefinitionOptions & {
  /** Requests buffered by the handler side; 0 = the stream takes no input. Default 32. */
  readonly inCapacity?: number | undefined;
  /** Responses buffered by the caller side. Default 32. */
  readonly outCapacity?: number | undefined;
} & CodecOption<'params', P> &
  CodecOption<'request', Req> &
  CodecOption<'response', Resp>;

export function defineStream<P, Req, Resp>(
  handler: number,
  // May be left out when nothing in it is required.
  ...[given]: object extends StreamDefinitionOptions<P, Req, Resp>
    ? [options?: StreamDefinitionOptions<P, Req, Resp>]
    : [options: StreamDefinitionOptions<P, Req, Resp>]
): StreamDefinition<P, Req, Resp> {
  // The conditional codec types resolve only at the call site; here each codec may be absent.
  const options = (given ?? {}) as DefinitionOptions & {
    readonly inCapacity?: number | undefined;
    readonly outCapacity?: number | undefined;
    readonly params?: Codec<P>;
    readonly request?: Codec<Req>;
    readonly response?: Codec<Resp>;
  };
  checkHandlerId(handler, options.reserved === true);
  const paramsCodec = options.params ?? (msgpack as Codec<P>);
  const requestCodec = options.request ?? (msgpack as Codec<Req>);
  const responseCodec = options.response ?? (msgpack as Codec<Resp>);
  const subroute = options.subroute === undefined ? undefined : subrouteId(handler, options.subroute);
  return {
    handler,
    register(manager, handle) {
      manager.registerStream(
        handler,
        {
          inCapacity: options.inCapacity,
          handle: (context: StreamHandlerContext) =>
            handle({
              params: fromCaller(paramsCodec, context.initial),
              requests: mapAsync(context.requests, (bytes) => fromCaller(requestCodec, bytes)),
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
        outCapacity: options.outCapacity,
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

/** Decodes what the caller sent; a failure is the caller's, not the handler's (see callerFault). */
function fromCaller<T>(codec: Codec<T>, bytes: Uint8Array | undefined): T {
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw callerFault(error);
  }
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
