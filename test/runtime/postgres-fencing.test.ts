// Fencing on the PostgreSQL store: a node commits a batch only while the lease of its partition
// is still the one it holds. Once another node has taken the partition (a new epoch), the old
// owner's commits are refused in their own transaction, whole, and nothing of them is applied,
// even a commit that was already running when the takeover came. Against the server on this
// machine (skipped with the reason where it is absent, a failure under WEFT_REQUIRE_SERVICES=1).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test, type TestContext } from 'node:test';

import pg from 'pg';

import { FencedError } from '../../src/runtime/errors.ts';
import { partitionOf } from '../../src/runtime/cluster/partition.ts';
import { PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { BatchEffects, StoredAddress } from '../../src/runtime/store/state-store.ts';
import { postgresService, serviceGate } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';

const gate = await serviceGate(postgresService);
const NOW = 1_700_000_000_000;
const ada: StoredAddress = ['example', 'counter', 'ada'];
const partition = partitionOf(ada);

function write(count: number, epoch: number): BatchEffects {
  return {
    address: ada,
    mutations: [
      { name: 'count', value: { typename: 'io.statefun.types/int', value: new Uint8Array([count]) } },
    ],
    fence: { partition, epoch },
  };
}

async function countOf(store: PostgresStateStore): Promise<number | undefined> {
  return (await store.readState(ada, NOW)).get('count')?.value[0];
}

if (gate.skip !== false) {
  test('PostgresStateStore fencing', { skip: gate.skip }, () => undefined);
} else {
  const pool = new pg.Pool({ ...postgresConnection(gate.url), max: 6 });
  after(() => pool.end());

  const schemas = new WeakMap<PostgresStateStore, string>();
  const open = async (t: TestContext): Promise<PostgresStateStore> => {
    const schema = `weft_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresStateStore.open({ pool, schema });
    t.after(async () => {
      await store.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });
    schemas.set(store, schema);
    return store;
  };

  describe('PostgresStateStore: partition leases and fencing', () => {
    test('each acquisition is a new epoch; the owner of the latest one commits, the one before is refused', async (t) => {
      const store = await open(t);
      const first = await store.acquirePartitions('node-a', [partition], NOW);
      assert.equal(first.get(partition), 1);
      await store.commit([write(1, 1)], NOW);
      assert.equal(await countOf(store), 1);

      const second = await store.acquirePartitions('node-b', [partition], NOW + 1);
      assert.equal(second.get(partition), 2);
      await assert.rejects(store.commit([write(99, 1)], NOW + 2), (error: unknown) => {
        assert.ok(error instanceof FencedError);
        assert.deepEqual(error.partitions, [partition]);
        assert.equal(error.code, 'WEFT_FENCED');
        return true;
      });
      assert.equal(await countOf(store), 1, 'nothing of the fenced commit applied');
      await store.commit([write(2, 2)], NOW + 3);
      assert.equal(await countOf(store), 2);
      assert.deepEqual(
        (await store.partitionLeases()).map(({ partition: p, owner, epoch }) => ({ p, owner, epoch })),
        [{ p: partition, owner: 'node-b', epoch: 2 }],
      );
    });

    test('one fenced batch refuses its whole group commit: no batch of it is applied', async (t) => {
      const store = await open(t);
      const grace: StoredAddress = ['example', 'counter', 'grace'];
      const other = partitionOf(grace);
      assert.notEqual(other, partition);
      await store.acquirePartitions('node-a', [partition, other], NOW);
      await store.acquirePartitions('node-b', [partition], NOW + 1);
      const graceWrite: BatchEffects = {
        ...write(5, 1),
        address: grace,
        fence: { partition: other, epoch: 1 },
      };
      await assert.rejects(store.commit([graceWrite, write(7, 1)], NOW + 2), FencedError);
      assert.equal((await store.readState(grace, NOW)).size, 0);
      await store.commit([graceWrite], NOW + 3);
      assert.equal((await store.readState(grace, NOW)).get('count')?.value[0], 5);
    });

    test('a takeover waits for a commit in flight under the old lease, then no old commit passes', async (t) => {
      const store = await open(t);
      await store.acquirePartitions('node-a', [partition], NOW);
      // A commit of node-a holds the lease row (FOR SHARE) until it ends; hold its transaction open.
      const client = await pool.connect();
      t.after(() => {
        client.release();
      });
      const table = `"${schemas.get(store) as string}".partition_leases`;
      await client.query('BEGIN');
      await client.query(`SELECT epoch FROM ${table} WHERE partition = $1 FOR SHARE`, [partition]);
      let tookOver = false;
      const takeover = store.acquirePartitions('node-b', [partition], NOW + 1).then((epochs) => {
        tookOver = true;
        return epochs;
      });
      // The takeover's UPDATE waits on the row lock: PostgreSQL shows it as a lock not granted.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { rows } = await pool.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_locks
             WHERE NOT granted AND pid <> pg_backend_pid()
               AND pid IN (SELECT pid FROM pg_stat_activity WHERE query LIKE '%partition_leases%')`,
        );
        if ((rows[0]?.waiting ?? 0) > 0) break;
        assert.ok(Date.now() < deadline, 'the takeover never waited for the lock');
        assert.equal(tookOver, false, 'the takeover finished while the lease row was held');
      }
      assert.equal(tookOver, false);
      await client.query('COMMIT');
      assert.equal((await takeover).get(partition), 2);
      await assert.rejects(store.commit([write(3, 1)], NOW + 2), FencedError);
    });

    test('a commit without a fence is not checked; a bad fence is refused before any work', async (t) => {
      const store = await open(t);
      const { fence: _unfenced, ...unfenced } = write(4, 1);
      await store.commit([unfenced], NOW);
      assert.equal(await countOf(store), 4);
      await assert.rejects(
        store.commit([{ ...write(1, 1), fence: { partition: -1, epoch: 1 } }], NOW),
        RangeError,
      );
      await assert.rejects(
        store.commit([{ ...write(1, 1), fence: { partition, epoch: 0 } }], NOW),
        RangeError,
      );
      await assert.rejects(store.acquirePartitions('', [partition], NOW), RangeError);
      await assert.rejects(store.acquirePartitions('node-a', [70_000], NOW), RangeError);
    });
  });
}
