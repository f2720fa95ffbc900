// Resources and flow control under volume: calls leave no entries, timers or listeners
// behind; stream credits keep every buffer within its window; the last items of a
// stream survive its end; and a consumer that stops reading slows only its own stream.

import assert from 'node:assert/strict';
import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { defineStream, subrouteId, type GridConnection } from '../../src/grid/index.ts';
import { FakeClock } from '../../src/testing/index.ts';
import {
  COUNT_UP,
  ECHO,
  eventually,
  readU32,
  roundTrips,
  testPair,
  turn,
  u32,
  watch,
} from './reliability-harness.ts';

function inFlight(connection: GridConnection): number[] {
  const s = connection.stats();
  return [s.requestsOut, s.requestsIn, s.streamsOut, s.streamsIn];
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<number[]> {
  const items: number[] = [];
  for await (const item of stream) items.push(readU32(item));
  return items;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Runs `count` tasks, `parallel` at a time. */
async function pool(count: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    range(parallel).map(async () => {
      while (next < count) await task(next++);
    }),
  );
}

describe('grid: resources', () => {
  test('100 000 requests leave nothing in flight, no timer beyond the connection pings and no listener', async (t) => {
    const clock = new FakeClock();
    const { tg } = await testPair(t, clock);
    const route = subrouteId(70, 'bucket/objects');
    tg.manager(1).registerSingle(70, (payload) => payload, { subroute: 'bucket/objects' });
    const baseline = clock.pendingTimers;
    assert.equal(baseline, 2, 'one ping interval per side');
    const longLived = new AbortController();
    // Shared by 256 calls at a time, each of which removes its listener when it ends.
    setMaxListeners(0, longLived.signal);
    let peakTimers = 0;

    await pool(100_000, 256, async (i) => {
      // Both directions, with and without a subroute, a deadline and a signal.
      const connection = i % 4 === 3 ? tg.connection(1, 0) : tg.connection(0, 1);
      const viaRoute = i % 4 === 1;
      const answer = await connection.request(viaRoute ? 70 : ECHO, u32(i), {
        signal: longLived.signal,
        subroute: viaRoute ? route : undefined,
        timeoutMs: i % 2 === 0 ? 30_000 : undefined,
      });
      assert.equal(readU32(answer as Uint8Array), i);
      if (i % 1_000 === 0) peakTimers = Math.max(peakTimers, clock.pendingTimers);
    });

    assert.deepEqual(inFlight(tg.connection(0, 1)), [0, 0, 0, 0]);
    assert.deepEqual(inFlight(tg.connection(1, 0)), [0, 0, 0, 0]);
    assert.equal(clock.pendingTimers, baseline, 'every deadline timer was cancelled');
    assert.ok(peakTimers <= baseline + 2 * 256, `timers stay bounded by the calls in flight (${peakTimers})`);
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
    assert.equal(tg.connection(0, 1).stats().lateResults, 0);
  });

  test('10 000 streams, ended, drained or cancelled, leave no stream entry, timer or listener', async (t) => {
    const clock = new FakeClock();
    const { tg } = await testPair(t, clock);
    tg.manager(1).registerStream(71, {
      inCapacity: 2,
      handle: async ({ requests, send }) => {
        for await (const item of requests) await send(item);
      },
    });
    const baseline = clock.pendingTimers;
    const longLived = new AbortController();
    const signal = longLived.signal;
    setMaxListeners(0, signal);
    const connection = tg.connection(0, 1);

    await pool(10_000, 64, async (i) => {
      // Streams with a long deadline get a ping timer and a deadline timer on both sides.
      const timeoutMs = i % 2 === 0 ? 120_000 : undefined;
      switch (i % 3) {
        case 0: {
          const stream = connection.openStream(COUNT_UP, {
            initial: u32(3),
            outCapacity: 2,
            signal,
            timeoutMs,
          });
          assert.deepEqual(await readAll(stream), [0, 1, 2]);
          return;
        }
        case 1: {
          const stream = connection.openStream(71, { outCapacity: 1, signal, timeoutMs });
          await stream.send(u32(i));
          stream.end();
          assert.deepEqual(await readAll(stream), [i]);
          return;
        }
        default: {
          const stream = connection.openStream(COUNT_UP, { initial: u32(100), signal, timeoutMs });
          for await (const item of stream) {
            assert.equal(readU32(item), 0);
            break;
          }
        }
      }
    });

    // Cancels reach the handler side a round trip later.
    await eventually(() => inFlight(tg.connection(1, 0)).every((n) => n === 0), 'the handler side to end');
    assert.deepEqual(inFlight(connection), [0, 0, 0, 0]);
    assert.equal(clock.pendingTimers, baseline, 'ping, idle and deadline timers were all cancelled');
    assert.equal(getEventListeners(signal, 'abort').length, 0);
  });
});

describe('grid: stream flow control', () => {
  test('the last items of a stream are never lost at its end, for any count, window and reading pace', async (t) => {
    const { tg } = await testPair(t);
    const connection = tg.connection(0, 1);
    const serving = tg.connection(1, 0);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom('eager', 'slow', 'after-the-end'),
        async (count, window, pace) => {
          const stream = connection.openStream(COUNT_UP, { initial: u32(count), outCapacity: window });
          if (pace === 'after-the-end') {
            // Start reading only once the handler has returned or filled the window.
            await eventually(
              () => serving.stats().streamsIn === 0 || stream.buffered === window,
              'the handler to finish or block',
            );
          }
          const items: number[] = [];
          // An item past the window would end the stream with a ProtocolError, so reading
          // every item to the end shows the window held.
          for await (const item of stream) {
            items.push(readU32(item));
            if (pace === 'slow') {
              await turn();
              await turn();
            }
          }
          assert.deepEqual(items, range(count));
        },
      ),
      { numRuns: 60 },
    );
    assert.deepEqual(inFlight(connection), [0, 0, 0, 0]);
  });

  test('the last input items reach the handler before the end of its input, for any count and window', async (t) => {
    const { tg } = await testPair(t);
    const windows = [1, 2, 4, 8];
    for (const [i, inCapacity] of windows.entries()) {
      tg.manager(1).registerStream(72 + i, {
        inCapacity,
        handle: async ({ requests, send }) => {
          const seen: number[] = [];
          for await (const item of requests) seen.push(readU32(item));
          await send(Buffer.from(seen.flatMap((n) => [...u32(n)])));
        },
      });
    }
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: windows.length - 1 }),
        async (count, which) => {
          const stream = tg.connection(0, 1).openStream(72 + which);
          for (let n = 0; n < count; n++) await stream.send(u32(n));
          stream.end();
          const [echoed, ...rest] = await collect(stream);
          assert.deepEqual(rest, []);
          const seen = range((echoed?.length ?? 0) / 4).map((k) =>
            readU32((echoed as Uint8Array).subarray(k * 4)),
          );
          assert.deepEqual(seen, range(count));
        },
      ),
      { numRuns: 40 },
    );
  });

  test('a consumer that stops reading never stalls other streams or requests on the same connection', async (t) => {
    const { tg } = await testPair(t);
    const connection = tg.connection(0, 1);
    const stalled = connection.openStream(COUNT_UP, { initial: u32(300), outCapacity: 4 });
    await eventually(() => stalled.buffered === 4, 'the unread stream to fill its window');

    const [other, reverse, answers] = await Promise.all([
      readAll(connection.openStream(COUNT_UP, { initial: u32(2_000), outCapacity: 8 })),
      readAll(tg.connection(1, 0).openStream(COUNT_UP, { initial: u32(500) })),
      Promise.all(
        range(300).map(async (i) => readU32((await connection.request(ECHO, u32(i))) as Uint8Array)),
      ),
    ]);

    assert.deepEqual(other, range(2_000));
    assert.deepEqual(reverse, range(500));
    assert.deepEqual(answers, range(300));
    // The buffer cannot hold more than its window: an item past it would have failed the stream.
    assert.equal(
      connection.stats().streamProtocolErrors,
      0,
      'no item came past the unread stream’s window (it would have failed the stream)',
    );
    assert.deepEqual(
      await readAll(stalled),
      range(300),
      'the unread stream did not fail, and lost nothing while it waited',
    );
  });

  test('a handler gets no further ahead of its caller’s reading than the caller’s outCapacity: its sends wait for room', async (t) => {
    const { tg } = await testPair(t);
    let sent = 0;
    tg.manager(1).registerStream(76, {
      inCapacity: 0,
      handle: async ({ send }) => {
        for (let i = 0; i < 10; i++) {
          await send(u32(i));
          sent += 1;
        }
      },
    });
    const stream = tg.connection(0, 1).openStream(76, { outCapacity: 3 });
    await eventually(() => sent === 3, 'the handler to use its three credits');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(sent, 3, 'the fourth send waits for a credit');
    assert.equal(stream.buffered, 3, 'the three items sent arrived, unread');

    const iterator = stream[Symbol.asyncIterator]();
    assert.equal(readU32((await iterator.next()).value as Uint8Array), 0);
    let taken = 1;
    await eventually(() => sent === 4, 'one credit back, one more send');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(sent, 4, 'one item read lets exactly one more send go');
    assert.equal(stream.buffered, 3, 'the fourth item arrived, unread');

    // Read through a function: the asserts above narrowed `sent`, which the handler changes.
    const sentSoFar = (): number => sent;
    const rest: number[] = [];
    for (let r = await iterator.next(); r.done !== true; r = await iterator.next()) {
      rest.push(readU32(r.value));
      taken += 1;
      assert.ok(
        sentSoFar() <= taken + 3,
        `the handler got ahead of the window: ${sentSoFar()} sent, ${taken} read`,
      );
    }
    assert.deepEqual(rest, range(10).slice(1));
    assert.equal(tg.connection(0, 1).stats().streamProtocolErrors, 0);
  });

  test('a handler never holds more unread input than its inCapacity: the caller’s sends wait for room', async (t) => {
    const { tg } = await testPair(t);
    let input: AsyncIterator<Uint8Array> | undefined;
    let finish: (() => void) | undefined;
    tg.manager(1).registerStream(77, {
      inCapacity: 2,
      handle: async ({ requests }) => {
        input = requests[Symbol.asyncIterator]();
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    const stream = tg.connection(0, 1).openStream(77);
    const sends = range(5).map((n) => watch(stream.send(u32(n))));
    const accepted = (): number => sends.filter((s) => s.settled).length;
    await eventually(() => accepted() === 2, 'the first two sends');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(accepted(), 2, 'the third send waits: the handler has not read anything');

    const taken: number[] = [];
    const take = async (): Promise<void> => {
      const r = await (input as AsyncIterator<Uint8Array>).next();
      taken.push(readU32(r.value as Uint8Array));
    };
    await take();
    await eventually(() => accepted() === 3, 'one credit back, one more send');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(accepted(), 3);

    for (let n = 0; n < 4; n++) await take();
    await eventually(() => accepted() === 5, 'the rest of the sends');
    assert.deepEqual(taken, range(5));
    for (const s of sends) assert.equal(s.error, undefined);
    finish?.();
  });

  test('a stream whose windows nobody named buffers 32 items each way: usable without tuning, and still bounded', async (t) => {
    const { tg } = await testPair(t);
    let sent = 0;
    let input: AsyncIterator<Uint8Array> | undefined;
    let finish: (() => void) | undefined;
    // Neither inCapacity on the handler nor outCapacity on the caller.
    tg.manager(1).registerStream(78, {
      handle: async ({ requests, send }) => {
        input = requests[Symbol.asyncIterator]();
        for (let i = 0; i < 100; i++) {
          await send(u32(i));
          sent += 1;
        }
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    const stream = tg.connection(0, 1).openStream(78);
    // Output: the handler runs 32 items ahead of a caller that does not read, no further.
    await eventually(() => sent === 32, 'the handler to use its 32 credits');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(sent, 32, 'the 33rd send waits for a credit');
    assert.equal(stream.buffered, 32, 'the 32 items sent arrived, unread');
    // Input: the caller runs 32 items ahead of a handler that does not read, no further.
    const sends = range(40).map((n) => watch(stream.send(u32(n))));
    const accepted = (): number => sends.filter((s) => s.settled).length;
    await eventually(() => accepted() === 32, 'the first 32 sends');
    await roundTrips(tg);
    await roundTrips(tg);
    assert.equal(accepted(), 32);
    // Reading both sides lets everything through, in order.
    const taken: number[] = [];
    for (let n = 0; n < 40; n++)
      taken.push(readU32(((await input?.next())?.value ?? u32(0xffff_ffff)) as Uint8Array));
    assert.deepEqual(taken, range(40));
    stream.end();
    const iterator = stream[Symbol.asyncIterator]();
    const received: number[] = [];
    for (let n = 0; n < 100; n++) received.push(readU32((await iterator.next()).value as Uint8Array));
    assert.deepEqual(received, range(100));
    finish?.();
    assert.equal((await iterator.next()).done, true);
  });

  test('typed streams get the same default windows', async (t) => {
    const { tg } = await testPair(t);
    let sent = 0;
    const numbers = defineStream<null, never, number>(79, { inCapacity: 0 });
    numbers.register(tg.manager(1), async ({ send }) => {
      for (let i = 0; i < 100; i++) {
        await send(i);
        sent += 1;
      }
    });
    const stream = numbers.open(tg.connection(0, 1), null);
    await eventually(() => sent === 32, 'the handler to use its 32 credits');
    await roundTrips(tg);
    assert.equal(sent, 32);
    const all: number[] = [];
    for await (const n of stream) all.push(n);
    assert.deepEqual(all, range(100));
  });
});

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const items: Uint8Array[] = [];
  for await (const item of stream) items.push(item);
  return items;
}
