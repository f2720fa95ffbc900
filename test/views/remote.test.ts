// Subscriptions across a real grid connection: the stream items arrive as a local
// subscriber's would, errors keep their code (so terminal ones stay terminal), a subject
// filter and a token travel with the request, and malformed input on either side of the
// wire is refused with a ProtocolError rather than crashing a node.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { msgpackCodec, ProtocolError, RemoteError } from '../../src/grid/index.ts';
import { FakeClock, TestGrid } from '../../src/testing/index.ts';
import { decodeItem, encodeItem } from '../../src/views/remote.ts';
import {
  EventPublisher,
  EventTooLargeError,
  isTerminalViewError,
  MapView,
  Materializer,
  putEvent,
  remoteEventSource,
  serveEventPublisher,
  UnauthorizedError,
  UnknownTopicError,
  VIEWS_SUBSCRIBE_HANDLER,
  type MapChange,
  type StreamItem,
} from '../../src/views/index.ts';

interface Setup {
  readonly grid: TestGrid;
  readonly clock: FakeClock;
  readonly publisher: EventPublisher;
}

async function servedPair(t: TestContext, publisher = new EventPublisher()): Promise<Setup> {
  const clock = new FakeClock();
  const grid = await TestGrid.start(2, { clock, random: () => 0 });
  t.after(() => grid.close());
  serveEventPublisher(grid.manager(0), publisher);
  await grid.waitAllConnected();
  return { grid, clock, publisher };
}

function registerMap(publisher: EventPublisher, topic: string, state: Map<string, number>): void {
  publisher.registerTopic<MapChange<number>>(topic, {
    snapshot: (subject) => ({
      index: publisher.index(topic),
      events: [...state]
        .filter(([key]) => subject === undefined || key === subject)
        .map(([key, value]) => putEvent(key, value)),
    }),
  });
}

async function take<P>(items: AsyncIterable<StreamItem<P>>, count: number): Promise<StreamItem<P>[]> {
  const taken: StreamItem<P>[] = [];
  for await (const item of items) {
    taken.push(item);
    if (taken.length === count) break;
  }
  return taken;
}

describe('views: remote subscriptions', () => {
  test('a remote subscriber gets the snapshot, end-of-snapshot and live batches a local one gets', async (t) => {
    const { grid, publisher } = await servedPair(t);
    const state = new Map([['a', 1]]);
    registerMap(publisher, 'kv', state);
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    const source = remoteEventSource<MapChange<number>>(grid.connection(1, 0));
    const stream = source({ topic: 'kv' }, controller.signal)[Symbol.asyncIterator]();
    const first = [await stream.next(), await stream.next()].map(
      (r) => r.value as StreamItem<MapChange<number>>,
    );
    const generation = (first[1] as { generation: string }).generation;
    assert.deepEqual(first, [
      { kind: 'events', index: 1, events: [putEvent('a', 1)] },
      { kind: 'end-of-snapshot', index: 1, generation },
    ]);
    publisher.publish('kv', [putEvent('b', 2), putEvent('a', 3)]);
    assert.deepEqual((await stream.next()).value, {
      kind: 'events',
      index: 2,
      events: [putEvent('b', 2), putEvent('a', 3)],
    });
    await stream.return?.();
  });

  test('a named subject and a token travel with the request', async (t) => {
    const tokens: (string | undefined)[] = [];
    const publisher = new EventPublisher({
      authorize: (request) => {
        tokens.push(request.token);
        return request.token === 'secret';
      },
    });
    const { grid } = await servedPair(t, publisher);
    registerMap(
      publisher,
      'kv',
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    );
    const source = remoteEventSource<MapChange<number>>(grid.connection(1, 0));
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    const [snapshot] = await take(
      source({ topic: 'kv', subject: 'b', token: 'secret' }, controller.signal),
      1,
    );
    assert.deepEqual(snapshot, { kind: 'events', index: 1, events: [putEvent('b', 2)] });
    await assert.rejects(take(source({ topic: 'kv', token: 'wrong' }, controller.signal), 1), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, UnauthorizedError.code);
      assert.equal(error.retryable, false);
      return true;
    });
    assert.deepEqual(tokens, ['secret', 'wrong']);
  });

  test('an unknown topic across the grid is terminal: the materializer stops after terminalAfter attempts', async (t) => {
    const { grid, clock } = await servedPair(t);
    const materializer = new Materializer({
      source: remoteEventSource<MapChange<number>>(grid.connection(1, 0)),
      request: { topic: 'nowhere' },
      view: new MapView<number>(),
      clock,
      random: () => 0,
      terminalAfter: 2,
    });
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    const fetched = materializer.fetch();
    fetched.catch(() => undefined);
    const running = materializer.run(controller.signal);
    // The first failure waits 0 ms before the second attempt.
    while (materializer.stoppedBy === undefined) await clock.advanceAsync(10);
    await running;
    const stoppedBy = materializer.stoppedBy as RemoteError;
    assert.equal(stoppedBy.code, UnknownTopicError.code);
    await assert.rejects(fetched, (error) => error === stoppedBy);
    assert.equal(materializer.stats().subscriptions, 2);
  });

  test('a malformed subscribe request is refused with a protocol error, and the serving node keeps serving', async (t) => {
    const { grid, publisher } = await servedPair(t);
    registerMap(publisher, 'kv', new Map([['a', 1]]));
    const raw = grid.connection(1, 0);
    for (const initial of [
      [1, 2, 3],
      'kv',
      { topic: 7 },
      { topic: 'kv', index: -1 },
      { topic: 'kv', index: 1.5 },
    ]) {
      const stream = raw.openStream(VIEWS_SUBSCRIBE_HANDLER, {
        initial: msgpackCodec<unknown>().encode(initial),
        outCapacity: 4,
      });
      await assert.rejects(
        (async () => {
          for await (const item of stream) assert.fail(`no item expected, got ${item.length} bytes`);
        })(),
        (error) => error instanceof RemoteError && error.code === ProtocolError.code,
        JSON.stringify(initial),
      );
    }
    const source = remoteEventSource<MapChange<number>>(raw);
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    assert.equal((await take(source({ topic: 'kv' }, controller.signal), 1)).length, 1);
  });

  test('a malformed stream item is a ProtocolError on the subscribing side', async (t) => {
    const clock = new FakeClock();
    const grid = await TestGrid.start(2, { clock, random: () => 0 });
    t.after(() => grid.close());
    const bad: unknown[] = [{ kind: 0 }, [0, -1, []], [0, 1, [['a']]], [0, 1, [[7, 1]]], [1, 1, 5], [9]];
    // A fake server on the subscription handler id, answering with one malformed item each.
    let next = 0;
    grid.manager(0).registerStream(
      VIEWS_SUBSCRIBE_HANDLER,
      {
        inCapacity: 0,
        handle: async ({ send }) => {
          await send(msgpackCodec<unknown>().encode(bad[next++]) as Uint8Array);
        },
      },
      { reserved: true },
    );
    await grid.waitAllConnected();
    const source = remoteEventSource(grid.connection(1, 0));
    for (const item of bad) {
      await assert.rejects(
        take(source({ topic: 'kv' }, new AbortController().signal), 1),
        ProtocolError,
        JSON.stringify(item),
      );
    }
  });
});

describe('views: large batches across the grid', () => {
  test('a batch too large for one message is split into parts and arrives whole, as one atomic batch', async (t) => {
    const { grid, publisher } = await servedPair(t);
    publisher.registerTopic<string>('big', {
      snapshot: () => ({ index: publisher.index('big'), events: [] }),
    });
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    const source = remoteEventSource<string>(grid.connection(1, 0));
    const items = source({ topic: 'big' }, controller.signal)[Symbol.asyncIterator]();
    const first = (await items.next()).value as StreamItem<string>;
    assert.equal(first.kind, 'end-of-snapshot');
    // 3 MiB in 12 events: three or more parts of at most 1 MiB each.
    const events = Array.from({ length: 12 }, (_, i) => ({
      subject: `k${i}`,
      payload: 'x'.repeat(256 * 1024),
    }));
    publisher.publish('big', events);
    publisher.publish('big', [{ subject: 'after', payload: 'small' }]);
    const batch = (await items.next()).value as StreamItem<string>;
    assert.ok(batch.kind === 'events');
    assert.equal(batch.index, 2);
    assert.deepEqual(
      batch.events.map((e) => e.subject),
      events.map((e) => e.subject),
    );
    const next = (await items.next()).value as StreamItem<string>;
    assert.deepEqual(next, { kind: 'events', index: 3, events: [{ subject: 'after', payload: 'small' }] });
  });

  test('the parts of a split batch are each under the part size, every one but the last marked as a part', () => {
    const events = Array.from({ length: 10 }, (_, i) => ({ subject: `k${i}`, payload: 'y'.repeat(1000) }));
    const messages = encodeItem({ kind: 'events', index: 9, events }, 3_000);
    assert.ok(messages.length >= 4);
    const decoded = messages.map((m) => decodeItem(m));
    assert.ok(messages.every((m) => m.length <= 3_000 + 100));
    assert.deepEqual(
      decoded.map((d) => (d as { part?: boolean }).part),
      [...Array.from({ length: messages.length - 1 }, () => true), false],
    );
    assert.deepEqual(
      decoded.flatMap((d) => (d.kind === 'events' ? d.events.map((e) => e.subject) : [])),
      events.map((e) => e.subject),
    );
  });

  test('one event larger than a grid frame stops the materializer with EventTooLargeError, not an endless retry', async (t) => {
    const clock = new FakeClock();
    const grid = await TestGrid.start(2, { clock, random: () => 0, limits: { maxFrameBytes: 256 * 1024 } });
    t.after(() => grid.close());
    const publisher = new EventPublisher();
    serveEventPublisher(grid.manager(0), publisher);
    await grid.waitAllConnected();
    const state = new Map<string, number>();
    registerMap(publisher, 'kv', state);
    const materializer = new Materializer({
      source: remoteEventSource<MapChange<number>>(grid.connection(1, 0)),
      request: { topic: 'kv' },
      view: new MapView<number>(),
      clock,
      random: () => 0,
    });
    const controller = new AbortController();
    t.after(() => {
      controller.abort();
    });
    const running = materializer.run(controller.signal);
    await materializer.fetch();
    publisher.publish('kv', [{ subject: 'huge', payload: { op: 'put', value: 'z'.repeat(512 * 1024) } }]);
    while (materializer.stoppedBy === undefined) await clock.advanceAsync(1_000);
    await running;
    assert.equal((materializer.stoppedBy as RemoteError).code, EventTooLargeError.code);
    assert.ok(isTerminalViewError(materializer.stoppedBy));
  });
});
