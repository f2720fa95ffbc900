// Liveness on a FakeClock: connection pings and pongs, a blackholed peer, per-stream
// pings on the caller side and the idle check on the handler side. Links run through
// fault-injecting proxies; time moves only when a test advances the clock, and after
// each step the test waits for the real socket traffic the step caused.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DisconnectedError, type GridLimits } from '../../src/grid/index.ts';
import {
  ECHO,
  eventually,
  HANG,
  HOLD,
  next,
  proxiedPair,
  readU32,
  roundTrips,
  turn,
  u32,
  watch,
  type Watched,
} from './reliability-harness.ts';

/** GridConnection liveness off, so that only the stream checks are at work. */
const quietConnection: Partial<GridLimits> = { pingIntervalMs: 3_600_000, pongTimeoutMs: 7_200_000 };

describe('grid: connection liveness', () => {
  test('each side pings every pingIntervalMs and takes the round-trip time from the pong', async (t) => {
    const { g, clock, dialler, acceptor } = await proxiedPair(t);
    const connection = g.connection(dialler, acceptor);
    assert.equal(connection.stats().rttMs, undefined, 'no round trip measured before the first pong');
    assert.equal(connection.stats().lastPongAt, 0);

    await clock.advanceAsync(9_999);
    await roundTrips(g);
    assert.equal(connection.stats().lastPongAt, 0, 'no ping before pingIntervalMs');

    // The accepting node's answers are held for 123 ms of clock time.
    g.linkProxy(0, 1).hold('from-node');
    await clock.advanceAsync(1);
    const acceptorSaw = g.connection(acceptor, dialler).stats().messagesIn;
    await eventually(
      () => g.connection(acceptor, dialler).stats().messagesIn > acceptorSaw,
      'the ping to reach the accepting node',
    );
    await clock.advanceAsync(123);
    g.linkProxy(0, 1).release('from-node');
    await eventually(() => connection.stats().lastPongAt !== 0, 'the pong');

    assert.equal(connection.stats().lastPongAt, 10_123);
    assert.equal(connection.stats().rttMs, 123);
    // The accepting side's ping was held as well and measured the same delay.
    await eventually(() => g.connection(acceptor, dialler).stats().rttMs !== undefined, 'the other pong');
    assert.equal(g.connection(acceptor, dialler).stats().rttMs, 123);

    // Pings keep their period: the next one goes out at 20 s.
    await clock.advanceAsync(9_876);
    await roundTrips(g);
    assert.equal(connection.stats().lastPongAt, 10_123);
    await clock.advanceAsync(1);
    await roundTrips(g);
    assert.equal(connection.stats().lastPongAt, 20_000);
    assert.equal(connection.stats().rttMs, 0);
  });

  test('a peer that keeps answering pings stays connected for as long as it runs', async (t) => {
    const { g, clock } = await proxiedPair(t);
    for (let i = 0; i < 60; i++) {
      await clock.advanceAsync(5_000);
      await roundTrips(g);
    }
    assert.equal(clock.now(), 300_000);
    assert.equal(g.connection(0, 1).state(), 'connected');
    assert.equal(g.connection(0, 1).stats().reconnects, 0);
    assert.equal(g.connection(1, 0).stats().reconnects, 0);
  });

  test('a blackholed peer is detected after pongTimeoutMs without a pong: calls fail with DisconnectedError and the link is redialled', async (t) => {
    const { g, clock, served, dialler, acceptor } = await proxiedPair(t);
    const call = watch(g.connection(dialler, acceptor).request(HANG, undefined));
    const stream = g.connection(dialler, acceptor).openStream(HOLD);
    await next(stream);
    await eventually(() => served[acceptor]?.hanging.length === 1, 'the request to arrive');
    const ending = watch(next(stream));
    const proxy = g.linkProxy(0, 1);
    const dialsBefore = proxy.accepted;

    // TCP stays open; nothing gets through either way any more.
    proxy.blackhole();

    // Pings at 10 s and 20 s go unanswered; 20 s of silence is not yet more than pongTimeoutMs.
    await clock.advanceAsync(20_000);
    await turn();
    assert.equal(g.connection(dialler, acceptor).state(), 'connected');
    assert.equal(call.settled, false);

    // The check at 30 s finds 30 s of silence.
    await clock.advanceAsync(10_000);
    await eventually(() => call.settled && ending.settled, 'the calls to fail');
    assert.ok(call.error instanceof DisconnectedError, String(call.error));
    assert.ok(ending.error instanceof DisconnectedError, String(ending.error));
    for (const signal of [...(served[acceptor]?.hanging ?? []), ...(served[acceptor]?.holding ?? [])]) {
      assert.ok(signal.reason instanceof DisconnectedError, 'the accepting side gave up on the link too');
    }
    assert.notEqual(g.connection(acceptor, dialler).state(), 'connected');

    // The dialler dials a fresh link (the blackhole held only the old one).
    await g.waitAllConnected();
    assert.equal(proxy.accepted, dialsBefore + 1);
    assert.deepEqual(await g.connection(dialler, acceptor).request(ECHO, u32(4)), Buffer.from(u32(4)));
  });

  test('a peer that stops reading is detected after writeStallTimeoutMs of writes without progress', async (t) => {
    // Pongs are not what detects it here: their timeout is an hour.
    const limits = { pingIntervalMs: 10_000, pongTimeoutMs: 3_600_000, writeStallTimeoutMs: 20_000 };
    const { g, clock, dialler, acceptor } = await proxiedPair(t, { limits });
    const connection = g.connection(dialler, acceptor);
    g.linkProxy(0, 1).hold('to-node');
    // Far more than the socket buffers on the way hold: the writes stop completing.
    const payload = Buffer.alloc(1024 * 1024);
    const calls = Array.from({ length: 48 }, () => watch(connection.request(HANG, payload)));
    for (let i = 0; i < 20; i++) await turn();
    assert.equal(calls.filter((c) => c.settled).length, 0, 'the calls are queued, none refused or answered');

    await clock.advanceAsync(20_000);
    await turn();
    assert.equal(connection.state(), 'connected', 'stalled for 20 s is not more than the limit');

    await clock.advanceAsync(10_000);
    await eventually(() => calls.every((c) => c.settled), 'the calls to fail');
    for (const call of calls) assert.ok(call.error instanceof DisconnectedError, String(call.error));
    await g.waitAllConnected();
    assert.equal(connection.stats().reconnects, 1, 'the link was dropped and redialled');
  });
});

describe('grid: stream liveness', () => {
  test('a stream whose handler side went silent is failed by the caller after streamPongTimeoutMs', async (t) => {
    const limits = {
      ...quietConnection,
      streamPingIntervalMs: 15_000,
      streamPongTimeoutMs: 30_000,
      handlerIdleTimeoutMs: 600_000,
    };
    const { g, clock, dialler, acceptor } = await proxiedPair(t, { limits });
    const stream = g.connection(dialler, acceptor).openStream(HOLD);
    await next(stream);
    const ending = watch(next(stream));
    // The caller's pings still reach the handler; its pongs no longer come back.
    g.linkProxy(0, 1).hold('from-node');

    // Pings at 15 s and 30 s go unanswered; 30 s of silence is not yet too much.
    await clock.advanceAsync(30_000);
    await turn();
    assert.equal(ending.settled, false);

    // The ping at 45 s finds 45 s of silence and gives up.
    await clock.advanceAsync(15_000);
    await eventually(() => ending.settled, 'the stream to fail');
    assert.ok(ending.error instanceof DisconnectedError, String(ending.error));
    assert.equal(g.connection(dialler, acceptor).state(), 'connected', 'only the stream failed');
    assert.equal(g.connection(dialler, acceptor).stats().streamsOut, 0);
  });

  test('a handler whose caller stopped pinging is cancelled after handlerIdleTimeoutMs', async (t) => {
    const limits = {
      ...quietConnection,
      streamPingIntervalMs: 15_000,
      streamPongTimeoutMs: 600_000,
      handlerIdleTimeoutMs: 60_000,
    };
    const { g, clock, served, dialler, acceptor } = await proxiedPair(t, { limits });
    const stream = g.connection(dialler, acceptor).openStream(HOLD);
    await next(stream);
    const handlerSignal = served[acceptor]?.holding[0] as AbortSignal;
    // The caller's pings no longer reach the handler side.
    g.linkProxy(0, 1).hold('to-node');

    // The idle check runs every 15 s; at 60 s the handler has been silent for exactly the limit.
    await clock.advanceAsync(60_000);
    assert.equal(handlerSignal.aborted, false);

    await clock.advanceAsync(15_000);
    assert.ok(handlerSignal.aborted, 'the handler was cancelled');
    assert.ok(handlerSignal.reason instanceof DisconnectedError, String(handlerSignal.reason));
    assert.equal(g.connection(acceptor, dialler).stats().streamsIn, 0);
    assert.equal(g.connection(acceptor, dialler).state(), 'connected', 'only the stream ended');
  });

  test('a stream blocked on credits but still pinging outlives every liveness timeout', async (t) => {
    const { g, clock, dialler, acceptor } = await proxiedPair(t);
    let sent = 0;
    let handlerSignal: AbortSignal | undefined;
    g.manager(acceptor).registerStream(90, {
      inCapacity: 0,
      handle: async ({ send, signal }) => {
        handlerSignal = signal;
        for (let i = 0; i < 5; i++) {
          await send(u32(i));
          sent += 1;
        }
      },
    });
    const stream = g.connection(dialler, acceptor).openStream(90, { outCapacity: 1 });
    await eventually(() => sent === 1, 'the first item');

    // Nobody reads: the handler is blocked for 10 minutes of clock time, well past
    // pongTimeoutMs, streamPongTimeoutMs and handlerIdleTimeoutMs.
    for (let i = 0; i < 120; i++) {
      await clock.advanceAsync(5_000);
      await roundTrips(g);
    }
    assert.equal(sent, 1, 'still blocked');
    assert.equal(stream.buffered, 1);
    assert.equal(handlerSignal?.aborted, false);
    assert.equal(g.connection(dialler, acceptor).stats().reconnects, 0);

    const items: number[] = [];
    for await (const item of stream) items.push(readU32(item));
    assert.deepEqual(items, [0, 1, 2, 3, 4]);
  });

  test('a blocked stream that stops pinging is still detected: credits do not count as liveness', async (t) => {
    const limits = {
      ...quietConnection,
      streamPingIntervalMs: 15_000,
      streamPongTimeoutMs: 30_000,
      handlerIdleTimeoutMs: 60_000,
    };
    const { g, clock, served, dialler, acceptor } = await proxiedPair(t, { limits });
    const stream = g.connection(dialler, acceptor).openStream(HOLD, { outCapacity: 1 });
    await next(stream);
    const handlerSignal = served[acceptor]?.holding[0] as AbortSignal;
    const ending: Watched<IteratorResult<Uint8Array>> = watch(next(stream));
    g.linkProxy(0, 1).blackhole();

    await clock.advanceAsync(75_000);
    await eventually(() => ending.settled, 'the caller to give up');
    assert.ok(ending.error instanceof DisconnectedError);
    assert.ok(handlerSignal.reason instanceof DisconnectedError, String(handlerSignal.reason));
  });
});
