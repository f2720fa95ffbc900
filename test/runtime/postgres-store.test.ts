// The PostgreSQL store against the server on this machine (WEFT_TEST_PG_URL; skipped with the
// reason where it is absent, a failure where WEFT_REQUIRE_SERVICES=1). Each test gets a schema
// of its own, dropped afterwards, so tests neither see nor disturb each other.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test, type TestContext } from 'node:test';

import pg from 'pg';

import { POSTGRES_SCHEMA_VERSION, PostgresStateStore } from '../../src/runtime/store/postgres-store.ts';
import type { StateStore } from '../../src/runtime/store/state-store.ts';
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

    test('a schema at version 1 is migrated to 2: partition leases are added, the data kept', async (t) => {
      const schema = freshSchema(t);
      const store = await openOn(t, schema);
      await store.append(
        [{ target: ['n', 't', 'kept'], argument: { typename: 'x/y', value: new Uint8Array([1]) } }],
        1,
      );
      await store.close();
      // As a version-1 schema left it: no lease table.
      await pool.query(
        `DROP TABLE "${schema}".partition_leases; UPDATE "${schema}".schema_version SET version = 1`,
      );
      const reopened = await openOn(t, schema);
      const { rows } = await pool.query<{ version: number }>(
        `SELECT version FROM "${schema}".schema_version`,
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        [2],
      );
      assert.deepEqual(await reopened.partitionLeases(), []);
      assert.equal((await reopened.addressesWithInbox(10)).length, 1, 'the inbox survived');
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
