// How a caller's cancel travels: a cancelled single request reaches its handler (its
// signal aborts, its slot is free at once, its late result goes nowhere), and every way a
// caller gives up ends what it awaits with one kind of error: a `CancelledError` whose
// cause is the reason, or a `DeadlineExceededError` when the reason is a deadline.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { RemoteError, type GridStream } from '../../src/grid/index.ts';
import { callScope } from '../../src/internal/deadline.ts';
import { CancelledError, CapacityExceededError, DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock, TestGrid } from '../../src/testing/index.ts';
import {
  ECHO,
  eventually,
  HANG,
  HOLD,
  next,
  proxiedPair,
  readU32,
  roundTrips,
  testPair,
  u32,
  watch,
} from './reliability-harness.ts';

/** A single handler that holds each request until the test lets it answer. */
const HELD = 90;

interface Held {
  readonly signals: AbortSignal[];
  readonly answers: ((payload: Uint8Array) => void)[];
}

function registerHeld(grid: TestGrid, node: number): Held {
  const held: Held = { signals: [], answers: [] };
  grid.manager(node).registerSingle(
    HELD,
    (_payload, context) =>
      new Promise<Uint8Array>((resolve) => {
        held.signals.push(context.signal);
        held.answers.push(resolve);
      }),
  );
  return held;
}

/** Asserts `error` is a caller's cancel: one `CancelledError`, with `reason` as its cause. */
function assertCancelled(error: unknown, reason: unknown): true {
  assert.ok(error instanceof CancelledError, `expected a CancelledError, got ${String(error)}`);
  assert.equal(error.code, 'WEFT_CANCELLED');
  assert.equal(error.cause, reason);
  return true;
}

describe('grid: a cancelled request reaches its handler', () => {
  test('aborting the caller’s signal aborts the handler’s with a CancelledError and frees its slot before the handler returns', async (t) => {
    const clock = new FakeClock();
    const tg = await TestGrid.start(2, { clock, limits: { maxIncomingRequests: 1 } });
    t.after(() => tg.close());
    for (const manager of tg.managers) manager.registerSingle(ECHO, (payload) => Promise.resolve(payload));
    const held = registerHeld(tg, 1);
    await tg.waitAllConnected();
    const caller = tg.connection(0, 1);
    const serving = tg.connection(1, 0);
    const controller = new AbortController();
    const call = watch(caller.request(HELD, undefined, { signal: controller.signal, timeoutMs: 60_000 }));
    await eventually(() => held.signals.length === 1, 'the request to reach node 1');
    const handlerSignal = held.signals[0] as AbortSignal;
    assert.equal(serving.stats().requestsIn, 1);

    controller.abort(new Error('caller gave up'));

    await eventually(() => handlerSignal.aborted, 'the handler’s signal to abort');
    assert.ok(handlerSignal.reason instanceof CancelledError, String(handlerSignal.reason));
    assert.equal(serving.stats().requestsIn, 0, 'the slot is free while the handler still runs');
    // With room for one request only, a second one is served although the first has not returned.
    assert.equal(readU32((await caller.request(ECHO, u32(7))) as Uint8Array), 7);
    assert.equal(clock.now(), 0, 'no deadline played a part');
    assert.ok(call.error instanceof CancelledError, String(call.error));

    // The handler answers anyway: dropped on its side, never sent.
    (held.answers[0] as (payload: Uint8Array) => void)(u32(1));
    await roundTrips(tg);
    assert.equal(serving.stats().lateResults, 1, 'the handler side counted the late result');
    assert.equal(caller.stats().lateResults, 0, 'and no response was sent for it');
    assert.equal(serving.stats().requestsIn, 0, 'the slot was freed once, not twice');
  });

  test('a handler that looks at its signal only after the cancel finds it aborted', async (t) => {
    const { tg } = await testPair(t);
    let look: (() => AbortSignal) | undefined;
    let answer: (() => void) | undefined;
    tg.manager(1).registerSingle(
      91,
      (_payload, context) =>
        new Promise<undefined>((resolve) => {
          look = () => context.signal;
          answer = () => {
            resolve(undefined);
          };
        }),
    );
    const controller = new AbortController();
    const call = watch(tg.connection(0, 1).request(91, undefined, { signal: controller.signal }));
    await eventually(() => look !== undefined, 'the request to reach node 1');

    controller.abort();

    await eventually(() => tg.connection(1, 0).stats().requestsIn === 0, 'node 1 to hear of the cancel');
    const signal = (look as () => AbortSignal)();
    assert.equal(signal.aborted, true);
    assert.ok(signal.reason instanceof CancelledError, String(signal.reason));
    answer?.();
    await roundTrips(tg);
    assert.ok(call.error instanceof CancelledError, String(call.error));
  });

  test('a request that completes is unaffected by its signal: no cancel, no late result', async (t) => {
    const { tg } = await testPair(t);
    const held = registerHeld(tg, 1);
    const controller = new AbortController();
    const call = watch(tg.connection(0, 1).request(HELD, undefined, { signal: controller.signal }));
    await eventually(() => held.signals.length === 1, 'the request to reach node 1');

    (held.answers[0] as (payload: Uint8Array) => void)(u32(42));
    await eventually(() => call.settled, 'the response');
    controller.abort();
    await roundTrips(tg);

    assert.equal(readU32(call.value as Uint8Array), 42);
    assert.equal(held.signals[0]?.aborted, false, 'the handler was not cancelled');
    for (const connection of [tg.connection(0, 1), tg.connection(1, 0)]) {
      assert.equal(connection.stats().requestsIn, 0);
      assert.equal(connection.stats().requestsOut, 0);
      assert.equal(connection.stats().lateResults, 0);
      assert.equal(connection.stats().protocolErrors, 0);
    }
  });

  test('a deadline sends no cancel, also when a signal carries it: the handler stops at the same deadline by itself', async (t) => {
    const { tg, clock, served } = await testPair(t);
    const scope = callScope(clock, { timeoutMs: 1_000 });
    t.after(() => {
      scope.dispose();
    });
    const withSignal = watch(tg.connection(0, 1).request(HANG, undefined, { signal: scope.signal }));
    const withTimeout = watch(tg.connection(0, 1).request(HANG, undefined, { timeoutMs: 1_000 }));
    await eventually(() => served[1].hanging.length === 2, 'the requests to reach node 1');
    const heardBefore = tg.connection(1, 0).stats().messagesIn;

    await clock.advanceAsync(1_000);

    await eventually(() => withSignal.settled && withTimeout.settled, 'both calls to time out');
    for (const call of [withSignal, withTimeout]) {
      assert.ok(call.error instanceof DeadlineExceededError, String(call.error));
    }
    for (const signal of served[1].hanging) {
      assert.ok(signal.reason instanceof DeadlineExceededError, String(signal.reason));
    }
    await roundTrips(tg);
    // The round trips' request and response are all node 1 heard: no cancel.
    assert.equal(tg.connection(1, 0).stats().messagesIn, heardBefore + 2);
  });

  test('a cancel for a request the handler side already answered is ignored there', async (t) => {
    const { g, served, dialler } = await proxiedPair(t);
    // Hold what node 1 sends to node 0, so its answer is still on the way when node 0 gives up.
    g.linkProxy(0, 1).hold(dialler === 1 ? 'to-node' : 'from-node');
    const serving = g.connection(1, 0);
    const controller = new AbortController();
    const call = watch(g.connection(0, 1).request(ECHO, u32(1), { signal: controller.signal }));
    await eventually(() => served[1].echoes === 1, 'node 1 to answer');
    const heardBefore = serving.stats().messagesIn;

    controller.abort();

    await eventually(() => call.settled, 'the call to reject');
    assert.ok(call.error instanceof CancelledError, String(call.error));
    await eventually(() => serving.stats().messagesIn > heardBefore, 'the cancel to reach node 1');
    assert.equal(serving.state(), 'connected');
    assert.equal(serving.stats().protocolErrors, 0);
    assert.equal(serving.stats().requestsIn, 0);
    assert.equal(serving.stats().lateResults, 0);

    g.linkProxy(0, 1).release(dialler === 1 ? 'to-node' : 'from-node');
    await eventually(() => g.connection(0, 1).stats().lateResults === 1, 'the answer to arrive late');
    assert.equal(readU32((await g.connection(0, 1).request(ECHO, u32(2))) as Uint8Array), 2);
    assert.equal(served[1].echoes, 2);
  });
});

describe('grid: every way a caller cancels ends in one CancelledError', () => {
  test('a request’s signal, aborted while waiting or before the call', async (t) => {
    const { tg } = await testPair(t);
    const controller = new AbortController();
    const reason = new Error('request no longer needed');
    const call = tg.connection(0, 1).request(HANG, undefined, { signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(call, (error) => assertCancelled(error, reason));
    await assert.rejects(
      tg.connection(0, 1).request(HANG, undefined, { signal: controller.signal }),
      (error) => assertCancelled(error, reason),
    );
    // A signal aborted without a reason of its own: the cause is its AbortError.
    const plain = new AbortController();
    const plainCall = tg.connection(0, 1).request(HANG, undefined, { signal: plain.signal });
    plain.abort();
    await assert.rejects(plainCall, (error) => assertCancelled(error, plain.signal.reason));
  });

  test('a request’s cancel error leads back to the caller’s stack', async (t) => {
    const { tg } = await testPair(t);
    const controller = new AbortController();
    async function callThatIsCancelled(): Promise<unknown> {
      const reply = await tg.connection(0, 1).request(HANG, undefined, { signal: controller.signal });
      return reply;
    }
    const call = callThatIsCancelled();
    await roundTrips(tg);
    controller.abort(new Error('gave up'));
    await assert.rejects(call, (error) => {
      assert.ok(error instanceof CancelledError, String(error));
      assert.match(String(error.stack), /callThatIsCancelled/);
      return true;
    });
  });

  test('a stream’s signal ends the iteration and a waiting send', async (t) => {
    const { tg, served } = await testPair(t);
    const controller = new AbortController();
    const stream = tg.connection(0, 1).openStream(HOLD, { signal: controller.signal });
    await next(stream);
    // HOLD takes one input item and never reads it: the second send waits for a credit.
    await stream.send(u32(1));
    const waitingSend = watch(stream.send(u32(2)));
    const waitingNext = watch(next(stream));
    const reason = new Error('stream no longer needed');

    controller.abort(reason);

    await eventually(() => waitingSend.settled && waitingNext.settled, 'the stream’s awaits to end');
    assertCancelled(waitingNext.error, reason);
    assertCancelled(waitingSend.error, reason);
    assert.notEqual(waitingNext.error, waitingSend.error, 'each await gets an error of its own');
    await assert.rejects(next(stream), (error) => assertCancelled(error, reason));
    await assert.rejects(stream.send(u32(3)), (error) => assertCancelled(error, reason));
    const handlerSignal = served[1].holding[0] as AbortSignal;
    await eventually(() => handlerSignal.aborted, 'the handler to be cancelled');
  });

  test('a stream’s cancel error leads back to the caller’s stack', async (t) => {
    const { tg } = await testPair(t);
    const controller = new AbortController();
    const stream = tg.connection(0, 1).openStream(HOLD, { signal: controller.signal });
    async function readUntilCancelled(): Promise<number> {
      let items = 0;
      for await (const item of stream) items += item.length >= 0 ? 1 : 0;
      return items;
    }
    const reading = readUntilCancelled();
    await roundTrips(tg);
    controller.abort(new Error('gave up'));
    await assert.rejects(reading, (error) => {
      assert.ok(error instanceof CancelledError, String(error));
      assert.match(String(error.stack), /readUntilCancelled/);
      return true;
    });
  });

  test('a send’s own signal gives up on that item only, and the stream goes on', async (t) => {
    const { tg } = await testPair(t);
    let take: (() => Promise<unknown>) | undefined;
    tg.manager(1).registerStream(92, {
      inCapacity: 1,
      handle: async ({ requests, send, signal }) => {
        const input = requests[Symbol.asyncIterator]();
        take = () => input.next();
        await new Promise((resolve) => {
          signal.addEventListener('abort', resolve, { once: true });
        });
        await send(u32(0)).catch(() => undefined);
      },
    });
    const stream = tg.connection(0, 1).openStream(92);
    await stream.send(u32(1));
    const controller = new AbortController();
    const reason = new Error('this item can wait no longer');
    const waiting = watch(stream.send(u32(2), { signal: controller.signal }));
    await roundTrips(tg);
    assert.equal(waiting.settled, false, 'the send waits for a credit');

    controller.abort(reason);

    await eventually(() => waiting.settled, 'the send to give up');
    assertCancelled(waiting.error, reason);
    await assert.rejects(stream.send(u32(3), { signal: controller.signal }), (error) =>
      assertCancelled(error, reason),
    );
    // The stream itself is fine: once the handler reads, the next item goes through.
    await eventually(() => take !== undefined, 'the handler to start');
    await take?.();
    await stream.send(u32(4));
    stream.cancel();
  });

  test('cancel(reason) ends the iteration and a waiting send with that reason as the cause', async (t) => {
    const { tg } = await testPair(t);
    const stream: GridStream = tg.connection(0, 1).openStream(HOLD);
    await next(stream);
    await stream.send(u32(1));
    const waitingSend = watch(stream.send(u32(2)));
    const reason = { why: 'not an Error at all' };

    stream.cancel(reason);

    await eventually(() => waitingSend.settled, 'the send to end');
    assertCancelled(waitingSend.error, reason);
    await assert.rejects(next(stream), (error) => assertCancelled(error, reason));
  });

  test('leaving a for-await loop ends a waiting send with a CancelledError made where the send waits', async (t) => {
    const { tg } = await testPair(t);
    const stream = tg.connection(0, 1).openStream(HOLD);
    await stream.send(u32(1));
    async function sendThatWaits(): Promise<void> {
      await stream.send(u32(2));
    }
    async function readOneAndLeave(): Promise<void> {
      for await (const item of stream) {
        assert.equal(item.length, 0);
        break;
      }
    }
    const waitingSend = watch(sendThatWaits());
    await readOneAndLeave();
    await eventually(() => waitingSend.settled, 'the send to end');
    assertCancelled(waitingSend.error, undefined);
    assert.match(String((waitingSend.error as Error).stack), /sendThatWaits/);
    await assert.rejects(next(stream), (error) => assertCancelled(error, undefined));
  });

  test('a signal aborted by a deadline is not a cancel: it ends in a DeadlineExceededError', async (t) => {
    const { tg } = await testPair(t);
    const deadline = new DeadlineExceededError('the caller’s own deadline passed', { timeoutMs: 5 });
    const forRequest = new AbortController();
    const call = tg.connection(0, 1).request(HANG, undefined, { signal: forRequest.signal });
    forRequest.abort(deadline);
    await assert.rejects(call, (error) => {
      assert.ok(error instanceof DeadlineExceededError, String(error));
      assert.equal(error.cause, deadline);
      return true;
    });

    const forStream = new AbortController();
    const stream = tg.connection(0, 1).openStream(HOLD, { signal: forStream.signal });
    await next(stream);
    const waiting = watch(next(stream));
    forStream.abort(deadline);
    await eventually(() => waiting.settled, 'the stream to end');
    assert.ok(waiting.error instanceof DeadlineExceededError, String(waiting.error));
    assert.equal(waiting.error.cause, deadline);
  });

  test('a stateless stream’s cancel(reason) ends its iteration with a CancelledError', async (t) => {
    const { tg } = await testPair(t);
    const stream = tg.connection(0, 1).openStatelessStream(HOLD, { initial: u32(5) });
    const items = stream[Symbol.asyncIterator]();
    assert.equal(readU32((await items.next()).value as Uint8Array), 5);
    const waiting = watch(items.next());
    const reason = new Error('feed no longer needed');

    stream.cancel(reason);

    await eventually(() => waiting.settled, 'the iteration to end');
    assertCancelled(waiting.error, reason);
    await assert.rejects(items.next(), (error) => assertCancelled(error, reason));
  });

  test('what a handler throws at its signal’s abort does not change what the caller sees', async (t) => {
    // The handler side answers a cancelled request with nothing, so the caller's error stays its own.
    const { tg } = await testPair(t);
    tg.manager(1).registerSingle(93, (_payload, { signal }) => {
      return new Promise((_resolve, reject) => {
        signal.addEventListener(
          'abort',
          () => {
            reject(new CapacityExceededError('something downstream', 1));
          },
          { once: true },
        );
      });
    });
    const controller = new AbortController();
    const reason = new Error('gave up');
    const call = watch(tg.connection(0, 1).request(93, undefined, { signal: controller.signal }));
    await roundTrips(tg);
    controller.abort(reason);
    await eventually(() => tg.connection(1, 0).stats().lateResults === 1, 'the handler to end');
    await roundTrips(tg);
    assertCancelled(call.error, reason);
    assert.ok(!(call.error instanceof RemoteError), 'the handler’s error does not reach the caller');
  });
});
