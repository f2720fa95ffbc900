// DeadlineQueue on a FakeClock: entries expire in (deadline, insertion) order, each exactly at
// its deadline; removed entries never expire; and however many entries are queued, one clock
// timer at most is pending, none when the queue is empty.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { DeadlineQueue, type DeadlineEntry } from '../../src/grid/deadline-queue.ts';
import type { Timer } from '../../src/internal/clock.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

/** A FakeClock that counts the timers set on it, to tell a re-armed timer from an untouched one. */
class CountingClock extends FakeClock {
  timersSet = 0;

  override setTimeout(callback: () => void, delayMs: number): Timer {
    this.timersSet++;
    return super.setTimeout(callback, delayMs);
  }
}

interface Expiry {
  readonly name: string;
  /** `clock.now()` when `expire` ran. */
  readonly at: number;
  /** The entry's heap slot as `expire` saw it. */
  readonly heapIndex: number;
}

interface TestEntry extends DeadlineEntry {
  readonly name: string;
}

interface Harness {
  readonly clock: CountingClock;
  readonly queue: DeadlineQueue;
  readonly expired: Expiry[];
  /** Creates an entry (not yet added) that records its expiry, then runs `then`. */
  entry(name: string, deadlineAt: number, then?: () => void): TestEntry;
  /** Creates and adds an entry. */
  add(name: string, deadlineAt: number, then?: () => void): TestEntry;
  names(): string[];
}

function harness(): Harness {
  const clock = new CountingClock();
  const queue = new DeadlineQueue(clock);
  const expired: Expiry[] = [];
  const entry = (name: string, deadlineAt: number, then?: () => void): TestEntry => {
    const created: TestEntry = {
      name,
      deadlineAt,
      heapIndex: -1,
      heapOrder: 0,
      expire() {
        expired.push({ name, at: clock.now(), heapIndex: created.heapIndex });
        then?.();
      },
    };
    return created;
  };
  return {
    clock,
    queue,
    expired,
    entry,
    add(name, deadlineAt, then) {
      const created = entry(name, deadlineAt, then);
      queue.add(created);
      return created;
    },
    names: () => expired.map((e) => e.name),
  };
}

/** Far enough past every deadline used here for all of them to have come. */
const FAR = 1_000_000;

describe('grid: DeadlineQueue expiry order', () => {
  test('entries expire in deadline order, each exactly when the clock reaches its deadline', () => {
    const h = harness();
    h.add('c', 30);
    h.add('a', 10);
    h.add('b', 20);

    h.clock.advance(9);
    assert.deepEqual(h.names(), [], 'nothing expires before the earliest deadline');
    h.clock.advance(1);
    assert.deepEqual(h.expired, [{ name: 'a', at: 10, heapIndex: -1 }]);
    h.clock.advance(9);
    assert.deepEqual(h.names(), ['a'], 'b waits for 20');
    h.clock.advance(1);
    assert.deepEqual(h.names(), ['a', 'b']);
    h.clock.advance(9);
    assert.deepEqual(h.names(), ['a', 'b'], 'c waits for 30');
    h.clock.advance(1);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['a', 10],
        ['b', 20],
        ['c', 30],
      ],
    );
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('one long advance still expires each entry with the clock at its own deadline', () => {
    const h = harness();
    h.add('late', 500);
    h.add('early', 7);
    h.add('middle', 42);
    h.clock.advance(FAR);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['early', 7],
        ['middle', 42],
        ['late', 500],
      ],
    );
  });

  test('entries sharing a deadline expire in the order they were added', () => {
    const h = harness();
    h.add('x1', 50);
    h.add('early', 10);
    h.add('x2', 50);
    h.add('x3', 50);
    h.add('late', 60);
    h.add('x4', 50);
    h.clock.advance(49);
    assert.deepEqual(h.names(), ['early']);
    h.clock.advance(1);
    assert.deepEqual(h.names(), ['early', 'x1', 'x2', 'x3', 'x4']);
    assert.ok(
      h.expired.slice(1).every((e) => e.at === 50),
      'all four at their shared deadline',
    );
    h.clock.advance(10);
    assert.deepEqual(h.names(), ['early', 'x1', 'x2', 'x3', 'x4', 'late']);
  });

  test('an entry already due when added expires on the next advance, even by 0 ms', () => {
    const h = harness();
    h.clock.advance(100);
    h.add('past', 40);
    h.add('now', 100);
    h.add('later', 101);
    h.clock.advance(0);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['past', 100],
        ['now', 100],
      ],
    );
    h.clock.advance(1);
    assert.deepEqual(h.names(), ['past', 'now', 'later']);
  });

  test('a deadline beyond the longest clock timer expires exactly at that deadline', () => {
    const h = harness();
    const far = 2 ** 31 - 1 + 5_000;
    h.add('far', far);
    h.clock.advance(far - 1);
    assert.deepEqual(h.names(), [], 'the timer capped at 2^31-1 ms fires early and re-arms');
    assert.equal(h.clock.pendingTimers, 1);
    h.clock.advance(1);
    assert.deepEqual(h.expired, [{ name: 'far', at: far, heapIndex: -1 }]);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('1..300 entries added in random order all expire in (deadline, insertion) order, none early', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 300, size: 'max' }),
        (deadlines) => {
          const h = harness();
          deadlines.forEach((deadline, i) => h.add(String(i), deadline));
          assert.equal(h.queue.size, deadlines.length);

          // One millisecond at a time: at every instant exactly the entries due have expired.
          const maxDeadline = Math.max(...deadlines);
          for (let now = 1; now <= maxDeadline; now++) {
            h.clock.advance(1);
            const due = deadlines.filter((d) => d <= now).length;
            assert.equal(h.expired.length, due, `expired by ${now}`);
            assert.equal(h.queue.size, deadlines.length - due);
          }

          const expected = deadlines
            .map((deadline, i) => ({ deadline, i }))
            .sort((a, b) => a.deadline - b.deadline || a.i - b.i);
          assert.deepEqual(
            h.expired.map((e) => [e.name, e.at]),
            expected.map((e) => [String(e.i), e.deadline]),
          );
          assert.equal(h.clock.pendingTimers, 0);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('grid: DeadlineQueue removal', () => {
  test('a removed entry never expires', () => {
    const h = harness();
    const a = h.add('a', 10);
    h.add('b', 20);
    h.queue.remove(a);
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['b']);
  });

  /** Seven entries with distinct deadlines, added out of order; then the one at `slot` goes. */
  const removeAtSlot = (slot: (size: number) => number): void => {
    const h = harness();
    const deadlines = [70, 30, 50, 10, 60, 20, 40];
    const entries = deadlines.map((d) => h.add(`at${d}`, d));
    const index = slot(h.queue.size);
    const victim = entries.find((e) => e.heapIndex === index);
    assert.ok(victim, `an entry sits in heap slot ${index}`);
    h.queue.remove(victim);
    assert.equal(h.queue.size, 6);
    h.clock.advance(FAR);
    const expected = [...deadlines]
      .sort((a, b) => a - b)
      .filter((d) => d !== victim.deadlineAt)
      .map((d) => `at${d}`);
    assert.deepEqual(h.names(), expected);
    assert.ok(
      h.expired.every((e) => e.at === Number(e.name.slice(2))),
      'each at its own deadline',
    );
  };

  test('removing the head keeps the rest in deadline order', () => {
    removeAtSlot(() => 0);
  });

  test('removing a middle entry keeps the rest in deadline order', () => {
    removeAtSlot((size) => size >> 1);
    removeAtSlot(() => 1);
    removeAtSlot(() => 2);
  });

  test('removing the entry in the last heap slot keeps the rest in deadline order', () => {
    removeAtSlot((size) => size - 1);
  });

  test('an entry moved into a removed slot rises above a parent later than it', () => {
    const h = harness();
    const deadlines = [
      44, 35, 46, 35, 38, 41, 40, 23, 23, 13, 28, 8, 49, 9, 23, 14, 30, 24, 7, 28, 46, 17, 23, 14, 33, 19, 40,
      12, 2, 16, 9, 24,
    ];
    const entries = deadlines.map((d, i) => h.add(String(i), d));
    for (const i of [3, 10, 21, 12]) h.queue.remove(entries[i] as TestEntry);
    h.clock.advance(FAR);
    const expected = deadlines.filter((_, i) => ![3, 10, 21, 12].includes(i)).sort((a, b) => a - b);
    assert.deepEqual(
      h.expired.map((e) => e.at),
      expected,
    );
  });

  test('removing the latest-deadline entry keeps the rest in deadline order', () => {
    const h = harness();
    h.add('b', 20);
    const last = h.add('c', 30);
    h.add('a', 10);
    h.queue.remove(last);
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['a', 'b']);
  });

  test('removing an entry twice, or one never added, is harmless', () => {
    const h = harness();
    const a = h.add('a', 10);
    h.add('b', 20);
    h.add('c', 30);
    h.queue.remove(a);
    h.queue.remove(a);
    assert.equal(h.queue.size, 2);

    h.queue.remove(h.entry('stranger', 5));
    assert.equal(h.queue.size, 2);
    // An entry claiming a slot it does not hold (queued elsewhere, or a stale index).
    const impostor = h.entry('impostor', 5);
    impostor.heapIndex = 0;
    h.queue.remove(impostor);
    assert.equal(h.queue.size, 2);
    const elsewhere = new DeadlineQueue(h.clock);
    const other = h.entry('other', 5);
    elsewhere.add(other);
    h.queue.remove(other);
    assert.equal(h.queue.size, 2);
    assert.equal(elsewhere.size, 1);
    elsewhere.clear();

    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['b', 'c']);
    h.queue.remove(a);
    assert.equal(h.queue.size, 0);
  });

  test('removing an entry that already expired is harmless', () => {
    const h = harness();
    const a = h.add('a', 10);
    h.add('b', 20);
    h.clock.advance(10);
    h.queue.remove(a);
    assert.equal(h.queue.size, 1);
    h.clock.advance(10);
    assert.deepEqual(h.names(), ['a', 'b']);
  });

  test('heapIndex is -1 after removal, after expiry (already inside expire) and after clear', () => {
    const h = harness();
    const removed = h.add('removed', 10);
    const expiring = h.add('expiring', 20);
    const cleared = h.add('cleared', 30);
    assert.ok(removed.heapIndex >= 0 && expiring.heapIndex >= 0 && cleared.heapIndex >= 0);
    h.queue.remove(removed);
    assert.equal(removed.heapIndex, -1);
    h.clock.advance(20);
    assert.deepEqual(h.expired, [{ name: 'expiring', at: 20, heapIndex: -1 }]);
    assert.equal(expiring.heapIndex, -1);
    h.queue.clear();
    assert.equal(cleared.heapIndex, -1);
  });

  test('random adds and removes, then a long advance: exactly the entries not removed expire, in order', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ add: fc.integer({ min: 1, max: 200 }) }), weight: 3 },
      { arbitrary: fc.record({ remove: fc.nat() }), weight: 2 },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 300, size: 'max' }), (ops) => {
        const h = harness();
        const created: TestEntry[] = [];
        const removed = new Set<TestEntry>();
        for (const step of ops) {
          if ('add' in step) {
            created.push(h.add(String(created.length), step.add));
          } else if (created.length > 0) {
            // May pick an entry already removed: removing it again must change nothing.
            const victim = created[step.remove % created.length] as TestEntry;
            h.queue.remove(victim);
            removed.add(victim);
            assert.equal(victim.heapIndex, -1);
          }
          assert.equal(h.queue.size, created.length - removed.size);
          assert.ok(h.clock.pendingTimers <= 1, 'one timer at most');
          if (h.queue.size === 0) assert.equal(h.clock.pendingTimers, 0, 'no timer when empty');
        }

        h.clock.advance(FAR);
        const expected = created
          .map((entry, i) => ({ entry, i }))
          .filter(({ entry }) => !removed.has(entry))
          .sort((a, b) => a.entry.deadlineAt - b.entry.deadlineAt || a.i - b.i);
        assert.deepEqual(
          h.expired.map((e) => [e.name, e.at]),
          expected.map(({ entry, i }) => [String(i), entry.deadlineAt]),
        );
        assert.equal(h.queue.size, 0);
        assert.equal(h.clock.pendingTimers, 0);
        assert.ok(created.every((e) => e.heapIndex === -1));
      }),
      { numRuns: 200 },
    );
  });

  test('random adds, removes and advances behave like a sorted list (model check)', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ add: fc.integer({ min: 0, max: 60 }) }), weight: 4 },
      { arbitrary: fc.record({ remove: fc.nat() }), weight: 2 },
      { arbitrary: fc.record({ advance: fc.integer({ min: 0, max: 25 }) }), weight: 2 },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 200, size: 'max' }), (ops) => {
        const h = harness();
        const created: TestEntry[] = [];
        // The model: entries queued, kept sorted by (deadline, insertion).
        let model: { entry: TestEntry; i: number }[] = [];
        const expected: [string, number][] = [];
        for (const step of ops) {
          if ('add' in step) {
            // Deadlines relative to now, 0 included: due at once.
            const entry = h.add(String(created.length), h.clock.now() + step.add);
            model.push({ entry, i: created.length });
            created.push(entry);
            model.sort((a, b) => a.entry.deadlineAt - b.entry.deadlineAt || a.i - b.i);
          } else if ('remove' in step) {
            if (created.length === 0) continue;
            const victim = created[step.remove % created.length] as TestEntry;
            h.queue.remove(victim);
            model = model.filter(({ entry }) => entry !== victim);
          } else {
            const target = h.clock.now() + step.advance;
            while (model.length > 0 && (model[0] as (typeof model)[0]).entry.deadlineAt <= target) {
              const { entry, i } = model.shift() as (typeof model)[0];
              // An entry added already due expires at the next advance, at that moment.
              expected.push([String(i), Math.max(entry.deadlineAt, h.clock.now())]);
            }
            h.clock.advance(step.advance);
          }
          assert.deepEqual(
            h.expired.map((e) => [e.name, e.at]),
            expected,
          );
          assert.equal(h.queue.size, model.length);
          assert.ok(h.clock.pendingTimers <= 1, 'one timer at most');
          if (model.length === 0) assert.equal(h.clock.pendingTimers, 0, 'no timer when empty');
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('grid: DeadlineQueue timer', () => {
  test('however many entries are queued, one clock timer at most is pending', () => {
    const h = harness();
    for (let i = 0; i < 500; i++) {
      h.add(String(i), 1 + ((i * 7919) % 1000));
      assert.equal(h.clock.pendingTimers, 1);
    }
    for (let now = 0; now < 1000; now += 37) {
      h.clock.advance(37);
      assert.ok(h.clock.pendingTimers <= 1);
    }
    h.clock.advance(FAR);
    assert.equal(h.expired.length, 500);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('adding an entry with a later deadline does not re-arm the timer', () => {
    const h = harness();
    h.add('a', 100);
    const armed = h.clock.timersSet;
    h.clock.advance(10);
    assert.equal(h.clock.nextTimerInMs, 90);
    h.add('later', 200);
    h.add('same', 100);
    assert.equal(h.clock.nextTimerInMs, 90);
    assert.equal(h.clock.timersSet, armed, 'no timer set for a deadline that is not the earliest');
    assert.equal(h.clock.pendingTimers, 1);
  });

  test('adding an entry with an earlier deadline re-arms the timer for it', () => {
    const h = harness();
    h.add('a', 100);
    h.add('earlier', 40);
    assert.equal(h.clock.nextTimerInMs, 40);
    assert.equal(h.clock.pendingTimers, 1, 'the old timer is cancelled');
    h.clock.advance(40);
    assert.deepEqual(h.names(), ['earlier']);
    assert.equal(h.clock.nextTimerInMs, 60);
  });

  test('removing a queued entry that is not the earliest leaves the timer as it is', () => {
    const h = harness();
    h.add('a', 100);
    const b = h.add('b', 200);
    const armed = h.clock.timersSet;
    h.queue.remove(b);
    assert.equal(h.clock.timersSet, armed);
    assert.equal(h.clock.nextTimerInMs, 100);
  });

  test('removing every entry leaves no pending timer, whatever the order', () => {
    for (const order of [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [2, 0, 3, 1],
    ]) {
      const h = harness();
      const entries = [40, 10, 30, 20].map((d) => h.add(`at${d}`, d));
      for (const i of order) h.queue.remove(entries[i] as TestEntry);
      assert.equal(h.queue.size, 0);
      assert.equal(h.clock.pendingTimers, 0, `order ${order.join(',')}`);
      h.clock.advance(FAR);
      assert.deepEqual(h.names(), []);
    }
  });

  test('clear() leaves no pending timer and expires nothing; the queue works afterwards', () => {
    const h = harness();
    const entries = [30, 10, 20].map((d) => h.add(`at${d}`, d));
    h.queue.clear();
    assert.equal(h.queue.size, 0);
    assert.equal(h.clock.pendingTimers, 0);
    assert.ok(entries.every((e) => e.heapIndex === -1));
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), []);

    h.queue.clear();
    assert.equal(h.clock.pendingTimers, 0, 'clearing an empty queue is harmless');
    h.add('after', h.clock.now() + 5);
    assert.equal(h.clock.nextTimerInMs, 5);
    h.clock.advance(5);
    assert.deepEqual(h.names(), ['after']);
  });

  test('when the entry the timer was armed for is removed, the timer fires early and re-arms without expiring the rest early', () => {
    const h = harness();
    const head = h.add('head', 100);
    h.add('next', 250);
    h.add('last', 400);
    h.queue.remove(head);
    assert.equal(h.clock.nextTimerInMs, 100, 'the timer stays armed for the removed deadline');

    h.clock.advance(100);
    assert.deepEqual(h.names(), [], 'the early firing expires nothing');
    assert.equal(h.clock.pendingTimers, 1);
    assert.equal(h.clock.nextTimerInMs, 150, 're-armed for the next deadline');
    h.clock.advance(149);
    assert.deepEqual(h.names(), []);
    h.clock.advance(1);
    assert.deepEqual(h.expired, [{ name: 'next', at: 250, heapIndex: -1 }]);
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['next', 'last']);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('after the armed-for entry is removed, a new entry between it and the rest is not delayed', () => {
    const h = harness();
    const head = h.add('head', 100);
    h.add('rest', 300);
    h.queue.remove(head);
    h.add('between', 150);
    h.clock.advance(149);
    assert.deepEqual(h.names(), []);
    h.clock.advance(1);
    assert.deepEqual(h.expired, [{ name: 'between', at: 150, heapIndex: -1 }]);
    h.clock.advance(150);
    assert.deepEqual(h.names(), ['between', 'rest']);
  });
});

describe('grid: DeadlineQueue expire callbacks', () => {
  test('an expire that adds a new entry (a retry): it expires at its own deadline', () => {
    const h = harness();
    let retry: TestEntry | undefined;
    h.add('first', 10, () => {
      retry = h.add('retry', h.clock.now() + 50);
    });
    h.add('other', 30);
    h.clock.advance(10);
    assert.deepEqual(h.names(), ['first']);
    assert.ok(retry !== undefined && retry.heapIndex >= 0, 'the retry is queued');
    assert.equal(h.queue.size, 2);
    assert.ok(h.clock.pendingTimers <= 1);
    h.clock.advance(49);
    assert.deepEqual(h.names(), ['first', 'other']);
    h.clock.advance(1);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['first', 10],
        ['other', 30],
        ['retry', 60],
      ],
    );
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('a retry added by expire earlier than every queued entry re-arms for it', () => {
    const h = harness();
    h.add('first', 10, () => h.add('retry', h.clock.now() + 5));
    h.add('other', 30);
    h.clock.advance(10);
    assert.equal(h.clock.nextTimerInMs, 5);
    assert.equal(h.clock.pendingTimers, 1);
    h.clock.advance(4);
    assert.deepEqual(h.names(), ['first']);
    h.clock.advance(1);
    assert.deepEqual(h.names(), ['first', 'retry']);
    h.clock.advance(15);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['first', 10],
        ['retry', 15],
        ['other', 30],
      ],
    );
  });

  test('a retry added by expire when the queue was otherwise empty arms the timer for it', () => {
    const h = harness();
    h.add('only', 10, () => h.add('retry', h.clock.now() + 20));
    h.clock.advance(10);
    assert.equal(h.clock.pendingTimers, 1);
    assert.equal(h.clock.nextTimerInMs, 20);
    h.clock.advance(20);
    assert.deepEqual(h.names(), ['only', 'retry']);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('a retry added by expire already due expires in the same firing, after those due before it', () => {
    const h = harness();
    h.add('first', 10, () => h.add('retry', h.clock.now()));
    h.add('tie', 10);
    h.add('later', 40);
    h.clock.advance(10);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['first', 10],
        ['tie', 10],
        ['retry', 10],
      ],
    );
    assert.equal(h.queue.size, 1);
    assert.equal(h.clock.pendingTimers, 1);
    assert.equal(h.clock.nextTimerInMs, 30);
    h.clock.advance(30);
    assert.deepEqual(h.names(), ['first', 'tie', 'retry', 'later']);
    assert.equal(h.clock.pendingTimers, 0);
  });

  test('an expire that removes another entry due at the same moment: the removed one never expires', () => {
    const h = harness();
    h.add('first', 10, () => {
      h.queue.remove(sibling);
    });
    const sibling = h.add('sibling', 10);
    h.add('third', 10);
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['first', 'third']);
    assert.equal(sibling.heapIndex, -1);
    assert.equal(h.queue.size, 0);
  });

  test('an expire that removes a later entry: it never expires, and the rest keep their deadlines', () => {
    const h = harness();
    h.add('first', 10, () => {
      h.queue.remove(victim);
    });
    const victim = h.add('victim', 20);
    h.add('rest', 30);
    h.clock.advance(10);
    assert.equal(h.queue.size, 1);
    assert.ok(h.clock.pendingTimers <= 1);
    h.clock.advance(19);
    assert.deepEqual(h.names(), ['first']);
    h.clock.advance(1);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['first', 10],
        ['rest', 30],
      ],
    );
  });

  test('an expire that removes the last queued entry leaves no pending timer', () => {
    const h = harness();
    h.add('first', 10, () => {
      h.queue.remove(victim);
    });
    const victim = h.add('victim', 20);
    h.clock.advance(10);
    assert.equal(h.queue.size, 0);
    assert.equal(h.clock.pendingTimers, 0);
    h.clock.advance(FAR);
    assert.deepEqual(h.names(), ['first']);
  });

  test('an expire that removes one entry and adds a retry: only the retry and the rest expire', () => {
    const h = harness();
    h.add('first', 10, () => {
      h.queue.remove(victim);
      h.add('retry', h.clock.now() + 15);
    });
    const victim = h.add('victim', 20);
    h.add('rest', 50);
    h.clock.advance(FAR);
    assert.deepEqual(
      h.expired.map((e) => [e.name, e.at]),
      [
        ['first', 10],
        ['retry', 25],
        ['rest', 50],
      ],
    );
    assert.equal(h.clock.pendingTimers, 0);
  });
});

describe('grid: DeadlineQueue size', () => {
  test('size tracks adds, removes and expiries', () => {
    const h = harness();
    assert.equal(h.queue.size, 0);
    const a = h.add('a', 10);
    assert.equal(h.queue.size, 1);
    h.add('b', 20);
    const c = h.add('c', 30);
    h.add('d', 40);
    assert.equal(h.queue.size, 4);
    h.queue.remove(c);
    assert.equal(h.queue.size, 3);
    h.queue.remove(c);
    assert.equal(h.queue.size, 3, 'a second remove changes nothing');
    h.clock.advance(10);
    assert.equal(h.queue.size, 2, 'a expired');
    h.queue.remove(a);
    assert.equal(h.queue.size, 2, 'removing an expired entry changes nothing');
    h.clock.advance(10);
    assert.equal(h.queue.size, 1, 'b expired');
    h.add('e', 100);
    assert.equal(h.queue.size, 2);
    h.clock.advance(FAR);
    assert.equal(h.queue.size, 0);
    assert.deepEqual(h.names(), ['a', 'b', 'd', 'e']);
  });
});
