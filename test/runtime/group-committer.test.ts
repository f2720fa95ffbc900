import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CapacityExceededError, ClosedError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { GroupCommitter } from '../../src/runtime/group-committer.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { BatchEffects, StoredAddress, StoredValue } from '../../src/runtime/store/state-store.ts';

const cart = (id: string): StoredAddress => ['shop', 'cart', id];
const text = (body: string): StoredValue => ({
  typename: 'io.statefun.types/string',
  value: new TextEncoder().encode(body),
});
const write = (id: string): BatchEffects => ({
  address: cart(id),
  mutations: [{ name: 'items', value: text(id) }],
});

/** A memory store that records each commit's size and time, and can hold commits until released. */
class RecordingStore extends MemoryStateStore {
  readonly commits: { size: number; now: number }[] = [];
  gate: Promise<void> | undefined;

  override async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
    this.commits.push({ size: batches.length, now });
    await this.gate;
    await super.commit(batches, now);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('group commit', () => {
  test('batches submitted in one turn are committed together, at the clock’s wall time', async () => {
    const store = new RecordingStore();
    const clock = new FakeClock();
    const committer = new GroupCommitter({ store, clock });
    await Promise.all(['1', '2', '3'].map((id) => committer.submit(write(id))));
    assert.deepEqual(store.commits, [{ size: 3, now: clock.wallTimeMs() }]);
    assert.equal((await store.readState(cart('2'), 0)).size, 1);
    assert.deepEqual(committer.stats(), {
      commits: 1,
      batchesCommitted: 3,
      largestCommit: 3,
      batchesFailed: 0,
      refused: 0,
      pending: 0,
    });
  });

  test('while a commit is in flight, the batches that finish meanwhile wait and go as the next one', async () => {
    const store = new RecordingStore();
    const held = gate();
    store.gate = held.promise;
    const committer = new GroupCommitter({ store, clock: new FakeClock() });
    const first = committer.submit(write('1'));
    await Promise.resolve();
    await Promise.resolve();
    const rest = ['2', '3', '4'].map((id) => committer.submit(write(id)));
    assert.equal(committer.stats().pending, 3);
    store.gate = undefined;
    held.open();
    await Promise.all([first, ...rest]);
    assert.deepEqual(
      store.commits.map((c) => c.size),
      [1, 3],
    );
  });

  test('a commit holds at most maxBatchesPerCommit batches', async () => {
    const store = new RecordingStore();
    const committer = new GroupCommitter({ store, clock: new FakeClock(), maxBatchesPerCommit: 2 });
    await Promise.all(['1', '2', '3', '4', '5'].map((id) => committer.submit(write(id))));
    assert.deepEqual(
      store.commits.map((c) => c.size),
      [2, 2, 1],
    );
  });

  test('a refused batch fails alone: its group is committed again batch by batch', async () => {
    const store = new RecordingStore();
    const committer = new GroupCommitter({ store, clock: new FakeClock() });
    const [message] = await store.append([{ target: cart('9'), argument: text('for cart 9') }], 0);
    assert.ok(message);
    // Consuming a message that is not in cart 8's inbox: the store refuses that batch.
    const stale: BatchEffects = { address: cart('8'), consumed: [message.seq] };
    const results = await Promise.allSettled([
      committer.submit(write('1')),
      committer.submit(stale),
      committer.submit(write('2')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /not in the inbox of shop\/cart\/8/);
    assert.deepEqual(
      store.commits.map((c) => c.size),
      [3, 1, 1, 1],
    );
    assert.equal((await store.readState(cart('1'), 0)).size, 1);
    assert.equal((await store.readState(cart('2'), 0)).size, 1);
    assert.deepEqual(committer.stats().batchesFailed, 1);
  });

  test('past maxPending waiting batches a submission is refused at once, retryable, and counted', async () => {
    const store = new RecordingStore();
    const held = gate();
    store.gate = held.promise;
    const committer = new GroupCommitter({ store, clock: new FakeClock(), maxPending: 2 });
    const first = committer.submit(write('1'));
    await Promise.resolve();
    await Promise.resolve();
    const waiting = [committer.submit(write('2')), committer.submit(write('3'))];
    await assert.rejects(committer.submit(write('4')), (error: unknown) => {
      assert.ok(error instanceof CapacityExceededError);
      assert.equal(error.retryable, true);
      assert.equal(error.limit, 2);
      return true;
    });
    assert.equal(committer.stats().refused, 1);
    store.gate = undefined;
    held.open();
    await Promise.all([first, ...waiting]);
    assert.equal((await store.readState(cart('4'), 0)).size, 0);
  });

  test('close commits what is pending, then refuses new batches', async () => {
    const store = new RecordingStore();
    const committer = new GroupCommitter({ store, clock: new FakeClock() });
    const pending = committer.submit(write('1'));
    await committer.close();
    await pending;
    assert.equal((await store.readState(cart('1'), 0)).size, 1);
    await assert.rejects(committer.submit(write('2')), ClosedError);
    assert.throws(
      () => new GroupCommitter({ store, clock: new FakeClock(), maxPending: 0 }),
      /maxPending must be a positive integer/,
    );
  });
});
