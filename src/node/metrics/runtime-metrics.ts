// The runtime's series: load, backlog and delivery from `Runtime.stats()`, and the shape of
// each batch from `weft:runtime:batch` and `weft:runtime:batch-failure`. Those events do not
// name their runtime: with several runtimes in one process, each node's metrics count all of
// them (one runtime per process is the deployed shape).

import type { Runtime } from '../../runtime/index.ts';
import { numberField, onDiagnostics, type EventFields } from './diagnostics-events.ts';
import { labelBudget } from './label-budget.ts';
import type { MetricKit } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

const BATCH_MESSAGE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
const BATCH_REQUEST_BUCKETS = [1, 2, 3, 5, 10];
const PARK_SECONDS_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
/** Function types a failure counter tracks; a deployment serves far fewer. */
const MAX_FUNCTION_TYPE_LABELS = 512;

export type RuntimeSource = Pick<Runtime, 'stats'>;

/** Declares the runtime's series; returns the unsubscriber of its diagnostics channels. */
export function runtimeMetrics(kit: MetricKit, runtime: RuntimeSource): () => void {
  const stats = perScrape(() => runtime.stats());

  kit.gauge(
    'runtime_active_addresses',
    'Addresses running a batch, waiting for a turn, or parked.',
    [],
    () => stats().activeAddresses,
  );
  kit.gauge(
    'runtime_waiting_addresses',
    'Addresses with messages waiting for a free batch slot.',
    [],
    () => stats().waitingAddresses,
  );
  kit.gauge(
    'runtime_parked_addresses',
    'Addresses whose last batch failed, waiting to run again.',
    [],
    () => stats().parkedAddresses,
  );
  kit.gauge('runtime_running_batches', 'Batches running now.', [], () => stats().runningBatches);
  kit.gauge('runtime_backlog_messages', 'Messages waiting in inboxes.', [], () => stats().backlog.messages);
  kit.gauge(
    'runtime_backlog_largest_address_messages',
    'Messages waiting in the deepest inbox of one address.',
    [],
    () => stats().backlog.largestAddress,
  );
  kit.counterOf('runtime_batches_total', 'Batches committed.', [], () => stats().batches);
  kit.counterOf(
    'runtime_batch_failures_total',
    'Batches that failed (each parks its address).',
    [],
    () => stats().batchFailures,
  );
  kit.counterOf(
    'runtime_requests_total',
    'Requests sent to functions, resends after incomplete-context replies included.',
    [],
    () => stats().requests,
  );
  kit.counterOf(
    'runtime_commits_total',
    'Store commits, each holding one or more batches.',
    [],
    () => stats().commits.commits,
  );
  kit.gauge(
    'runtime_commit_pending_batches',
    'Batches waiting for a commit.',
    [],
    () => stats().commits.pending,
  );
  kit.counterOf(
    'runtime_commit_refused_total',
    'Batches refused because the commit queue was full.',
    [],
    () => stats().commits.refused,
  );
  kit.counterOf(
    'runtime_ingress_messages_total',
    'Messages offered to the runtime, by outcome.',
    ['outcome'],
    () => {
      const { accepted, duplicates, refused } = stats().ingress;
      return [
        [{ outcome: 'accepted' }, accepted],
        [{ outcome: 'duplicate' }, duplicates],
        [{ outcome: 'refused' }, refused],
      ];
    },
  );
  kit.gauge('runtime_delayed_messages', 'Delayed messages not yet due.', [], () => stats().delayed.pending);
  kit.counterOf(
    'runtime_delayed_fired_total',
    'Delayed messages delivered when due.',
    [],
    () => stats().delayed.fired,
  );
  kit.gauge('runtime_outbox_records', 'Egress records in the outbox.', [], () => stats().outbox.records);
  kit.counterOf(
    'runtime_outbox_delivered_total',
    'Egress records delivered to their sink.',
    [],
    () => stats().outbox.delivered,
  );
  kit.counterOf(
    'runtime_outbox_failures_total',
    'Egress delivery attempts a sink rejected.',
    [],
    () => stats().outbox.failures,
  );
  kit.counterOf(
    'runtime_expired_state_swept_total',
    'Expired state values deleted by the background sweep.',
    [],
    () => stats().expiredSwept,
  );

  const batchMessages = kit.histogram(
    'runtime_batch_messages',
    'Messages per committed batch.',
    [],
    BATCH_MESSAGE_BUCKETS,
  );
  const batchRequests = kit.histogram(
    'runtime_batch_requests',
    'Function requests one committed batch took.',
    [],
    BATCH_REQUEST_BUCKETS,
  );
  const failures = kit.counter(
    'runtime_function_batch_failures_total',
    'Batches that failed, by function type.',
    ['function_type'],
  );
  const parked = kit.histogram(
    'runtime_batch_park_seconds',
    'How long an address is parked after a failed batch.',
    [],
    PARK_SECONDS_BUCKETS,
  );
  const functionTypes = labelBudget(MAX_FUNCTION_TYPE_LABELS);

  const unsubscribers = [
    onDiagnostics('runtime', 'batch', (event) => {
      const messages = numberField(event, 'messages');
      const requests = numberField(event, 'requests');
      if (messages !== undefined) batchMessages.observe(messages);
      if (requests !== undefined) batchRequests.observe(requests);
    }),
    onDiagnostics('runtime', 'batch-failure', (event) => {
      const functionType = functionTypeOf(event);
      if (functionType !== undefined) failures.inc({ function_type: functionTypes.admit(functionType) });
      const parkedForMs = numberField(event, 'parkedForMs');
      if (parkedForMs !== undefined) parked.observe(parkedForMs / 1000);
    }),
  ];
  return () => {
    for (const unsubscribe of unsubscribers) unsubscribe();
  };
}

/** `namespace/type` of the event's address (`[namespace, type, id]`). */
function functionTypeOf(event: EventFields): string | undefined {
  const address = event['address'];
  if (!Array.isArray(address)) return undefined;
  const [namespace, type] = address as unknown[];
  return typeof namespace === 'string' && typeof type === 'string' ? `${namespace}/${type}` : undefined;
}
