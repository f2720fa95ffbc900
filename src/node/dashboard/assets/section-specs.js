// What the Runtime, Cluster, Hub and Mirror panels show of their node.stats sections (see
// section-panel.js for the shape); fields not named here still appear in a generic list.

import { DASH, formatAmount, formatBytes, formatCount, formatPercent, isNumber, isRecord } from './format.js';

export const RUNTIME_SPEC = {
  fields: [
    ['addresses', 'Addresses'],
    ['backlog', 'Backlog'],
    ['messagesIn', 'Messages in'],
    ['messagesProcessed', 'Messages processed'],
    ['batches', 'Batches'],
  ],
  derived: [['Processed / s', (_runtime, stats) => formatAmount(stats.processedPerSecond)]],
  lists: [['functionTypes', 'Function types']],
};

// The rest of the section (leases, quorum, wakes, commits…) appears in the generic list.
export const CLUSTER_SPEC = {
  fields: [
    ['partitionsHeld', 'Partitions held'],
    ['partitionsMoving', 'Partitions moving'],
    ['maxEpoch', 'Max lease epoch'],
    ['forwarded', 'Forwarded'],
    ['fencedBatches', 'Fenced batches'],
    ['meanBatchesPerCommit', 'Batches per commit', formatAmount],
    ['pool', 'Pool in use / size', formatPoolInUse],
  ],
  derived: [
    ['Pool waiting', (cluster) => formatCount(isRecord(cluster.pool) ? cluster.pool.waiting : undefined)],
  ],
};

export const HUB_SPEC = {
  fields: [
    ['activeStreams', 'Active streams'],
    ['buffered', 'Buffered'],
    ['keys', 'Keys'],
    ['packetsIn', 'Packets in'],
    ['sent', 'Sent'],
    ['replayed', 'Replayed'],
    ['pauses', 'Pauses'],
  ],
  lists: [['stories', 'Stories']],
  maps: [
    ['drops', 'Drops by reason'],
    ['handoffs', 'Handoffs by phase'],
  ],
};

export const MIRROR_SPEC = {
  fields: [
    ['requests', 'Requests'],
    ['servedFromStore', 'Served from store'],
    ['peerFetches', 'Peer fetches'],
    ['originFetches', 'Origin fetches'],
    ['storedBlobs', 'Stored blobs'],
    ['storedBytes', 'Stored bytes', formatBytes],
  ],
  derived: [
    [
      'Store hit ratio',
      (mirror) =>
        formatPercent(
          isNumber(mirror.requests) && mirror.requests > 0
            ? mirror.servedFromStore / mirror.requests
            : undefined,
        ),
    ],
  ],
};

/** The pool's connections busy (open and not idle) of its size: "4 / 10". */
function formatPoolInUse(pool) {
  if (!isRecord(pool) || !isNumber(pool.total) || !isNumber(pool.idle) || !isNumber(pool.size)) return DASH;
  return `${formatCount(Math.max(0, pool.total - pool.idle))} / ${formatCount(pool.size)}`;
}
