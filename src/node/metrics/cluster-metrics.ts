// The cluster's series, for a node whose runtime keeps its state in the cluster's PostgreSQL:
// partition leases, forwards and wakes from `ClusterRuntime.stats()`, batches fenced at commit
// from its runtime's `stats()`, and the node's connection pool from `NodePool.figures()`. All
// are read at scrape time.

import type { ClusterRuntimeStats, Runtime } from '../../runtime/index.ts';
import type { NodePool } from '../postgres-pool.ts';
import type { MetricKit } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

/** What the series read of a `ClusterRuntime`. */
export interface ClusterSource {
  stats(): Pick<
    ClusterRuntimeStats,
    'ownership' | 'forwarding' | 'wakes' | 'malformedRequests' | 'scannedAddresses'
  >;
  readonly runtime: Pick<Runtime, 'stats'>;
}

export type PoolSource = Pick<NodePool, 'figures'>;

/** Declares the cluster's series. */
export function clusterMetrics(kit: MetricKit, cluster: ClusterSource): void {
  const stats = perScrape(() => cluster.stats());
  const runtime = perScrape(() => cluster.runtime.stats());

  kit.gauge(
    'cluster_partitions_held',
    'Partitions whose lease this node holds, and runs.',
    [],
    () => stats().ownership.held,
  );
  kit.gauge(
    'cluster_partitions_owned',
    'Partitions this node names itself the owner of, held or about to be.',
    [],
    () => stats().ownership.owned,
  );
  kit.gauge(
    'cluster_partitions_moving',
    "Partitions moving to or from this node: named its own but not held, or held but named another's.",
    [],
    () => stats().ownership.moving,
  );
  kit.gauge(
    'cluster_lease_epoch_max',
    'The highest lease epoch among the partitions this node holds.',
    [],
    () => stats().ownership.maxEpoch,
  );
  kit.gauge(
    'cluster_quorum',
    '1 when this node sees a majority of the members live (it takes leases only then), else 0.',
    [],
    () => (stats().ownership.quorum ? 1 : 0),
  );
  kit.gauge(
    'cluster_members',
    'Members this node counts, by view: `live` (itself and those connected) and `known`.',
    ['view'],
    () => {
      const { liveMembers, knownMembers } = stats().ownership;
      return [
        [{ view: 'live' }, liveMembers],
        [{ view: 'known' }, knownMembers],
      ];
    },
  );
  kit.counterOf(
    'cluster_leases_acquired_total',
    'Partition leases this node took.',
    [],
    () => stats().ownership.acquired,
  );
  kit.counterOf(
    'cluster_leases_lost_total',
    'Partition leases this node let go of or lost.',
    [],
    () => stats().ownership.lost,
  );
  kit.counterOf('cluster_reconciles_total', 'Lease reconciles run.', [], () => stats().ownership.reconciles);
  kit.counterOf(
    'cluster_reconcile_failures_total',
    'Lease reconciles that failed.',
    [],
    () => stats().ownership.reconcileFailures,
  );
  kit.counterOf(
    'cluster_fenced_batches_total',
    'Batches refused at commit because their partition had moved on.',
    [],
    () => runtime().fencedBatches,
  );
  kit.counterOf(
    'cluster_forwarded_messages_total',
    'Ingress messages forwarded to their owner and appended there.',
    [],
    () => stats().forwarding.forwarded,
  );
  kit.counterOf(
    'cluster_forward_requests_total',
    'Forward requests made to owners.',
    [],
    () => stats().forwarding.requests,
  );
  kit.counterOf(
    'cluster_forward_refused_total',
    'Messages whose forward was refused: the queue to the owner was full, or the owner pushed back.',
    [],
    () => stats().forwarding.refused,
  );
  kit.counterOf(
    'cluster_forward_failed_total',
    'Messages whose forward failed otherwise: the owner unreachable, or an error there.',
    [],
    () => stats().forwarding.failed,
  );
  kit.gauge(
    'cluster_forward_pending_messages',
    'Messages waiting to be forwarded, all owners together.',
    [],
    () => stats().forwarding.pending,
  );
  kit.counterOf(
    'cluster_wakes_sent_total',
    'Wakes sent to the owners of addresses given messages.',
    [],
    () => stats().wakes.sent,
  );
  kit.counterOf(
    'cluster_wakes_dropped_total',
    "Wakes dropped (a full queue, a failed request); the owner's scan finds their messages.",
    [],
    () => stats().wakes.dropped,
  );
  kit.counterOf(
    'cluster_wakes_received_total',
    'Wakes received from other nodes.',
    [],
    () => stats().wakes.received,
  );
  kit.counterOf(
    'cluster_malformed_requests_total',
    'Forward and wake requests from peers refused as malformed.',
    [],
    () => stats().malformedRequests,
  );
  kit.counterOf(
    'cluster_scanned_addresses_total',
    'Addresses found with inbox messages by taking partitions or by the periodic scan.',
    [],
    () => stats().scannedAddresses,
  );
}

/** Declares the PostgreSQL pool's series. */
export function poolMetrics(kit: MetricKit, pool: PoolSource): void {
  const figures = perScrape(() => pool.figures());

  kit.gauge(
    'postgres_pool_connections',
    'The PostgreSQL pool, by state: `total` connections open, `idle` of those, and `waiting` queries queued for one.',
    ['state'],
    () => {
      const { total, idle, waiting } = figures();
      return [
        [{ state: 'total' }, total],
        [{ state: 'idle' }, idle],
        [{ state: 'waiting' }, waiting],
      ];
    },
  );
  kit.gauge(
    'postgres_pool_size',
    'The most connections the pool opens (`runtime.postgresPoolSize`).',
    [],
    () => figures().size,
  );
  kit.counterOf(
    'postgres_pool_errors_total',
    'Pool connections that broke while idle (a database restart, a network cut).',
    [],
    () => figures().errors,
  );
}
