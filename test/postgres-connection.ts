// How the tests connect `pg` to the PostgreSQL a URL names (WEFT_TEST_PG_URL, or the default of
// src/testing/services.ts). Not a test file itself.

import os from 'node:os';

import type pg from 'pg';

/**
 * Connection settings for `url`. The user defaults to the login name, as libpq does: pg reads
 * only $USER, which some shells leave unset.
 */
export function postgresConnection(url: string): pg.ClientConfig {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    user: decodeURIComponent(parsed.username) || process.env['PGUSER'] || os.userInfo().username,
    password: decodeURIComponent(parsed.password),
  };
}
