// The behaviour every StateStore must have, as one suite each store runs
// (memory-store.test.ts, lmdb-store.test.ts, postgres-store.test.ts). Not a test file itself.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import type {
  Appended,
  BatchEffects,
  Envelope,
  StateStore,
  StoredAddress,
  StoredValue,
} from '../../src/runtime/store/state-store.ts';
import { DEFAULT_DEDUP_WINDOW_MS } from '../../src/runtime/store/state-store.ts';

export interface StoreUnderTest {
  /** A new, empty store, closed after the test. */
  open(t: TestContext): Promise<StateStore>;
  /** For a durable store: closes `store` and opens the same data again. */
  reopen?: (t: TestContext, store: StateStore) => Promise<StateStore>;
}

const cart = (id: string): StoredAddress => ['shop', 'cart', id];
const user: StoredAddress = ['shop', 'user', 'ann'];
const value = (text: string, typename = 'io.statefun.types/string'): StoredValue => ({
  typename,
  value: new TextEncoder().encode(text),
});
const text = (v: StoredValue | undefined): string | undefined =>
  v === undefined ? undefined : new TextDecoder().decode(v.value);
const envelope = (target: StoredAddress, body: string, caller?: StoredAddress): Envelope => ({
  target,
  caller,
  argument: value(body),
});

/** Appends at time `now` (0 unless a test is about time). */
function append(store: StateStore, envelopes: readonly Envelope[], now = 0): Promise<Appended[]> {
  return store.append(envelopes, now);
}

/** Commits at time `now` (0 unless a test is about time). */
function commit(store: StateStore, batches: readonly BatchEffects[], now = 0): Promise<void> {
  return store.commit(batches, now);
}

export function describeStateStore(name: string, subject: StoreUnderTest): void {
  describe(`${name}: inboxes`, () => {
    test('appended messages come back per address, oldest first, with increasing seqs', async (t) => {
      const store = await subject.open(t);
      const appended = await append(store, [
        envelope(cart('1'), 'a'),
        envelope(cart('2'), 'x', user),
        envelope(cart('1'), 'b'),
      ]);
      assert.deepEqual(
        appended.map((m) => text(m.argument)),
        ['a', 'x', 'b'],
      );
      assert.ok((appended[0]?.seq ?? 0) < (appended[1]?.seq ?? 0));
      assert.ok((appended[1]?.seq ?? 0) < (appended[2]?.seq ?? 0));
      const one = await store.inbox(cart('1'), 10);
      assert.deepEqual(
        one.map((m) => [text(m.argument), m.caller]),
        [
          ['a', undefined],
          ['b', undefined],
        ],
      );
      const [fromUser] = await store.inbox(cart('2'), 10);
      assert.ok(fromUser);
      assert.deepEqual([fromUser.target, fromUser.caller], [cart('2'), user]);
      assert.deepEqual(await store.inbox(cart('1'), 1).then((m) => m.map((x) => text(x.argument))), ['a']);
      assert.deepEqual(await store.inbox(cart('3'), 10), []);
    });

    test('a store keeps its own copy: the caller may reuse its buffers', async (t) => {
      const store = await subject.open(t);
      const bytes = new TextEncoder().encode('kept');
      await append(store, [{ target: cart('1'), argument: { typename: 't/x', value: bytes } }]);
      bytes.fill(0);
      assert.equal(text((await store.inbox(cart('1'), 1))[0]?.argument), 'kept');
    });

    test('addresses with messages are listed in key order, a page at a time', async (t) => {
      const store = await subject.open(t);
      const odd: StoredAddress = ['shop', 'cart', '__proto__'];
      await append(store, [
        envelope(cart('b'), '1'),
        envelope(cart('a'), '1'),
        envelope(cart('a'), '2'),
        envelope(odd, '1'),
        envelope(user, '1'),
      ]);
      const all = await store.addressesWithInbox(10);
      assert.deepEqual(all, [odd, cart('a'), cart('b'), user]);
      assert.deepEqual(await store.addressesWithInbox(2), [odd, cart('a')]);
      assert.deepEqual(await store.addressesWithInbox(10, cart('a')), [cart('b'), user]);
      assert.deepEqual(await store.addressesWithInbox(10, user), []);
    });
  });

  describe(`${name}: ingress deduplication`, () => {
    const fromNats = (id: string, body: string): Envelope => ({
      ...envelope(cart('1'), body),
      ingressId: id,
    });

    test('a message with the id of one appended within the window is not stored again', async (t) => {
      const store = await subject.open(t);
      const [first] = await append(store, [fromNats('nats:orders:1', 'add')], 1_000);
      assert.ok(first);
      assert.equal(first.duplicate, false);
      const [again] = await append(
        store,
        [fromNats('nats:orders:1', 'add')],
        1_000 + DEFAULT_DEDUP_WINDOW_MS - 1,
      );
      assert.deepEqual([again?.duplicate, again?.seq], [true, first.seq]);
      // Even once the first was consumed: the id is remembered, not the message.
      await commit(store, [{ address: cart('1'), consumed: [first.seq] }]);
      const [late] = await append(store, [fromNats('nats:orders:1', 'add')], 2_000);
      assert.deepEqual([late?.duplicate, late?.seq], [true, first.seq]);
      assert.equal((await store.counts()).inboxMessages, 0);
      // Other ids, and messages without one, are stored.
      const more = await append(
        store,
        [fromNats('nats:orders:2', 'x'), envelope(cart('1'), 'y'), envelope(cart('1'), 'y')],
        2_000,
      );
      assert.deepEqual(
        more.map((m) => m.duplicate),
        [false, false, false],
      );
    });

    test('within one append, the first envelope with an id is stored and the rest are its duplicates', async (t) => {
      const store = await subject.open(t);
      const appended = await append(store, [fromNats('a', '1'), fromNats('b', '2'), fromNats('a', '1')], 0);
      assert.deepEqual(
        appended.map((m) => m.duplicate),
        [false, false, true],
      );
      assert.equal(appended[2]?.seq, appended[0]?.seq);
      assert.deepEqual(
        (await store.inbox(cart('1'), 10)).map((m) => text(m.argument)),
        ['1', '2'],
      );
    });

    test('past the window the id is forgotten: swept or not, a message with it is stored again', async (t) => {
      const store = await subject.open(t);
      await append(store, [fromNats('x', 'first'), fromNats('y', 'first')], 0);
      const [x] = await append(store, [fromNats('x', 'second')], DEFAULT_DEDUP_WINDOW_MS);
      assert.equal(x?.duplicate, false);
      await store.sweepExpired(DEFAULT_DEDUP_WINDOW_MS, 100);
      const [y] = await append(store, [fromNats('y', 'second')], DEFAULT_DEDUP_WINDOW_MS);
      assert.equal(y?.duplicate, false);
      // The id is remembered afresh from the second message.
      const [x2] = await append(store, [fromNats('x', 'third')], DEFAULT_DEDUP_WINDOW_MS + 1);
      assert.deepEqual([x2?.duplicate, x2?.seq], [true, x.seq]);
      assert.equal((await store.inbox(cart('1'), 10)).length, 4);
    });

    test('an empty or overlong ingress id is refused', async (t) => {
      const store = await subject.open(t);
      await assert.rejects(
        append(store, [fromNats('', 'x')]),
        /an ingressId is a string of 1 to 512 characters/,
      );
      await assert.rejects(append(store, [fromNats('i'.repeat(513), 'x')]), /an ingressId is a string/);
      assert.equal((await store.counts()).inboxMessages, 0);
    });
  });

  describe(`${name}: commit`, () => {
    test('a batch consumes what it ran on, writes state, and sends messages, all at once', async (t) => {
      const store = await subject.open(t);
      const [first, second] = await append(store, [envelope(cart('1'), 'add'), envelope(cart('1'), 'add')]);
      const third = (await append(store, [envelope(cart('1'), 'late')]))[0];
      assert.ok(first && second && third);
      await commit(store, [
        {
          address: cart('1'),
          consumed: [first.seq, second.seq],
          mutations: [{ name: 'items', value: value('2') }],
          messages: [envelope(user, 'cart 1 has 2', cart('1'))],
        },
      ]);
      // What arrived after the batch was read stays for the next one.
      assert.deepEqual(
        (await store.inbox(cart('1'), 10)).map((m) => text(m.argument)),
        ['late'],
      );
      assert.equal(text((await store.readState(cart('1'), 0)).get('items')), '2');
      const sent = await store.inbox(user, 10);
      assert.deepEqual(
        sent.map((m) => [text(m.argument), m.caller]),
        [['cart 1 has 2', cart('1')]],
      );
      assert.ok((sent[0]?.seq ?? 0) > third.seq);
    });

    test('only the messages a batch names are consumed, whatever their seqs', async (t) => {
      const store = await subject.open(t);
      const [older, newer] = await append(store, [
        envelope(cart('1'), 'unseen'),
        envelope(cart('1'), 'seen'),
      ]);
      assert.ok(older && newer);
      await commit(store, [{ address: cart('1'), consumed: [newer.seq] }]);
      assert.deepEqual(
        (await store.inbox(cart('1'), 10)).map((m) => text(m.argument)),
        ['unseen'],
      );
      assert.equal((await store.counts()).inboxMessages, 1);
    });

    test('a deleted value is gone, and other values stay', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: cart('1'),
          mutations: [
            { name: 'items', value: value('2') },
            { name: 'owner', value: value('ann') },
          ],
        },
      ]);
      await commit(store, [{ address: cart('1'), mutations: [{ name: 'items' }] }]);
      const state = await store.readState(cart('1'), 0);
      assert.deepEqual([...state.keys()], ['owner']);
      await commit(store, [{ address: cart('1'), mutations: [{ name: 'owner' }] }]);
      assert.equal((await store.readState(cart('1'), 0)).size, 0);
    });

    test('a value is stored with its typename, and a name that is a JavaScript word stays a name', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: cart('1'),
          mutations: [
            { name: '__proto__', value: value('p', 'io.statefun.types/int') },
            { name: 'constructor', value: value('c') },
          ],
        },
      ]);
      const state = await store.readState(cart('1'), 0);
      assert.deepEqual([...state].map(([n, v]) => [n, v.typename, text(v)]).sort(), [
        ['__proto__', 'io.statefun.types/int', 'p'],
        ['constructor', 'io.statefun.types/string', 'c'],
      ]);
    });

    test('many batches commit together; if one is refused, none is applied', async (t) => {
      const store = await subject.open(t);
      const batchWith = (id: string, token: string): BatchEffects => ({
        address: cart(id),
        mutations: [{ name: 'items', value: value(id) }],
        timers: [{ send: { dueAt: 100, envelope: envelope(cart(id), 'expire'), token } }],
        egress: [{ egress: ['shop', 'audit'], value: value(`cart ${id}`) }],
      });
      await commit(store, [batchWith('1', 'expiry'), batchWith('2', 'expiry')]);
      assert.equal(text((await store.readState(cart('2'), 0)).get('items')), '2');

      // Cart 3 is fine; cart 1 sets a token that is still pending: neither applies.
      await assert.rejects(
        commit(store, [batchWith('3', 'expiry'), batchWith('1', 'expiry')]),
        /token "expiry" is already pending for shop\/cart\/1; nothing of the commit was applied/,
      );
      assert.equal((await store.readState(cart('3'), 0)).size, 0);
      assert.equal(await store.hasPendingToken(cart('3'), 'expiry'), false);
      assert.deepEqual(await store.counts(), { inboxMessages: 0, delayedMessages: 2, outboxRecords: 2 });

      // The same token twice in one commit, for one address, is refused the same way.
      await assert.rejects(
        commit(store, [batchWith('4', 'twice'), batchWith('4', 'twice')]),
        /already pending/,
      );
      assert.equal((await store.readState(cart('4'), 0)).size, 0);
    });
  });

  describe(`${name}: effects apply once`, () => {
    test('a batch committed twice is refused the second time, and nothing of it applies again', async (t) => {
      const store = await subject.open(t);
      const [message] = await append(store, [envelope(cart('1'), 'add')]);
      assert.ok(message);
      const batch: BatchEffects = {
        address: cart('1'),
        consumed: [message.seq],
        messages: [envelope(user, 'added', cart('1'))],
        egress: [{ egress: ['shop', 'audit'], value: value('added') }],
      };
      await commit(store, [batch]);
      await assert.rejects(
        commit(store, [{ address: cart('2'), mutations: [{ name: 'x', value: value('x') }] }, batch]),
        new RegExp(
          `message ${message.seq} is not in the inbox of shop/cart/1: the batch was applied already`,
        ),
      );
      assert.equal((await store.inbox(user, 10)).length, 1);
      assert.equal((await store.outbox(10)).length, 1);
      assert.equal((await store.readState(cart('2'), 0)).size, 0, 'the other batch of the refused commit');
    });

    test('a message of another address cannot be consumed by a batch', async (t) => {
      const store = await subject.open(t);
      const [message] = await append(store, [envelope(cart('1'), 'mine')]);
      assert.ok(message);
      await assert.rejects(
        commit(store, [{ address: cart('2'), consumed: [message.seq] }]),
        /not in the inbox/,
      );
      assert.equal((await store.inbox(cart('1'), 10)).length, 1);
    });
  });

  describe(`${name}: input it refuses`, () => {
    test('times that are not finite, limits out of range, bad seqs and empty tokens are refused', async (t) => {
      const store = await subject.open(t);
      await assert.rejects(store.readState(cart('1'), Number.NaN), /now must be a finite time/);
      await assert.rejects(store.fireDue(Number.POSITIVE_INFINITY, 1), /now must be a finite time/);
      await assert.rejects(store.sweepExpired(Number.NaN, 1), /now must be a finite time/);
      for (const limit of [0, -1, 1.5, Number.NaN, 1_000_001]) {
        await assert.rejects(store.inbox(cart('1'), limit), /limit must be an integer from 1 to 100000/);
        await assert.rejects(store.outbox(limit), /limit must be an integer/);
      }
      await assert.rejects(
        commit(store, [{ address: cart('1'), consumed: [1.5] }]),
        /a seq is a positive safe integer/,
      );
      await assert.rejects(store.acknowledgeOutbox([-1]), /a seq is a positive safe integer/);
      await assert.rejects(
        commit(store, [
          { address: cart('1'), mutations: [{ name: 'x', value: value('x'), expiresAt: Number.NaN }] },
        ]),
        /expiresAt must be a finite time/,
      );
      await assert.rejects(
        commit(store, [
          { address: user, timers: [{ send: { dueAt: Number.NaN, envelope: envelope(cart('1'), 'x') } }] },
        ]),
        /dueAt must be a finite time/,
      );
      await assert.rejects(
        commit(store, [
          { address: user, timers: [{ send: { dueAt: 1, envelope: envelope(cart('1'), 'x'), token: '' } }] },
        ]),
        /an empty cancellation token, from shop\/user\/ann/,
      );
      await assert.rejects(commit(store, [], Number.NaN), /now must be a finite time/);
      assert.deepEqual(await store.counts(), { inboxMessages: 0, delayedMessages: 0, outboxRecords: 0 });
    });

    test('ids with control characters, long ones among them, stay distinct addresses', async (t) => {
      const store = await subject.open(t);
      const long = 'z'.repeat(70);
      const ids = [
        'a\u0000',
        'a\u0004\u0000',
        `a\u0000${long}`,
        `a\u0004\u0000${long}`,
        `v\u0000${long}`,
        'v',
        'a\u0005E',
      ];
      for (const id of ids) {
        await append(store, [envelope(cart(id), id)]);
        await commit(store, [{ address: cart(id), mutations: [{ name: 'id', value: value(id) }] }]);
      }
      for (const id of ids) {
        assert.deepEqual(
          (await store.inbox(cart(id), 10)).map((m) => text(m.argument)),
          [id],
          JSON.stringify(id),
        );
        assert.equal(text((await store.readState(cart(id), 0)).get('id')), id, JSON.stringify(id));
      }
      const listed = await store.addressesWithInbox(100);
      assert.deepEqual(listed.map((a) => a[2]).sort(), [...ids].sort());
    });
  });

  describe(`${name}: expiry`, () => {
    test('a value past its expiry is never returned, and a refresh moves its expiry', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: cart('1'),
          mutations: [
            { name: 'reserved', value: value('yes'), expiresAt: 1_000 },
            { name: 'items', value: value('2') },
          ],
        },
      ]);
      assert.deepEqual(
        [...(await store.readState(cart('1'), 999)).entries()].map(([n, v]) => [n, v.expiresAt]).sort(),
        [
          ['items', undefined],
          ['reserved', 1_000],
        ],
      );
      assert.deepEqual([...(await store.readState(cart('1'), 1_000)).keys()], ['items']);
      // Refreshed (expire-after-call) before it expired: it lives on.
      await commit(store, [{ address: cart('1'), refreshes: [{ name: 'reserved', expiresAt: 5_000 }] }]);
      assert.equal(text((await store.readState(cart('1'), 4_999)).get('reserved')), 'yes');
      // A refresh after the value expired, swept or not, does not bring it back.
      await commit(
        store,
        [{ address: cart('1'), refreshes: [{ name: 'reserved', expiresAt: 9_000 }] }],
        6_000,
      );
      assert.equal((await store.readState(cart('1'), 6_000)).has('reserved'), false);
      // A refresh of a value that is not there creates nothing.
      await commit(store, [{ address: cart('1'), refreshes: [{ name: 'ghost', expiresAt: 9_000 }] }]);
      assert.equal((await store.readState(cart('1'), 0)).has('ghost'), false);
    });

    test('a sweep deletes expired values, at most as many as asked, and not ones written since', async (t) => {
      const store = await subject.open(t);
      for (const id of ['1', '2', '3']) {
        await commit(store, [
          { address: cart(id), mutations: [{ name: 'reserved', value: value(id), expiresAt: 100 }] },
        ]);
      }
      // Written again with a later expiry: the old expiry must not sweep it.
      await commit(store, [
        { address: cart('3'), mutations: [{ name: 'reserved', value: value('again'), expiresAt: 10_000 }] },
      ]);
      assert.equal((await store.sweepExpired(99, 10)).values, 0);
      assert.deepEqual(await store.sweepExpired(100, 1), { values: 1, ingressIds: 0, more: true });
      assert.deepEqual(await store.sweepExpired(100, 10), { values: 1, ingressIds: 0, more: false });
      assert.equal((await store.sweepExpired(100, 10)).values, 0);
      assert.equal(text((await store.readState(cart('3'), 100)).get('reserved')), 'again');
      assert.equal((await store.readState(cart('1'), 0)).size, 0);
      assert.equal((await store.readState(cart('2'), 0)).size, 0);
    });
  });

  describe(`${name}: delayed messages`, () => {
    test('a delayed message waits until it is due, then lands in its target inbox, earliest first', async (t) => {
      const store = await subject.open(t);
      assert.equal(await store.nextDueAt(), undefined);
      await commit(store, [
        {
          address: user,
          timers: [
            { send: { dueAt: 300, envelope: envelope(cart('1'), 'third', user) } },
            { send: { dueAt: 100, envelope: envelope(cart('1'), 'first', user) } },
            { send: { dueAt: 200, envelope: envelope(cart('2'), 'second', user) } },
          ],
        },
      ]);
      assert.equal(await store.nextDueAt(), 100);
      assert.deepEqual(await store.fireDue(99, 10), []);
      const fired = await store.fireDue(250, 1);
      assert.deepEqual(
        fired.map((m) => text(m.argument)),
        ['first'],
      );
      assert.deepEqual(
        (await store.fireDue(250, 10)).map((m) => text(m.argument)),
        ['second'],
      );
      assert.equal(await store.nextDueAt(), 300);
      assert.deepEqual(
        (await store.inbox(cart('1'), 10)).map((m) => [text(m.argument), m.caller]),
        [['first', user]],
      );
      assert.deepEqual(await store.counts(), { inboxMessages: 2, delayedMessages: 1, outboxRecords: 0 });
    });

    test('a token is pending until its message fires or is cancelled, per sending address', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: user,
          timers: [{ send: { dueAt: 100, envelope: envelope(cart('1'), 'remind'), token: 't' } }],
        },
      ]);
      assert.equal(await store.hasPendingToken(user, 't'), true);
      // The same token from another address is another token.
      assert.equal(await store.hasPendingToken(cart('1'), 't'), false);
      await commit(store, [
        {
          address: cart('1'),
          timers: [{ send: { dueAt: 100, envelope: envelope(user, 'ok'), token: 't' } }],
        },
      ]);
      await store.fireDue(100, 1);
      // Due at the same time, the one set first fires first.
      assert.equal(await store.hasPendingToken(user, 't'), false);
      assert.equal(await store.hasPendingToken(cart('1'), 't'), true);

      // Once fired, the token is free again.
      await commit(store, [
        {
          address: user,
          timers: [{ send: { dueAt: 500, envelope: envelope(cart('1'), 'again'), token: 't' } }],
        },
      ]);
      assert.equal(await store.hasPendingToken(user, 't'), true);
    });

    test('a batch sends and cancels in call order: send then cancel leaves nothing pending', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: user,
          timers: [
            { send: { dueAt: 100, envelope: envelope(cart('1'), 'never'), token: 't' } },
            { cancel: 't' },
          ],
        },
      ]);
      assert.equal(await store.hasPendingToken(user, 't'), false);
      assert.deepEqual(await store.fireDue(1_000, 10), []);
      // Two batches of one address in one commit: the second sees what the first left.
      await commit(store, [
        {
          address: user,
          timers: [{ send: { dueAt: 100, envelope: envelope(cart('1'), 'first'), token: 'u' } }],
        },
        {
          address: user,
          timers: [
            { cancel: 'u' },
            { send: { dueAt: 200, envelope: envelope(cart('1'), 'second'), token: 'u' } },
          ],
        },
      ]);
      assert.deepEqual(
        (await store.fireDue(1_000, 10)).map((m) => text(m.argument)),
        ['second'],
      );
    });

    test('cancelling removes a pending message; an unknown or fired token is ignored; cancel and set again is one batch', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: user,
          timers: [{ send: { dueAt: 100, envelope: envelope(cart('1'), 'remind'), token: 't' } }],
        },
      ]);
      await commit(store, [{ address: user, timers: [{ cancel: 't' }, { cancel: 'unknown' }] }]);
      assert.equal(await store.hasPendingToken(user, 't'), false);
      assert.equal(await store.nextDueAt(), undefined);
      assert.deepEqual(await store.fireDue(1_000, 10), []);
      // Cancelled twice: nothing happens the second time.
      await commit(store, [{ address: user, timers: [{ cancel: 't' }] }]);

      await commit(store, [
        {
          address: user,
          timers: [{ send: { dueAt: 100, envelope: envelope(cart('1'), 'old'), token: 'u' } }],
        },
      ]);
      await commit(store, [
        {
          address: user,
          timers: [
            { cancel: 'u' },
            { send: { dueAt: 200, envelope: envelope(cart('1'), 'new'), token: 'u' } },
          ],
        },
      ]);
      assert.deepEqual(
        (await store.fireDue(1_000, 10)).map((m) => text(m.argument)),
        ['new'],
      );
    });
  });

  describe(`${name}: egress outbox`, () => {
    test('egress records wait in the outbox, in order, until they are acknowledged', async (t) => {
      const store = await subject.open(t);
      await commit(store, [
        {
          address: cart('1'),
          egress: [
            { egress: ['shop', 'kafka'], value: value('one') },
            { egress: ['shop', 'nats'], value: value('two') },
          ],
        },
        { address: cart('2'), egress: [{ egress: ['shop', 'kafka'], value: value('three') }] },
      ]);
      const records = await store.outbox(10);
      assert.deepEqual(
        records.map((r) => [r.egress, text(r.value)]),
        [
          [['shop', 'kafka'], 'one'],
          [['shop', 'nats'], 'two'],
          [['shop', 'kafka'], 'three'],
        ],
      );
      const [first, second] = records;
      assert.ok(first && second);
      assert.deepEqual(
        (await store.outbox(1)).map((r) => text(r.value)),
        ['one'],
      );
      await store.acknowledgeOutbox([first.seq, second.seq, 999_999]);
      assert.deepEqual(
        (await store.outbox(10)).map((r) => text(r.value)),
        ['three'],
      );
      assert.equal((await store.counts()).outboxRecords, 1);
    });
  });

  describe(`${name}: lifecycle`, () => {
    test('a closed store refuses to be used: every method rejects', async (t) => {
      const store = await subject.open(t);
      await store.close();
      await store.close();
      const calls: (() => Promise<unknown>)[] = [
        () => append(store, [envelope(cart('1'), 'x')]),
        () => store.inbox(cart('1'), 1),
        () => store.addressesWithInbox(1),
        () => store.readState(cart('1'), 0),
        () => commit(store, []),
        () => store.hasPendingToken(user, 't'),
        () => store.nextDueAt(),
        () => store.fireDue(0, 1),
        () => store.outbox(1),
        () => store.acknowledgeOutbox([]),
        () => store.sweepExpired(0, 1),
        () => store.counts(),
      ];
      for (const call of calls) {
        const pending = call();
        assert.ok(pending instanceof Promise, 'rejects rather than throws');
        await assert.rejects(pending, /the state store is closed/);
      }
    });

    const { reopen } = subject;
    if (reopen !== undefined) {
      test('everything committed is there after a reopen, and seqs are never handed out twice', async (t) => {
        const store = await subject.open(t);
        const [message] = await append(store, [envelope(cart('1'), 'queued')]);
        await commit(store, [
          {
            address: user,
            mutations: [{ name: 'name', value: value('Ann'), expiresAt: 1_000 }],
            timers: [{ send: { dueAt: 50, envelope: envelope(cart('2'), 'later'), token: 't' } }],
            egress: [{ egress: ['shop', 'audit'], value: value('audit') }],
          },
        ]);
        const again = await reopen(t, store);
        assert.equal(text((await again.inbox(cart('1'), 1))[0]?.argument), 'queued');
        assert.equal(text((await again.readState(user, 0)).get('name')), 'Ann');
        assert.equal(await again.hasPendingToken(user, 't'), true);
        assert.equal(await again.nextDueAt(), 50);
        assert.equal(text((await again.outbox(1))[0]?.value), 'audit');
        const [next] = await append(again, [envelope(cart('1'), 'next')]);
        assert.ok((next?.seq ?? 0) > (message?.seq ?? Number.POSITIVE_INFINITY), 'inbox seqs go on');
        const [oldRecord] = await again.outbox(1);
        await commit(again, [
          { address: user, egress: [{ egress: ['shop', 'audit'], value: value('next') }] },
        ]);
        const records = await again.outbox(10);
        assert.deepEqual(
          records.map((r) => text(r.value)),
          ['audit', 'next'],
        );
        assert.ok((records[1]?.seq ?? 0) > (oldRecord?.seq ?? Number.POSITIVE_INFINITY), 'outbox seqs go on');
        // The ingress ids it remembered survived too.
        const [dup] = await append(again, [{ ...envelope(cart('1'), 'n'), ingressId: 'kept' }], 1);
        assert.equal(dup?.duplicate, false);
        const reopenedAgain = await reopen(t, again);
        const [dupAgain] = await append(
          reopenedAgain,
          [{ ...envelope(cart('1'), 'n'), ingressId: 'kept' }],
          2,
        );
        assert.deepEqual([dupAgain?.duplicate, dupAgain?.seq], [true, dup.seq]);
        // The value's expiry survived too: a sweep after it expired finds it.
        assert.equal((await reopenedAgain.sweepExpired(1_000, 10)).values, 1);
      });
    }
  });
}
