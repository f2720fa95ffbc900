// Partition ownership on a fake lease table shared by several nodes (no database): owners are
// named by HRW among the live members, leases are taken only with a majority, a moved lease is
// noticed and dropped, and reconciling keeps going on the clock after a failure.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { FakeClock } from '../../../src/internal/fake-clock.ts';
import type { Logger } from '../../../src/internal/log-safely.ts';
import { DEFAULT_PARTITIONS, partitionOf } from '../../../src/runtime/cluster/partition.ts';
import {
  PartitionOwnership,
  type ClusterView,
  type LeaseTable,
} from '../../../src/runtime/cluster/partition-ownership.ts';
import type { PartitionLease, StoredAddress } from '../../../src/runtime/store/state-store.ts';

/** The store's lease table in memory: taking a lease bumps its epoch, fencing the last holder. */
class FakeLeaseTable implements LeaseTable {
  readonly leases = new Map<number, { owner: string; epoch: number; acquiredAt: number }>();
  failure: Error | undefined;
  acquireCalls = 0;

  acquirePartitions(owner: string, partitions: readonly number[], now: number): Promise<Map<number, number>> {
    this.acquireCalls += 1;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const epochs = new Map<number, number>();
    for (const partition of partitions) {
      const epoch = (this.leases.get(partition)?.epoch ?? 0) + 1;
      this.leases.set(partition, { owner, epoch, acquiredAt: now });
      epochs.set(partition, epoch);
    }
    return Promise.resolve(epochs);
  }

  partitionLeases(): Promise<PartitionLease[]> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve([...this.leases].map(([partition, lease]) => ({ partition, ...lease })));
  }

  heldBy(owner: string): number[] {
    return [...this.leases].filter(([, lease]) => lease.owner === owner).map(([partition]) => partition);
  }
}

/** A view a test changes at will. */
class View implements ClusterView {
  readonly self: string;
  members: string[];
  knownCount: number;

  constructor(self: string, members: string[], knownCount: number = members.length) {
    this.self = self;
    this.members = members;
    this.knownCount = knownCount;
  }
  live(): readonly string[] {
    return this.members;
  }
  known(): number {
    return this.knownCount;
  }
}

class RecordingLogger implements Logger {
  readonly warnings: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.warnings.push(message);
  }
}

/** An address in each partition, found by trying ids in turn. */
const addressIn: StoredAddress[] = (() => {
  const found = new Array<StoredAddress | undefined>(DEFAULT_PARTITIONS);
  let missing = DEFAULT_PARTITIONS;
  for (let i = 0; missing > 0; i++) {
    const address: StoredAddress = ['shop', 'cart', `c-${i}`];
    const partition = partitionOf(address);
    if (found[partition] === undefined) {
      found[partition] = address;
      missing -= 1;
    }
  }
  return found as StoredAddress[];
})();

const ALL = Array.from({ length: DEFAULT_PARTITIONS }, (_, p) => p);
const A = 'http://a:7600';
const B = 'http://b:7600';
const C = 'http://c:7600';

interface Node {
  readonly ownership: PartitionOwnership;
  readonly view: View;
  readonly gained: number[][];
  readonly lostEvents: number[][];
  readonly logger: RecordingLogger;
}

function node(self: string, members: string[], leases: LeaseTable, clock: FakeClock, known?: number): Node {
  const view = new View(self, members, known);
  const gained: number[][] = [];
  const lostEvents: number[][] = [];
  const logger = new RecordingLogger();
  const ownership = new PartitionOwnership({
    view,
    leases,
    clock,
    logger,
    onGained: (partitions) => gained.push([...partitions]),
    onLost: (partitions) => lostEvents.push([...partitions]),
  });
  return { ownership, view, gained, lostEvents, logger };
}

/** Three nodes that see each other, sharing one lease table, reconciled once. */
async function threeNodes(): Promise<{ table: FakeLeaseTable; clock: FakeClock; nodes: Node[] }> {
  const table = new FakeLeaseTable();
  const clock = new FakeClock();
  const nodes = [A, B, C].map((self) => node(self, [A, B, C], table, clock));
  for (const n of nodes) await n.ownership.reconcile();
  return { table, clock, nodes };
}

describe('partition ownership', () => {
  test('three nodes that see each other hold disjoint sets of partitions covering all 1024', async () => {
    const { table, nodes } = await threeNodes();
    const seen = new Set<number>();
    for (const n of nodes) {
      const held = n.ownership.heldPartitions();
      assert.ok(held.length > 200, `${n.view.self} holds a fair share, got ${held.length}`);
      assert.deepEqual(
        held,
        [...held].sort((a, b) => a - b),
      );
      for (const partition of held) {
        assert.ok(!seen.has(partition), `partition ${partition} is held twice`);
        seen.add(partition);
      }
      assert.deepEqual(n.gained, [held], 'told once of what it gained, in order');
      assert.deepEqual(
        table.heldBy(n.view.self).sort((a, b) => a - b),
        held,
      );
    }
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      ALL,
    );

    // Every node names the same owner for an address, and only that owner runs it, under its lease.
    for (const partition of ALL) {
      const address = addressIn[partition] as StoredAddress;
      const owner = (nodes[0] as Node).ownership.ownerOf(address);
      const lease = table.leases.get(partition);
      assert.ok(lease !== undefined, `partition ${partition} has a lease`);
      assert.equal(lease.owner, owner);
      for (const n of nodes) {
        assert.equal(n.ownership.ownerOf(address), owner);
        const fence = n.ownership.fenceFor(address);
        if (n.view.self === owner) assert.deepEqual(fence, { partition, epoch: lease.epoch });
        else assert.equal(fence, undefined);
      }
    }
  });

  test('stats: held, owned, moving, quorum and the highest epoch held', async () => {
    const table = new FakeLeaseTable();
    // Partition 5's lease was held before, by a node long gone, up to epoch 7.
    table.leases.set(5, { owner: 'http://old:7600', epoch: 7, acquiredAt: 0 });
    const clock = new FakeClock();
    const a = node(A, [A], table, clock);
    assert.deepEqual(a.ownership.stats(), {
      held: 0,
      owned: DEFAULT_PARTITIONS,
      moving: DEFAULT_PARTITIONS,
      liveMembers: 1,
      knownMembers: 1,
      quorum: true,
      acquired: 0,
      lost: 0,
      reconciles: 0,
      reconcileFailures: 0,
      maxEpoch: 0,
    });
    await a.ownership.reconcile();
    assert.deepEqual(a.ownership.stats(), {
      held: DEFAULT_PARTITIONS,
      owned: DEFAULT_PARTITIONS,
      moving: 0,
      liveMembers: 1,
      knownMembers: 1,
      quorum: true,
      acquired: DEFAULT_PARTITIONS,
      lost: 0,
      reconciles: 1,
      reconcileFailures: 0,
      maxEpoch: 8,
    });
    assert.deepEqual(a.ownership.fenceFor(addressIn[5] as StoredAddress), { partition: 5, epoch: 8 });
    assert.equal(a.ownership.leases().get(5), 8);
    assert.equal(table.leases.get(5)?.acquiredAt, clock.wallTimeMs(), 'leases are stamped with wall time');
  });

  test('without a majority a node takes nothing', async () => {
    const table = new FakeLeaseTable();
    const a = node(A, [A], table, new FakeClock(), 3);
    await a.ownership.reconcile();
    assert.equal(a.ownership.heldPartitions().length, 0);
    assert.equal(table.leases.size, 0);
    assert.equal(table.acquireCalls, 0);
    const stats = a.ownership.stats();
    assert.equal(stats.quorum, false);
    assert.equal(stats.owned, DEFAULT_PARTITIONS, 'alone, it names itself the owner of everything');
    assert.equal(stats.moving, DEFAULT_PARTITIONS);
    assert.equal(a.ownership.fenceFor(addressIn[0] as StoredAddress), undefined);
  });

  test('cut off from the majority, a node keeps what it held and loses what others take', async () => {
    const { table, nodes } = await threeNodes();
    const a = nodes[0] as Node;
    const before = [...a.ownership.heldPartitions()];
    a.view.members = [A]; // the others are out of sight; 3 members are still known
    a.ownership.membershipChanged();
    await a.ownership.reconcile();
    assert.deepEqual(a.ownership.heldPartitions(), before, 'nothing taken, nothing dropped');
    assert.equal(a.ownership.stats().quorum, false);
    assert.equal(a.ownership.stats().held, before.length);
    assert.equal(a.ownership.stats().moving, DEFAULT_PARTITIONS - before.length);

    // The majority takes one of its partitions: the next reconcile notices and drops it.
    const [moved, fencedOne] = before as [number, number];
    await table.acquirePartitions(B, [moved, fencedOne], 0);
    await a.ownership.reconcile();
    assert.equal(a.ownership.fenceFor(addressIn[moved] as StoredAddress), undefined);
    assert.ok(!a.ownership.heldPartitions().includes(moved));
    assert.deepEqual(a.lostEvents.at(-1), [moved, fencedOne]);

    // A fenced commit drops a partition at once, before any reconcile ran.
    const other = before[2] as number;
    a.ownership.fenced([other, 9_999]); // a partition not held is ignored
    assert.equal(a.ownership.fenceFor(addressIn[other] as StoredAddress), undefined);
    assert.deepEqual(a.lostEvents.at(-1), [other]);
    await a.ownership.reconcile();
    assert.equal(a.ownership.heldPartitions().length, before.length - 3);
    assert.equal(a.ownership.stats().lost, 3);
    assert.equal(table.leases.get(other)?.owner, A, 'a node without quorum does not take it again');
  });

  test('when a member goes away its partitions move to the survivors, and nothing else moves', async () => {
    const { table, nodes } = await threeNodes();
    const [a, b, c] = nodes as [Node, Node, Node];
    const heldBefore = new Map(nodes.map((n) => [n.view.self, [...n.ownership.heldPartitions()]]));
    const fromC = heldBefore.get(C) as number[];

    for (const survivor of [a, b]) {
      survivor.view.members = [A, B]; // C died; still known, and 2 of 3 is a majority
      survivor.ownership.membershipChanged();
      const stats = survivor.ownership.stats();
      assert.equal(stats.moving, stats.owned - stats.held, 'C’s partitions are on the move to it');
      await survivor.ownership.reconcile();
    }
    const aNow = a.ownership.heldPartitions();
    const bNow = b.ownership.heldPartitions();
    for (const [n, now] of [
      [a, aNow],
      [b, bNow],
    ] as const) {
      const old = heldBefore.get(n.view.self) as number[];
      assert.ok(
        old.every((p) => now.includes(p)),
        `${n.view.self} kept all it had`,
      );
      assert.ok(
        now.filter((p) => !old.includes(p)).every((p) => fromC.includes(p)),
        `${n.view.self} gained only C’s partitions`,
      );
      assert.equal(n.ownership.stats().moving, 0);
      assert.equal(n.ownership.stats().lost, 0);
    }
    assert.deepEqual(
      [...aNow, ...bNow].sort((x, y) => x - y),
      ALL,
    );
    assert.ok(aNow.some((p) => fromC.includes(p)) && bNow.some((p) => fromC.includes(p)));
    for (const p of fromC) assert.equal(table.leases.get(p)?.epoch, 2, 'taken over under a new epoch');

    // C, alive after all but cut off, finds its leases moved on and drops them all.
    c.view.members = [C];
    c.ownership.membershipChanged();
    await c.ownership.reconcile();
    assert.equal(c.ownership.heldPartitions().length, 0);
    assert.equal(c.ownership.stats().lost, fromC.length);
  });

  test('a membership change is reconciled once the members have stayed put for settleMs', async () => {
    const { table, clock, nodes } = await threeNodes();
    const [a, b] = nodes as [Node, Node, Node];
    const fromC = table.heldBy(C);
    a.view.members = [A, B];
    a.ownership.membershipChanged();
    b.view.members = [A, B];
    b.ownership.membershipChanged();
    await clock.advanceAsync(200);
    a.ownership.membershipChanged(); // the same members: the wait is not started again
    assert.deepEqual(table.heldBy(C), fromC, 'nothing taken before the views settle');
    await clock.advanceAsync(100);
    await a.ownership.reconcile();
    await b.ownership.reconcile();
    assert.deepEqual(table.heldBy(C), [], "C's partitions were taken once the wait was over");
    const acquired = table.acquireCalls;
    // Members that come and go within the wait cost nothing until they settle.
    a.view.members = [A, B, C];
    a.ownership.membershipChanged();
    await clock.advanceAsync(200);
    a.view.members = [A, B];
    a.ownership.membershipChanged();
    await clock.advanceAsync(200);
    assert.equal(table.acquireCalls, acquired, 'no lease taken while the members kept changing');
  });

  test('a node that has not joined yet takes no lease, though it sees itself a majority of one', async () => {
    const table = new FakeLeaseTable();
    const clock = new FakeClock();
    const view = new View(A, [A], 1);
    let joined = false;
    const ownership = new PartitionOwnership({
      view: Object.assign(view, { joined: () => joined }),
      leases: table,
      clock,
      logger: new RecordingLogger(),
      onGained: () => undefined,
    });
    await ownership.reconcile();
    assert.equal(ownership.stats().held, 0);
    assert.equal(ownership.stats().quorum, false);
    assert.equal(table.acquireCalls, 0);
    joined = true;
    await ownership.reconcile();
    assert.equal(ownership.stats().held, DEFAULT_PARTITIONS);
    await ownership.close();
  });

  test('a failing lease table is counted and tried again on the next tick', async () => {
    const table = new FakeLeaseTable();
    table.failure = new Error('connection refused');
    const clock = new FakeClock();
    const a = node(A, [A], table, clock);
    await a.ownership.start();
    assert.equal(a.ownership.stats().reconcileFailures, 1);
    assert.equal(a.ownership.stats().held, 0);
    assert.deepEqual(a.logger.warnings, ['reconciling partition leases failed; trying again']);
    assert.equal(clock.pendingTimers, 1);

    table.failure = undefined;
    await clock.advanceAsync(999);
    assert.equal(a.ownership.stats().reconciles, 1, 'not before the interval');
    await clock.advanceAsync(1);
    assert.equal(a.ownership.stats().reconciles, 2);
    assert.equal(a.ownership.stats().reconcileFailures, 1);
    assert.equal(a.ownership.stats().held, DEFAULT_PARTITIONS);
    assert.equal(clock.pendingTimers, 1, 'the timer is armed again');
    await a.ownership.close();
  });

  test('the timer notices a lease taken by another node', async () => {
    const table = new FakeLeaseTable();
    const clock = new FakeClock();
    const a = node(A, [A, B, C], table, clock, 3);
    await a.ownership.start();
    a.view.members = [A]; // loses quorum; the timer is what notices the lease moving
    const [p] = a.ownership.heldPartitions() as [number];
    await table.acquirePartitions(B, [p], 0);
    await clock.advanceAsync(1_000);
    assert.equal(a.ownership.fenceFor(addressIn[p] as StoredAddress), undefined);
    assert.deepEqual(a.lostEvents, [[p]]);
    await a.ownership.close();
  });

  test('close() stops the timer and drops every lease from this node’s view', async () => {
    const table = new FakeLeaseTable();
    const clock = new FakeClock();
    const a = node(A, [A], table, clock);
    await a.ownership.start();
    assert.equal(clock.pendingTimers, 1);
    await a.ownership.close();
    assert.equal(clock.pendingTimers, 0);
    assert.equal(a.ownership.heldPartitions().length, 0);
    await clock.advanceAsync(10_000);
    a.ownership.membershipChanged();
    a.view.members = [A, B];
    a.ownership.membershipChanged();
    await clock.advanceAsync(10_000);
    assert.equal(a.ownership.stats().reconciles, 1);
    assert.equal(table.heldBy(A).length, DEFAULT_PARTITIONS, 'the table keeps the leases');
  });

  test('a reconcile interval that is not a positive integer is refused', () => {
    for (const reconcileIntervalMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () =>
          new PartitionOwnership({
            view: new View(A, [A]),
            leases: new FakeLeaseTable(),
            clock: new FakeClock(),
            logger: new RecordingLogger(),
            reconcileIntervalMs,
            onGained: () => undefined,
          }),
        RangeError,
      );
    }
  });
});
