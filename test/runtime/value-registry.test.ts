import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { expiryAfterBatch, ValueRegistry, type ValueRegistration } from '../../src/runtime/value-registry.ts';

const int = 'io.statefun.types/int';
const str = 'io.statefun.types/string';
const count: ValueRegistration = { name: 'count', typename: int, expiration: { mode: 'none' } };
const seen: ValueRegistration = {
  name: 'seen',
  typename: str,
  expiration: { mode: 'after-call', afterMs: 60_000 },
};

describe('the value registry', () => {
  test('a type starts with no values; what an incomplete context asks for is registered, in order', () => {
    const registry = new ValueRegistry();
    assert.deepEqual(registry.values('shop/cart'), []);
    const outcome = registry.register('shop/cart', [count, seen]);
    assert.deepEqual(outcome, { added: ['count', 'seen'], conflicts: [], refused: [] });
    assert.deepEqual(registry.values('shop/cart'), [count, seen]);
    assert.deepEqual(registry.values('shop/user'), [], 'registrations are per function type');
    assert.deepEqual(registry.get('shop/cart', 'seen'), seen);
  });

  test('registering the same spec again changes nothing and is no conflict', () => {
    const registry = new ValueRegistry();
    registry.register('shop/cart', [count]);
    assert.deepEqual(registry.register('shop/cart', [count, seen]), {
      added: ['seen'],
      conflicts: [],
      refused: [],
    });
    assert.deepEqual(registry.stats(), { functionTypes: 1, values: 2, conflicts: 0, refused: 0 });
  });

  test('the first registration wins; a changed type or TTL is a conflict naming the function and value', () => {
    const registry = new ValueRegistry();
    registry.register('shop/cart', [count, seen]);
    const outcome = registry.register('shop/cart', [
      { ...count, typename: str },
      { ...seen, expiration: { mode: 'after-write', afterMs: 60_000 } },
      { ...seen, name: 'other', expiration: { mode: 'none' } },
    ]);
    assert.deepEqual(outcome.added, ['other']);
    assert.deepEqual(
      outcome.conflicts.map((c) => c.message),
      [
        'function shop/cart declares value "count" with type io.statefun.types/string, but it is registered as ' +
          'io.statefun.types/int; the registration made first stays in force',
        'function shop/cart declares value "seen" with expiration after-write 60000 ms, but it is registered ' +
          'with after-call 60000 ms; the registration made first stays in force',
      ],
    );
    assert.deepEqual(registry.get('shop/cart', 'count'), count);
    assert.deepEqual(registry.get('shop/cart', 'seen'), seen);
    // Only the TTL's length differing is a conflict too.
    const longer = registry.register('shop/cart', [
      { ...seen, expiration: { mode: 'after-call', afterMs: 1 } },
    ]);
    assert.equal(longer.conflicts.length, 1);
    assert.equal(registry.stats().conflicts, 3);
  });

  test('a type registers at most maxValuesPerType values; the rest are refused and counted', () => {
    const registry = new ValueRegistry({ maxValuesPerType: 2 });
    const outcome = registry.register('shop/cart', [count, seen, { ...count, name: 'third' }]);
    assert.deepEqual(outcome, { added: ['count', 'seen'], conflicts: [], refused: ['third'] });
    assert.deepEqual(registry.register('shop/cart', [{ ...count, name: 'fourth' }]).refused, ['fourth']);
    // Another type has room of its own.
    assert.deepEqual(registry.register('shop/user', [{ ...count, name: 'third' }]).added, ['third']);
    assert.deepEqual(registry.stats(), { functionTypes: 2, values: 3, conflicts: 0, refused: 2 });
    assert.throws(() => new ValueRegistry({ maxValuesPerType: 0 }), /positive integer/);
  });

  test('the registry keeps its own copy of what it is given', () => {
    const registry = new ValueRegistry();
    const mutable = { name: 'x', typename: int, expiration: { mode: 'after-write' as const, afterMs: 5 } };
    registry.register('shop/cart', [mutable]);
    mutable.typename = str;
    assert.equal(registry.get('shop/cart', 'x')?.typename, int);
  });
});

describe('expiry after a batch', () => {
  const afterWrite: ValueRegistration = {
    name: 'w',
    typename: int,
    expiration: { mode: 'after-write', afterMs: 100 },
  };
  const afterCall: ValueRegistration = {
    name: 'c',
    typename: int,
    expiration: { mode: 'after-call', afterMs: 100 },
  };

  test('a value without TTL never expires', () => {
    assert.equal(expiryAfterBatch(count, 1_000, true, undefined), undefined);
  });

  test('expire-after-write moves on a write only', () => {
    assert.equal(expiryAfterBatch(afterWrite, 1_000, true, 500), 1_100);
    assert.equal(expiryAfterBatch(afterWrite, 1_000, false, 500), 500);
  });

  test('expire-after-call moves on every call, written or not', () => {
    assert.equal(expiryAfterBatch(afterCall, 1_000, false, 500), 1_100);
    assert.equal(expiryAfterBatch(afterCall, 1_000, true, 500), 1_100);
  });
});
