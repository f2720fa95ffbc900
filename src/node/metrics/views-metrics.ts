// The views' series: blocking queries and event streams of the HTTP handler
// (`ViewsHttpHandler.stats()`) and the topics and subscriptions of the `EventPublisher`.

import type { EventPublisher, ViewsHttpStats } from '../../views/index.ts';
import type { MetricKit } from './metric-kit.ts';
import { perScrape } from './per-scrape.ts';

export interface ViewsSource {
  stats(): ViewsHttpStats;
}

export type PublisherSource = Pick<EventPublisher, 'stats'>;

export function viewsMetrics(kit: MetricKit, views: ViewsSource): void {
  const stats = perScrape(() => views.stats());
  kit.gauge('views_watchers', 'Blocking queries waiting for a view to change.', [], () => stats().waiting);
  kit.gauge('views_event_streams', 'Event streams open.', [], () => stats().streams);
  kit.counterOf('views_queries_total', 'Queries answered, by outcome.', ['outcome'], () => {
    const { served, notReady, badRequests, notFound, failed } = stats();
    return [
      [{ outcome: 'served' }, served],
      [{ outcome: 'not_ready' }, notReady],
      [{ outcome: 'bad_request' }, badRequests],
      [{ outcome: 'not_found' }, notFound],
      [{ outcome: 'failed' }, failed],
    ];
  });
  kit.counterOf('views_event_streams_opened_total', 'Event streams opened.', [], () => stats().streamsOpened);
  kit.counterOf(
    'views_event_streams_refused_total',
    'Event streams refused because the most allowed were open.',
    [],
    () => stats().refused,
  );
  kit.counterOf(
    'views_coalesced_events_total',
    'Events a slow stream client never got because a newer one replaced them.',
    [],
    () => stats().coalesced,
  );
}

export function publisherMetrics(kit: MetricKit, publisher: PublisherSource): void {
  const stats = perScrape(() => publisher.stats());
  kit.gauge('publisher_topics', 'Topics of the event publisher.', [], () => stats().topics);
  kit.gauge('publisher_subscriptions', 'Subscriptions streaming now.', [], () => stats().subscriptions);
  kit.counterOf(
    'publisher_subscriptions_started_total',
    'Subscriptions started.',
    [],
    () => stats().subscriptionsStarted,
  );
  kit.counterOf(
    'publisher_dropped_batches_total',
    'Batches dropped from full topic buffers.',
    [],
    () => stats().droppedBatches,
  );
  kit.counterOf(
    'publisher_slow_subscribers_total',
    'Subscriptions ended because they fell behind the buffer.',
    [],
    () => stats().slowSubscribers,
  );
  kit.counterOf(
    'publisher_snapshots_total',
    'Subscriptions that started from a snapshot, not from the buffer.',
    [],
    () => stats().snapshots,
  );
}
