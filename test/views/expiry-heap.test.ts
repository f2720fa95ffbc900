import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { ExpiryHeap } from '../../src/views/expiry-heap.ts';

type Op =
  | { readonly kind: 'set'; readonly key: string; readonly at: number }
  | { readonly kind: 'remove'; readonly key: string };

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('set' as const), key, at: fc.integer({ min: 0, max: 20 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), key }) },
);

/** The heap's head must be an entry with the earliest time (any of them on a tie). */
function checkAgainst(heap: ExpiryHeap, model: Map<string, number>): void {
  assert.equal(heap.size, model.size);
  for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) assert.equal(heap.has(k), model.has(k));
  const head = heap.peek();
  if (model.size === 0) {
    assert.equal(head, undefined);
    return;
  }
  assert.ok(head !== undefined);
  const earliest = Math.min(...model.values());
  assert.equal(head.expiresAt, earliest);
  assert.equal(model.get(head.key), earliest);
}

describe('ExpiryHeap', () => {
  test('peek gives the entry that expires first; set moves an entry; remove takes it out', () => {
    const heap = new ExpiryHeap();
    heap.set('a', 30);
    heap.set('b', 10);
    heap.set('c', 20);
    assert.equal(heap.peek()?.key, 'b');
    assert.equal(heap.peek()?.expiresAt, 10);
    heap.set('b', 40);
    assert.equal(heap.peek()?.key, 'c');
    heap.remove('c');
    assert.equal(heap.peek()?.key, 'a');
    heap.remove('missing');
    assert.equal(heap.size, 2);
  });

  test('set, remove and peek agree with a naive map at every step (property)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const heap = new ExpiryHeap();
        const model = new Map<string, number>();
        for (const step of ops) {
          if (step.kind === 'set') {
            heap.set(step.key, step.at);
            model.set(step.key, step.at);
          } else {
            heap.remove(step.key);
            model.delete(step.key);
          }
          checkAgainst(heap, model);
        }
        // Draining by the head yields every entry in order of expiry.
        const drained: number[] = [];
        for (let head = heap.peek(); head !== undefined; head = heap.peek()) {
          assert.equal(model.get(head.key), head.expiresAt);
          drained.push(head.expiresAt);
          heap.remove(head.key);
          model.delete(head.key);
          checkAgainst(heap, model);
        }
        assert.deepEqual(
          drained,
          [...drained].sort((x, y) => x - y),
        );
      }),
      { numRuns: 500 },
    );
  });
});
