// What the grid promises when links fail: in-flight work ends at once with
// DisconnectedError on both sides, the dialling side comes back by itself, nothing
// queued for a dead socket reaches a new one, and callers' cancels and deadlines reach
// the handler. Links run through fault-injecting proxies (reliability-harness.ts);
// time is a FakeClock, so "at once" means "before the clock moved at all".

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';

import { DisconnectedError, type GridConnection } from '../../src/grid/index.ts';
import { CancelledError, CapacityExceededError, DeadlineExceededError } from '../../src/internal/errors.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { FakeClock } from '../../src/testing/index.ts';
import {
  COUNT_UP,
  ECHO,
  eventually,
  HANG,
  HOLD,
  next,
  ProxiedGrid,
  proxiedPair,
  readU32,
  serve,
  Served,
  testPair,
  turn,
  u32,
  watch,
  type Watched,
} from './reliability-harness.ts';

function bothConnected(g: ProxiedGrid): boolean {
  return g.connection(0, 1).state() === 'connected' && g.connection(1, 0).state() === 'connected';
}

/** Waits for the pair to reconnect, firing the redial timer whenever the dialler waits on it. */
async function reconnected(g: ProxiedGrid, clock: FakeClock, redialMaxMs = 2_000): Promise<void> {
  const dialler = g.connection(g.dialler(0, 1), g.dialler(0, 1) === 0 ? 1 : 0);
  await eventually(() => {
    if (bothConnected(g)) return true;
    if (dialler.state() === 'connection-error') clock.advance(redialMaxMs);
    return false;
  }, 'the pair to reconnect');
}

async function allSettled(calls: readonly Watched<unknown>[], what: string): Promise<void> {
  await eventually(() => calls.every((c) => c.settled), what);
}

function assertDisconnected(calls: readonly Watched<unknown>[]): void {
  for (const call of calls) {
    assert.ok(
      call.error instanceof DisconnectedError,
      `expected DisconnectedError, got ${String(call.error)}`,
    );
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('grid: disconnect', () => {
  test('a dropped link rejects every in-flight request on both sides with DisconnectedError at once, not at its timeout', async (t) => {
    const { g, clock, served } = await proxiedPair(t);
    const calls = [
      ...[1, 2, 3].map(() => watch(g.connection(0, 1).request(HANG, undefined, { timeoutMs: 30_000 }))),
      ...[1, 2].map(() => watch(g.connection(1, 0).request(HANG, undefined))),
    ];
    await eventually(
      () => served[1].hanging.length === 3 && served[0].hanging.length === 2,
      'the requests to reach their handlers',
    );
    assert.ok(calls.every((c) => !c.settled));

    g.linkProxy(0, 1).kill();

    await allSettled(calls, 'every call to settle after the drop');
    assertDisconnected(calls);
    assert.equal(clock.now(), 0, 'no timeout was needed');
    assert.equal(g.connection(0, 1).stats().requestsOut, 0);
    assert.equal(g.connection(1, 0).stats().requestsOut, 0);
  });

  test('a dropped link fails the iteration of every open stream with DisconnectedError, in both directions', async (t) => {
    const { g, served } = await proxiedPair(t);
    const streams = [
      g.connection(0, 1).openStream(HOLD, { initial: u32(1) }),
      g.connection(0, 1).openStream(HOLD, { initial: u32(2) }),
      g.connection(1, 0).openStream(HOLD, { initial: u32(3) }),
    ];
    // Each stream is established end to end: its first item came back.
    for (const [i, stream] of streams.entries()) {
      const first = await next(stream);
      assert.equal(readU32(first.value as Uint8Array), i + 1);
    }
    assert.equal(served[1].holding.length + served[0].holding.length, 3);

    g.linkProxy(0, 1).kill();

    const endings = streams.map((s) => watch(next(s)));
    await allSettled(endings, 'every stream to end after the drop');
    assertDisconnected(endings);
    assert.equal(g.connection(0, 1).stats().streamsOut, 0);
    assert.equal(g.connection(1, 0).stats().streamsOut, 0);
  });

  test('a dropped link aborts the signal of every single and stream handler still running on the serving side', async (t) => {
    const { g, served } = await proxiedPair(t);
    const calls = [
      watch(g.connection(0, 1).request(HANG, undefined)),
      watch(g.connection(0, 1).request(HANG, undefined)),
    ];
    const stream = g.connection(0, 1).openStream(HOLD);
    await next(stream);
    await eventually(() => served[1].hanging.length === 2, 'the requests to reach node 1');
    const signals = [...served[1].hanging, ...served[1].holding];
    assert.equal(signals.length, 3);
    assert.ok(signals.every((s) => !s.aborted));

    g.linkProxy(0, 1).kill();

    await eventually(() => signals.every((s) => s.aborted), 'every handler signal to abort');
    for (const signal of signals) assert.ok(signal.reason instanceof DisconnectedError);
    await eventually(
      () => g.connection(1, 0).stats().streamsIn === 0 && g.connection(1, 0).stats().requestsIn === 0,
      'the serving side to forget the calls',
    );
    await allSettled(calls, 'the calls to settle');
  });

  test('a drop releases senders blocked on credits on both sides of a stream', async (t) => {
    const { g } = await proxiedPair(t);
    let handlerSends = 0;
    let handlerEnded: Watched<void> | undefined;
    g.manager(1).registerStream(80, {
      inCapacity: 1,
      handle: ({ send }) => {
        const run = async (): Promise<void> => {
          for (;;) {
            await send(u32(handlerSends));
            handlerSends += 1;
          }
        };
        handlerEnded = watch(run());
        return handlerEnded.promise;
      },
    });
    const stream = g.connection(0, 1).openStream(80, { outCapacity: 2 });
    await stream.send(u32(0)); // the handler's one input credit
    const blockedSend = watch(stream.send(u32(1)));
    await eventually(() => handlerSends === 2, 'the handler to fill the caller window');
    await turn();
    assert.equal(blockedSend.settled, false, 'the caller waits for an input credit');
    assert.equal(handlerSends, 2, 'the handler waits for an output credit');

    g.linkProxy(0, 1).kill();

    await eventually(
      () => blockedSend.settled && handlerEnded?.settled === true,
      'both blocked senders to be released',
    );
    assert.ok(blockedSend.error instanceof DisconnectedError, String(blockedSend.error));
    assert.ok(handlerEnded?.error instanceof DisconnectedError, String(handlerEnded?.error));
  });

  test('when the serving node shuts down, calls in flight to it fail with DisconnectedError and its handlers abort', async (t) => {
    const { g, clock, served } = await proxiedPair(t);
    const call = watch(g.connection(0, 1).request(HANG, undefined));
    const stream = g.connection(0, 1).openStream(HOLD);
    await next(stream);
    await eventually(() => served[1].hanging.length === 1, 'the request to reach node 1');
    const handlerSignals = [...served[1].hanging, ...served[1].holding];

    await g.stop(1);

    assert.ok(
      handlerSignals.every((s) => s.reason instanceof DisconnectedError),
      'shutdown aborts the handlers',
    );
    const ending = watch(next(stream));
    await allSettled([call, ending], 'the caller to learn of the shutdown');
    assertDisconnected([call, ending]);
    assert.equal(clock.now(), 0);
  });

  test('when the calling node shuts down, the handlers it started on the peer are aborted', async (t) => {
    const { g, served } = await proxiedPair(t);
    const call = watch(g.connection(0, 1).request(HANG, undefined));
    const stream = g.connection(0, 1).openStream(HOLD);
    await next(stream);
    await eventually(() => served[1].hanging.length === 1, 'the request to reach node 1');

    await g.stop(0);

    await allSettled([call], 'the local call to end');
    assertDisconnected([call]);
    const handlerSignals = [...served[1].hanging, ...served[1].holding];
    await eventually(() => handlerSignals.every((s) => s.aborted), 'the remote handlers to abort');
    for (const signal of handlerSignals) assert.ok(signal.reason instanceof DisconnectedError);
  });

  for (const stopping of ['dialling', 'accepting'] as const) {
    test(`the ${stopping} node shutting down says so: its Disconnect goes out before the socket closes`, async (t) => {
      const { g, served } = await proxiedPair(t);
      const stopper = stopping === 'dialling' ? g.dialler(0, 1) : 1 - g.dialler(0, 1);
      const peer = 1 - stopper;
      const call = watch(g.connection(peer, stopper).request(HANG, undefined));
      await eventually(() => (served[stopper] as Served).hanging.length === 1, 'the request to arrive');

      await g.stop(stopper);

      assert.equal(g.connection(stopper, peer).stats().framesDropped, 0, 'nothing was left unsent');
      await allSettled([call], 'the peer to learn of the shutdown');
      assert.ok(call.error instanceof DisconnectedError);
      assert.match((call.error as Error).message, /shutting down/);
    });
  }

  test('while not connected, requests and stream opens fail at once with DisconnectedError and send nothing', async (t) => {
    const { g, served } = await proxiedPair(t);
    const proxy = g.linkProxy(0, 1);
    proxy.refusing = true;
    proxy.kill();
    await eventually(
      () => g.connection(0, 1).state() !== 'connected' && g.connection(1, 0).state() !== 'connected',
      'both sides to see the drop',
    );
    for (const [from, to] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const connection = g.connection(from, to);
      const call = watch(connection.request(ECHO, u32(7)));
      await turn();
      assert.ok(call.settled, 'the request failed without waiting');
      assert.ok(call.error instanceof DisconnectedError);
      assert.throws(() => connection.openStream(HOLD), DisconnectedError);
      assert.equal(connection.stats().requestsOut + connection.stats().streamsOut, 0);
    }
    assert.equal(served[0].echoes + served[1].echoes, 0);
  });
});

describe('grid: reconnect', () => {
  test('after a dropped link the dialling side redials at once, both sides count the reconnect, and calls work again', async (t) => {
    const { g, clock, served } = await proxiedPair(t);
    assert.equal(g.connection(0, 1).stats().reconnects, 0);
    const proxy = g.linkProxy(0, 1);
    const dialsBefore = proxy.accepted;

    proxy.kill();

    await eventually(
      () =>
        bothConnected(g) &&
        g.connection(0, 1).stats().reconnects === 1 &&
        g.connection(1, 0).stats().reconnects === 1,
      'the pair to reconnect',
    );
    assert.equal(clock.now(), 0, 'a dropped link needs no redial delay');
    assert.equal(proxy.accepted, dialsBefore + 1, 'one dial was enough');
    assert.deepEqual(await g.connection(0, 1).request(ECHO, u32(1)), Buffer.from(u32(1)));
    assert.deepEqual(await g.connection(1, 0).request(ECHO, u32(2)), Buffer.from(u32(2)));
    assert.equal(served[0].echoes + served[1].echoes, 2);
  });

  test('a failed dial is retried after the jittered redial delay, not before', async (t) => {
    // random() = 0.25 puts the delay a quarter of the way from 1 000 to 3 000 ms.
    const limits = { redialMinMs: 1_000, redialMaxMs: 3_000 };
    const { g, clock } = await proxiedPair(t, { limits, random: () => 0.25 });
    const dialler = g.connection(g.dialler(0, 1), g.dialler(0, 1) === 0 ? 1 : 0);
    const proxy = g.linkProxy(0, 1);
    proxy.refusing = true;
    const dialsBefore = proxy.accepted;

    proxy.kill();
    // The drop is redialled at once; that dial is refused and the next waits.
    await eventually(
      () => proxy.accepted === dialsBefore + 1 && dialler.state() === 'connection-error',
      'the immediate redial to fail',
    );
    assert.equal(clock.nextTimerInMs, 1_500);
    proxy.refusing = false;

    await clock.advanceAsync(1_499);
    assert.equal(dialler.state(), 'connection-error', 'no dial before the delay');
    assert.equal(proxy.accepted, dialsBefore + 1);

    await clock.advanceAsync(1);
    await g.waitAllConnected();
    assert.equal(proxy.accepted, dialsBefore + 2);
    assert.equal(dialler.stats().reconnects, 1);
  });

  test('a restarted dialling node is accepted at its first dial, even if its wall clock is not ahead of its predecessor’s', async (t) => {
    // On the FakeClock both processes read the same wall time: like a restart after the
    // wall clock stepped back. The new node id shows it is a new process, not a replay.
    const { g, served } = await proxiedPair(t);
    const dialler = g.dialler(0, 1);
    const acceptor = 1 - dialler;
    await g.stop(dialler);
    const restarted = await g.restart(dialler);

    await eventually(
      () => bothConnected(g) || g.connection(dialler, acceptor).state() === 'connection-error',
      'the first dial of the restarted node to end',
    );
    assert.deepEqual(g.manager(acceptor).stats().refused, {}, 'the handshake was not refused');
    assert.equal(g.connection(dialler, acceptor).state(), 'connected');
    assert.equal(g.connection(acceptor, dialler).stats().remoteNodeId, hex(restarted.nodeId));
    assert.deepEqual(await g.connection(dialler, acceptor).request(ECHO, u32(3)), Buffer.from(u32(3)));
    assert.equal((served[acceptor] as Served).echoes, 1);
  });

  test('what the accepting side sends right after the handshake reaches the dialler, even in the same packet as the handshake reply', async (t) => {
    const { g } = await proxiedPair(t);
    const dialler = g.dialler(0, 1);
    const acceptor = 1 - dialler;
    const accepting = g.connection(acceptor, dialler);
    const proxy = g.linkProxy(0, 1);
    // On the next link, once the dialler's Connect has gone through (its second chunk,
    // after the upgrade request), hold everything the accepting node sends back.
    let chunksToNode = 0;
    proxy.onChunk = (direction, link) => {
      if (direction === 'to-node' && ++chunksToNode === 2) link.hold('from-node');
    };
    proxy.kill();
    await eventually(
      () => accepting.stats().reconnects === 1 && accepting.state() === 'connected',
      'the accepting side to take the new link',
    );
    const written = accepting.stats().messagesOut;
    const call = watch(accepting.request(ECHO, u32(42)));
    await eventually(() => accepting.stats().messagesOut > written, 'the request to be written');
    assert.equal(
      g.connection(dialler, acceptor).state(),
      'connecting',
      'the dialler still waits for the reply',
    );

    // The reply and the request now reach the dialler together.
    proxy.onChunk = undefined;
    proxy.release('from-node');

    await g.waitAllConnected();
    await eventually(() => call.settled, 'the request sent right after the handshake to be answered', 2_000);
    assert.deepEqual(call.value, Buffer.from(u32(42)));
  });

  test('mux ids are never reused: streams opened after each reconnect get larger ids', async (t) => {
    const { g, clock } = await proxiedPair(t);
    const ids: number[][] = [[], []];
    for (let round = 0; round < 4; round++) {
      for (const [from, to] of [
        [0, 1],
        [1, 0],
      ] as const) {
        const stream = g.connection(from, to).openStream(HOLD);
        await next(stream);
        (ids[from] as number[]).push(stream.muxId);
        await g.connection(from, to).request(ECHO, undefined);
      }
      g.linkProxy(0, 1).kill();
      await eventually(() => g.connection(0, 1).stats().reconnects === round + 1, 'the drop to be seen');
      await reconnected(g, clock);
    }
    for (const sideIds of ids) {
      assert.equal(sideIds.length, 4);
      for (let i = 1; i < sideIds.length; i++) {
        assert.ok(
          (sideIds[i] as number) > (sideIds[i - 1] as number),
          `ids after a reconnect grow: ${sideIds.join(', ')}`,
        );
      }
    }
  });

  test('a restarted peer, with a new node id behind the same host URL, is accepted and reported as the new remote node', async (t) => {
    const { g, clock, served } = await proxiedPair(t);
    const oldId = hex(g.manager(1).nodeId);
    assert.equal(g.connection(0, 1).stats().remoteNodeId, oldId);

    await g.stop(1);
    await eventually(() => g.connection(0, 1).state() !== 'connected', 'node 0 to see node 1 go');
    const restarted = await g.restart(1);
    await reconnected(g, clock);

    const newId = hex(restarted.nodeId);
    assert.notEqual(newId, oldId);
    assert.equal(g.connection(0, 1).stats().remoteNodeId, newId);
    assert.equal(g.connection(1, 0).stats().remoteNodeId, hex(g.manager(0).nodeId));
    assert.equal(g.connection(0, 1).stats().reconnects, 1);
    assert.deepEqual(await g.connection(0, 1).request(ECHO, u32(9)), Buffer.from(u32(9)));
    assert.deepEqual(await g.connection(1, 0).request(ECHO, u32(8)), Buffer.from(u32(8)));
    assert.equal(served[1].echoes, 1, 'the restarted node answered');
  });

  test('a send queue that is full for a moment loses no stream credit: the stream goes on once the queue drains', async (t) => {
    const limits = { maxQueuedBytes: 256 * 1024, writeHighWaterBytes: 64 * 1024 };
    const { g } = await proxiedPair(t, { limits });
    const dialler = g.dialler(0, 1);
    const connection = g.connection(dialler, 1 - dialler);
    const proxy = g.linkProxy(0, 1);
    const stream = connection.openStream(COUNT_UP, { initial: u32(100), outCapacity: 8 });
    await eventually(() => stream.buffered === 8, 'the window to fill');

    // The peer is slow to read and a burst of requests fills the send queue to the brim.
    proxy.hold('to-node');
    const calls: Watched<unknown>[] = [];
    const big = Buffer.alloc(16 * 1024);
    for (let i = 0; i < 1_000 && connection.stats().framesRefused === 0; i++) {
      calls.push(watch(connection.request(ECHO, big)));
    }
    // Then small frames into whatever room is left.
    for (let i = 0; i < 100_000 && connection.stats().framesRefused === 1; i++) {
      calls.push(watch(connection.request(ECHO, undefined)));
    }
    assert.equal(connection.stats().framesRefused, 2, 'the send queue is full');
    // Reading the window now hands eight credits back while the queue is full.
    const iterator = stream[Symbol.asyncIterator]();
    const items: number[] = [];
    for (let i = 0; i < 8; i++) items.push(readU32((await iterator.next()).value as Uint8Array));

    proxy.release('to-node');
    await allSettled(calls, 'the burst to drain');
    const rest = watch(
      (async () => {
        for (let r = await iterator.next(); r.done !== true; r = await iterator.next())
          items.push(readU32(r.value));
      })(),
    );
    // No clock time passes: a lost credit would leave the stream stuck until a ping.
    await eventually(() => rest.settled, 'the rest of the stream', 3_000);
    assert.equal(rest.error, undefined);
    assert.deepEqual(
      items,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  test('a send queue that is full for a moment never loses a stream item silently: each one arrives or its send fails', async (t) => {
    const limits = { maxQueuedBytes: 256 * 1024, writeHighWaterBytes: 64 * 1024 };
    const { g } = await proxiedPair(t, { limits });
    let go: (() => void) | undefined;
    const accepted: number[] = [];
    let handlerError: unknown;
    g.manager(1).registerStream(84, {
      inCapacity: 0,
      handle: async ({ send }) => {
        await new Promise<void>((resolve) => {
          go = resolve;
        });
        try {
          for (let i = 0; i < 20; i++) {
            await send(u32(i));
            accepted.push(i);
          }
        } catch (error) {
          handlerError = error;
          throw error;
        }
      },
    });
    const stream = g.connection(0, 1).openStream(84, { outCapacity: 4 });
    await eventually(() => go !== undefined, 'the handler to start');

    // The serving node's queue fills with a burst of its own requests, and in that same
    // moment its handler starts sending.
    const serving = g.connection(1, 0);
    const calls: Watched<unknown>[] = [];
    const big = Buffer.alloc(16 * 1024);
    for (let i = 0; i < 1_000 && serving.stats().framesRefused === 0; i++) {
      calls.push(watch(serving.request(ECHO, big)));
    }
    for (let i = 0; i < 100_000 && serving.stats().framesRefused === 1; i++) {
      calls.push(watch(serving.request(ECHO, undefined)));
    }
    assert.equal(serving.stats().framesRefused, 2, 'the send queue is full');
    go?.();

    await allSettled(calls, 'the burst to drain');
    const received = watch(
      (async () => {
        const seen: number[] = [];
        try {
          for await (const item of stream) seen.push(readU32(item));
          return { seen, error: undefined as unknown };
        } catch (error) {
          return { seen, error };
        }
      })(),
    );
    // No clock time passes: a lost item would leave the stream stuck until a ping.
    await eventually(() => received.settled, 'the stream to end', 3_000);
    const { seen, error } = received.value as { seen: number[]; error: unknown };
    assert.deepEqual(seen, accepted, 'exactly the items whose send() succeeded arrived, in order');
    if (error === undefined) {
      assert.deepEqual(
        seen,
        Array.from({ length: 20 }, (_, i) => i),
      );
    } else {
      // A send the full queue refused failed in the handler, and the caller got that error.
      assert.ok(handlerError instanceof CapacityExceededError, String(handlerError));
      assert.equal((error as { code?: unknown }).code, CapacityExceededError.code);
    }
  });

  for (const side of ['dialling', 'accepting'] as const) {
    test(`a link dropped while the ${side} side's send queue is full reconnects, drops the queued frames and leaves no call hanging`, async (t) => {
      const limits = { maxQueuedBytes: 256 * 1024, writeHighWaterBytes: 64 * 1024 };
      const { g, clock, served } = await proxiedPair(t, { limits });
      const sender = side === 'dialling' ? g.dialler(0, 1) : 1 - g.dialler(0, 1);
      const receiver = 1 - sender;
      const connection = g.connection(sender, receiver);
      const proxy = g.linkProxy(0, 1);
      // The receiver stops reading: what the sender writes piles up until its queue is full.
      proxy.hold(side === 'dialling' ? 'to-node' : 'from-node');

      const payload = Buffer.alloc(16 * 1024, 0xab);
      const calls: Watched<unknown>[] = [];
      for (let i = 0; i < 4_000 && connection.stats().framesRefused === 0; i++) {
        calls.push(watch(connection.request(HANG, payload)));
        if (i % 16 === 15) await turn();
      }
      assert.ok(connection.stats().framesRefused > 0, 'the send queue filled up');
      await turn();
      const refused = calls.filter((c) => c.error instanceof CapacityExceededError).length;
      assert.ok(refused > 0, 'calls past the queue limit were refused at once');
      const reachedReceiver = (served[receiver] as Served).hanging.length;

      proxy.kill();

      await allSettled(calls, 'every queued call to settle');
      for (const call of calls) {
        assert.ok(
          call.error instanceof DisconnectedError || call.error instanceof CapacityExceededError,
          String(call.error),
        );
      }
      assert.ok(connection.stats().framesDropped > 0, 'frames queued for the dead socket were dropped');
      await reconnected(g, clock);
      assert.deepEqual(await connection.request(ECHO, u32(5)), Buffer.from(u32(5)));
      assert.deepEqual(await g.connection(receiver, sender).request(ECHO, u32(6)), Buffer.from(u32(6)));
      assert.equal(
        (served[receiver] as Served).hanging.length,
        reachedReceiver,
        'no frame queued for the old socket reached the new one',
      );
      assert.equal(connection.stats().requestsOut, 0);
    });
  }
});

describe('grid: shutdown', () => {
  test('closing a node that waits to redial leaves no timer and no dial behind', async (t) => {
    const { g, clock } = await proxiedPair(t);
    const proxy = g.linkProxy(0, 1);
    proxy.refusing = true;
    const dialsBefore = proxy.accepted;
    proxy.kill();
    const dialler = g.connection(g.dialler(0, 1), 1 - g.dialler(0, 1));
    await eventually(
      () => proxy.accepted === dialsBefore + 1 && dialler.state() === 'connection-error',
      'the redial to fail and wait',
    );

    await g.close();

    assert.equal(clock.pendingTimers, 0, 'no timer left once close() resolved');
    await clock.advanceAsync(60_000);
    assert.equal(proxy.accepted, dialsBefore + 1, 'no dial after close');
    assert.equal(dialler.state(), 'shutdown');
  });

  test('closing a node in the middle of a handshake leaves no timer behind', async (t) => {
    const { g, clock } = await proxiedPair(t);
    const proxy = g.linkProxy(0, 1);
    let chunksToNode = 0;
    // On the next link, the accepting node's handshake reply never arrives.
    proxy.onChunk = (direction, link) => {
      if (direction === 'to-node' && ++chunksToNode === 2) link.hold('from-node');
    };
    proxy.kill();
    const acceptor = 1 - g.dialler(0, 1);
    await eventually(() => g.connection(acceptor, 1 - acceptor).stats().reconnects === 1, 'the new link');
    assert.equal(g.connection(1 - acceptor, acceptor).state(), 'connecting');

    await g.close();

    assert.equal(clock.pendingTimers, 0, 'no timer left once close() resolved');
  });
});

describe('grid: cancellation', () => {
  test('aborting a request rejects it at once with a CancelledError caused by the signal’s reason', async (t) => {
    const { g, clock, served } = await proxiedPair(t);
    const controller = new AbortController();
    const call = watch(g.connection(0, 1).request(HANG, undefined, { signal: controller.signal }));
    await eventually(() => served[1].hanging.length === 1, 'the request to reach node 1');
    const reason = new Error('caller gave up');

    controller.abort(reason);

    await allSettled([call], 'the call to settle');
    assert.ok(call.error instanceof CancelledError, String(call.error));
    assert.equal(call.error.cause, reason);
    assert.equal(clock.now(), 0);
    assert.equal(g.connection(0, 1).stats().requestsOut, 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  test('cancel() on a stream aborts its handler on the other node and ends the iteration', async (t) => {
    const { g, served } = await proxiedPair(t);
    const stream = g.connection(0, 1).openStream(HOLD);
    await next(stream);
    const handlerSignal = served[1].holding[0] as AbortSignal;

    stream.cancel();

    await eventually(() => handlerSignal.aborted, 'the handler to be cancelled');
    assert.ok(handlerSignal.reason instanceof CancelledError, String(handlerSignal.reason));
    await assert.rejects(next(stream), CancelledError);
    await eventually(() => g.connection(1, 0).stats().streamsIn === 0, 'node 1 to forget the stream');
    assert.equal(g.connection(0, 1).stats().streamsOut, 0);
  });

  test('breaking out of for-await aborts the stream’s handler on the other node', async (t) => {
    const { g, served } = await proxiedPair(t);
    let handlerSignal: AbortSignal | undefined;
    g.manager(1).registerStream(81, {
      inCapacity: 0,
      handle: async ({ send, signal }) => {
        handlerSignal = signal;
        for (let i = 0; ; i++) await send(u32(i));
      },
    });
    const seen: number[] = [];
    for await (const item of g.connection(0, 1).openStream(81, { outCapacity: 2 })) {
      seen.push(readU32(item));
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, [0, 1, 2]);
    await eventually(() => handlerSignal?.aborted === true, 'the handler to be cancelled');
    assert.ok(handlerSignal?.reason instanceof CancelledError);
    await eventually(() => g.connection(1, 0).stats().streamsIn === 0, 'node 1 to forget the stream');
    assert.equal(served[1].holding.length, 0);
  });

  test('aborting the signal a stream was opened with aborts its handler and ends the iteration with a CancelledError caused by the reason', async (t) => {
    const { g, served } = await proxiedPair(t);
    const controller = new AbortController();
    const stream = g.connection(0, 1).openStream(HOLD, { signal: controller.signal });
    await next(stream);
    const reason = new Error('no longer needed');

    controller.abort(reason);

    await assert.rejects(next(stream), (error) => error instanceof CancelledError && error.cause === reason);
    const handlerSignal = served[1].holding[0] as AbortSignal;
    await eventually(() => handlerSignal.aborted, 'the handler to be cancelled');
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });
});

describe('grid: deadlines', () => {
  test('a request to a handler that never answers rejects with DeadlineExceededError at its deadline, not before', async (t) => {
    const { tg, clock, served } = await testPair(t);
    const call = watch(tg.connection(0, 1).request(HANG, undefined, { timeoutMs: 5_000 }));
    await eventually(() => served[1].hanging.length === 1, 'the request to reach node 1');

    await clock.advanceAsync(4_999);
    await turn();
    assert.equal(call.settled, false);

    await clock.advanceAsync(1);
    await allSettled([call], 'the call to time out');
    assert.ok(call.error instanceof DeadlineExceededError, String(call.error));
    assert.equal(tg.connection(0, 1).stats().requestsOut, 0);
  });

  test('the serving side aborts the handler’s signal at the deadline the caller sent', async (t) => {
    const { tg, clock, served } = await testPair(t);
    void tg
      .connection(0, 1)
      .request(HANG, undefined, { timeoutMs: 7_000 })
      .catch(() => undefined);
    await eventually(() => served[1].hanging.length === 1, 'the request to reach node 1');
    const signal = served[1].hanging[0] as AbortSignal;
    let abortedAt: number | undefined;
    signal.addEventListener('abort', () => (abortedAt = clock.now()));

    await clock.advanceAsync(6_999);
    assert.equal(signal.aborted, false);
    await clock.advanceAsync(1);
    assert.equal(abortedAt, 7_000);
    assert.ok(signal.reason instanceof DeadlineExceededError, String(signal.reason));
    await eventually(() => tg.connection(1, 0).stats().requestsIn === 0, 'node 1 to end the request');
  });

  test('a handler result that comes after the deadline is dropped and counted, and resolves nothing', async (t) => {
    const { tg, clock } = await testPair(t);
    let answer: ((value: Uint8Array) => void) | undefined;
    tg.manager(1).registerSingle(
      82,
      () =>
        new Promise<Uint8Array>((resolve) => {
          answer = resolve;
        }),
    );
    const call = watch(tg.connection(0, 1).request(82, undefined, { timeoutMs: 1_000 }));
    await eventually(() => answer !== undefined, 'the request to reach node 1');
    await clock.advanceAsync(1_000);
    await allSettled([call], 'the call to time out');
    assert.ok(call.error instanceof DeadlineExceededError);

    answer?.(Buffer.from('too late'));
    // A round trip each way: anything the late result sent would have arrived by then.
    await tg.connection(0, 1).request(ECHO, undefined);
    await tg.connection(1, 0).request(ECHO, undefined);

    assert.equal(tg.connection(1, 0).stats().lateResults, 1, 'the serving side counted the late result');
    assert.equal(tg.connection(0, 1).stats().lateResults, 0, 'and never sent it');
    assert.equal(call.value, undefined);
  });

  test('a deadline under 1 ms fails locally and the request is never sent', async (t) => {
    const { tg, served } = await testPair(t);
    const connection = tg.connection(0, 1);
    await assert.rejects(connection.request(ECHO, u32(1), { timeoutMs: 0.5 }), DeadlineExceededError);
    await assert.rejects(connection.request(ECHO, u32(1), { timeoutMs: 0 }), DeadlineExceededError);
    const sentBefore = connection.stats().messagesOut;
    await connection.request(ECHO, u32(2));
    assert.equal(served[1].echoes, 1, 'only the later request reached the handler');
    assert.equal(connection.stats().messagesOut, sentBefore + 1);
  });

  test('a stream’s deadline ends its iteration with DeadlineExceededError and aborts its handler at the same time', async (t) => {
    const { tg, clock, served } = await testPair(t);
    const stream = tg.connection(0, 1).openStream(HOLD, { timeoutMs: 20_000 });
    await next(stream);
    const handlerSignal = served[1].holding[0] as AbortSignal;
    const ending = watch(next(stream));

    await clock.advanceAsync(19_999);
    assert.equal(ending.settled, false);
    assert.equal(handlerSignal.aborted, false);

    await clock.advanceAsync(1);
    await allSettled([ending], 'the stream to end');
    assert.ok(ending.error instanceof DeadlineExceededError, String(ending.error));
    assert.ok(handlerSignal.reason instanceof DeadlineExceededError, String(handlerSignal.reason));
  });
});

describe('grid: churn', () => {
  test('killing the link or restarting a node 200 times under load leaves no hung call, no entry in flight, no timer and no listener', async (t) => {
    const clock = new FakeClock();
    const served: [Served, Served] = [new Served(), new Served()];
    const g = await ProxiedGrid.start(2, {
      clock,
      random: () => 0,
      setup: (manager, i) => {
        serve(manager, served[i] as Served);
        // Answers after a turn, so that requests are in flight when the link dies.
        manager.registerSingle(83, async (payload) => {
          await turn();
          return payload;
        });
      },
    });
    t.after(() => g.close());
    await g.waitAllConnected();
    const dialler = g.dialler(0, 1);
    const diallerHost = g.hosts[dialler];
    // Every new socket shows as a 'connected' event on the dialling side (old or restarted node).
    let diallerConnects = 0;
    const stopCounting = subscribeDiagnostics('weft:grid:connection-state', (message) => {
      const event = message as { local: string; state: string };
      if (event.local === diallerHost && event.state === 'connected') diallerConnects += 1;
    });
    t.after(stopCounting);

    const longLived = new AbortController();
    const signal = longLived.signal;
    let running = true;
    let pending = 0;
    let succeeded = 0;
    // The one error the churn may cause is DisconnectedError, in two ways, each counted.
    // Each loop makes one call at a time, and each round ends one socket on each side, so
    // per loop and round: at most one call made while connected dies with its socket
    // (`dropped`), and the retry that follows at once, while the link is down, is refused
    // (`refused`) before the loop waits for the redial. Any other error fails the test.
    let dropped = 0;
    let refused = 0;
    const unexpected: unknown[] = [];
    /** Stream mux ids, per node id of the opening node (a restarted node starts its own count). */
    const streamIds = new Map<string, number[]>();

    // Loops look their connection up each time: a restarted node has a new one.
    const outcome = async (
      from: number,
      call: (connection: GridConnection) => Promise<void>,
    ): Promise<void> => {
      const connection = g.connection(from, 1 - from);
      const wasConnected = connection.state() === 'connected';
      pending += 1;
      try {
        await call(connection);
        succeeded += 1;
        return;
      } catch (error) {
        if (!(error instanceof DisconnectedError)) {
          unexpected.push(error);
          return;
        }
        if (wasConnected) {
          dropped += 1;
          return;
        }
        refused += 1;
      } finally {
        pending -= 1;
      }
      // Refused for want of a socket: wait for the redial (or the restarted node) without calling.
      while (running && g.connection(from, 1 - from).state() !== 'connected') await turn();
    };
    const requestLoop = async (from: number, id: number): Promise<void> => {
      for (let n = 0; running; n++) {
        await outcome(from, async (connection) => {
          const answer = await connection.request(83, u32(id * 1_000_000 + n), { signal });
          assert.equal(readU32(answer as Uint8Array), id * 1_000_000 + n);
        });
      }
    };
    const streamLoop = async (from: number): Promise<void> => {
      while (running) {
        await outcome(from, async (connection) => {
          const node = hex(g.manager(from).nodeId);
          const stream = connection.openStream(COUNT_UP, { initial: u32(5), outCapacity: 2, signal });
          streamIds.set(node, [...(streamIds.get(node) ?? []), stream.muxId]);
          const items: number[] = [];
          for await (const item of stream) items.push(readU32(item));
          assert.deepEqual(items, [0, 1, 2, 3, 4]);
        });
      }
    };
    const loops = [
      requestLoop(0, 1),
      requestLoop(0, 2),
      requestLoop(0, 3),
      requestLoop(1, 4),
      requestLoop(1, 5),
      streamLoop(0),
      streamLoop(1),
    ];

    const proxy = g.linkProxy(0, 1);
    const started = performance.now();
    const rounds = 200;
    let restarts = 0;
    for (let round = 1; round <= rounds; round++) {
      const before = succeeded;
      // Traffic is flowing on this socket before it dies.
      await eventually(() => succeeded >= before + 3, `traffic before round ${round}`);
      const connects = diallerConnects;
      if (round % 25 === 0) {
        // Every 25th round a node restarts (a new node id), alternately each of the two.
        const node = restarts % 2;
        await g.stop(node);
        await g.restart(node);
        restarts += 1;
      } else {
        proxy.kill();
      }
      await eventually(() => {
        if (diallerConnects > connects && bothConnected(g)) return true;
        // A dial that failed (the node was down) waits for its redial timer.
        if (g.connection(dialler, 1 - dialler).state() === 'connection-error') clock.advance(2_000);
        return false;
      }, `reconnect in round ${round}`);
    }
    running = false;
    await eventually(() => pending === 0, 'every call to settle');
    await Promise.all(loops);

    t.diagnostic(
      `${succeeded} calls succeeded; DisconnectedError: ${dropped} dropped in flight, ` +
        `${refused} refused while down (bound ${loops.length * rounds} each: ${loops.length} loops × ${rounds} rounds)`,
    );
    assert.deepEqual(unexpected, [], 'no error but DisconnectedError');
    assert.equal(restarts, 8);
    assert.ok(dropped > 0, 'some calls met a drop');
    assert.ok(refused > 0, 'some calls found the link down');
    assert.ok(dropped <= loops.length * rounds, `${dropped} calls dropped: more than one per loop and round`);
    assert.ok(refused <= loops.length * rounds, `${refused} calls refused: more than one per loop and round`);
    assert.equal(diallerConnects, rounds, 'one new socket per round');
    for (const ids of streamIds.values()) {
      for (let i = 1; i < ids.length; i++) {
        assert.ok((ids[i] as number) > (ids[i - 1] as number), 'a node never reuses a mux id');
      }
    }
    const inFlight = (): number[] =>
      [g.connection(0, 1).stats(), g.connection(1, 0).stats()].flatMap((s) => [
        s.requestsOut,
        s.requestsIn,
        s.streamsOut,
        s.streamsIn,
      ]);
    await eventually(() => inFlight().every((n) => n === 0), 'no call in flight');

    await g.close();
    assert.deepEqual(inFlight(), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(clock.pendingTimers, 0, 'no timer left once close() resolved');
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'no listener left on a long-lived signal');
    assert.ok(performance.now() - started < 20_000, 'the churn stayed quick');
  });
});
