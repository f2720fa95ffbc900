// A network partition in a cluster of three runtimes on one PostgreSQL: node C's grid links are
// cut while its process and its database connections live on. C then sees itself alone, names
// itself the owner of everything, and must take nothing (it sees no majority); A and B, a
// majority, take C's partitions. C still believes it holds the partitions it had, and runs a
// batch for one of them: the fencing check refuses its commit, nothing of the batch is applied,
// and the new owner applies the message once.
//
// Real grid sockets on loopback and the PostgreSQL on this machine (skipped with the reason when
// absent); every timer on a fake clock.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test, type TestContext } from 'node:test';

import pg from 'pg';

import type { Manager } from '../../src/grid/index.ts';
import { ClusterRuntime } from '../../src/runtime/cluster/cluster-runtime.ts';
import { partitionOf } from '../../src/runtime/cluster/partition.ts';
import type { ClusterView } from '../../src/runtime/cluster/partition-ownership.ts';
import { PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { StoredAddress } from '../../src/runtime/store/state-store.ts';
import { intType, StatefulFunctions, valueSpec } from '../../src/statefun/index.ts';
import { FakeClock, postgresService, serviceGate, TestGrid } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';

const gate = await serviceGate(postgresService);
const count = valueSpec({ name: 'count', type: intType });
const quiet = { warn: () => undefined, error: () => undefined };

function counter(): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: 'test/counter',
    specs: [count],
    fn(context) {
      context.storage.set(count, (context.storage.get(count) ?? 0) + 1);
    },
  });
}

/** What the grid shows: this node, and the peers it is connected to now; three members known. */
function gridView(manager: Manager, self: string): ClusterView {
  return {
    self,
    live: () => [
      self,
      ...manager.targets().filter((host) => manager.connection(host).state() === 'connected'),
    ],
    known: () => 3,
  };
}

async function eventually(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

if (gate.skip !== false) {
  test('a cut-off node is fenced', { skip: gate.skip }, () => undefined);
} else {
  const pool = new pg.Pool({ ...postgresConnection(gate.url), max: 12 });
  after(() => pool.end());

  async function cluster(t: TestContext): Promise<{
    clock: FakeClock;
    grid: TestGrid;
    store: PostgresStateStore;
    nodes: ClusterRuntime[];
  }> {
    const schema = `weft_test_${randomBytes(6).toString('hex')}`;
    const clock = new FakeClock({ wallStartMs: 1_700_000_000_000 });
    const grid = await TestGrid.start(3, { clock, logger: quiet });
    const store = await PostgresStateStore.open({ pool, schema });
    const nodes: ClusterRuntime[] = [];
    t.after(async () => {
      for (const node of nodes) await node.close();
      await grid.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });
    await grid.waitAllConnected();
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await ClusterRuntime.open({
          store,
          grid: grid.manager(i),
          view: gridView(grid.manager(i), grid.hosts[i] as string),
          functions: counter(),
          clock,
          logger: quiet,
          // Reconciled by hand here: each node's view changes only when the test says.
          reconcileIntervalMs: 3_600_000,
          scanIntervalMs: 60_000,
        }),
      );
    }
    for (const node of nodes) await node.ownership.reconcile();
    return { clock, grid, store, nodes };
  }

  test('a node whose grid links are cut is fenced: its commits are refused, the majority applies its messages once', async (t) => {
    const { clock, grid, store, nodes } = await cluster(t);
    const [a, b, c] = nodes as [ClusterRuntime, ClusterRuntime, ClusterRuntime];
    const held = nodes.map((node) => node.ownership.stats().held);
    assert.equal(
      held.reduce((sum, n) => sum + n, 0),
      1024,
      `every partition held once: ${held.join(', ')}`,
    );

    // An address of one of C's partitions.
    let address: StoredAddress = ['test', 'counter', 'x0'];
    for (let i = 1; c.ownership.fenceFor(address) === undefined; i++) address = ['test', 'counter', `x${i}`];
    const partition = partitionOf(address);
    const cEpoch = c.ownership.fenceFor(address)?.epoch;

    // The partition: C's links to A and B are cut, C's process and pool live on.
    const cHost = grid.hosts[2] as string;
    grid.manager(0).removeHost(cHost);
    grid.manager(1).removeHost(cHost);
    grid.manager(2).removeHost(grid.hosts[0] as string);
    grid.manager(2).removeHost(grid.hosts[1] as string);
    // C notices first: alone, it takes nothing, and keeps what it holds (nobody took it yet).
    c.membershipChanged();
    await c.ownership.reconcile();
    const cStats = c.ownership.stats();
    assert.equal(cStats.quorum, false, 'C sees one of three members: no majority');
    assert.equal(cStats.liveMembers, 1);
    assert.equal(cStats.held, held[2], 'C took nothing and still holds what it had');
    a.membershipChanged();
    b.membershipChanged();
    await Promise.all([a.ownership.reconcile(), b.ownership.reconcile()]);
    assert.equal(
      a.ownership.stats().held + b.ownership.stats().held,
      1024,
      'A and B took every partition between them',
    );
    const lease = (await store.partitionLeases()).find((l) => l.partition === partition);
    assert.ok(lease !== undefined && lease.owner !== cHost, 'the lease moved to A or B');
    assert.ok(lease.epoch > (cEpoch ?? 0), 'under a newer epoch');

    // C still runs the address: ingress on C appends it, C runs the batch, the commit is refused.
    const [appended] = await c.input.send([
      { target: address, argument: { typename: 'test/int', value: new Uint8Array([1]) } },
    ]);
    assert.equal(appended?.duplicate, false);
    await eventually('C had its commit refused', () => c.runtime.stats().fencedBatches === 1);
    assert.equal(c.ownership.fenceFor(address), undefined, 'C no longer runs the partition');
    assert.equal(c.runtime.stats().batches, 1, 'the batch ran (and was not counted a failure)');
    assert.equal(c.runtime.stats().batchFailures, 0);
    assert.equal(
      (await store.readState(address, clock.wallTimeMs())).get('count'),
      undefined,
      'nothing applied',
    );

    // The owner finds the message at its next scan and applies it once.
    const owner = lease.owner === grid.hosts[0] ? a : b;
    clock.advance(60_000);
    await eventually('the new owner applied the message', async () => {
      const entry = (await store.readState(address, clock.wallTimeMs())).get('count');
      return entry !== undefined;
    });
    const entry = (await store.readState(address, clock.wallTimeMs())).get('count');
    assert.equal(count.type.deserialize(entry?.value ?? new Uint8Array()), 1, 'applied exactly once');
    assert.equal(owner.runtime.stats().fencedBatches, 0);
    assert.deepEqual(await store.inbox(address, 10), [], 'the inbox is empty');
  });
}
