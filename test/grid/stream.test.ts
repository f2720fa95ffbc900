import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { defineStream, RemoteError, UnknownHandlerError } from '../../src/grid/index.ts';
import { ClosedError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();
const bytes = (s: string): Buffer => Buffer.from(s);

async function grid(t: TestContext): Promise<TestGrid> {
  const g = await TestGrid.start(2, { clock: new FakeClock() });
  t.after(() => g.close());
  await g.waitAllConnected();
  return g;
}

/** Lets every frame already in flight between the nodes arrive: a round trip queues behind them. */
async function roundTrips(g: TestGrid, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    // An unregistered id answers at once; the answer is all that matters here.
    await g
      .connection(0, 1)
      .request(255, undefined)
      .catch(() => undefined);
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<string[]> {
  const items: string[] = [];
  for await (const item of stream) items.push(text(item));
  return items;
}

describe('streams', () => {
  test('the handler gets the initial payload and the caller gets every response in order, then the end', async (t) => {
    const g = await grid(t);
    g.manager(1).registerStream(64, {
      inCapacity: 0,
      handle: async ({ initial, send }) => {
        const count = Number(text(initial ?? bytes('0')));
        for (let i = 0; i < count; i++) await send(bytes(`item ${i}`));
      },
    });
    const stream = g.connection(0, 1).openStream(64, { initial: bytes('25'), outCapacity: 3 });
    const items = await collect(stream);
    assert.deepEqual(
      items,
      Array.from({ length: 25 }, (_, i) => `item ${i}`),
    );
  });

  test('two-way: input items reach the handler in order and end() ends its input', async (t) => {
    const g = await grid(t);
    g.manager(1).registerStream(64, {
      inCapacity: 2,
      handle: async ({ requests, send }) => {
        let n = 0;
        for await (const request of requests) await send(bytes(`${++n}:${text(request)}`));
        await send(bytes(`total ${n}`));
      },
    });
    const stream = g.connection(0, 1).openStream(64, { outCapacity: 1 });
    const reading = collect(stream);
    for (const word of ['a', 'b', 'c', 'd', 'e']) await stream.send(bytes(word));
    stream.end();
    assert.deepEqual(await reading, ['1:a', '2:b', '3:c', '4:d', '5:e', 'total 5']);
  });

  test('a handler error arrives after the items sent before it', async (t) => {
    const g = await grid(t);
    g.manager(1).registerStream(64, {
      inCapacity: 0,
      handle: async ({ send }) => {
        await send(bytes('first'));
        await send(bytes('second'));
        throw new Error('broke after two');
      },
    });
    const stream = g.connection(0, 1).openStream(64, { outCapacity: 4 });
    const items: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of stream) items.push(text(item));
      })(),
      (error) => error instanceof RemoteError && error.message === 'broke after two',
    );
    assert.deepEqual(items, ['first', 'second']);
  });

  test('an unknown stream handler fails the stream at once', async (t) => {
    const g = await grid(t);
    const stream = g.connection(0, 1).openStream(99);
    await assert.rejects(
      collect(stream),
      (e) => e instanceof RemoteError && e.code === UnknownHandlerError.code,
    );
  });

  test('sending to a handler that takes no input fails clearly instead of waiting forever', async (t) => {
    const g = await grid(t);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    g.manager(1).registerStream(64, { inCapacity: 0, handle: () => held });
    const stream = g.connection(0, 1).openStream(64);
    await assert.rejects(
      stream.send(bytes('x')),
      (e) => e instanceof ClosedError && /takes no input/.test(e.message),
    );
    release();
    assert.deepEqual(await collect(stream), []);
  });

  test('sending after end() is refused', async (t) => {
    const g = await grid(t);
    g.manager(1).registerStream(64, {
      inCapacity: 1,
      handle: async ({ requests }) => {
        await collect(requests);
      },
    });
    const stream = g.connection(0, 1).openStream(64);
    stream.end();
    await assert.rejects(stream.send(bytes('late')), ClosedError);
    assert.deepEqual(await collect(stream), []);
  });

  test('breaking out of the loop cancels the handler', async (t) => {
    const g = await grid(t);
    let handlerSignal: AbortSignal | undefined;
    g.manager(1).registerStream(64, {
      inCapacity: 0,
      handle: async ({ send, signal }) => {
        handlerSignal = signal;
        for (let i = 0; ; i++) await send(bytes(String(i)));
      },
    });
    const stream = g.connection(0, 1).openStream(64);
    for await (const item of stream) if (text(item) === '3') break;
    const signal = handlerSignal;
    assert.ok(signal !== undefined);
    if (!signal.aborted)
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
      });
    assert.equal(signal.aborted, true);
  });

  test('a handler gets no further ahead of a caller that does not read than the caller’s window, and nothing is lost', async (t) => {
    const g = await grid(t);
    let sent = 0;
    g.manager(1).registerStream(64, {
      inCapacity: 0,
      handle: async ({ send }) => {
        for (; sent < 20;) {
          await send(bytes(String(sent)));
          sent++;
        }
      },
    });
    const stream = g.connection(0, 1).openStream(64, { outCapacity: 3 });
    // Let the handler run as far as the window allows, without reading.
    await roundTrips(g, 3);
    assert.ok(sent <= 3, `the handler got ahead of the window: ${sent} sent`);
    assert.deepEqual(
      await collect(stream),
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
  });
});

describe('typed streams', () => {
  test('one definition registers the handler and opens the stream, with typed params, requests and responses', async (t) => {
    const g = await grid(t);
    const scale = defineStream<{ factor: number }, number, { value: number }>(90, {
      inCapacity: 4,
      outCapacity: 4,
    });
    scale.register(g.manager(1), async ({ params, requests, send }) => {
      for await (const n of requests) await send({ value: n * params.factor });
    });
    const stream = scale.open(g.connection(0, 1), { factor: 3 });
    const results: number[] = [];
    const reading = (async () => {
      for await (const r of stream) results.push(r.value);
    })();
    for (const n of [1, 2, 3]) await stream.send(n);
    stream.end();
    await reading;
    assert.deepEqual(results, [3, 6, 9]);
  });
});

describe('stream edge cases', () => {
  test('a handler that stops reading its input keeps streaming its output', async (t) => {
    const g = await grid(t);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    g.manager(1).registerStream(64, {
      inCapacity: 2,
      handle: async ({ requests, send }) => {
        // Read one item and leave the loop; what the caller sends after that is dropped.
        for await (const first of requests) {
          await send(first);
          break;
        }
        await released;
        for (let i = 0; i < 3; i++) await send(bytes(`after ${i}`));
      },
    });
    const stream = g.connection(0, 1).openStream(64, { outCapacity: 8 });
    const reading = collect(stream);
    // More items than the handler's window: their credits must still come back.
    for (const word of ['one', 'two', 'three', 'four', 'five']) await stream.send(bytes(word));
    stream.end();
    release();
    assert.deepEqual(await reading, ['one', 'after 0', 'after 1', 'after 2']);
  });

  test('typed streams carry undefined items, and a bad item ends the stream on both sides', async (t) => {
    const g = await grid(t);
    const ticks = defineStream<undefined, never, undefined>(91, { inCapacity: 0, outCapacity: 2 });
    ticks.register(g.manager(1), async ({ send }) => {
      for (let i = 0; i < 3; i++) await send(undefined);
    });
    const seen: unknown[] = [];
    for await (const tick of ticks.open(g.connection(0, 1), undefined)) seen.push(tick);
    assert.deepEqual(seen, [undefined, undefined, undefined]);

    let handlerSignal: AbortSignal | undefined;
    g.manager(1).registerStream(92, {
      inCapacity: 0,
      handle: async ({ send, signal }) => {
        handlerSignal = signal;
        for (;;) await send(Buffer.from([0x92, 0x01])); // not whole MessagePack
      },
    });
    const broken = defineStream<undefined, never, number>(92, { outCapacity: 2 });
    await assert.rejects(
      (async () => {
        for await (const value of broken.open(g.connection(0, 1), undefined)) assert.fail(String(value));
      })(),
      /not valid MessagePack/,
    );
    await roundTrips(g, 2);
    assert.equal(handlerSignal?.aborted, true, 'the handler was cancelled');
    assert.equal(g.connection(0, 1).stats().streamsOut, 0);
    assert.equal(g.connection(1, 0).stats().streamsIn, 0);
  });

  test('a stream item that is not bytes is refused on either side', async (t) => {
    const g = await grid(t);
    let handlerError: unknown;
    g.manager(1).registerStream(64, {
      inCapacity: 1,
      handle: async ({ send }) => {
        await send('text' as unknown as Uint8Array).catch((error: unknown) => (handlerError = error));
      },
    });
    const stream = g.connection(0, 1).openStream(64);
    await assert.rejects(stream.send(42 as unknown as Uint8Array), TypeError);
    stream.end();
    assert.deepEqual(await collect(stream), []);
    assert.ok(handlerError instanceof TypeError);
  });
});
