import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AckLedger, type AckTicket } from '../../src/hub/ack-ledger.ts';
import { ConfigError } from '../../src/internal/errors.ts';

/** Accepts, failing the test if the ledger refuses. */
function accept(ledger: AckLedger, partition: string, sequence: bigint, deliveries: number): AckTicket {
  const ticket = ledger.accept(partition, sequence, deliveries);
  assert.ok(ticket !== undefined, `accept ${partition}/${sequence}`);
  return ticket;
}

describe('AckLedger', () => {
  test('a packet is acknowledged only once every delivery of it has settled', () => {
    const ledger = new AckLedger(100);
    const ticket = accept(ledger, '', 1n, 2);
    ledger.settle(ticket);
    assert.deepEqual(ledger.takeAcks(), new Map(), 'one of two deliveries is not enough');
    ledger.settle(ticket);
    assert.deepEqual(ledger.takeAcks(), new Map([['', 1n]]));
    assert.deepEqual(ledger.takeAcks(), new Map(), 'an ack is taken once');
  });

  test('acks are cumulative: a later packet that settles first waits for the earlier one', () => {
    const ledger = new AckLedger(100);
    const [one, two, three] = [1n, 2n, 3n].map((seq) => accept(ledger, '', seq, 1)) as [
      AckTicket,
      AckTicket,
      AckTicket,
    ];
    ledger.settle(three);
    ledger.settle(two);
    assert.deepEqual(ledger.takeAcks(), new Map());
    ledger.settle(one);
    assert.deepEqual(ledger.takeAcks(), new Map([['', 3n]]));
    assert.equal(ledger.stats().pending, 0);
    assert.equal(ledger.stats().acknowledged, 3);
  });

  test('partitions advance independently', () => {
    const ledger = new AckLedger(100);
    const a1 = accept(ledger, 'a', 1n, 1);
    const b1 = accept(ledger, 'b', 1n, 1);
    const a2 = accept(ledger, 'a', 2n, 1);
    ledger.settle(b1);
    ledger.settle(a2);
    assert.deepEqual(ledger.takeAcks(), new Map([['b', 1n]]));
    ledger.settle(a1);
    assert.deepEqual(ledger.takeAcks(), new Map([['a', 2n]]));
  });

  test('a packet with no deliveries (a sink step) is acknowledged at once', () => {
    const ledger = new AckLedger(100);
    ledger.accept('', 7n, 0);
    assert.deepEqual(ledger.takeAcks(), new Map([['', 7n]]));
  });

  test('past maxPending outstanding packets the next is refused and counted; settling frees room', () => {
    const ledger = new AckLedger(2);
    const first = accept(ledger, '', 1n, 1);
    ledger.accept('', 2n, 1);
    assert.equal(ledger.accept('', 3n, 1), undefined);
    assert.equal(ledger.stats().refused, 1);
    ledger.settle(first);
    assert.ok(ledger.accept('', 3n, 1) !== undefined);
  });

  test('settling a ticket more often than it has deliveries is ignored and counted', () => {
    const ledger = new AckLedger(10);
    const ticket = accept(ledger, '', 1n, 1);
    ledger.settle(ticket);
    ledger.settle(ticket);
    assert.equal(ledger.stats().duplicateSettles, 1);
    assert.equal(ledger.stats().acknowledged, 1);
  });

  test('a bad bound is a ConfigError', () => {
    assert.throws(() => new AckLedger(0), ConfigError);
  });
});

describe('AckLedger room', () => {
  test('waitForRoom resolves at once with room, else once an acknowledgement frees some', async () => {
    const ledger = new AckLedger(1);
    await ledger.waitForRoom();
    const ticket = accept(ledger, '', 1n, 1);
    let woke = false;
    const waiting = ledger.waitForRoom().then(() => (woke = true));
    await Promise.resolve();
    assert.equal(woke, false);
    ledger.settle(ticket);
    await waiting;
    assert.equal(ledger.hasRoom, true);
  });
});
