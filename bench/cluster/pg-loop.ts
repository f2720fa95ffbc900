// The database's limit for the cluster suite: the counter workload (runtime/workload.ts keys,
// +1 per update) straight onto PostgreSQL with `pg`, with no runtime, no HTTP, no grid, no
// function and no egress: only the writes the runtime's path cannot do without, grouped as the
// runtime groups its commits.
//
// Per group of G updates (G: the runtime's mean batches per store commit, measured over the
// same case's samples of ours; a fractional G is kept on average, group k holding
// floor((k + 1)·G) − floor(k·G) updates), on one connection of `concurrency` (32), each its own
// worker taking the next G keys in turn:
//   1. the append, one transaction: INSERT the G messages into an inbox table (one statement,
//      unnest), committed: what the runtime does before its 202 (the message is durable);
//   2. the commit, one transaction: SELECT the G counts FOR UPDATE (keys in order, so two
//      workers never deadlock), INSERT … ON CONFLICT DO UPDATE the G new counts (one statement),
//      DELETE the G messages from the inbox (one statement), COMMIT: what the runtime's group
//      commit does (read state, write state, consume the messages, atomically).
// Both commits are synchronous (the database's default), as the runtime's are. That is two
// durable transactions and five statements per group, against the runtime's two transactions
// plus, per batch, its state read, inbox delete, two value upserts, outbox insert and fence check;
// so no implementation of this write path on this database, with this grouping, goes faster.
// The loop also has every worker in flight with a whole group at once (32·G updates), where
// the runtime has 32 updates in flight in all: it is given at least the concurrency ours has.

import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { counterKey, KeyCounts } from '../runtime/workload.ts';
import { dropSchema, freshSchema, postgresConfig } from './postgres.ts';

export interface PgLoopRun {
  /** Mean updates per group (per transaction pair), at least 1. */
  readonly groupSize: number;
  /** Updates in this run. */
  readonly updates: number;
}

export interface PgLoopResult {
  /** Durable, applied updates per second. */
  readonly opsPerS: number;
  /** Groups (transaction pairs) committed. */
  readonly groups: number;
}

const maxUpdates = 10_000_000;
/** The message each update appends: as large as the runtime's `1` in weft/json, give or take. */
const message = randomBytes(16);

export class PgLoop {
  readonly #schema: string;
  readonly #clients: pg.Client[];
  readonly #keys: number;
  readonly #counts: KeyCounts;
  #nextKey = 0;
  /** Groups made so far, for the fractional group size. */
  #groupIndex = 0;

  private constructor(schema: string, clients: pg.Client[], keys: number) {
    this.#schema = schema;
    this.#clients = clients;
    this.#keys = keys;
    this.#counts = new KeyCounts(keys);
  }

  /** Connects `concurrency` clients and creates the tables in a fresh schema, dropped on close. */
  static async open(options: { readonly concurrency: number; readonly keys: number }): Promise<PgLoop> {
    const { concurrency, keys } = options;
    const schema = freshSchema('weft_bench_loop');
    const clients: pg.Client[] = [];
    try {
      for (let i = 0; i < concurrency; i++) {
        const client = new pg.Client(postgresConfig());
        await client.connect();
        clients.push(client);
      }
      const [first] = clients;
      if (first === undefined) throw new RangeError('concurrency must be at least 1');
      await first.query(`CREATE SCHEMA "${schema}";
        CREATE TABLE "${schema}".counters (id text COLLATE "C" PRIMARY KEY, count bigint NOT NULL);
        CREATE TABLE "${schema}".inbox (seq bigserial PRIMARY KEY, id text COLLATE "C" NOT NULL,
                                        value bytea NOT NULL);`);
    } catch (error) {
      await Promise.allSettled(clients.map((c) => c.end()));
      await dropSchema(schema);
      throw error;
    }
    return new PgLoop(schema, clients, keys);
  }

  async run(run: PgLoopRun): Promise<PgLoopResult> {
    const { groupSize, updates } = run;
    if (typeof groupSize !== 'number' || !Number.isFinite(groupSize) || groupSize < 1) {
      throw new RangeError(`groupSize must be a finite number of at least 1, got ${String(groupSize)}`);
    }
    if (!Number.isSafeInteger(updates) || updates < 1 || updates > maxUpdates) {
      throw new RangeError(`updates must be an integer from 1 to ${maxUpdates}, got ${String(updates)}`);
    }
    // Keys in flight at once must not wrap round onto each other.
    if (Math.ceil(groupSize) * this.#clients.length > this.#keys) {
      throw new RangeError(
        `groups of ${groupSize} on ${this.#clients.length} connections overlap ${this.#keys} keys`,
      );
    }
    let left = updates;
    let groups = 0;
    const nextGroup = (): string[] => {
      const k = this.#groupIndex++;
      const size = Math.min(left, Math.floor((k + 1) * groupSize) - Math.floor(k * groupSize));
      left -= size;
      const keys: string[] = [];
      for (let i = 0; i < size; i++) {
        keys.push(counterKey(this.#nextKey));
        this.#counts.next(this.#nextKey);
        this.#nextKey = (this.#nextKey + 1) % this.#keys;
      }
      return keys;
    };
    const worker = async (client: pg.Client): Promise<void> => {
      while (left > 0) {
        const keys = nextGroup().sort();
        if (keys.length === 0) continue;
        await this.#group(client, keys);
        groups += 1;
      }
    };
    const start = performance.now();
    await Promise.all(this.#clients.map(worker));
    return { opsPerS: (updates * 1000) / (performance.now() - start), groups };
  }

  async #group(client: pg.Client, keys: readonly string[]): Promise<void> {
    const t = (table: string): string => `"${this.#schema}".${table}`;
    const appended = await client.query<{ seq: string }>(
      `INSERT INTO ${t('inbox')} (id, value) SELECT unnest($1::text[]), $2 RETURNING seq`,
      [keys, message],
    );
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<{ id: string; count: string }>(
        `SELECT id, count FROM ${t('counters')} WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
        [keys],
      );
      const current = new Map(rows.map((row) => [row.id, Number(row.count)]));
      await client.query(
        `INSERT INTO ${t('counters')} (id, count) SELECT unnest($1::text[]), unnest($2::bigint[])
           ON CONFLICT (id) DO UPDATE SET count = excluded.count`,
        [keys, keys.map((key) => (current.get(key) ?? 0) + 1)],
      );
      const consumed = await client.query(`DELETE FROM ${t('inbox')} WHERE seq = ANY($1::bigint[])`, [
        appended.rows.map((row) => row.seq),
      ]);
      if (consumed.rowCount !== keys.length)
        throw new Error(`pg-loop: consumed ${consumed.rowCount} messages of ${keys.length}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  }

  /** Throws unless every key's stored count is the number of updates made to it; resolves with the keys compared. */
  async check(): Promise<number> {
    const [client] = this.#clients;
    if (client === undefined) throw new Error('pg-loop: closed');
    const { rows } = await client.query<{ id: string; count: string }>(
      `SELECT id, count FROM "${this.#schema}".counters`,
    );
    const stored = new Map(rows.map((row) => [row.id, Number(row.count)]));
    for (let key = 0; key < this.#keys; key++) {
      const holds = stored.get(counterKey(key)) ?? 0;
      if (holds !== this.#counts.get(key)) {
        throw new Error(
          `pg-loop: ${counterKey(key)} holds ${holds}, but had ${this.#counts.get(key)} updates`,
        );
      }
    }
    const pending = await client.query(`SELECT 1 FROM "${this.#schema}".inbox LIMIT 1`);
    if (pending.rows.length > 0) throw new Error('pg-loop: messages left in the inbox');
    return this.#keys;
  }

  async close(): Promise<void> {
    const clients = this.#clients.splice(0);
    await Promise.allSettled(clients.map((c) => c.end()));
    await dropSchema(this.#schema);
  }
}
