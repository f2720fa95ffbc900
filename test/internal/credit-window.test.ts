import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BoundedQueue } from '../../src/internal/bounded-queue.ts';
import { CreditWindow } from '../../src/internal/credit-window.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../../src/internal/errors.ts';

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

  test('with a receiving BoundedQueue, the receiver can always accept without blocking', async () => {
    // The end-to-end contract of credit flow control: a sender that spends a credit per
    // item, and a receiver that returns one per item consumed, never overflow the buffer.
    const capacity = 3;
    const window = new CreditWindow({ initial: capacity, max: capacity });
    const inbox = new BoundedQueue<number>({
      capacity,
      onTake: () => {
        window.grant(1);
      },
    });
    const total = 50;
    const sender = (async () => {
      for (let i = 0; i < total; i++) {
        await window.acquire();
        assert.equal(inbox.offer(i), true, `item ${i} found the buffer full`);
      }
      inbox.close();
    })();
    const received: number[] = [];
    for await (const item of inbox) received.push(item);
    await sender;
    assert.deepEqual(
      received,
      Array.from({ length: total }, (_, i) => i),
    );
    assert.equal(inbox.stats.refused, 0);
    assert.equal(window.available, capacity);
  });
});
