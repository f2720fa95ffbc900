// The content mirror's series: what it stores, fetches and serves from `Mirror.stats()`, and
// each fetch, cascade decision and negative-cache entry from the coord channels
// (`weft:coord:fetch`, `…:cascade`, `…:negative-cache`). Those events do not name their node:
// with several mirrors in one process, each node's metrics count all of them.

import { CASCADE_RULES, FAILURE_CLASSES, type Decision, type Mirror } from '../../coord/index.ts';
import { numberField, onDiagnostics, oneOf } from './diagnostics-events.ts';
import { byLabel, type MetricKit } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

const DECISION_ACTIONS = Object.keys({
  'serve-local': true,
  'fetch-from-peer': true,
  'fetch-from-origin': true,
  fail: true,
} satisfies Record<Decision['action'], true>) as Decision['action'][];
const FETCH_SOURCES = ['origin', 'peer'] as const;
const FETCH_OUTCOMES = ['stored', 'failed'] as const;
const FETCH_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

export type MirrorSource = Pick<Mirror, 'stats'>;

/** Declares the mirror's series; returns the unsubscriber of the coord channels. */
export function mirrorMetrics(kit: MetricKit, mirror: MirrorSource): () => void {
  const stats = perScrape(() => mirror.stats());

  kit.gauge('mirror_stored_blobs', 'Blobs in the content store.', [], () => stats().store.blobs);
  kit.gauge('mirror_stored_bytes', 'Bytes of blobs in the content store.', [], () => stats().store.bytes);
  kit.counterOf('mirror_store_reads_total', 'Reads of the content store, by result.', ['result'], () => {
    const { hits, misses } = stats().store;
    return [
      [{ result: 'hit' }, hits],
      [{ result: 'miss' }, misses],
    ];
  });
  kit.counterOf(
    'mirror_store_evictions_total',
    'Blobs removed from the store to make room.',
    [],
    () => stats().store.evictions,
  );
  kit.gauge(
    'mirror_origin_fetches_running',
    'Fetches from an origin running now.',
    [],
    () => stats().originFetches.running,
  );
  kit.counterOf(
    'mirror_origin_fetches_total',
    'Fetches from an origin that ended, by outcome.',
    ['outcome'],
    () => {
      const { stored, failed } = stats().originFetches;
      return [
        [{ outcome: 'stored' }, stored],
        [{ outcome: 'failed' }, failed],
      ];
    },
  );
  kit.counterOf(
    'mirror_origin_fetch_failures_total',
    'Failed origin fetches, by failure class.',
    ['class'],
    () => byLabel('class', FAILURE_CLASSES, stats().originFetches.failuresByClass),
  );
  kit.counterOf(
    'mirror_origin_fetched_bytes_total',
    'Bytes stored from origins.',
    [],
    () => stats().originFetches.bytes,
  );
  kit.counterOf('mirror_peer_fetches_total', 'Fetches from a peer mirror, by outcome.', ['outcome'], () => {
    const { peerFetches, peerFetchFailures } = stats().content;
    return [
      [{ outcome: 'stored' }, peerFetches - peerFetchFailures],
      [{ outcome: 'failed' }, peerFetchFailures],
    ];
  });
  kit.counterOf(
    'mirror_peer_fetched_bytes_total',
    'Bytes stored from peer mirrors.',
    [],
    () => stats().content.peerBytes,
  );
  kit.counterOf('mirror_requests_total', 'Requests to the mirror, by kind.', ['kind'], () => {
    const { base, blobs, manifests, fromPeers } = stats().requests;
    return [
      [{ kind: 'base' }, base],
      [{ kind: 'blob' }, blobs],
      [{ kind: 'manifest' }, manifests],
      [{ kind: 'peer' }, fromPeers],
    ];
  });
  kit.counterOf('mirror_responses_total', 'Answers of the mirror, by status class.', ['status_class'], () => {
    const { ok, clientErrors, serverErrors } = stats().responses;
    return [
      [{ status_class: 'ok' }, ok],
      [{ status_class: 'client_error' }, clientErrors],
      [{ status_class: 'server_error' }, serverErrors],
    ];
  });
  kit.counterOf(
    'mirror_served_bytes_total',
    'Bytes of blobs and manifests sent to clients and peers.',
    [],
    () => stats().bytesServed,
  );
  kit.gauge(
    'mirror_negative_cache_entries',
    'Keys held in the negative cache.',
    [],
    () => stats().negativeCache.entries,
  );

  const fetches = kit.counter('coord_fetches_total', 'Fetches that ended, by source and outcome.', [
    'source',
    'outcome',
  ]);
  const fetchSeconds = kit.histogram(
    'coord_fetch_duration_seconds',
    'How long a fetch took, by source.',
    ['source'],
    FETCH_SECONDS_BUCKETS,
  );
  const resolutions = kit.counter(
    'coord_cascade_resolutions_total',
    'Cascade resolutions, by deciding rule and action.',
    ['rule', 'action'],
  );
  const negatives = kit.counter(
    'coord_negative_cache_records_total',
    'Failures recorded in the negative cache, by class.',
    ['class'],
  );

  const unsubscribers = [
    onDiagnostics('coord', 'fetch', (event) => {
      const source = oneOf(event, 'source', FETCH_SOURCES);
      const outcome = oneOf(event, 'outcome', FETCH_OUTCOMES);
      if (source === undefined || outcome === undefined) return;
      fetches.inc({ source, outcome });
      const durationMs = numberField(event, 'durationMs');
      if (durationMs !== undefined && durationMs >= 0) fetchSeconds.observe({ source }, durationMs / 1000);
    }),
    onDiagnostics('coord', 'cascade', (event) => {
      const rule = oneOf(event, 'rule', CASCADE_RULES);
      const action = oneOf(event, 'action', DECISION_ACTIONS);
      if (rule !== undefined && action !== undefined) resolutions.inc({ rule, action });
    }),
    onDiagnostics('coord', 'negative-cache', (event) => {
      const failureClass = oneOf(event, 'failureClass', FAILURE_CLASSES);
      if (failureClass !== undefined) negatives.inc({ class: failureClass });
    }),
  ];
  return () => {
    for (const unsubscribe of unsubscribers) unsubscribe();
  };
}
