import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { FrameTooLargeError, type StreamHandler } from '../../src/grid/index.ts';
import { MERGE_MAX_BYTES } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const FEED = 64;
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

/** Sends `count` items named after the initial payload, then holds the stream open. */
function feed(count: number, opened: string[] = []): StreamHandler {
  return {
    inCapacity: 0,
    handle: async ({ initial, send, signal }) => {
      const name = text(initial ?? new Uint8Array());
      opened.push(name);
      for (let i = 0; i < count; i++) await send(Buffer.from(`${name} ${i}`));
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
      });
    },
  };
}

async function take(stream: AsyncIterable<Uint8Array>, count: number): Promise<string[]> {
  const items: string[] = [];
  if (count === 0) return items;
  for await (const item of stream) {
    items.push(text(item));
    if (items.length === count) break;
  }
  return items;
}

/** Advances fake time in 100 ms steps, letting real I/O run between steps, until `done()`. */
async function advanceUntil(clock: FakeClock, done: () => boolean): Promise<void> {
  for (let step = 0; step < 10_000 && !done(); step++) {
    await clock.advanceAsync(step % 50 === 49 ? 100 : 0);
  }
  assert.ok(done(), 'condition not reached');
}

/** A round trip queues behind every frame already in flight, so they have all arrived after it. */
async function roundTrip(g: TestGrid): Promise<void> {
  await g
    .connection(0, 1)
    .request(255, undefined)
    .catch(() => undefined);
}

describe('stateless streams', () => {
  test('deliver what the handler sends, without credits', async (t) => {
    const g = await TestGrid.start(2, { clock: new FakeClock() });
    t.after(() => g.close());
    g.manager(1).registerStream(FEED, feed(5));
    await g.waitAllConnected();
    const stream = g.connection(0, 1).openStatelessStream(FEED, { initial: Buffer.from('a'), capacity: 10 });
    assert.deepEqual(await take(stream, 5), ['a 0', 'a 1', 'a 2', 'a 3', 'a 4']);
    assert.equal(stream.dropped, 0);
    assert.equal(g.connection(0, 1).stats().statelessStreamsOut, 0, 'leaving the loop cancelled it');
  });

  test('a consumer that falls behind loses the newest items, counted, never the process', async (t) => {
    const g = await TestGrid.start(2, { clock: new FakeClock() });
    t.after(() => g.close());
    g.manager(1).registerStream(FEED, feed(50));
    await g.waitAllConnected();
    const stream = g.connection(0, 1).openStatelessStream(FEED, { initial: Buffer.from('b'), capacity: 10 });
    for (let i = 0; i < 3; i++) await roundTrip(g);
    assert.equal(stream.dropped, 40);
    assert.deepEqual(
      await take(stream, 10),
      Array.from({ length: 10 }, (_, i) => `b ${i}`),
    );
  });

  test('survive the peer restarting: the stream opens again with its initial payload', async (t) => {
    const clock = new FakeClock();
    const g = await TestGrid.start(2, { clock, random: () => 0 });
    t.after(() => g.close());
    const opened: string[] = [];
    g.manager(1).registerStream(FEED, feed(2, opened));
    await g.waitAllConnected();
    const stream = g.connection(0, 1).openStatelessStream(FEED, { initial: Buffer.from('c') });
    // Read by hand: leaving a for-await loop would cancel the stream.
    const items = stream[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const result = await items.next();
      assert.equal(result.done, false);
      return text(result.value);
    };
    assert.deepEqual([await next(), await next()], ['c 0', 'c 1']);

    await g.restart(1, (manager) => {
      manager.registerStream(FEED, feed(2, opened));
    });
    // The old socket's end and the redial are real I/O; redial delays run on the fake clock.
    await advanceUntil(clock, () => stream.opens === 2);
    assert.deepEqual([await next(), await next()], ['c 0', 'c 1']);
    assert.deepEqual(opened, ['c', 'c']);
    assert.equal(stream.opens, 2);
    stream.cancel();
  });
});

describe('stateless streams: the handler side', () => {
  test(
    'a handler that does nothing but send until its signal aborts is stopped by the caller’s cancel',
    {
      timeout: 60_000,
    },
    async (t) => {
      const g = await TestGrid.start(2, { clock: new FakeClock() });
      t.after(() => g.close());
      // Far more sends than a cancel needs to arrive; without a turn of the event loop in
      // send() the cancel never arrives, and the loop runs until this bound instead.
      const bound = 100_000;
      let sends = 0;
      let handlerSignal: AbortSignal | undefined;
      let loopEnded!: () => void;
      const ended = new Promise<void>((resolve) => (loopEnded = resolve));
      g.manager(1).registerStream(FEED, {
        inCapacity: 0,
        handle: async ({ send, signal }) => {
          handlerSignal = signal;
          const item = Buffer.from('tick');
          while (!signal.aborted && sends < bound) {
            await send(item);
            sends += 1;
          }
          loopEnded();
        },
      });
      await g.waitAllConnected();
      const stream = g.connection(0, 1).openStatelessStream(FEED);
      assert.deepEqual(await take(stream, 3), ['tick', 'tick', 'tick']);
      await ended;
      assert.equal(
        handlerSignal?.aborted,
        true,
        `the loop ended after ${sends} sends without its signal aborting`,
      );
      assert.ok(sends < bound, `${sends} sends`);
    },
  );

  test('send() says false for what the send queue could not take, and the handler sees the count', async (t) => {
    const maxQueuedBytes = 64 * 1024;
    // A full batch goes to the socket at once, up to this much in flight; the rest waits in the
    // queue, which holds what fits in maxQueuedBytes.
    const writeHighWaterBytes = 1024;
    const clock = new FakeClock();
    const g = await TestGrid.start(2, { clock, limits: { maxQueuedBytes, writeHighWaterBytes } });
    t.after(() => g.close());
    const results: boolean[] = [];
    let droppedSeen: number | undefined;
    g.manager(1).registerStream(FEED, {
      inCapacity: 0,
      handle: async (context) => {
        // All at once, in one turn: the socket takes one batch, the queue what fits in
        // maxQueuedBytes, no more.
        const sends = Array.from({ length: 100 }, () => context.send(Buffer.alloc(1024, 7)));
        results.push(...(await Promise.all(sends)));
        droppedSeen = context.dropped;
        await new Promise((resolve) => {
          context.signal.addEventListener('abort', resolve, { once: true });
        });
      },
    });
    await g.waitAllConnected();
    const stream = g.connection(0, 1).openStatelessStream(FEED, { capacity: 100 });
    const items = stream[Symbol.asyncIterator]();
    const first = await items.next();
    assert.equal(first.done, false);
    await advanceUntil(clock, () => results.length === 100);

    const queued = results.filter(Boolean).length;
    assert.ok(queued > 0 && queued < 100, `${queued} of 100 queued`);
    assert.ok(
      queued <= (maxQueuedBytes + MERGE_MAX_BYTES) / 1024,
      `${queued} items of 1 KiB fit in the queue and one batch`,
    );
    assert.deepEqual(
      results,
      Array.from({ length: 100 }, (_, i) => i < queued),
      'the items that fitted, then the ones that did not',
    );
    assert.equal(droppedSeen, 100 - queued);
    // What send() said was queued is what the caller gets.
    let received = 1;
    while (received < queued) {
      const result = await items.next();
      assert.equal(result.done, false);
      received += 1;
    }
    let arrived = false;
    items.next().then(
      () => (arrived = true),
      () => undefined,
    );
    await roundTrip(g);
    assert.equal(arrived, false, 'nothing beyond what was queued');
    assert.equal(stream.dropped, 0);
    stream.cancel();
  });
});

describe('stateless streams that cannot open', () => {
  test('an invalid handler id or an initial payload over the frame limit fails at once, not silently', async (t) => {
    const g = await TestGrid.start(2, { clock: new FakeClock(), limits: { maxFrameBytes: 64 * 1024 } });
    t.after(() => g.close());
    await g.waitAllConnected();
    const connection = g.connection(0, 1);
    assert.throws(() => connection.openStatelessStream(300), RangeError);
    assert.throws(
      () => connection.openStatelessStream(FEED, { initial: new Uint8Array(65 * 1024) }),
      (e) => e instanceof FrameTooLargeError,
    );
    assert.equal(connection.stats().statelessStreamsOut, 0);
  });
});
