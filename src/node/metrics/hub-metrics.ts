// The hub's series: streams, buffers, drops and handoffs from `Hub.stats()`, and handoffs
// with their reason from `weft:hub:handoff`. Handoff events do not name their hub: with
// several hubs in one process, each node's metrics count all of them.

import { bufferReasons, dropReasons, type HandoffPhase, type Hub } from '../../hub/index.ts';
import { onDiagnostics, oneOf, stringField } from './diagnostics-events.ts';
import { labelBudget } from './label-budget.ts';
import { byLabel, type MetricKit } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

const HANDOFF_PHASES = Object.keys({
  pending: true,
  warming: true,
  cutover: true,
  draining: true,
  ready: true,
} satisfies Record<HandoffPhase, true>) as HandoffPhase[];

/** Handoff reasons are a handful of fixed strings; the budget only guards against surprises. */
const MAX_REASON_LABELS = 64;

export type HubSource = Pick<Hub, 'stats'>;

/** Declares the hub's series; returns the unsubscriber of its diagnostics channel. */
export function hubMetrics(kit: MetricKit, hub: HubSource): () => void {
  const stats = perScrape(() => hub.stats());
  const streams = () => stats().streams;

  kit.gauge('hub_streams', 'Connector streams open.', [], () => streams().activeStreams);
  kit.gauge('hub_connectors', 'Connectors attached.', [], () => stats().connections);
  kit.gauge('hub_runs', 'Story runs known.', [], () => stats().runs);
  kit.gauge('hub_keys', 'Stream keys with state (streams, buffers, delivery).', [], () => streams().keys);
  kit.gauge('hub_buffers', 'Buffers holding packets for a stream key.', [], () => streams().buffers);
  kit.gauge('hub_buffered_packets', 'Packets waiting in buffers.', [], () => streams().buffered);
  kit.counterOf(
    'hub_received_packets_total',
    'Packets received from connectors.',
    [],
    () => stats().packetsIn,
  );
  kit.counterOf('hub_sent_packets_total', 'Packets sent to connector streams.', [], () => streams().sent);
  kit.counterOf(
    'hub_send_failures_total',
    'Sends to a connector stream that failed.',
    [],
    () => streams().sendFailures,
  );
  kit.counterOf(
    'hub_replayed_packets_total',
    'Unacknowledged packets replayed to a new stream.',
    [],
    () => streams().replayed,
  );
  kit.counterOf(
    'hub_buffered_packets_total',
    'Packets sent to a buffer instead of the stream, by reason.',
    ['reason'],
    () => byLabel('reason', bufferReasons, streams().bufferedBy),
  );
  kit.counterOf('hub_dropped_packets_total', 'Packets dropped, by reason.', ['reason'], () =>
    byLabel('reason', dropReasons, streams().drops),
  );
  kit.counterOf('hub_handoffs_total', 'Handoff phases entered by stream keys, by phase.', ['phase'], () =>
    byLabel('phase', HANDOFF_PHASES, streams().handoffs),
  );
  kit.counterOf('hub_refused_streams_total', 'Connector streams refused, by reason.', ['reason'], () => {
    const { maxActive, superseded } = streams().refusedStreams;
    return [
      [{ reason: 'max_active' }, maxActive],
      [{ reason: 'superseded' }, superseded],
    ];
  });
  kit.counterOf(
    'hub_refused_calls_total',
    'Connector calls ended with an error, by gRPC status.',
    ['status'],
    () => byLabel('status', [], stats().refused),
  );
  kit.counterOf(
    'hub_disconnects_total',
    'Connector streams ended because the connector went away.',
    [],
    () => stats().disconnects,
  );
  kit.counterOf('hub_acks_sent_total', 'Acknowledgements sent to producers.', [], () => stats().acksSent);

  const events = kit.counter('hub_handoff_events_total', 'Handoff phases entered, by phase and reason.', [
    'phase',
    'reason',
  ]);
  const reasons = labelBudget(MAX_REASON_LABELS);
  return onDiagnostics('hub', 'handoff', (event) => {
    const phase = oneOf(event, 'phase', HANDOFF_PHASES);
    const reason = stringField(event, 'reason');
    if (phase === undefined || reason === undefined) return;
    events.inc({ phase, reason: reasons.admit(reason) });
  });
}
