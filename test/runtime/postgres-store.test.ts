// The PostgreSQL store against the server on this machine (WEFT_TEST_PG_URL; skipped with the
// reason where it is absent, a failure where WEFT_REQUIRE_SERVICES=1). Each test gets a schema
// of its own, dropped afterwards, so tests neither see nor disturb each other.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test, type TestContext } from 'node:test';

import pg from 'pg';

import { POSTGRES_SCHEMA_VERSION, PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { StateStore, StoredAddress } from '../../src/runtime/store/state-store.ts';
import { partitionOf } from '../../src/runtime/cluster/partition.ts';
import { postgresService, serviceGate } from '../../src/testing/index.ts';
import { postgresConnection } from '../postgres-connection.ts';
import { describeStateStore } from './store-conformance.ts';

const gate = await serviceGate(postgresService);

if (gate.skip !== false) {
  test('PostgresStateStore', { skip: gate.skip }, () => undefined);
} else {
  const pool = new pg.Pool({ ...postgresConnection(gate.url), max: 4 });
  after(() => pool.end());
  // Each store's schema, so a reopen finds the same tables.
  const schemas = new WeakMap<StateStore, string>();

  const freshSchema = (t: TestContext): string => {
    const schema = `weft_test_${randomBytes(6).toString('hex')}`;
    t.after(() => pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    return schema;
  };

  const openOn = async (t: TestContext, schema: string): Promise<PostgresStateStore> => {
    const store = await PostgresStateStore.open({ pool, schema });
    schemas.set(store, schema);
    t.after(() => store.close());
    return store;
  };

  describeStateStore('PostgresStateStore', {
    open: (t) => openOn(t, freshSchema(t)),
    reopen: async (t, store) => {
      const schema = schemas.get(store);
      if (schema === undefined) throw new Error('not a store this test opened');
      await store.close();
      // The tables outlive the store: a new store on the same schema finds everything.
      return openOn(t, schema);
    },
  });

  describe('PostgresStateStore: schema', () => {
    test('two stores opening at once migrate the schema once', async (t) => {
      const schema = freshSchema(t);
      await Promise.all([openOn(t, schema), openOn(t, schema)]);
      const { rows } = await pool.query<{ version: number }>(
        `SELECT version FROM "${schema}".schema_version`,
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        [POSTGRES_SCHEMA_VERSION],
      );
    });

    test('a schema at version 1 is migrated to 3: leases and partitions are added, the data kept', async (t) => {
      const schema = freshSchema(t);
      const store = await openOn(t, schema);
      const kept: StoredAddress = ['n', 't', 'kept'];
      await store.append([{ target: kept, argument: { typename: 'x/y', value: new Uint8Array([1]) } }], 1);
      await store.commit(
        [
          {
            address: ['n', 't', 'sender'],
            timers: [
              {
                send: {
                  dueAt: 50,
                  envelope: { target: kept, argument: { typename: 'x/y', value: new Uint8Array([2]) } },
                },
              },
            ],
            egress: [{ egress: ['e', 'out'], value: { typename: 'x/y', value: new Uint8Array([3]) } }],
          },
        ],
        1,
      );
      await store.close();
      // As a version-1 schema left it: no lease table, no partition columns.
      await pool.query(
        `DROP TABLE "${schema}".partition_leases;
         ALTER TABLE "${schema}".inbox DROP COLUMN partition;
         ALTER TABLE "${schema}".timers DROP COLUMN partition;
         ALTER TABLE "${schema}".outbox DROP COLUMN partition;
         UPDATE "${schema}".schema_version SET version = 1`,
      );
      const reopened = await openOn(t, schema);
      const { rows } = await pool.query<{ version: number }>(
        `SELECT version FROM "${schema}".schema_version`,
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        [POSTGRES_SCHEMA_VERSION],
      );
      assert.deepEqual(await reopened.partitionLeases(), []);
      const own = partitionOf(kept);
      assert.deepEqual(
        await reopened.addressesWithInboxIn([own], 10),
        [kept],
        'the inbox kept, in its partition',
      );
      assert.deepEqual(await reopened.addressesWithInboxIn([(own + 1) % 1024], 10), []);
      assert.equal(
        await reopened.nextDueAtIn([own]),
        50,
        "the delayed message kept, in its target's partition",
      );
      const outbox = await reopened.outbox(10);
      assert.equal(outbox.length, 1);
      assert.equal((await reopened.outboxIn([(outbox[0]?.seq ?? 0) % 1024], 10)).length, 1);
    });

    test("a node's view of the store finds the work of its own partitions only", async (t) => {
      const store = await openOn(t, freshSchema(t));
      const mine: StoredAddress = ['n', 't', 'a'];
      let theirs: StoredAddress = ['n', 't', 'b'];
      for (let i = 0; partitionOf(theirs) === partitionOf(mine); i++) theirs = ['n', 't', `b${i}`];
      const held = [partitionOf(mine)];
      const view = store.forPartitions(() => held);
      const value = { typename: 'x/y', value: new Uint8Array([1]) };
      await view.append(
        [
          { target: mine, argument: value },
          { target: theirs, argument: value },
        ],
        1,
      );
      for (const sender of [mine, theirs]) {
        await view.commit(
          [
            {
              address: sender,
              timers: [{ send: { dueAt: 10, envelope: { target: sender, argument: value } } }],
              egress: [{ egress: ['e', 'out'], value }],
            },
          ],
          1,
        );
      }
      assert.deepEqual(await view.addressesWithInbox(10), [mine]);
      assert.deepEqual(await view.counts(), { inboxMessages: 1, delayedMessages: 1, outboxRecords: 1 });
      assert.equal((await view.outbox(10)).length, 1);
      const fired = await view.fireDue(20, 10);
      assert.deepEqual(
        fired.map((m) => m.target),
        [mine],
      );
      assert.deepEqual(await store.counts(), { inboxMessages: 3, delayedMessages: 1, outboxRecords: 2 });
      held.length = 0;
      assert.deepEqual(await view.addressesWithInbox(10), [], 'holding nothing, it finds nothing');
      assert.equal(await view.nextDueAt(), undefined);
    });

    test('a schema newer than this code is refused, not written to', async (t) => {
      const schema = freshSchema(t);
      await openOn(t, schema);
      await pool.query(`INSERT INTO "${schema}".schema_version (version) VALUES ($1)`, [
        POSTGRES_SCHEMA_VERSION + 1,
      ]);
      await assert.rejects(
        PostgresStateStore.open({ pool, schema }),
        new RegExp(
          `is at version ${POSTGRES_SCHEMA_VERSION + 1}, newer than this Weft knows \\(${POSTGRES_SCHEMA_VERSION}\\): upgrade Weft before opening it`,
        ),
      );
    });

    test('a schema name that is not a plain identifier is refused', async () => {
      await assert.rejects(
        PostgresStateStore.open({ pool, schema: 'x"; DROP TABLE y; --' }),
        /schema must be a lower-case SQL identifier/,
      );
    });
  });
}
