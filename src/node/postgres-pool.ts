// The node's connection pool to the cluster's PostgreSQL (`runtime.postgres`), through `pg`.
//
// The pool outlives a database restart: a connection that breaks while idle is reported on the
// pool's `error` event, which would end the process if nobody listened, so it is logged and the
// pool opens a new connection when next asked. A query in flight fails; the runtime treats that
// as a failed batch or append (its messages stay in the inbox, its ingress is not acknowledged)
// and tries again, so the nodes pause while the database is down and resume when it is back.

import os from 'node:os';

import pg from 'pg';

import type { NodeLogger } from './logger.ts';

/** What `weft status` and the metrics show of the pool. */
export interface PoolFigures {
  readonly size: number;
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  /** Connections that broke while idle (a database restart, a network cut). */
  readonly errors: number;
}

export interface NodePool {
  readonly pool: pg.Pool;
  figures(): PoolFigures;
  end(): Promise<void>;
}

export function openPostgresPool(url: string, size: number, logger: NodeLogger): NodePool {
  const parsed = new URL(url);
  const pool = new pg.Pool({
    host: decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, '')),
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    // As libpq does: the login name when the URL names no user (pg itself reads only $USER).
    user: decodeURIComponent(parsed.username) || process.env['PGUSER'] || os.userInfo().username,
    password: decodeURIComponent(parsed.password),
    max: size,
    // A dead server must not hold a batch for the TCP timeout: connecting fails after 5 s.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  let errors = 0;
  pool.on('error', (error) => {
    errors += 1;
    logger.warn({ error: error.message }, 'a PostgreSQL connection broke; the pool opens another');
  });
  return {
    pool,
    figures: () => ({
      size,
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      errors,
    }),
    end: () => pool.end(),
  };
}
