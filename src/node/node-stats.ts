// What a node says about itself: the `node.stats` view the dashboard draws, and the answer of
// `GET /v1/status` that `weft status` prints. A summary of each module's stats, small enough to
// send every second: counts and sums, never a list of addresses or packets.

import type { Mirror } from '../coord/index.ts';
import type { ConnectionStats, Manager } from '../grid/index.ts';
import type { Hub } from '../hub/index.ts';
import type { ClusterRuntime, Runtime } from '../runtime/index.ts';
import type { Member } from './membership.ts';
import type { PoolFigures } from './postgres-pool.ts';

export const NODE_STATS_TOPIC = 'node.stats';

/** What the dashboard and `weft status` show of a grid connection. */
export type ConnectionSummary = Pick<
  ConnectionStats,
  | 'state'
  | 'streamsIn'
  | 'streamsOut'
  | 'requestsIn'
  | 'requestsOut'
  | 'bytesIn'
  | 'bytesOut'
  | 'messagesIn'
  | 'messagesOut'
  | 'rttMs'
>;

export interface NodeStats {
  readonly node: string;
  readonly name: string;
  readonly startedAt: number;
  readonly now: number;
  readonly members: readonly Member[];
  readonly grid: {
    readonly nodeId: string;
    readonly connections: Readonly<Record<string, ConnectionSummary>>;
  };
  /** Per view this node serves: SSE streams and blocking queries open on it now. */
  readonly views: Readonly<Record<string, { readonly watchers: number }>>;
  readonly runtime?: {
    readonly functionTypes: readonly string[];
    readonly addresses: number;
    readonly backlog: number;
    readonly messagesIn: number;
    readonly messagesProcessed: number;
    readonly batches: number;
    readonly batchFailures: number;
  };
  readonly hub?: {
    readonly address: string | undefined;
    readonly stories: readonly string[];
    readonly keys: number;
    readonly activeStreams: number;
    readonly buffered: number;
    readonly packetsIn: number;
    readonly sent: number;
    readonly replayed: number;
    readonly drops: Readonly<Record<string, number>>;
    readonly handoffs: Readonly<Record<string, number>>;
  };
  /** Present when the runtime keeps its state in the cluster's PostgreSQL. */
  readonly cluster?: {
    /** Partitions whose lease this node holds, and runs. */
    readonly partitionsHeld: number;
    /** Partitions this node names itself the owner of, from the live members. */
    readonly partitionsOwned: number;
    /** Partitions moving to or from this node now. */
    readonly partitionsMoving: number;
    /** The highest lease epoch among those held. */
    readonly maxEpoch: number;
    /** Whether this node has joined and sees a majority of the members live (it takes leases only then). */
    readonly quorum: boolean;
    readonly liveMembers: number;
    readonly knownMembers: number;
    readonly leasesAcquired: number;
    readonly leasesLost: number;
    /** Batches refused at commit because their partition had moved on. */
    readonly fencedBatches: number;
    readonly forwarded: number;
    readonly forwardRefused: number;
    readonly forwardFailed: number;
    readonly forwardPending: number;
    readonly wakesSent: number;
    readonly wakesReceived: number;
    readonly pool: PoolFigures | undefined;
    readonly commits: number;
    readonly batchesCommitted: number;
    readonly meanBatchesPerCommit: number;
  };
  readonly mirror?: {
    readonly storedBlobs: number;
    readonly storedBytes: number;
    readonly originFetches: number;
    readonly peerFetches: number;
    readonly servedFromStore: number;
    readonly requests: number;
    readonly bytesServed: number;
  };
}

export interface NodeStatsSources {
  readonly name: string;
  readonly url: string;
  readonly startedAt: number;
  readonly members: readonly Member[];
  readonly grid: Manager;
  readonly runtime: Runtime | undefined;
  readonly cluster?: ClusterRuntime | undefined;
  readonly pool?: PoolFigures | undefined;
  readonly functionTypes: readonly string[];
  readonly addresses: number;
  /** Messages the runtime has run, from its `batch` diagnostics. */
  readonly messagesProcessed: number;
  readonly hub: Hub | undefined;
  readonly hubAddress: string | undefined;
  readonly mirror: Mirror | undefined;
  readonly views: Readonly<Record<string, { readonly watchers: number }>>;
}

export function nodeStatsOf(sources: NodeStatsSources): NodeStats {
  const grid = sources.grid.stats();
  const connections: Record<string, ConnectionSummary> = {};
  for (const [host, c] of Object.entries(grid.connections)) {
    const {
      state,
      streamsIn,
      streamsOut,
      requestsIn,
      requestsOut,
      bytesIn,
      bytesOut,
      messagesIn,
      messagesOut,
      rttMs,
    } = c;
    connections[host] = {
      state,
      streamsIn,
      streamsOut,
      requestsIn,
      requestsOut,
      bytesIn,
      bytesOut,
      messagesIn,
      messagesOut,
      rttMs,
    };
  }
  return {
    node: sources.url,
    name: sources.name,
    startedAt: sources.startedAt,
    now: Date.now(),
    members: sources.members,
    grid: { nodeId: grid.nodeId, connections },
    views: sources.views,
    ...(sources.runtime === undefined ? {} : { runtime: runtimeSummary(sources, sources.runtime) }),
    ...(sources.cluster === undefined ? {} : { cluster: clusterSummary(sources.cluster, sources.pool) }),
    ...(sources.hub === undefined ? {} : { hub: hubSummary(sources.hub, sources.hubAddress) }),
    ...(sources.mirror === undefined ? {} : { mirror: mirrorSummary(sources.mirror) }),
  };
}

function runtimeSummary(sources: NodeStatsSources, runtime: Runtime): NonNullable<NodeStats['runtime']> {
  const stats = runtime.stats();
  return {
    functionTypes: sources.functionTypes,
    addresses: sources.addresses,
    backlog: stats.backlog.messages,
    messagesIn: stats.ingress.accepted,
    messagesProcessed: sources.messagesProcessed,
    batches: stats.batches,
    batchFailures: stats.batchFailures,
  };
}

function clusterSummary(
  cluster: ClusterRuntime,
  pool: PoolFigures | undefined,
): NonNullable<NodeStats['cluster']> {
  const { ownership, forwarding, wakes } = cluster.stats();
  const runtime = cluster.runtime.stats();
  return {
    partitionsHeld: ownership.held,
    partitionsOwned: ownership.owned,
    partitionsMoving: ownership.moving,
    maxEpoch: ownership.maxEpoch,
    quorum: ownership.quorum,
    liveMembers: ownership.liveMembers,
    knownMembers: ownership.knownMembers,
    leasesAcquired: ownership.acquired,
    leasesLost: ownership.lost,
    fencedBatches: runtime.fencedBatches,
    forwarded: forwarding.forwarded,
    forwardRefused: forwarding.refused,
    forwardFailed: forwarding.failed,
    forwardPending: forwarding.pending,
    wakesSent: wakes.sent,
    wakesReceived: wakes.received,
    pool,
    commits: runtime.commits.commits,
    batchesCommitted: runtime.commits.batches,
    meanBatchesPerCommit: Math.round(runtime.commits.meanBatches * 10) / 10,
  };
}

function hubSummary(hub: Hub, address: string | undefined): NonNullable<NodeStats['hub']> {
  const stats = hub.stats();
  return {
    address,
    stories: hub.storyNames(),
    keys: stats.streams.keys,
    activeStreams: stats.streams.activeStreams,
    buffered: stats.streams.buffered,
    packetsIn: stats.packetsIn,
    sent: stats.streams.sent,
    replayed: stats.streams.replayed,
    drops: stats.streams.drops,
    handoffs: stats.streams.handoffs,
  };
}

function mirrorSummary(mirror: Mirror): NonNullable<NodeStats['mirror']> {
  const stats = mirror.stats();
  return {
    storedBlobs: stats.store.blobs,
    storedBytes: stats.store.bytes,
    originFetches: stats.originFetches.started,
    peerFetches: stats.content.peerFetches,
    servedFromStore: stats.store.hits,
    requests: stats.requests.base + stats.requests.blobs + stats.requests.manifests,
    bytesServed: stats.bytesServed,
  };
}
