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
//          [1, index, generation]                  end-of-snapshot
//          [2]                                     new-snapshot-to-follow

import {
  defineStream,
  msgpackCodec,
  ProtocolError,
  type Codec,
  type Connection,
  type Manager,
} from '../grid/index.ts';
import { checkIndex, type Event, type EventSource, type StreamItem, type SubscribeRequest } from './event.ts';
import type { EventPublisher } from './publisher.ts';

/** The grid handler id of event subscriptions (one of the ids reserved for Weft's modules). */
export const VIEWS_SUBSCRIBE_HANDLER = 8;

type WireItem = [0, number, [string, unknown][]] | [1, number, string] | [2];

/** Items in flight per subscription: enough to keep a link busy, few enough to bound memory. */
const STREAM_WINDOW = 64;

const requestCodec: Codec<SubscribeRequest> = {
  encode: (request) => msgpackCodec<SubscribeRequest>().encode(compact(request)),
  decode(bytes) {
    const value = msgpackCodec<unknown>().decode(bytes);
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

const itemCodec: Codec<StreamItem<unknown>> = {
  encode(item) {
    const wire: WireItem =
      item.kind === 'events'
        ? [0, item.index, item.events.map((event) => [event.subject, event.payload])]
        : item.kind === 'end-of-snapshot'
          ? [1, item.index, item.generation]
          : [2];
    return msgpackCodec<WireItem>().encode(wire);
  },
  decode(bytes) {
    const wire = msgpackCodec<unknown>().decode(bytes);
    if (!Array.isArray(wire)) throw new ProtocolError('a stream item is an array');
    switch (wire[0]) {
      case 0: {
        const [, index, pairs] = wire as unknown[];
        wireIndex(index);
        if (!Array.isArray(pairs)) throw new ProtocolError('a batch carries an array of events');
        const events = pairs.map((pair: unknown): Event<unknown> => {
          if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
            throw new ProtocolError('an event is [subject, payload]');
          }
          return { subject: pair[0], payload: pair[1] as unknown };
        });
        return { kind: 'events', index, events };
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
  },
};

const subscribeStream = defineStream<SubscribeRequest, never, StreamItem<unknown>>(VIEWS_SUBSCRIBE_HANDLER, {
  reserved: true,
  inCapacity: 0,
  outCapacity: STREAM_WINDOW,
  params: requestCodec,
  response: itemCodec,
});

/** Serves `publisher`'s topics to materializers on other nodes of `manager`'s grid. */
export function serveEventPublisher(manager: Manager, publisher: EventPublisher): void {
  subscribeStream.register(manager, async ({ params, send, signal }) => {
    for await (const item of publisher.subscribe(params, { signal })) await send(item);
  });
}

/**
 * An event source reading a publisher on another node. `connection` may be a function, so
 * each resubscription uses the node's current connection.
 */
export function remoteEventSource<P>(connection: Connection | (() => Connection)): EventSource<P> {
  return (request, signal) => {
    const target = typeof connection === 'function' ? connection() : connection;
    return subscribeStream.open(target, request, { signal }) as AsyncIterable<StreamItem<P>>;
  };
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
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
    throw new ProtocolError(`a stream item has a bad index ${String(index)}`);
  }
}
