import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { BoundedQueue } from '../../src/internal/bounded-queue.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../../src/internal/errors.ts';

describe('BoundedQueue', () => {
  test('never holds more than its capacity; refusals are counted', () => {
    const queue = new BoundedQueue<number>({ capacity: 2 });
    assert.equal(queue.offer(1), true);
    assert.equal(queue.offer(2), true);
    assert.equal(queue.free, 0);
    assert.equal(queue.offer(3), false);
    assert.equal(queue.depth, 2);
    assert.deepEqual(queue.stats, { refused: 1, discarded: 0, peakDepth: 2 });
  });

  test('items come out in the order they went in', async () => {
    const queue = new BoundedQueue<string>({ capacity: 3 });
    queue.offer('a');
    queue.offer('b');
    queue.offer('c');
    queue.close();
    const seen: string[] = [];
    for await (const item of queue) seen.push(item);
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });

  test('a waiting consumer gets the next item as soon as it is offered', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    const next = queue.next();
    assert.equal(queue.offer(42), true);
    assert.deepEqual(await next, { done: false, value: 42 });
    assert.equal(queue.depth, 0);
  });

  test('onTake fires once per item leaving the queue: the credit to give back', async () => {
    const taken: number[] = [];
    const queue = new BoundedQueue<number>({ capacity: 4, onTake: (item) => taken.push(item) });
    queue.offer(1);
    queue.offer(2);
    assert.deepEqual(taken, []);
    assert.equal(queue.tryTake(), 1);
    await queue.next();
    const waiting = queue.next();
    queue.offer(3);
    await waiting;
    assert.deepEqual(taken, [1, 2, 3]);
  });

  test('push waits for room and producers go in their arrival order', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    await queue.push(1);
    const order: number[] = [];
    const second = queue.push(2).then(() => order.push(2));
    const third = queue.push(3).then(() => order.push(3));
    assert.equal(queue.offer(99), false, 'offer may not jump the producers already waiting');
    assert.equal(queue.tryTake(), 1);
    await second;
    assert.deepEqual(order, [2]);
    assert.equal(queue.tryTake(), 2);
    await third;
    assert.equal(queue.tryTake(), 3);
    assert.deepEqual(order, [2, 3]);
  });

  test('close lets the consumer drain what was accepted, then ends', async () => {
    const queue = new BoundedQueue<number>({ capacity: 2 });
    queue.offer(1);
    queue.close();
    assert.equal(queue.offer(2), false);
    await assert.rejects(queue.push(3), ClosedError);
    assert.deepEqual(await queue.next(), { done: false, value: 1 });
    assert.deepEqual(await queue.next(), { done: true, value: undefined });
    assert.deepEqual(await queue.next(), { done: true, value: undefined });
  });

  test('close rejects producers still waiting: their items were never accepted', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    queue.offer(1);
    const blocked = queue.push(2);
    queue.close();
    await assert.rejects(blocked, ClosedError);
    assert.equal(queue.tryTake(), 1);
    assert.equal(queue.tryTake(), undefined);
  });

  test('close ends consumers that are waiting on an empty queue', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    const next = queue.next();
    queue.close();
    assert.deepEqual(await next, { done: true, value: undefined });
  });

  test('error delivers the buffered items first, then the error', async () => {
    const queue = new BoundedQueue<number>({ capacity: 3 });
    queue.offer(1);
    queue.offer(2);
    queue.error(new Error('peer failed'));
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const item of queue) seen.push(item);
    }, /peer failed/);
    assert.deepEqual(seen, [1, 2]);
  });

  test('error reaches a consumer already waiting', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    const next = queue.next();
    queue.error(new Error('gone'));
    await assert.rejects(next, /gone/);
  });

  test('leaving a for-await loop early discards the rest and counts it', async () => {
    const queue = new BoundedQueue<number>({ capacity: 5 });
    for (const n of [1, 2, 3, 4]) queue.offer(n);
    for await (const item of queue) if (item === 2) break;
    assert.equal(queue.closed, true);
    assert.equal(queue.stats.discarded, 2);
    assert.equal(queue.offer(9), false);
  });

  test('abort removes a waiting consumer or producer', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1 });
    const consumerStop = new AbortController();
    const next = queue.next({ signal: consumerStop.signal });
    consumerStop.abort(new Error('consumer gone'));
    await assert.rejects(next, /consumer gone/);
    queue.offer(1);
    assert.equal(queue.depth, 1, 'the aborted consumer did not take the item');

    const producerStop = new AbortController();
    const push = queue.push(2, { signal: producerStop.signal });
    producerStop.abort(new Error('producer gone'));
    await assert.rejects(push, /producer gone/);
    assert.equal(queue.tryTake(), 1);
    assert.equal(queue.tryTake(), undefined, 'the aborted producer’s item never entered');
  });

  test('waiters are bounded too', async () => {
    const queue = new BoundedQueue<number>({ capacity: 1, maxWaiters: 1 });
    const first = queue.next();
    await assert.rejects(queue.next(), CapacityExceededError);
    queue.offer(1);
    await first;
    queue.offer(2);
    const blocked = queue.push(3);
    await assert.rejects(queue.push(4), CapacityExceededError);
    assert.equal(queue.stats.refused, 1);
    queue.tryTake();
    await blocked;
  });

  test('bad options are refused with the field named', () => {
    assert.throws(
      () => new BoundedQueue({ capacity: 0 }),
      (e) => e instanceof ConfigError && e.field === 'capacity',
    );
    assert.throws(
      () => new BoundedQueue({ capacity: 1, maxWaiters: -1 }),
      (e) => e instanceof ConfigError && e.field === 'maxWaiters',
    );
  });

  test('property: whatever the interleaving, accepted = taken + buffered, and order holds', () => {
    const op = fc.oneof(fc.constant('offer' as const), fc.constant('take' as const));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (capacity, ops) => {
        let credits = 0;
        const queue = new BoundedQueue<number>({ capacity, onTake: () => credits++ });
        let next = 0;
        const accepted: number[] = [];
        const taken: number[] = [];
        for (const o of ops) {
          if (o === 'offer') {
            if (queue.offer(next)) accepted.push(next);
            next++;
          } else {
            const item = queue.tryTake();
            if (item !== undefined) taken.push(item);
          }
          assert.ok(queue.depth <= capacity);
        }
        assert.equal(accepted.length, taken.length + queue.depth);
        assert.deepEqual(taken, accepted.slice(0, taken.length));
        assert.equal(credits, taken.length);
        assert.equal(queue.stats.refused, next - accepted.length);
      }),
    );
  });
});
