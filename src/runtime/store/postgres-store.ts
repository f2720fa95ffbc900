// The StateStore for a cluster: PostgreSQL through `pg`, so that every node reads and writes
// the same state, inboxes, delayed messages and outbox, and nothing lives only in a process.
//
// Tables live in one schema (`weft` unless told otherwise), created by `migrate()`:
//   values  (namespace, type, id, name) → typename, value, expires_at
//   inbox   seq → namespace, type, id, caller, typename, value, partition (of the target)
//   timers  id → due_at, target, caller, typename, value, sender, token (unique per sender),
//           partition (of the target)
//   outbox  seq → egress namespace and type, typename, value, partition (of the sender)
//   ingress ingress id → the seq it was stored under, expires_at (the dedup window)
//   partition_leases partition → owner, epoch, acquired_at (cluster/partition-ownership.ts)
// In a cluster each node reads only the inboxes, delayed messages and outbox of the partitions
// it holds (`forPartitions`), so each is run, fired and delivered by one node.
// Text columns compare with the "C" collation, so addresses order by their bytes, as the other
// stores order them, whatever the database's locale. Text from users (addresses, names, tokens,
// typenames) is stored escaped (`escapeText`), since PostgreSQL's text cannot hold NUL. Times
// are epoch milliseconds as float8.
//
// Every write is one transaction: `commit` applies all its batches or none (a token already
// pending breaks the unique index, which rolls the whole commit back). A commit of many
// batches is one transaction and one WAL flush: the group commit.

import type {
  Appended,
  BatchEffects,
  Envelope,
  InboxMessage,
  OutboxRecord,
  PartitionLease,
  StateEntry,
  StateMutation,
  StateStore,
  StoreCounts,
  SweepResult,
  StoredAddress,
} from './state-store.ts';
import {
  checkBatches,
  checkDedupWindow,
  checkIngressIds,
  checkLimit,
  checkPartition,
  checkSeq,
  checkTime,
  copyEnvelope,
  escapeText as esc,
  staleBatch,
  tokenInUse,
  tokensAfter,
  unescapeText as unesc,
} from './store-records.ts';
import { FencedError } from '../errors.ts';
import { DEFAULT_PARTITIONS, partitionOf } from '../cluster/partition.ts';
import { PartitionScopedStore } from './partition-scoped-store.ts';
import { WriteGrouper } from '../write-grouper.ts';

/**
 * What the store needs of a connection: `pg`'s `PoolClient` has this shape. Declared here so
 * that the store's types do not require `pg`'s in a program that never uses PostgreSQL.
 */
export interface PostgresQueryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-unnecessary-type-parameters -- rows are typed per query, as pg types them
  query<R = any>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** A pooled connection, as `PostgresPool.connect()` hands one out. */
export interface PostgresPoolClient extends PostgresQueryable {
  release(error?: Error | boolean): void;
  /** `pg`'s clients are event emitters: a connection that breaks while checked out says so here. */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** What the store needs of a pool: a `PostgresPool` fits. */
export interface PostgresPool extends PostgresQueryable {
  connect(): Promise<PostgresPoolClient>;
}

export interface PostgresStateStoreOptions {
  /** A pool the store uses and does not end; the caller owns it. */
  readonly pool: PostgresPool;
  /** The schema of the store's tables; default `weft`. */
  readonly schema?: string;
  /** How long an ingress id is remembered; default DEFAULT_DEDUP_WINDOW_MS. */
  readonly dedupWindowMs?: number;
  /**
   * Queries each kind of grouped read (inboxes, state) may have running at once; default 2.
   * Reads waiting meanwhile go together as the next query.
   */
  readonly readConnections?: number;
  /**
   * Commits, and appends, the runtime runs side by side on this store; default 1, which makes
   * the largest groups (on a busy machine, fewer and larger transactions win). Raise it when the
   * database is far (its round trips, not the CPU, bound a commit).
   */
  readonly writeConcurrency?: number;
}

/** The schema version `migrate()` brings the tables to. */
export const POSTGRES_SCHEMA_VERSION = 3;

/** Partitions a scoped read names: a set of them, read again at each call. */
export type PartitionScope = () => readonly number[];

const UNIQUE_VIOLATION = '23505';

export class PostgresStateStore implements StateStore {
  readonly #pool: PostgresPool;
  readonly #schema: string;
  readonly #dedupWindowMs: number;
  readonly #inboxReads: WriteGrouper<{ address: StoredAddress; limit: number }, InboxMessage[]>;
  readonly #stateReads: WriteGrouper<{ address: StoredAddress; now: number }, Map<string, StateEntry>>;
  #closed = false;

  readonly writeConcurrency: number;

  private constructor(
    pool: PostgresPool,
    schema: string,
    dedupWindowMs: number,
    readConnections: number,
    writeConcurrency: number,
  ) {
    this.#pool = pool;
    this.writeConcurrency = writeConcurrency;
    this.#schema = schema;
    this.#dedupWindowMs = dedupWindowMs;
    // Reads are grouped the way writes are (write-grouper.ts): the reads of many batches waiting
    // when a query finishes go as the next query. Each kind keeps at most `readConnections`
    // running, leaving the pool's other connections to appends and commits. A failed query fails
    // its whole group (reads are safe to repeat, and the runtime does). What waits is bounded by
    // the runtime's batches in flight; the queue's own bound is only a backstop.
    const reads = {
      maxItemsPerWrite: 256,
      maxInFlight: readConnections,
      maxPending: 100_000,
      retryAlone: () => false,
    };
    this.#inboxReads = new WriteGrouper({
      ...reads,
      write: (group) => this.#readInboxes(group),
      queueName: 'the inbox reads',
    });
    this.#stateReads = new WriteGrouper({
      ...reads,
      write: (group) => this.#readStates(group),
      queueName: 'the state reads',
    });
  }

  /** Opens the store on `pool`, creating or upgrading its tables first. */
  static async open(options: PostgresStateStoreOptions): Promise<PostgresStateStore> {
    const schema = options.schema ?? 'weft';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new RangeError(`schema must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`);
    }
    const readConnections = options.readConnections ?? 2;
    const writeConcurrency = options.writeConcurrency ?? 1;
    for (const [name, value] of [
      ['readConnections', readConnections],
      ['writeConcurrency', writeConcurrency],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer, got ${value}`);
      }
    }
    const store = new PostgresStateStore(
      options.pool,
      schema,
      checkDedupWindow(options.dedupWindowMs),
      readConnections,
      writeConcurrency,
    );
    await store.#migrate();
    return store;
  }

  async append(envelopes: readonly Envelope[], now: number): Promise<Appended[]> {
    this.#open();
    checkTime('now', now);
    checkIngressIds(envelopes);
    if (envelopes.every((envelope) => envelope.ingressId === undefined)) {
      // Nothing to deduplicate: one INSERT, atomic on its own, is the whole append.
      const appended = await this.#appendAll(this.#pool, envelopes);
      return appended.map((message) => ({ ...message, duplicate: false }));
    }
    return this.#transaction(async (client) => {
      // Claim each ingress id: new, or remembered but past its window. A claim made by another
      // transaction that has not committed holds the row: this one waits for it, then sees it.
      const ids = [
        ...new Set(envelopes.flatMap((e) => (e.ingressId === undefined ? [] : [esc(e.ingressId)]))),
      ];
      const claimed = new Set<string>();
      const stored = new Map<string, number>();
      if (ids.length > 0) {
        const claims = await client.query<{ ingress_id: string }>(
          `INSERT INTO ${this.#t('ingress')} (ingress_id, seq, expires_at)
             SELECT unnest($1::text[]), 0, $2
           ON CONFLICT (ingress_id) DO UPDATE SET seq = 0, expires_at = excluded.expires_at
             WHERE ${this.#t('ingress')}.expires_at <= $3
           RETURNING ingress_id`,
          [ids, now + this.#dedupWindowMs, now],
        );
        for (const row of claims.rows) claimed.add(row.ingress_id);
        const seen = await client.query<{ ingress_id: string; seq: string }>(
          `SELECT ingress_id, seq FROM ${this.#t('ingress')} WHERE ingress_id = ANY($1::text[])`,
          [ids.filter((id) => !claimed.has(id))],
        );
        for (const row of seen.rows) stored.set(row.ingress_id, Number(row.seq));
      }
      // The first envelope with a claimed id is stored; any later one with that id is its duplicate.
      const toStore: Envelope[] = [];
      const plan = envelopes.map((envelope) => {
        const id = envelope.ingressId === undefined ? undefined : esc(envelope.ingressId);
        if (id === undefined || claimed.delete(id)) {
          toStore.push(envelope);
          return { envelope, index: toStore.length - 1, id };
        }
        return { envelope, index: -1, id };
      });
      const appended = await this.#appendAll(client, toStore);
      const claimedSeqs = plan.flatMap(({ id, index }) =>
        id === undefined || index < 0 ? [] : [[id, appended[index]?.seq ?? 0] as const],
      );
      if (claimedSeqs.length > 0) {
        await client.query(
          `UPDATE ${this.#t('ingress')} AS i SET seq = c.seq
             FROM unnest($1::text[], $2::bigint[]) AS c(id, seq) WHERE i.ingress_id = c.id`,
          [claimedSeqs.map(([id]) => id), claimedSeqs.map(([, seq]) => seq)],
        );
        for (const [id, seq] of claimedSeqs) stored.set(id, seq);
      }
      return plan.map(({ envelope, index, id }): Appended => {
        const message = index < 0 ? undefined : appended[index];
        if (message !== undefined) return { ...message, ingressId: envelope.ingressId, duplicate: false };
        return { ...copyEnvelope(envelope), seq: stored.get(id ?? '') ?? 0, duplicate: true };
      });
    });
  }

  async inbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    this.#open();
    checkLimit(limit);
    return this.#inboxReads.submit({ address, limit });
  }

  /** The inboxes of many addresses, in one query: each its oldest `limit` messages. */
  async #readInboxes(
    reads: readonly { readonly address: StoredAddress; readonly limit: number }[],
  ): Promise<InboxMessage[][]> {
    const { rows } = await this.#pool.query<InboxRow & { n: string }>(
      `SELECT w.n, i.seq, i.namespace, i.type, i.id, i.caller_namespace, i.caller_type, i.caller_id,
              i.typename, i.value
         FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) WITH ORDINALITY AS w(a, b, c, l, n)
         CROSS JOIN LATERAL (
           SELECT * FROM ${this.#t('inbox')}
             WHERE namespace = w.a AND type = w.b AND id = w.c ORDER BY seq LIMIT w.l) AS i
         ORDER BY w.n, i.seq`,
      [
        reads.map((r) => esc(r.address[0])),
        reads.map((r) => esc(r.address[1])),
        reads.map((r) => esc(r.address[2])),
        reads.map((r) => r.limit),
      ],
    );
    const results: InboxMessage[][] = reads.map(() => []);
    for (const row of rows) results[Number(row.n) - 1]?.push(inboxMessage(row));
    return results;
  }

  addressesWithInbox(limit: number, after?: StoredAddress): Promise<StoredAddress[]> {
    return this.addressesWithInboxIn(undefined, limit, after);
  }

  /** `addressesWithInbox`, of the addresses in `partitions` only (all when undefined). */
  async addressesWithInboxIn(
    partitions: readonly number[] | undefined,
    limit: number,
    after?: StoredAddress,
  ): Promise<StoredAddress[]> {
    this.#open();
    checkLimit(limit);
    const { rows } = await this.#pool.query<AddressRow>(
      `SELECT DISTINCT namespace, type, id FROM ${this.#t('inbox')}
         WHERE ($1::boolean OR (namespace, type, id) > ($2, $3, $4)) ${inPartitions(partitions, 6)}
         ORDER BY namespace, type, id LIMIT $5`,
      [after === undefined, ...escAddress(after ?? ['', '', '']), limit, ...scopeValues(partitions)],
    );
    return rows.map((row) => [unesc(row.namespace), unesc(row.type), unesc(row.id)]);
  }

  async readState(address: StoredAddress, now: number): Promise<Map<string, StateEntry>> {
    this.#open();
    checkTime('now', now);
    return this.#stateReads.submit({ address, now });
  }

  /** The live state of many addresses, in one query. */
  async #readStates(
    reads: readonly { readonly address: StoredAddress; readonly now: number }[],
  ): Promise<Map<string, StateEntry>[]> {
    const { rows } = await this.#pool.query<ValueRow & { n: string }>(
      `SELECT w.n, v.name, v.typename, v.value, v.expires_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) WITH ORDINALITY AS w(a, b, c, t, n)
         JOIN ${this.#t('values')} AS v ON v.namespace = w.a AND v.type = w.b AND v.id = w.c
         WHERE v.expires_at IS NULL OR v.expires_at > w.t`,
      [
        reads.map((r) => esc(r.address[0])),
        reads.map((r) => esc(r.address[1])),
        reads.map((r) => esc(r.address[2])),
        reads.map((r) => r.now),
      ],
    );
    const results = reads.map(() => new Map<string, StateEntry>());
    for (const row of rows) {
      const entry = { typename: unesc(row.typename), value: new Uint8Array(row.value) };
      results[Number(row.n) - 1]?.set(
        unesc(row.name),
        row.expires_at === null ? entry : { ...entry, expiresAt: row.expires_at },
      );
    }
    return results;
  }

  async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
    this.#open();
    checkBatches(batches, now);
    await this.#transaction(async (client) => {
      await this.#checkFences(client, batches);
      // Set-wise: a handful of statements however many batches the group holds, so a group
      // commit costs a few round trips, not a few per batch.
      await this.#consumeAll(client, batches);
      await this.#writeValues(client, batches, now);
      for (const batch of batches) await this.#applyTimers(client, batch);
      await this.#appendAll(
        client,
        batches.flatMap((batch) => batch.messages ?? []),
      );
      await this.#insertOutbox(client, batches);
    });
  }

  /**
   * Takes the leases of `partitions` for `owner`, each under a new epoch (one more than the last,
   * whoever held it): from the moment this returns, a commit fenced with an older epoch of these
   * partitions is refused. Returns each partition's new epoch.
   */
  async acquirePartitions(
    owner: string,
    partitions: readonly number[],
    now: number,
  ): Promise<Map<number, number>> {
    this.#open();
    checkTime('now', now);
    if (typeof owner !== 'string' || owner === '' || owner.length > 1024) {
      throw new RangeError('owner must be a string of 1 to 1024 characters');
    }
    for (const partition of partitions) checkPartition(partition);
    // Sorted: two nodes taking overlapping sets lock rows in the same order, never in a cycle.
    const sorted = [...new Set(partitions)].sort((a, b) => a - b);
    const { rows } = await this.#pool.query<{ partition: number; epoch: string }>(
      `INSERT INTO ${this.#t('partition_leases')} (partition, owner, epoch, acquired_at)
         SELECT unnest($1::integer[]), $2, 1, $3
       ON CONFLICT (partition) DO UPDATE
         SET owner = excluded.owner, epoch = ${this.#t('partition_leases')}.epoch + 1,
             acquired_at = excluded.acquired_at
       RETURNING partition, epoch`,
      [sorted, esc(owner), now],
    );
    return new Map(rows.map((row) => [row.partition, Number(row.epoch)]));
  }

  /** Every partition lease, by partition. */
  async partitionLeases(): Promise<PartitionLease[]> {
    this.#open();
    const { rows } = await this.#pool.query<{
      partition: number;
      owner: string;
      epoch: string;
      acquired_at: number;
    }>(`SELECT partition, owner, epoch, acquired_at FROM ${this.#t('partition_leases')} ORDER BY partition`);
    return rows.map((row) => ({
      partition: row.partition,
      owner: unesc(row.owner),
      epoch: Number(row.epoch),
      acquiredAt: row.acquired_at,
    }));
  }

  /**
   * Refuses the whole group when any batch's lease has moved on. FOR SHARE holds the lease rows
   * until this transaction ends, so a takeover (an UPDATE of the row) waits for the commit, and
   * once it has happened no commit under the old epoch can pass this check.
   */
  async #checkFences(client: PostgresPoolClient, batches: readonly BatchEffects[]): Promise<void> {
    const wanted = new Map<number, Set<number>>();
    for (const { fence } of batches) {
      if (fence === undefined) continue;
      let epochs = wanted.get(fence.partition);
      if (epochs === undefined) wanted.set(fence.partition, (epochs = new Set()));
      epochs.add(fence.epoch);
    }
    if (wanted.size === 0) return;
    const partitions = [...wanted.keys()].sort((a, b) => a - b);
    const { rows } = await client.query<{ partition: number; epoch: string }>(
      `SELECT partition, epoch FROM ${this.#t('partition_leases')}
         WHERE partition = ANY($1::integer[]) ORDER BY partition FOR SHARE`,
      [partitions],
    );
    const current = new Map(rows.map((row) => [row.partition, Number(row.epoch)]));
    const fenced = partitions.filter((partition) => {
      const epoch = current.get(partition);
      return [...(wanted.get(partition) ?? [])].some((wantedEpoch) => wantedEpoch !== epoch);
    });
    if (fenced.length > 0) throw new FencedError(fenced);
  }

  async hasPendingToken(sender: StoredAddress, token: string): Promise<boolean> {
    this.#open();
    const { rows } = await this.#pool.query(
      `SELECT 1 FROM ${this.#t('timers')}
         WHERE sender_namespace = $1 AND sender_type = $2 AND sender_id = $3 AND token = $4`,
      [...escAddress(sender), esc(token)],
    );
    return rows.length > 0;
  }

  nextDueAt(): Promise<number | undefined> {
    return this.nextDueAtIn(undefined);
  }

  /** `nextDueAt`, of the delayed messages bound for `partitions` only (all when undefined). */
  async nextDueAtIn(partitions: readonly number[] | undefined): Promise<number | undefined> {
    this.#open();
    const { rows } = await this.#pool.query<{ due_at: number | null }>(
      `SELECT min(due_at) AS due_at FROM ${this.#t('timers')} WHERE true ${inPartitions(partitions, 1)}`,
      scopeValues(partitions),
    );
    return rows[0]?.due_at ?? undefined;
  }

  fireDue(now: number, limit: number): Promise<InboxMessage[]> {
    return this.fireDueIn(undefined, now, limit);
  }

  /** `fireDue`, of the delayed messages bound for `partitions` only (all when undefined). */
  async fireDueIn(
    partitions: readonly number[] | undefined,
    now: number,
    limit: number,
  ): Promise<InboxMessage[]> {
    this.#open();
    checkTime('now', now);
    checkLimit(limit);
    return this.#transaction(async (client) => {
      // SKIP LOCKED: two nodes firing at once take different timers, never the same one twice.
      const { rows } = await client.query<TimerRow>(
        `DELETE FROM ${this.#t('timers')} WHERE id IN (
           SELECT id FROM ${this.#t('timers')} WHERE due_at <= $1 ${inPartitions(partitions, 3)}
             ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, due_at, namespace, type, target_id, caller_namespace, caller_type, caller_id,
                   typename, value`,
        [now, limit, ...scopeValues(partitions)],
      );
      rows.sort((a, b) => a.due_at - b.due_at || Number(a.id) - Number(b.id));
      return this.#appendAll(
        client,
        rows.map((row) => ({
          target: [unesc(row.namespace), unesc(row.type), unesc(row.target_id)],
          caller: callerOf(row),
          argument: { typename: unesc(row.typename), value: new Uint8Array(row.value) },
        })),
      );
    });
  }

  outbox(limit: number): Promise<OutboxRecord[]> {
    return this.outboxIn(undefined, limit);
  }

  /** `outbox`, of the records sent from addresses in `partitions` only (all when undefined). */
  async outboxIn(partitions: readonly number[] | undefined, limit: number): Promise<OutboxRecord[]> {
    this.#open();
    checkLimit(limit);
    const { rows } = await this.#pool.query<OutboxRow>(
      `SELECT seq, egress_namespace, egress_type, typename, value FROM ${this.#t('outbox')}
         WHERE true ${inPartitions(partitions, 2)} ORDER BY seq LIMIT $1`,
      [limit, ...scopeValues(partitions)],
    );
    return rows.map((row) => ({
      seq: Number(row.seq),
      egress: [unesc(row.egress_namespace), unesc(row.egress_type)],
      value: { typename: unesc(row.typename), value: new Uint8Array(row.value) },
    }));
  }

  async acknowledgeOutbox(seqs: readonly number[]): Promise<void> {
    this.#open();
    for (const seq of seqs) checkSeq(seq);
    if (seqs.length === 0) return;
    await this.#pool.query(`DELETE FROM ${this.#t('outbox')} WHERE seq = ANY($1::bigint[])`, [seqs]);
  }

  async sweepExpired(now: number, limit: number): Promise<SweepResult> {
    this.#open();
    checkTime('now', now);
    checkLimit(limit);
    const ingress = await this.#pool.query(
      `DELETE FROM ${this.#t('ingress')} WHERE ingress_id IN (
         SELECT ingress_id FROM ${this.#t('ingress')} WHERE expires_at <= $1
           ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [now, limit],
    );
    const result = await this.#pool.query(
      `DELETE FROM ${this.#t('values')} WHERE ctid IN (
         SELECT ctid FROM ${this.#t('values')} WHERE expires_at <= $1
           ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [now, limit],
    );
    const values = result.rowCount ?? 0;
    const ingressIds = ingress.rowCount ?? 0;
    return { values, ingressIds, more: values === limit || ingressIds === limit };
  }

  counts(): Promise<StoreCounts> {
    return this.countsIn(undefined);
  }

  /** `counts`, of `partitions` only (all when undefined). */
  async countsIn(partitions: readonly number[] | undefined): Promise<StoreCounts> {
    this.#open();
    const scope = inPartitions(partitions, 1);
    const { rows } = await this.#pool.query<{ inbox: string; timers: string; outbox: string }>(
      `SELECT (SELECT count(*) FROM ${this.#t('inbox')} WHERE true ${scope}) AS inbox,
              (SELECT count(*) FROM ${this.#t('timers')} WHERE true ${scope}) AS timers,
              (SELECT count(*) FROM ${this.#t('outbox')} WHERE true ${scope}) AS outbox`,
      scopeValues(partitions),
    );
    const row = rows[0];
    return {
      inboxMessages: Number(row?.inbox ?? 0),
      delayedMessages: Number(row?.timers ?? 0),
      outboxRecords: Number(row?.outbox ?? 0),
    };
  }

  /**
   * This store as one node of a cluster sees it: inboxes, delayed messages, the outbox and the
   * counts of the partitions `held()` names (read again at each call); everything else as is.
   */
  forPartitions(held: PartitionScope): StateStore {
    return new PartitionScopedStore(this, held);
  }

  close(): Promise<void> {
    // The pool is the caller's: other stores or the node may share it.
    this.#closed = true;
    return Promise.resolve();
  }

  #open(): void {
    // Every caller is async, so this rejects its promise rather than throwing.
    if (this.#closed) throw new Error('the state store is closed');
  }

  /** A table of this store's schema, quoted. */
  #t(table: string): string {
    return `"${this.#schema}"."${table}"`;
  }

  async #transaction<T>(work: (client: PostgresPoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A checked-out `pg` client has no 'error' listener of the pool's, and an unheard 'error'
    // event ends the process: the server going away mid-transaction (a restart, a failover) must
    // only fail this transaction, which its next query reports.
    const onError = (error: Error): void => {
      broken ??= error;
    };
    client.on?.('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client that cannot even roll back is not handed back to the pool for reuse.
      await client.query('ROLLBACK').catch((rollback: unknown) => {
        broken = rollback instanceof Error ? rollback : new Error(String(rollback));
      });
      throw error;
    } finally {
      client.removeListener?.('error', onError);
      client.release(broken);
    }
  }

  async #appendAll(client: PostgresQueryable, envelopes: readonly Envelope[]): Promise<InboxMessage[]> {
    if (envelopes.length === 0) return [];
    // One statement for all: unnest keeps the given order, and the seqs follow it.
    const { rows } = await client.query<InboxRow>(
      `INSERT INTO ${this.#t('inbox')}
         (namespace, type, id, caller_namespace, caller_type, caller_id, typename, value, partition)
       SELECT a, b, c, d, e, f, g, h, p FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::bytea[], $9::integer[])
                            WITH ORDINALITY AS m(a, b, c, d, e, f, g, h, p, n)
       ORDER BY n
       RETURNING seq, namespace, type, id, caller_namespace, caller_type, caller_id, typename, value`,
      columns(envelopes),
    );
    return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(inboxMessage);
  }

  /** Deletes the inbox messages every batch ran on; refuses the commit if one is gone. */
  async #consumeAll(client: PostgresPoolClient, batches: readonly BatchEffects[]): Promise<void> {
    const seqs = batches.flatMap((batch) => batch.consumed ?? []);
    if (seqs.length === 0) return;
    const { rows } = await client.query<{ seq: string } & AddressRow>(
      `DELETE FROM ${this.#t('inbox')} WHERE seq = ANY($1::bigint[]) RETURNING seq, namespace, type, id`,
      [seqs],
    );
    const deleted = new Map(rows.map((row) => [Number(row.seq), row]));
    for (const batch of batches) {
      const [namespace, type, id] = escAddress(batch.address);
      for (const seq of batch.consumed ?? []) {
        const row = deleted.get(seq);
        // Every message it ran on must still be there, in its inbox: otherwise it was applied
        // already (or another node took the address), and the whole commit is refused.
        if (row === undefined || row.namespace !== namespace || row.type !== type || row.id !== id) {
          throw staleBatch(batch.address, seq);
        }
        deleted.delete(seq);
      }
    }
  }

  /**
   * The batches' state mutations and expiry refreshes. A value named twice (by two batches of one
   * address, which the runtime never groups) keeps its last write, as applying them in turn would.
   */
  async #writeValues(
    client: PostgresPoolClient,
    batches: readonly BatchEffects[],
    now: number,
  ): Promise<void> {
    const last = new Map<string, { address: [string, string, string]; mutation: StateMutation }>();
    const refreshes = new Map<
      string,
      { address: [string, string, string]; name: string; expiresAt: number }
    >();
    for (const batch of batches) {
      const address = escAddress(batch.address);
      for (const mutation of batch.mutations ?? []) {
        const key = JSON.stringify([...address, mutation.name]);
        last.delete(key);
        last.set(key, { address, mutation });
      }
      for (const refresh of batch.refreshes ?? []) {
        refreshes.set(JSON.stringify([...address, refresh.name]), {
          address,
          name: esc(refresh.name),
          expiresAt: refresh.expiresAt,
        });
      }
    }
    const deletes = [...last.values()].filter(({ mutation }) => mutation.value === undefined);
    const writes = [...last.values()].filter(({ mutation }) => mutation.value !== undefined);
    if (deletes.length > 0) {
      await client.query(
        `DELETE FROM ${this.#t('values')} AS v USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS d(a, b, c, n)
           WHERE v.namespace = d.a AND v.type = d.b AND v.id = d.c AND v.name = d.n`,
        [
          deletes.map((d) => d.address[0]),
          deletes.map((d) => d.address[1]),
          deletes.map((d) => d.address[2]),
          deletes.map((d) => esc(d.mutation.name)),
        ],
      );
    }
    if (writes.length > 0) {
      await client.query(
        `INSERT INTO ${this.#t('values')} (namespace, type, id, name, typename, value, expires_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::float8[])
         ON CONFLICT (namespace, type, id, name)
           DO UPDATE SET typename = excluded.typename, value = excluded.value, expires_at = excluded.expires_at`,
        [
          writes.map((w) => w.address[0]),
          writes.map((w) => w.address[1]),
          writes.map((w) => w.address[2]),
          writes.map((w) => esc(w.mutation.name)),
          writes.map((w) => esc(w.mutation.value?.typename ?? '')),
          writes.map((w) => Buffer.from(w.mutation.value?.value ?? new Uint8Array())),
          writes.map((w) => w.mutation.expiresAt ?? null),
        ],
      );
    }
    if (refreshes.size > 0) {
      const list = [...refreshes.values()];
      await client.query(
        // An expired value, swept or not, stays expired: a refresh does not bring it back.
        `UPDATE ${this.#t('values')} AS v SET expires_at = r.e
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[]) AS r(a, b, c, n, e)
           WHERE v.namespace = r.a AND v.type = r.b AND v.id = r.c AND v.name = r.n
             AND (v.expires_at IS NULL OR v.expires_at > $6)`,
        [
          list.map((r) => r.address[0]),
          list.map((r) => r.address[1]),
          list.map((r) => r.address[2]),
          list.map((r) => r.name),
          list.map((r) => r.expiresAt),
          now,
        ],
      );
    }
  }

  /** Every batch's egress records, in order, each in the partition of the address that sent it. */
  async #insertOutbox(client: PostgresPoolClient, batches: readonly BatchEffects[]): Promise<void> {
    const records = batches.flatMap((batch) =>
      (batch.egress ?? []).map((record) => ({ record, partition: partitionOf(batch.address) })),
    );
    if (records.length === 0) return;
    await client.query(
      `INSERT INTO ${this.#t('outbox')} (egress_namespace, egress_type, typename, value, partition)
         SELECT a, b, c, d, e FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::integer[])
           WITH ORDINALITY AS r(a, b, c, d, e, n)
         ORDER BY n`,
      [
        records.map(({ record }) => esc(record.egress[0])),
        records.map(({ record }) => esc(record.egress[1])),
        records.map(({ record }) => esc(record.value.typename)),
        records.map(({ record }) => Buffer.from(record.value.value)),
        records.map(({ partition }) => partition),
      ],
    );
  }

  /** The batch's delayed messages and cancellations, in call order. */
  async #applyTimers(client: PostgresPoolClient, batch: BatchEffects): Promise<void> {
    const operations = batch.timers ?? [];
    if (operations.length === 0) return;
    const address = batch.address;
    const tokens = operations
      .map((op) => ('cancel' in op ? op.cancel : op.send.token))
      .filter((t) => t !== undefined);
    const { rows } = await client.query<{ token: string }>(
      `SELECT token FROM ${this.#t('timers')}
         WHERE sender_namespace = $1 AND sender_type = $2 AND sender_id = $3 AND token = ANY($4::text[])`,
      [...escAddress(address), tokens],
    );
    const pending = new Set(rows.map((row) => row.token));
    // Throws, before anything is written, if a send reuses a token pending at that point.
    tokensAfter(address, operations, (token) => pending.has(esc(token)));
    for (const operation of operations) {
      if ('cancel' in operation) {
        await client.query(
          `DELETE FROM ${this.#t('timers')}
             WHERE sender_namespace = $1 AND sender_type = $2 AND sender_id = $3 AND token = $4`,
          [...escAddress(address), esc(operation.cancel)],
        );
        continue;
      }
      const { dueAt, envelope, token } = operation.send;
      const { target, caller, argument } = envelope;
      try {
        await client.query(
          `INSERT INTO ${this.#t('timers')} (due_at, namespace, type, target_id,
             caller_namespace, caller_type, caller_id, typename, value,
             sender_namespace, sender_type, sender_id, token, partition)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
          [
            dueAt,
            ...escAddress(target),
            ...(caller === undefined ? [null, null, null] : escAddress(caller)),
            esc(argument.typename),
            Buffer.from(argument.value),
            ...escAddress(address),
            token === undefined ? null : esc(token),
            partitionOf(target),
          ],
        );
      } catch (error) {
        // Another node set the same token since the check: the same refusal.
        if (isUniqueViolation(error) && token !== undefined) throw tokenInUse(address, token);
        throw error;
      }
    }
  }

  /**
   * Version 3: the partition of each inbox message and delayed message (its target's) and of
   * each outbox record (its sender's), so that each node of a cluster reads its own. Rows from
   * before are filled in here; an outbox record of version 2 does not name its sender, so it is
   * given the partition `seq mod DEFAULT_PARTITIONS`: any one partition, so one node delivers it.
   */
  async #migrateToPartitionColumns(client: PostgresPoolClient): Promise<void> {
    await client.query(`
      ALTER TABLE ${this.#t('inbox')} ADD COLUMN partition integer;
      ALTER TABLE ${this.#t('timers')} ADD COLUMN partition integer;
      ALTER TABLE ${this.#t('outbox')} ADD COLUMN partition integer;
      UPDATE ${this.#t('outbox')} SET partition = seq % ${DEFAULT_PARTITIONS};`);
    for (const [table, idColumn] of [
      ['inbox', 'id'],
      ['timers', 'target_id'],
    ] as const) {
      const { rows } = await client.query<{ namespace: string; type: string; target: string }>(
        `SELECT DISTINCT namespace, type, ${idColumn} AS target FROM ${this.#t(table)}`,
      );
      const partitions = rows.map((row) =>
        partitionOf([unesc(row.namespace), unesc(row.type), unesc(row.target)]),
      );
      await client.query(
        `UPDATE ${this.#t(table)} AS t SET partition = u.p
           FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) AS u(a, b, c, p)
           WHERE t.namespace = u.a AND t.type = u.b AND t.${idColumn} = u.c`,
        [rows.map((r) => r.namespace), rows.map((r) => r.type), rows.map((r) => r.target), partitions],
      );
    }
    await client.query(`
      ALTER TABLE ${this.#t('inbox')} ALTER COLUMN partition SET NOT NULL;
      ALTER TABLE ${this.#t('timers')} ALTER COLUMN partition SET NOT NULL;
      ALTER TABLE ${this.#t('outbox')} ALTER COLUMN partition SET NOT NULL;
      CREATE INDEX ON ${this.#t('inbox')} (partition, namespace, type, id);
      CREATE INDEX ON ${this.#t('timers')} (partition, due_at, id);
      CREATE INDEX ON ${this.#t('outbox')} (partition, seq);
      UPDATE ${this.#t('schema_version')} SET version = 3;`);
  }

  async #migrate(): Promise<void> {
    await this.#transaction(async (client) => {
      // One migrating node at a time; the others wait, then find the tables there.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`weft.migrate.${this.#schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#t('schema_version')} (version integer NOT NULL)`,
      );
      const { rows } = await client.query<{ version: number }>(
        `SELECT max(version) AS version FROM ${this.#t('schema_version')}`,
      );
      const version = rows[0]?.version ?? 0;
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new Error(
          `schema "${this.#schema}" is at version ${version}, newer than this Weft knows (${POSTGRES_SCHEMA_VERSION}): ` +
            'upgrade Weft before opening it',
        );
      }
      if (version < 1) {
        const text = 'text COLLATE "C" NOT NULL';
        await client.query(`
          CREATE TABLE ${this.#t('values')} (
            namespace ${text}, type ${text}, id ${text}, name ${text},
            typename text NOT NULL, value bytea NOT NULL, expires_at float8,
            PRIMARY KEY (namespace, type, id, name));
          CREATE INDEX ON ${this.#t('values')} (expires_at) WHERE expires_at IS NOT NULL;
          CREATE TABLE ${this.#t('inbox')} (
            seq bigserial PRIMARY KEY,
            namespace ${text}, type ${text}, id ${text},
            caller_namespace text, caller_type text, caller_id text,
            typename text NOT NULL, value bytea NOT NULL);
          CREATE INDEX ON ${this.#t('inbox')} (namespace, type, id, seq);
          CREATE TABLE ${this.#t('timers')} (
            id bigserial PRIMARY KEY, due_at float8 NOT NULL,
            namespace text NOT NULL, type text NOT NULL, target_id text NOT NULL,
            caller_namespace text, caller_type text, caller_id text,
            typename text NOT NULL, value bytea NOT NULL,
            sender_namespace text NOT NULL, sender_type text NOT NULL, sender_id text NOT NULL,
            token text);
          CREATE INDEX ON ${this.#t('timers')} (due_at, id);
          CREATE UNIQUE INDEX ${this.#schema}_timers_token ON ${this.#t('timers')}
            (sender_namespace, sender_type, sender_id, token) WHERE token IS NOT NULL;
          CREATE TABLE ${this.#t('outbox')} (
            seq bigserial PRIMARY KEY,
            egress_namespace text NOT NULL, egress_type text NOT NULL,
            typename text NOT NULL, value bytea NOT NULL);
          CREATE TABLE ${this.#t('ingress')} (
            ingress_id ${text} PRIMARY KEY, seq bigint NOT NULL, expires_at float8 NOT NULL);
          CREATE INDEX ON ${this.#t('ingress')} (expires_at);
          INSERT INTO ${this.#t('schema_version')} (version) VALUES (1);`);
      }
      if (version < 2) {
        // Version 2: partition leases, the fencing of a cluster's nodes (docs/runtime.md).
        await client.query(`
          CREATE TABLE ${this.#t('partition_leases')} (
            partition integer PRIMARY KEY, owner text NOT NULL, epoch bigint NOT NULL,
            acquired_at float8 NOT NULL);
          UPDATE ${this.#t('schema_version')} SET version = 2;`);
      }
      if (version < 3) await this.#migrateToPartitionColumns(client);
    });
  }
}

/**
 * The SQL condition (with its leading AND) limiting a query to `partitions`, as parameter
 * `$index`; empty when undefined (every partition).
 */
function inPartitions(partitions: readonly number[] | undefined, index: number): string {
  return partitions === undefined ? '' : `AND partition = ANY($${index}::integer[])`;
}

function scopeValues(partitions: readonly number[] | undefined): unknown[] {
  return partitions === undefined ? [] : [partitions];
}

interface AddressRow {
  readonly namespace: string;
  readonly type: string;
  readonly id: string;
}

interface CallerColumns {
  readonly caller_namespace: string | null;
  readonly caller_type: string | null;
  readonly caller_id: string | null;
}

interface InboxRow extends AddressRow, CallerColumns {
  readonly seq: string;
  readonly typename: string;
  readonly value: Buffer;
}

interface ValueRow {
  readonly name: string;
  readonly typename: string;
  readonly value: Buffer;
  readonly expires_at: number | null;
}

interface TimerRow extends CallerColumns {
  readonly id: string;
  readonly due_at: number;
  readonly namespace: string;
  readonly type: string;
  readonly target_id: string;
  readonly typename: string;
  readonly value: Buffer;
}

interface OutboxRow {
  readonly seq: string;
  readonly egress_namespace: string;
  readonly egress_type: string;
  readonly typename: string;
  readonly value: Buffer;
}

function escAddress(address: StoredAddress): [string, string, string] {
  return [esc(address[0]), esc(address[1]), esc(address[2])];
}

function callerOf(row: CallerColumns): StoredAddress | undefined {
  if (row.caller_namespace === null || row.caller_type === null || row.caller_id === null) return undefined;
  return [unesc(row.caller_namespace), unesc(row.caller_type), unesc(row.caller_id)];
}

function inboxMessage(row: InboxRow): InboxMessage {
  const message = {
    seq: Number(row.seq),
    target: [unesc(row.namespace), unesc(row.type), unesc(row.id)] as const,
    argument: { typename: unesc(row.typename), value: new Uint8Array(row.value) },
  };
  const caller = callerOf(row);
  return caller === undefined ? message : { ...message, caller };
}

/** The envelopes as one array per column, for unnest. */
function columns(envelopes: readonly Envelope[]): unknown[] {
  const part = (text: string | undefined): string | null => (text === undefined ? null : esc(text));
  return [
    envelopes.map((e) => esc(e.target[0])),
    envelopes.map((e) => esc(e.target[1])),
    envelopes.map((e) => esc(e.target[2])),
    envelopes.map((e) => part(e.caller?.[0])),
    envelopes.map((e) => part(e.caller?.[1])),
    envelopes.map((e) => part(e.caller?.[2])),
    envelopes.map((e) => esc(e.argument.typename)),
    envelopes.map((e) => Buffer.from(e.argument.value)),
    envelopes.map((e) => partitionOf(e.target)),
  ];
}

function isUniqueViolation(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION
  );
}
