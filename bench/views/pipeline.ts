// remote-events: batches from a publisher to a consumer that applies them to a map, pushed as
// fast as the consumer keeps up.
//
// Every side is a `Pipeline`: `publish` hands one batch to the producer, `applied` is the
// index of the last batch the consumer has applied, and `waitApplied(i)` resolves once that
// is above `i`. `pump` drives all of them the same way: it publishes while the producer is
// less than `window` batches ahead of the consumer, then waits until the consumer is half a
// window behind, and at the end until it has applied everything. With `window` below the
// publisher's buffer, no batch is dropped before a subscriber has read it.
//
// The sides:
// - weft/views over the grid: an EventPublisher on node 0 served with serveEventPublisher,
//   a Materializer (MapView) on node 1 reading it through remoteEventSource, over a TestGrid
//   of two managers on loopback (real sockets, handshake and credit flow control; both nodes
//   in this process, so one CPU runs both ends, as it does for the ws peer).
// - local: the same publisher and materializer in one process, no grid: the ceiling.
// - ws-msgpack: each batch packed as msgpackr `[index, [[subject, payload], …]]` (the grid's
//   item shape), sent as one message over a bare `ws` WebSocket on loopback, unpacked and
//   applied to a Map on the other end. The sender sees how far the receiver is directly
//   (both in this process), where the grid pays for credits on the wire.

import type { AddressInfo } from 'node:net';

import { Packr } from 'msgpackr';
import WebSocket, { WebSocketServer } from 'ws';

import type { EventPublisher, EventSource, Materializer } from '../../src/views/index.ts';
import { connectWebSocket, messageBytes, wsOptions } from '../grid/ws-connect.ts';
import type { TestingModule, ViewsModule } from './load-views.ts';
import { replay, type Batch, type Change } from './workload.ts';

export interface Pipeline {
  /** Publishes one batch; returns its index. */
  publish(batch: Batch): number;
  /** Index of the last batch published. */
  readonly published: number;
  /** Index of the last batch the consumer has applied. */
  readonly applied: number;
  /** Resolves once the consumer has applied a batch above `index`. */
  waitApplied(index: number): Promise<void>;
  /** The consumer's map now. */
  entries(): Promise<ReadonlyMap<string, Uint8Array>>;
  /** Batches published since the pipeline started. */
  readonly batchesPublished: number;
  /** What went wrong so far: a resubscription, a slow subscriber, a closed socket. */
  problems(): string[];
  close(): Promise<void>;
}

/** Publishes `count` batches of the cycle (from `next`), `window` ahead at most; returns the next position. */
export async function pump(
  pipeline: Pipeline,
  batches: readonly Batch[],
  next: number,
  count: number,
  window: number,
): Promise<number> {
  let position = next;
  for (let i = 0; i < count; i++) {
    if (pipeline.published - pipeline.applied >= window) {
      await pipeline.waitApplied(pipeline.published - Math.floor(window / 2));
    }
    pipeline.publish(batches[position % batches.length] ?? []);
    position += 1;
  }
  if (pipeline.applied < pipeline.published) await pipeline.waitApplied(pipeline.published - 1);
  return position;
}

const topic = 'remote-events';

/** A publisher and a materializer over some event source: the remote and local sides. */
class ViewsPipeline implements Pipeline {
  readonly publisher: EventPublisher;
  readonly materializer: Materializer<Change, ReadonlyMap<string, Uint8Array>>;
  readonly #controller = new AbortController();
  readonly #running: Promise<void>;
  readonly #onClose: () => Promise<void>;
  batchesPublished = 0;

  constructor(
    views: ViewsModule,
    batches: readonly Batch[],
    bufferBatches: number,
    link: {
      readonly source: (publisher: EventPublisher) => EventSource<Change>;
      readonly close: () => Promise<void>;
    },
  ) {
    const publisher = new views.EventPublisher({ bufferBatches });
    publisher.registerTopic<Change>(topic, {
      // Asked once, when the materializer first subscribes.
      snapshot: () => ({
        index: publisher.index(topic),
        events: [...replay(batches, this.batchesPublished)].map(([subject, value]) => ({
          subject,
          payload: { op: 'put', value },
        })),
      }),
    });
    this.publisher = publisher;
    this.#onClose = link.close;
    this.materializer = new views.Materializer({
      source: link.source(publisher),
      request: { topic },
      view: new views.MapView<Uint8Array>(),
    });
    this.#running = this.materializer.run(this.#controller.signal);
  }

  get published(): number {
    return this.publisher.index(topic);
  }

  get applied(): number {
    return this.materializer.index;
  }

  publish(batch: Batch): number {
    this.batchesPublished += 1;
    return this.publisher.publish(topic, batch);
  }

  async waitApplied(index: number): Promise<void> {
    await this.materializer.fetch({ minIndex: index });
  }

  async entries(): Promise<ReadonlyMap<string, Uint8Array>> {
    return (await this.materializer.fetch()).value;
  }

  problems(): string[] {
    const { subscriptions, failures } = this.materializer.stats();
    const { slowSubscribers } = this.publisher.stats();
    const problems: string[] = [];
    if (subscriptions !== 1) problems.push(`${subscriptions} subscriptions`);
    if (failures !== 0) problems.push(`${failures} subscription failures`);
    if (slowSubscribers !== 0) problems.push(`${slowSubscribers} subscribers too slow`);
    return problems;
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#running.catch(() => undefined);
    await this.#onClose();
  }
}

/** weft/views across two grid nodes on loopback. */
export async function startRemotePipeline(
  views: ViewsModule,
  testing: TestingModule,
  batches: readonly Batch[],
  bufferBatches: number,
): Promise<Pipeline> {
  const grid = await testing.TestGrid.start(2);
  await grid.waitAllConnected();
  const pipeline = new ViewsPipeline(views, batches, bufferBatches, {
    source: (publisher) => {
      views.serveEventPublisher(grid.manager(0), publisher);
      return views.remoteEventSource(() => grid.connection(1, 0));
    },
    close: () => grid.close(),
  });
  await pipeline.materializer.fetch();
  return pipeline;
}

/** The same publisher and materializer in one process. */
export async function startLocalPipeline(
  views: ViewsModule,
  batches: readonly Batch[],
  bufferBatches: number,
): Promise<Pipeline> {
  const pipeline = new ViewsPipeline(views, batches, bufferBatches, {
    source: (publisher) => (request, signal) => publisher.subscribe(request, { signal }),
    close: () => Promise.resolve(),
  });
  await pipeline.materializer.fetch();
  return pipeline;
}

type WireBatch = [number, [string, Change][]];

/** The hand-rolled push: msgpackr over a bare ws WebSocket, applied to a Map. */
export class WsMsgpackPipeline implements Pipeline {
  readonly #server: WebSocketServer;
  readonly #sender: WebSocket;
  // One Packr each side, reused, plain MessagePack as the grid sends it.
  readonly #packr = new Packr({ useRecords: false });
  readonly #unpackr = new Packr({ useRecords: false });
  readonly #map = new Map<string, Uint8Array>();
  #published = 0;
  #applied = 0;
  #waiter:
    | { readonly index: number; readonly resolve: () => void; readonly reject: (error: Error) => void }
    | undefined;
  #failure: Error | undefined;
  batchesPublished = 0;

  private constructor(server: WebSocketServer, sender: WebSocket) {
    this.#server = server;
    this.#sender = sender;
  }

  static async start(): Promise<WsMsgpackPipeline> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, ...wsOptions });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
    const { port } = server.address() as AddressInfo;
    const sender = await connectWebSocket(`ws://127.0.0.1:${port}`);
    const pipeline = new WsMsgpackPipeline(server, sender);
    const receiver = await accepted;
    receiver.on('message', (data) => {
      pipeline.#receive(messageBytes(data));
    });
    receiver.on('close', () => {
      pipeline.#fail(new Error('ws-msgpack: the receiving socket closed'));
    });
    return pipeline;
  }

  get published(): number {
    return this.#published;
  }

  get applied(): number {
    return this.#applied;
  }

  publish(batch: Batch): number {
    if (this.#failure !== undefined) throw this.#failure;
    this.#published += 1;
    this.batchesPublished += 1;
    const wire: WireBatch = [this.#published, batch.map((event) => [event.subject, event.payload])];
    this.#sender.send(this.#packr.pack(wire));
    return this.#published;
  }

  waitApplied(index: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#applied > index) return Promise.resolve();
    if (this.#waiter !== undefined) return Promise.reject(new Error('ws-msgpack: one waiter at a time'));
    return new Promise((resolve, reject) => {
      this.#waiter = { index, resolve, reject };
    });
  }

  entries(): Promise<ReadonlyMap<string, Uint8Array>> {
    return Promise.resolve(new Map(this.#map));
  }

  problems(): string[] {
    return this.#failure === undefined ? [] : [this.#failure.message];
  }

  async close(): Promise<void> {
    this.#sender.close();
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }

  #receive(bytes: Buffer): void {
    const [index, pairs] = this.#unpackr.unpack(bytes) as WireBatch;
    for (const [subject, change] of pairs) {
      if (change.op === 'put') this.#map.set(subject, change.value);
      else this.#map.delete(subject);
    }
    this.#applied = index;
    const waiter = this.#waiter;
    if (waiter !== undefined && index > waiter.index) {
      this.#waiter = undefined;
      waiter.resolve();
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}
