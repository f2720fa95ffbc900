// The grid's series: its peers' connections from `Manager.stats()`, and the state changes
// of this node's connections from `weft:grid:connection-state`. Every connection event
// names the node it belongs to (`local`), so a process running several nodes counts only
// its own grid's.

import type { ConnectionState, ConnectionStats, Manager, ManagerStats } from '../../grid/index.ts';
import { onDiagnostics, oneOf, stringField } from './diagnostics-events.ts';
import { labelBudget } from './label-budget.ts';
import type { MetricKit, Sample } from './metric-kit.ts';
import { byLabel } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

const CONNECTION_STATES = Object.keys({
  unconnected: true,
  connecting: true,
  connected: true,
  'connection-error': true,
  shutdown: true,
} satisfies Record<ConnectionState, true>) as ConnectionState[];

/** Peers a transition counter tracks; the grid itself holds at most a few hundred hosts. */
const MAX_PEER_LABELS = 1024;

export type GridSource = Pick<Manager, 'stats' | 'hostName'>;

/** Declares the grid's series; returns the unsubscriber of its diagnostics channel. */
export function gridMetrics(kit: MetricKit, grid: GridSource): () => void {
  const stats = perScrape(() => grid.stats());
  const perPeer = (field: (connection: ConnectionStats) => number | undefined) => peerSamples(stats(), field);

  kit.gauge('grid_connections', 'Connections to peers, by state.', ['state'], () =>
    byLabel('state', CONNECTION_STATES, countStates(stats())),
  );
  kit.gauge('grid_peer_rtt_seconds', 'Round trip of the last connection ping to the peer.', ['peer'], () =>
    perPeer((c) => (c.rttMs === undefined ? undefined : c.rttMs / 1000)),
  );
  kit.counterOf('grid_peer_received_bytes_total', 'Bytes received from the peer.', ['peer'], () =>
    perPeer((c) => c.bytesIn),
  );
  kit.counterOf('grid_peer_sent_bytes_total', 'Bytes sent to the peer.', ['peer'], () =>
    perPeer((c) => c.bytesOut),
  );
  kit.counterOf('grid_peer_received_messages_total', 'Grid messages received from the peer.', ['peer'], () =>
    perPeer((c) => c.messagesIn),
  );
  kit.counterOf('grid_peer_sent_messages_total', 'Grid messages sent to the peer.', ['peer'], () =>
    perPeer((c) => c.messagesOut),
  );
  kit.gauge(
    'grid_peer_streams',
    'Streams open with the peer, by who opened them (in: the peer).',
    ['peer', 'direction'],
    () =>
      Object.entries(stats().connections).flatMap(([peer, c]): Sample<'peer' | 'direction'>[] => [
        [{ peer, direction: 'in' }, c.streamsIn],
        [{ peer, direction: 'out' }, c.streamsOut + c.statelessStreamsOut],
      ]),
  );
  kit.counterOf(
    'grid_peer_reconnects_total',
    'Sockets to the peer established after the first.',
    ['peer'],
    () => perPeer((c) => c.reconnects),
  );
  kit.counterOf(
    'grid_peer_protocol_errors_total',
    'Messages from the peer that broke the protocol and reset the socket.',
    ['peer'],
    () => perPeer((c) => c.protocolErrors),
  );
  kit.counterOf(
    'grid_handshake_refusals_total',
    'Handshakes refused and sockets dropped before they proved themselves, by reason.',
    ['reason'],
    () => byLabel('reason', [], stats().refused),
  );
  kit.gauge(
    'grid_pending_handshakes',
    'Handshakes under way, not yet authenticated.',
    [],
    () => stats().pendingHandshakes,
  );

  const transitions = kit.counter(
    'grid_connection_transitions_total',
    "State changes of this node's connections, by peer and the state entered.",
    ['peer', 'state'],
  );
  const peers = labelBudget(MAX_PEER_LABELS);
  const local = grid.hostName();
  return onDiagnostics('grid', 'connection-state', (event) => {
    if (stringField(event, 'local') !== local) return;
    const remote = stringField(event, 'remote');
    const state = oneOf(event, 'state', CONNECTION_STATES);
    if (remote === undefined || state === undefined) return;
    transitions.inc({ peer: peers.admit(remote), state });
  });
}

function countStates(stats: ManagerStats): Partial<Record<ConnectionState, number>> {
  const counts: Partial<Record<ConnectionState, number>> = {};
  for (const { state } of Object.values(stats.connections)) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

function peerSamples(
  stats: ManagerStats,
  field: (connection: ConnectionStats) => number | undefined,
): Sample<'peer'>[] {
  const samples: Sample<'peer'>[] = [];
  for (const [peer, connection] of Object.entries(stats.connections)) {
    const value = field(connection);
    if (value !== undefined) samples.push([{ peer }, value]);
  }
  return samples;
}
