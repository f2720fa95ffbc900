// Subscriptions across the grid: a node serves its publisher's topics on a grid stream, and
// a materializer on another node uses that stream as its event source.
//
// The stream runs over the grid's authenticated connection with the grid's credit flow
// control, so a slow remote materializer only slows its own stream: the serving side reads
// the publisher's buffer at the pace credits come back, and a reader left behind the buffer
// ends with `SubscriberTooSlowError` like a local one. Errors keep their code and
// retryability across the wire, so a materializer sorts them as it would local ones.
//
// Wire (MessagePack, on reserved handler id 8):
//   open:  { topic, subject?, index?, token?, generation? }
//   items: [0, index, [[subject, payload], ...]]   a batch (or a chunk of a snapshot)
//          [3, index, [[subject, payload], ...]]   part of a batch too large for one message;
//                                                  the parts end with a [0, …] at the same index
//          [1, index, generation]                  end-of-snapshot
//          [2]                                     new-snapshot-to-follow

import {
  defineStream,
  FrameTooLargeError,
  msgpackCodec,
  ProtocolError,
  type Codec,
  type GridConnection,
  type Manager,
} from '../grid/index.ts';
import {
  checkIndex,
  isIndex,
  type Event,
  type EventSource,
  type StreamItem,
  type SubscribeRequest,
} from './event.ts';
import { EventTooLargeError } from './errors.ts';
import type { EventPublisher } from './publisher.ts';

/** The grid handler id of event subscriptions (one of the ids reserved for Weft's modules). */
export const VIEWS_SUBSCRIBE_HANDLER = 8;

type WireItem = [0 | 3, number, [string, unknown][]] | [1, number, string] | [2];

/** Items in flight per subscription: enough to keep a link busy, few enough to bound memory. */
const STREAM_WINDOW = 64;
/** A batch encoded larger than this is sent in parts (far below the grid's 16 MiB frame limit). */
const PART_BYTES = 1024 * 1024;
/** Events a split batch may gather on the receiving side. */
const MAX_BATCH_EVENTS = 1_000_000;

/** Made once: `msgpackCodec()` builds a new codec object on every call, and items are the hot path. */
const msgpack: Codec<unknown> = msgpackCodec<unknown>();

const requestCodec: Codec<SubscribeRequest> = {
  encode: (request) => msgpack.encode(compact(request)),
  decode(bytes) {
    const value = msgpack.decode(bytes);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ProtocolError('a subscribe request is a map');
    }
    const map = value as Record<string, unknown>;
    const request: SubscribeRequest = {
      topic: optionalString(map['topic'], 'topic') ?? '',
      subject: optionalString(map['subject'], 'subject'),
      index: map['index'] === undefined || map['index'] === null ? undefined : (map['index'] as number),
      token: optionalString(map['token'], 'token'),
      generation: optionalString(map['generation'], 'generation'),
    };
    if (request.index !== undefined) {
      try {
        checkIndex(request.index, 'index');
      } catch (error) {
        throw new ProtocolError('a subscribe request has a bad index', { cause: error });
      }
    }
    return request;
  },
};

/** Encodes one stream item as one or more wire messages (a batch too large for one is split). */
export function encodeItem(item: StreamItem<unknown>, partBytes = PART_BYTES): Uint8Array[] {
  if (item.kind === 'end-of-snapshot') return [pack([1, item.index, item.generation])];
  if (item.kind === 'new-snapshot-to-follow') return [pack([2])];
  const pairs = item.events.map((event): [string, unknown] => [event.subject, event.payload]);
  const whole = pack([0, item.index, pairs]);
  if (whole.length <= partBytes || pairs.length < 2) return [whole];
  // Rare: split in halves until each part fits; every part but the last says more follow.
  const parts: [string, unknown][][] = [];
  const split = (slice: [string, unknown][]): void => {
    if (slice.length < 2 || pack([3, item.index, slice]).length <= partBytes) parts.push(slice);
    else {
      const half = slice.length >> 1;
      split(slice.slice(0, half));
      split(slice.slice(half));
    }
  };
  split(pairs);
  return parts.map((part, i) => pack([i === parts.length - 1 ? 0 : 3, item.index, part]));
}

/** Decodes one wire message; a part of a batch comes back as `part: true`. */
export function decodeItem(bytes: Uint8Array | undefined): StreamItem<unknown> & { part?: boolean } {
  const wire = msgpack.decode(bytes);
  if (!Array.isArray(wire)) throw new ProtocolError('a stream item is an array');
  switch (wire[0]) {
    case 0:
    case 3: {
      const [kind, index, pairs] = wire as unknown[];
      wireIndex(index);
      if (!Array.isArray(pairs)) throw new ProtocolError('a batch carries an array of events');
      const events = pairs.map((pair: unknown): Event<unknown> => {
        if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
          throw new ProtocolError('an event is [subject, payload]');
        }
        return { subject: pair[0], payload: pair[1] as unknown };
      });
      return { kind: 'events', index, events, part: kind === 3 };
    }
    case 1: {
      const [, index, generation] = wire as unknown[];
      wireIndex(index);
      if (typeof generation !== 'string') throw new ProtocolError('end-of-snapshot carries a generation');
      return { kind: 'end-of-snapshot', index, generation };
    }
    case 2:
      return { kind: 'new-snapshot-to-follow' };
    default:
      throw new ProtocolError(`unknown stream item kind ${String(wire[0])}`);
  }
}

const rawBytes: Codec<Uint8Array> = {
  encode: (bytes) => bytes,
  decode: (bytes) => bytes ?? new Uint8Array(0),
};

const subscribeStream = defineStream<SubscribeRequest, never, Uint8Array>(VIEWS_SUBSCRIBE_HANDLER, {
  reserved: true,
  inCapacity: 0,
  outCapacity: STREAM_WINDOW,
  params: requestCodec,
  response: rawBytes,
});

/** Serves `publisher`'s topics to materializers on other nodes of `manager`'s grid. */
export function serveEventPublisher(manager: Manager, publisher: EventPublisher): void {
  subscribeStream.register(manager, async ({ params, send, signal }) => {
    for await (const item of publisher.subscribe(params, { signal })) {
      for (const message of encodeItem(item)) {
        try {
          await send(message);
        } catch (error) {
          // One event larger than a grid frame can never be sent: say so, rather than have
          // the subscriber resubscribe into the same wall forever.
          if (error instanceof FrameTooLargeError) {
            throw new EventTooLargeError(params.topic, item.kind === 'events' ? item.index : 0, {
              cause: error,
            });
          }
          throw error;
        }
      }
    }
  });
}

/**
 * An event source reading a publisher on another node. `connection` may be a function, so
 * each resubscription uses the node's current connection.
 */
export function remoteEventSource<P>(connection: GridConnection | (() => GridConnection)): EventSource<P> {
  return (request, signal) => {
    const target = typeof connection === 'function' ? connection() : connection;
    const stream = subscribeStream.open(target, request, { signal });
    return reassemble(stream) as AsyncIterable<StreamItem<P>>;
  };
}

/** Joins the parts of a split batch back into one atomic batch, bounded by `MAX_BATCH_EVENTS`. */
async function* reassemble(messages: AsyncIterable<Uint8Array>): AsyncGenerator<StreamItem<unknown>> {
  let pending: { index: number; events: Event<unknown>[] } | undefined;
  for await (const message of messages) {
    const item = decodeItem(message);
    if (item.kind !== 'events') {
      if (pending !== undefined) throw new ProtocolError('a split batch was left unfinished');
      yield item;
      continue;
    }
    if (pending !== undefined && pending.index !== item.index) {
      throw new ProtocolError('the parts of a split batch disagree on its index');
    }
    if (item.part === true || pending !== undefined) {
      pending ??= { index: item.index, events: [] };
      if (pending.events.length + item.events.length > MAX_BATCH_EVENTS) {
        throw new ProtocolError(`a split batch of more than ${MAX_BATCH_EVENTS} events was refused`);
      }
      for (const event of item.events) pending.events.push(event);
      if (item.part === true) continue;
      const whole = pending;
      pending = undefined;
      yield { kind: 'events', index: whole.index, events: whole.events };
      continue;
    }
    yield { kind: 'events', index: item.index, events: item.events };
  }
}

function pack(wire: WireItem): Uint8Array {
  return msgpack.encode(wire) as Uint8Array;
}

function compact(request: SubscribeRequest): SubscribeRequest {
  // Absent fields are left out rather than sent as nil.
  return Object.fromEntries(
    Object.entries(request).filter(([, value]) => value !== undefined),
  ) as unknown as SubscribeRequest;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ProtocolError(`${field} must be a string`);
  return value;
}

function wireIndex(index: unknown): asserts index is number {
  if (!isIndex(index)) {
    throw new ProtocolError(`a stream item has a bad index ${String(index)}`);
  }
}
