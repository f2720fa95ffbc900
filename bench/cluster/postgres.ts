// The PostgreSQL the cluster suite measures on: the machine's own (127.0.0.1:5432, database
// `test`, trust auth, the login name as user), or WEFT_BENCH_PG_URL. Each run works in schemas
// of its own (`weft_bench_<random>`), dropped when it ends, so runs never see each other's rows.

import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { postgresConnection } from '../../test/postgres-connection.ts';

export const postgresUrl = process.env['WEFT_BENCH_PG_URL'] ?? 'postgres://127.0.0.1:5432/test';

export function postgresConfig(): pg.ClientConfig {
  return postgresConnection(postgresUrl);
}

/** A schema name no other run uses: `<prefix>_<16 hex digits>`. */
export function freshSchema(prefix: string): string {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new RangeError(`bad schema prefix ${prefix}`);
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

/** Drops `schema` and everything in it; a schema that is not there is not an error. */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new RangeError(`bad schema name ${schema}`);
  const client = new pg.Client(postgresConfig());
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
