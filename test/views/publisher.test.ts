import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import {
  EventPublisher,
  Materializer,
  SubscriberTooSlowError,
  UnauthorizedError,
  UnknownTopicError,
  ViewStaleError,
  type Event,
  type EventSource,
  type StreamItem,
  type SubscribeRequest,
  type TopicOptions,
  type View,
} from '../../src/views/index.ts';
import { event, watch } from './fake-source.ts';

/** A topic whose state is every event published so far, in order (what a snapshot returns). */
class LogTopic {
  readonly publisher: EventPublisher;
  readonly name: string;
  readonly log: Event<string>[] = [];
  snapshots = 0;

  constructor(publisher: EventPublisher, name = 'log', options: Partial<TopicOptions<string>> = {}) {
    this.publisher = publisher;
    this.name = name;
    publisher.registerTopic<string>(name, {
      snapshot: (subject) => {
        this.snapshots += 1;
        return {
          index: publisher.index(name),
          events: this.log.filter((e) => subject === undefined || e.subject === subject),
        };
      },
      ...options,
    });
  }

  publish(...events: Event<string>[]): number {
    const index = this.publisher.publish(this.name, events);
    this.log.push(...events);
    return index;
  }
}

type Reader = AsyncIterator<StreamItem<string>>;

function subscribe(publisher: EventPublisher, request: SubscribeRequest, signal?: AbortSignal): Reader {
  return publisher.subscribe<string>(request, { signal })[Symbol.asyncIterator]();
}

async function take(reader: Reader, count: number): Promise<StreamItem<string>[]> {
  const items: StreamItem<string>[] = [];
  for (let i = 0; i < count; i++) {
    const next = await reader.next();
    assert.equal(next.done, false);
    items.push(next.value);
  }
  return items;
}

/** Items as short strings: `e5:a,b` (events at 5), `eos5`, `nstf`. */
function show(items: readonly StreamItem<string>[]): string[] {
  return items.map((item) => {
    switch (item.kind) {
      case 'events':
        return `e${item.index}:${item.events.map((e) => e.payload).join(',')}`;
      case 'end-of-snapshot':
        return `eos${item.index}`;
      case 'new-snapshot-to-follow':
        return 'nstf';
    }
  });
}

function generationOf(items: readonly StreamItem<string>[]): string {
  const end = items.find((item) => item.kind === 'end-of-snapshot');
  assert.ok(end !== undefined, 'no end-of-snapshot');
  return end.generation;
}

/** A View that appends payloads in order: a missed or repeated event shows in its result. */
class LogView implements View<string, string[]> {
  #values: string[] = [];
  update(events: readonly Event<string>[]): void {
    for (const e of events) this.#values.push(e.payload);
  }
  result(): string[] {
    return [...this.#values];
  }
  reset(): void {
    this.#values = [];
  }
}

function localSource(publisher: EventPublisher, requests: SubscribeRequest[] = []): EventSource<string> {
  return (request, signal) => {
    requests.push(request);
    return publisher.subscribe<string>(request, { signal });
  };
}

describe('EventPublisher: indexes', () => {
  test('a topic starts at index 1 and its first batch is at 2; each batch takes the next index', () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    assert.equal(publisher.index('log'), 1);
    assert.equal(topic.publish(event('a')), 2);
    assert.equal(topic.publish(event('b'), event('c')), 3);
    assert.equal(publisher.index('log'), 3);
  });

  test('a topic may start at another index; index 0 is refused', () => {
    const publisher = new EventPublisher();
    publisher.registerTopic('t', { snapshot: () => ({ index: 100, events: [] }) }, 100);
    assert.equal(publisher.publish('t', [event('a')]), 101);
    assert.throws(() => {
      publisher.registerTopic('u', { snapshot: () => ({ index: 1, events: [] }) }, 0);
    }, ConfigError);
    assert.throws(() => {
      publisher.registerTopic('t', { snapshot: () => ({ index: 1, events: [] }) });
    }, ConfigError);
  });

  test('an explicit index must be above the latest; the next implicit one follows it', () => {
    const publisher = new EventPublisher();
    new LogTopic(publisher);
    assert.equal(publisher.publish('log', [event('a')], 10), 10);
    assert.throws(() => publisher.publish('log', [event('b')], 10), RangeError);
    assert.throws(() => publisher.publish('log', [event('b')], 5), RangeError);
    assert.equal(publisher.publish('log', [event('b')]), 11);
  });

  test('an empty batch publishes nothing and returns the latest index', async () => {
    const clock = new FakeClock();
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    topic.publish(event('a'));
    const reader = subscribe(publisher, { topic: 'log' });
    await take(reader, 2);
    const next = watch(reader.next());
    assert.equal(publisher.publish('log', []), 2);
    assert.equal(publisher.index('log'), 2);
    await clock.advanceAsync(0);
    assert.equal(next.state, 'pending', 'nothing was sent');
    topic.publish(event('b'));
    await clock.advanceAsync(0);
    assert.deepEqual(show([(next.value as IteratorResult<StreamItem<string>>).value as StreamItem<string>]), [
      'e3:b',
    ]);
  });

  test('publishing to an unknown topic throws UnknownTopicError', () => {
    const publisher = new EventPublisher();
    assert.throws(() => publisher.publish('nope', [event('a')]), UnknownTopicError);
    assert.throws(() => publisher.index('nope'), UnknownTopicError);
  });
});

describe('EventPublisher: subscriptions', () => {
  test('a subscriber at index 0 gets the snapshot, then end-of-snapshot, then live batches', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    topic.publish(event('a'));
    topic.publish(event('b'));
    const reader = subscribe(publisher, { topic: 'log' });
    assert.deepEqual(show(await take(reader, 2)), ['e3:a,b', 'eos3']);
    const live = reader.next();
    topic.publish(event('c'));
    topic.publish(event('d'));
    assert.deepEqual(show([(await live).value as StreamItem<string>, ...(await take(reader, 1))]), [
      'e4:c',
      'e5:d',
    ]);
  });

  test('an empty topic still sends end-of-snapshot at its start index', async () => {
    const publisher = new EventPublisher();
    new LogTopic(publisher);
    assert.deepEqual(show(await take(subscribe(publisher, { topic: 'log' }), 1)), ['eos1']);
  });

  test('a snapshot bigger than a chunk comes in several chunks at the snapshot index', async () => {
    const publisher = new EventPublisher({ snapshotChunkEvents: 2 });
    const topic = new LogTopic(publisher);
    topic.publish(event('a'), event('b'), event('c'), event('d'), event('e'));
    assert.deepEqual(show(await take(subscribe(publisher, { topic: 'log' }), 4)), [
      'e2:a,b',
      'e2:c,d',
      'e2:e',
      'eos2',
    ]);
  });

  test('resuming at an index still in the buffer gives only the batches after it', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    const generation = generationOf(await take(subscribe(publisher, { topic: 'log' }), 1));
    for (const p of ['a', 'b', 'c', 'd']) topic.publish(event(p));
    const snapshotsBefore = publisher.stats().snapshots;
    const reader = subscribe(publisher, { topic: 'log', index: 3, generation });
    assert.deepEqual(show(await take(reader, 2)), ['e4:c', 'e5:d']);
    topic.publish(event('e'));
    assert.deepEqual(show(await take(reader, 1)), ['e6:e']);
    assert.equal(publisher.stats().snapshots, snapshotsBefore, 'no snapshot taken');
  });

  test('resuming from a dropped index gives new-snapshot-to-follow, then a snapshot', async () => {
    const publisher = new EventPublisher({ bufferBatches: 2 });
    const topic = new LogTopic(publisher);
    const generation = generationOf(await take(subscribe(publisher, { topic: 'log' }), 1));
    for (const p of ['a', 'b', 'c', 'd']) topic.publish(event(p));
    // Batches 2..5 were published; the buffer holds 4 and 5, so 3 (after 2) is gone.
    const reader = subscribe(publisher, { topic: 'log', index: 2, generation });
    assert.deepEqual(show(await take(reader, 3)), ['nstf', 'e5:a,b,c,d', 'eos5']);
    // Index 3 is the newest dropped batch: everything after it is still held.
    const fromThree = subscribe(publisher, { topic: 'log', index: 3, generation });
    assert.deepEqual(show(await take(fromThree, 2)), ['e4:c', 'e5:d']);
  });

  test('resuming with an index of another generation gives new-snapshot-to-follow, then a snapshot', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    topic.publish(event('a'));
    topic.publish(event('b'));
    const reader = subscribe(publisher, { topic: 'log', index: 2, generation: 'another-publisher' });
    assert.deepEqual(show(await take(reader, 3)), ['nstf', 'e3:a,b', 'eos3']);
  });

  test('resuming above the latest index gives new-snapshot-to-follow, then a snapshot', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    const generation = generationOf(await take(subscribe(publisher, { topic: 'log' }), 1));
    topic.publish(event('a'));
    // The subscriber claims index 50 (say, it read a restarted publisher that had got further).
    const reader = subscribe(publisher, { topic: 'log', index: 50, generation });
    const first = watch(reader.next());
    await new FakeClock().advanceAsync(0);
    assert.equal(first.state, 'fulfilled', 'answered at once, not left waiting for batch 51');
    assert.deepEqual(show([first.value?.value as StreamItem<string>, ...(await take(reader, 2))]), [
      'nstf',
      'e2:a',
      'eos2',
    ]);
    // And without a generation: an index the publisher never reached is not resumed either.
    const noGeneration = subscribe(publisher, { topic: 'log', index: 50 });
    assert.deepEqual(show(await take(noGeneration, 3)), ['nstf', 'e2:a', 'eos2']);
  });

  test('a named subject gets only its events; the wildcard gets all; a batch with nothing for it is not sent', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    topic.publish(event('x', 'x1'), event('y', 'y1'));
    const named = subscribe(publisher, { topic: 'log', subject: 'x' });
    const wildcard = subscribe(publisher, { topic: 'log' });
    assert.deepEqual(show(await take(named, 2)), ['e2:x1', 'eos2']);
    assert.deepEqual(show(await take(wildcard, 2)), ['e2:x1,y1', 'eos2']);
    topic.publish(event('y', 'y2'));
    topic.publish(event('x', 'x2'), event('y', 'y3'));
    assert.deepEqual(show(await take(named, 1)), ['e4:x2']);
    assert.deepEqual(show(await take(wildcard, 2)), ['e3:y2', 'e4:x2,y3']);
  });

  test('events the visible filter hides are left out, of snapshots and live batches alike', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher, 'log', {
      visible: (e, request) => request.token === 'admin' || !e.payload.startsWith('secret'),
    });
    topic.publish(event('a', 'public1'), event('b', 'secret1'));
    const user = subscribe(publisher, { topic: 'log', token: 'user' });
    const admin = subscribe(publisher, { topic: 'log', token: 'admin' });
    assert.deepEqual(show(await take(user, 2)), ['e2:public1', 'eos2']);
    assert.deepEqual(show(await take(admin, 2)), ['e2:public1,secret1', 'eos2']);
    topic.publish(event('b', 'secret2'));
    topic.publish(event('a', 'public2'));
    assert.deepEqual(show(await take(user, 1)), ['e4:public2']);
    assert.deepEqual(show(await take(admin, 2)), ['e3:secret2', 'e4:public2']);
  });

  test('authorize returning false or throwing refuses the subscription with UnauthorizedError', () => {
    const publisher = new EventPublisher({
      authorize: (request) => {
        if (request.token === 'boom') throw new Error('token revoked');
        return request.token === 'good';
      },
    });
    new LogTopic(publisher);
    assert.doesNotThrow(() => publisher.subscribe({ topic: 'log', token: 'good' }));
    assert.throws(() => publisher.subscribe({ topic: 'log', token: 'bad' }), UnauthorizedError);
    assert.throws(
      () => publisher.subscribe({ topic: 'log', token: 'boom' }),
      (error: unknown) => error instanceof UnauthorizedError && error.message === 'token revoked',
    );
  });

  test('subscribing to an unknown topic throws UnknownTopicError', () => {
    const publisher = new EventPublisher();
    assert.throws(() => publisher.subscribe({ topic: 'nope' }), UnknownTopicError);
  });

  test('a subscriber slower than the buffer ends with SubscriberTooSlowError, counted in stats', async () => {
    const publisher = new EventPublisher({ bufferBatches: 4 });
    const topic = new LogTopic(publisher);
    const slow = subscribe(publisher, { topic: 'log' });
    const keepingUp = subscribe(publisher, { topic: 'log' });
    await take(slow, 1);
    await take(keepingUp, 1);
    for (let i = 0; i < 6; i++) {
      topic.publish(event(`e${i}`));
      await take(keepingUp, 1);
    }
    await assert.rejects(slow.next(), SubscriberTooSlowError);
    const stats = publisher.stats();
    assert.equal(stats.slowSubscribers, 1);
    assert.equal(stats.droppedBatches, 2);
    topic.publish(event('after'));
    assert.deepEqual(show(await take(keepingUp, 1)), ['e8:after'], 'the other subscriber goes on');
  });

  test('resetTopic ends subscriptions with ViewStaleError, moves the index on, and resuming from the old generation needs a snapshot', async () => {
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    topic.publish(event('a'));
    const reader = subscribe(publisher, { topic: 'log' });
    const generation = generationOf(await take(reader, 2));
    const waiting = reader.next();
    publisher.resetTopic('log', 'restored from a backup');
    await assert.rejects(
      waiting,
      (error: unknown) => error instanceof ViewStaleError && error.message === 'restored from a backup',
    );
    assert.equal(publisher.index('log'), 3, 'the state after a reset is news to every reader');
    const resumed = subscribe(publisher, { topic: 'log', index: 2, generation });
    assert.deepEqual(show(await take(resumed, 3)), ['nstf', 'e3:a', 'eos3']);
  });

  test('removeTopic ends subscriptions with UnknownTopicError', async () => {
    const publisher = new EventPublisher();
    new LogTopic(publisher);
    const reader = subscribe(publisher, { topic: 'log' });
    await take(reader, 1);
    const waiting = reader.next();
    publisher.removeTopic('log');
    await assert.rejects(waiting, UnknownTopicError);
    assert.throws(() => publisher.subscribe({ topic: 'log' }), UnknownTopicError);
    assert.equal(publisher.stats().topics, 0);
  });

  test('a snapshot function that throws fails that subscription only', async () => {
    const publisher = new EventPublisher();
    let fail = true;
    publisher.registerTopic<string>('t', {
      snapshot: () => {
        if (fail) throw new Error('database down');
        return { index: publisher.index('t'), events: [] };
      },
    });
    fail = false;
    const healthy = subscribe(publisher, { topic: 't' });
    assert.deepEqual(show(await take(healthy, 1)), ['eos1']);
    fail = true;
    await assert.rejects(subscribe(publisher, { topic: 't' }).next(), /database down/);
    publisher.publish('t', [event('a')]);
    assert.deepEqual(show(await take(healthy, 1)), ['e2:a']);
  });

  test('aborting the signal ends a subscription waiting for the next batch', async () => {
    const publisher = new EventPublisher();
    new LogTopic(publisher);
    const controller = new AbortController();
    const reader = subscribe(publisher, { topic: 'log' }, controller.signal);
    await take(reader, 1);
    const waiting = reader.next();
    controller.abort(new Error('bye'));
    await assert.rejects(waiting, /bye/);
  });
});

describe('EventPublisher with a Materializer', () => {
  test('a materializer that falls behind the buffer resumes from a fresh snapshot, missing and repeating nothing', async () => {
    const clock = new FakeClock();
    const publisher = new EventPublisher({ bufferBatches: 4 });
    const topic = new LogTopic(publisher);
    const requests: SubscribeRequest[] = [];
    const materializer = new Materializer({
      source: localSource(publisher, requests),
      request: { topic: 'log' },
      view: new LogView(),
      clock,
      random: () => 0,
    });
    const controller = new AbortController();
    const running = materializer.run(controller.signal);
    await clock.advanceAsync(0);
    let n = 0;
    const expected = (): string[] => topic.log.map((e) => e.payload);
    for (const burst of [2, 3, 10, 1, 7, 4, 12]) {
      // Published without yielding: a burst longer than the buffer outruns the materializer.
      for (let i = 0; i < burst; i++) topic.publish(event(`k${n % 3}`, `v${n++}`));
      await clock.advanceAsync(1_000);
      const result = await materializer.fetch({ minIndex: 0 });
      assert.equal(result.index, publisher.index('log'));
      assert.deepEqual(result.value, expected());
    }
    assert.ok(publisher.stats().slowSubscribers >= 1, 'the materializer did fall behind');
    const resumed = requests.filter((r) => (r.index ?? 0) > 0);
    assert.ok(resumed.length >= 1, 'it resumed from the index it held');
    controller.abort();
    await running;
  });

  test('a materializer on a removed topic stops after three UnknownTopicErrors in a row', async () => {
    const clock = new FakeClock();
    const publisher = new EventPublisher();
    new LogTopic(publisher);
    const requests: SubscribeRequest[] = [];
    const materializer = new Materializer({
      source: localSource(publisher, requests),
      request: { topic: 'log' },
      view: new LogView(),
      clock,
      random: () => 0,
    });
    const running = materializer.run(new AbortController().signal);
    await clock.advanceAsync(0);
    assert.equal(materializer.index, 1);
    publisher.removeTopic('log');
    await clock.advanceAsync(10_000);
    await running;
    assert.ok(materializer.stoppedBy instanceof UnknownTopicError);
    assert.equal(requests.length, 3, 'the live subscription ended by it, and two more attempts');
  });

  test('after resetTopic the materializer rebuilds from a fresh snapshot', async () => {
    const clock = new FakeClock();
    const publisher = new EventPublisher();
    const topic = new LogTopic(publisher);
    const requests: SubscribeRequest[] = [];
    const view = new LogView();
    let resets = 0;
    const reset = view.reset.bind(view);
    view.reset = () => {
      resets += 1;
      reset();
    };
    const materializer = new Materializer({
      source: localSource(publisher, requests),
      request: { topic: 'log' },
      view,
      clock,
    });
    const controller = new AbortController();
    const running = materializer.run(controller.signal);
    topic.publish(event('a'));
    topic.publish(event('b'));
    await clock.advanceAsync(0);
    assert.deepEqual((await materializer.fetch()).value, ['a', 'b']);
    // The application restores an older state and resets the topic.
    topic.log.splice(1);
    publisher.resetTopic('log', 'restore');
    await clock.advanceAsync(0);
    assert.equal(resets, 1);
    assert.equal(requests.length, 2);
    assert.equal(requests[1]?.index, 0, 'resubscribed for a snapshot');
    const rebuilt = await materializer.fetch();
    assert.deepEqual(rebuilt.value, ['a']);
    assert.equal(rebuilt.index, 4, 'above the 3 readers had seen: a blocked reader takes it as news');
    topic.publish(event('c'));
    await clock.advanceAsync(0);
    assert.deepEqual((await materializer.fetch({ minIndex: 4 })).value, ['a', 'c']);
    controller.abort();
    await running;
  });
});
