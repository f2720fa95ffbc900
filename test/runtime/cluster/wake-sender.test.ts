// Wakes tell an owner about inbox messages another node stored for it: batched per owner, an
// address named once per request, bounded, and dropped (counted) rather than queued forever.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decodeWake, WAKE_HANDLER } from '../../../src/runtime/cluster/forward-codec.ts';
import { WakeSender, type WakeSenderOptions } from '../../../src/runtime/cluster/wake-sender.ts';
import type { StoredAddress } from '../../../src/runtime/store/state-store.ts';

const cart = (id: string): StoredAddress => ['shop', 'cart', id];

interface Request {
  readonly host: string;
  readonly handler: number;
  readonly addresses: StoredAddress[];
}

/** The grid: records each wake; waits on `gate` while set; fails while `failure` is set. */
class FakeGrid {
  readonly requests: Request[] = [];
  gate: Promise<void> | undefined;
  failure: Error | undefined;

  readonly request = async (host: string, handler: number, payload: Uint8Array): Promise<undefined> => {
    this.requests.push({ host, handler, addresses: decodeWake(payload) });
    await this.gate;
    if (this.failure !== undefined) throw this.failure;
    return undefined;
  };
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets queued promise callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(options: Partial<WakeSenderOptions> = {}): { sender: WakeSender; grid: FakeGrid } {
  const grid = new FakeGrid();
  return { sender: new WakeSender({ request: grid.request, ...options }), grid };
}

describe('wake sender', () => {
  test('wakes for one owner in one turn go as one request, each address named once', async () => {
    const { sender, grid } = setup();
    sender.wake('b', cart('1'));
    sender.wake('b', cart('2'));
    sender.wake('b', cart('1'));
    sender.wake('b', ['shop', 'cart', '1']); // an equal address, another array
    assert.equal(grid.requests.length, 0, 'not sent before the turn ends');
    await settle();
    assert.deepEqual(grid.requests, [
      { host: 'b', handler: WAKE_HANDLER, addresses: [cart('1'), cart('2')] },
    ]);
    assert.deepEqual(sender.stats(), { sent: 2, dropped: 0 });
  });

  test('each owner gets its own request', async () => {
    const { sender, grid } = setup();
    sender.wake('b', cart('1'));
    sender.wake('c', cart('2'));
    sender.wake('b', cart('3'));
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => [r.host, r.addresses]),
      [
        ['b', [cart('1'), cart('3')]],
        ['c', [cart('2')]],
      ],
    );
    assert.deepEqual(sender.stats(), { sent: 3, dropped: 0 });
  });

  test('wakes made while a request is in flight go together in the next one', async () => {
    const { sender, grid } = setup();
    const held = gate();
    grid.gate = held.promise;
    sender.wake('b', cart('1'));
    await settle();
    sender.wake('b', cart('2'));
    sender.wake('b', cart('1'));
    await settle();
    assert.equal(grid.requests.length, 1, 'one request in flight per owner');
    held.open();
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.addresses),
      [[cart('1')], [cart('2'), cart('1')]],
    );
    assert.deepEqual(sender.stats(), { sent: 3, dropped: 0 });
  });

  test('past maxPendingPerPeer addresses, wakes are dropped and counted; a repeat is not', async () => {
    const { sender, grid } = setup({ maxPendingPerPeer: 2 });
    sender.wake('b', cart('1'));
    sender.wake('b', cart('2'));
    sender.wake('b', cart('3'));
    sender.wake('b', cart('1'));
    assert.deepEqual(sender.stats(), { sent: 0, dropped: 1 });
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.addresses),
      [[cart('1'), cart('2')]],
    );
    assert.deepEqual(sender.stats(), { sent: 2, dropped: 1 });
  });

  test('past maxPeers owners with wakes waiting, wakes for another owner are dropped', async () => {
    const { sender, grid } = setup({ maxPeers: 1 });
    sender.wake('b', cart('1'));
    sender.wake('c', cart('2'));
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.host),
      ['b'],
    );
    assert.deepEqual(sender.stats(), { sent: 1, dropped: 1 });
    // Once b's wakes are sent, its queue is gone and another owner has room.
    sender.wake('c', cart('2'));
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.host),
      ['b', 'c'],
    );
  });

  test('a failed request drops its addresses, counted; the next wake is sent', async () => {
    const { sender, grid } = setup();
    grid.failure = new Error('connection reset');
    sender.wake('b', cart('1'));
    sender.wake('b', cart('2'));
    await settle();
    assert.deepEqual(sender.stats(), { sent: 0, dropped: 2 });
    grid.failure = undefined;
    sender.wake('b', cart('3'));
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.addresses),
      [[cart('1'), cart('2')], [cart('3')]],
    );
    assert.deepEqual(sender.stats(), { sent: 1, dropped: 2 });
  });

  test('more than 4096 addresses for one owner go in several requests', async () => {
    const { sender, grid } = setup();
    for (let i = 0; i < 5_000; i++) sender.wake('b', cart(String(i)));
    await settle();
    await settle();
    assert.deepEqual(
      grid.requests.map((r) => r.addresses.length),
      [4_096, 904],
    );
    assert.deepEqual(sender.stats(), { sent: 5_000, dropped: 0 });
  });

  test('after close() wakes are ignored and what waited is not sent', async () => {
    const { sender, grid } = setup();
    sender.wake('b', cart('1'));
    sender.close();
    sender.wake('b', cart('2'));
    await settle();
    assert.equal(grid.requests.length, 0);
    assert.deepEqual(sender.stats(), { sent: 0, dropped: 0 });
  });
});
