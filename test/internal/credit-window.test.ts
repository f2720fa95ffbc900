import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BoundedQueue } from '../../src/internal/bounded-queue.ts';
import { CreditWindow } from '../../src/internal/credit-window.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../../src/internal/errors.ts';

const CAPACITY = 3;
const TOTAL = 20;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Sends TOTAL items through a window of CAPACITY credits into a BoundedQueue whose consumer
 * reads one item per turn of the event loop, so the sender (whose waits are microtasks) has
 * always gone as far as it may when the consumer reads: the buffer is full then. A sender
 * that ignores credits spends one when it has one and sends anyway when it has none.
 */
async function throughSlowConsumer(options: { readonly obeysCredits: boolean }): Promise<{
  readonly offers: readonly boolean[];
  readonly received: readonly number[];
  readonly refused: number;
  /** How many items the buffer held each time the consumer read. */
  readonly depthsAtRead: readonly number[];
  readonly peakDepth: number;
  readonly available: number;
}> {
  const window = new CreditWindow({ initial: CAPACITY, max: CAPACITY });
  const inbox = new BoundedQueue<number>({
    capacity: CAPACITY,
    onTake: () => {
      window.grant(1);
    },
  });
  const offers: boolean[] = [];
  let sending = true;
  const sender = (async () => {
    for (let i = 0; i < TOTAL; i++) {
      if (options.obeysCredits) await window.acquire();
      else window.tryAcquire();
      offers.push(inbox.offer(i));
    }
    sending = false;
  })();
  // Read through a function: the sender, not this loop, ends the sending.
  const isSending = (): boolean => sending;
  const received: number[] = [];
  const depthsAtRead: number[] = [];
  while (isSending() || inbox.depth > 0) {
    await new Promise((resolve) => setImmediate(resolve));
    depthsAtRead.push(inbox.depth);
    const item = inbox.tryTake();
    if (item !== undefined) received.push(item);
  }
  await sender;
  const { refused, peakDepth } = inbox.stats;
  return { offers, received, depthsAtRead, refused, peakDepth, available: window.available };
}

describe('CreditWindow', () => {
  test('spends one credit per send and refuses when none are left', () => {
    const window = new CreditWindow({ initial: 2 });
    assert.equal(window.tryAcquire(), true);
    assert.equal(window.tryAcquire(), true);
    assert.equal(window.tryAcquire(), false);
    assert.equal(window.available, 0);
  });

  test('a waiting sender goes as soon as a credit comes back, in arrival order', async () => {
    const window = new CreditWindow({ initial: 0 });
    const order: string[] = [];
    const a = window.acquire().then(() => order.push('a'));
    const b = window.acquire().then(() => order.push('b'));
    assert.equal(window.waiting, 2);
    assert.equal(window.tryAcquire(), false, 'no jumping the queue');
    window.grant(1);
    await a;
    assert.deepEqual(order, ['a']);
    window.grant(2);
    await b;
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(window.available, 1);
  });

  test('a grant past the window is a protocol error', () => {
    const window = new CreditWindow({ initial: 2, max: 2 });
    assert.throws(() => {
      window.grant(1);
    }, CapacityExceededError);
    assert.throws(() => {
      window.grant(-1);
    }, RangeError);
  });

  test('close rejects waiting and later senders', async () => {
    const window = new CreditWindow({ initial: 0 });
    const waiting = window.acquire();
    window.close();
    await assert.rejects(waiting, ClosedError);
    await assert.rejects(window.acquire(), ClosedError);
    assert.equal(window.tryAcquire(), false);
  });

  test('an aborted sender leaves the line without taking a credit', async () => {
    const window = new CreditWindow({ initial: 0 });
    const controller = new AbortController();
    const waiting = window.acquire({ signal: controller.signal });
    controller.abort(new Error('cancelled'));
    await assert.rejects(waiting, /cancelled/);
    window.grant(1);
    assert.equal(window.available, 1);
  });

  test('waiters are bounded', async () => {
    const window = new CreditWindow({ initial: 0, maxWaiters: 1 });
    const first = window.acquire();
    await assert.rejects(window.acquire(), CapacityExceededError);
    window.grant(1);
    await first;
  });

  test('bad initial credit is refused', () => {
    assert.throws(() => new CreditWindow({ initial: -1 }), ConfigError);
    assert.throws(() => new CreditWindow({ initial: 3, max: 2 }), ConfigError);
  });

  test('with a receiving BoundedQueue, a sender that spends a credit per item is never refused, even by a consumer that lets the buffer fill', async () => {
    // The end-to-end contract of credit flow control: a sender that spends a credit per
    // item, and a receiver that returns one per item consumed, never overflow the buffer.
    const run = await throughSlowConsumer({ obeysCredits: true });
    assert.deepEqual(
      run.depthsAtRead,
      range(TOTAL).map((i) => Math.min(CAPACITY, TOTAL - i)),
      'the consumer read only once the sender had filled the buffer as far as its credits let it',
    );
    assert.deepEqual(
      run.offers.map((accepted, i) => (accepted ? i : `refused ${i}`)),
      range(TOTAL),
      'every item found room',
    );
    assert.equal(run.refused, 0);
    assert.deepEqual(run.received, range(TOTAL));
    assert.equal(run.available, CAPACITY, 'every credit came back');
  });

  test('the same consumer refuses, and counts, what a sender that ignores its credits sends past the window', async () => {
    const run = await throughSlowConsumer({ obeysCredits: false });
    assert.equal(run.peakDepth, CAPACITY);
    const refused = run.offers.filter((accepted) => !accepted).length;
    assert.ok(refused > 0, 'the items past the window were refused');
    assert.equal(run.refused, refused, 'and each refusal counted');
    assert.equal(run.received.length, TOTAL - refused, 'only what fitted was received');
  });
});
