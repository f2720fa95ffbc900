// What the Runtime, Hub and Mirror panels show of their node.stats sections (see
// section-panel.js for the shape); fields not named here still appear in a generic list.

import { formatAmount, formatBytes, formatPercent, isNumber } from './format.js';

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
