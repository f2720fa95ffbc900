// weft/views: materialized views over event streams, with blocking queries, following
// Consul's submatview.
//
// An `EventPublisher` holds topics: each `publish` is an atomic batch with the next index,
// kept in a bounded buffer so subscribers can resume. A `Materializer` subscribes (to a
// local publisher, or across the grid with `remoteEventSource`) and keeps a `View` up to
// date; `fetch` blocks until the view passes an index. A `ViewStore` shares one
// materializer per request key among all callers and evicts idle ones. `viewsHttpHandler`
// serves views as Consul-style blocking queries and Server-Sent Events.

export { EventPublisher } from './publisher.ts';
export { Materializer } from './materializer.ts';
export { ViewStore } from './store.ts';
export { MapView, putEvent, deleteEvent } from './map-view.ts';
export { ListView } from './list-view.ts';
export { viewsHttpHandler } from './http.ts';
export { parseDuration } from './duration.ts';
export { serveEventPublisher, remoteEventSource, VIEWS_SUBSCRIBE_HANDLER } from './remote.ts';
export {
  EntryEvictingError,
  EventStreamError,
  EventTooLargeError,
  isTerminalViewError,
  MaterializerStoppedError,
  SubscriberTooSlowError,
  UnauthorizedError,
  UnknownTopicError,
  ViewStaleError,
} from './errors.ts';

export * from '../internal/public-errors.ts';
export type {
  Event,
  EventSource,
  EventsItem,
  EndOfSnapshotItem,
  NewSnapshotToFollowItem,
  StreamItem,
  SubscribeRequest,
} from './event.ts';
export type { EventPublisherOptions, PublisherStats, Snapshot, TopicOptions } from './publisher.ts';
export type { FetchOptions, MaterializerOptions, MaterializerStats } from './materializer.ts';
export type {
  SharedMaterializer,
  ViewRequest,
  ViewStoreOptions,
  ViewStoreStats,
  ViewUpdate,
} from './store.ts';
export type { View, ViewResult } from './view.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { RetryWaiterConfig } from '../internal/backoff.ts';
export type { MapChange } from './map-view.ts';
export type { Logger, ViewFactory, ViewsHttpHandler, ViewsHttpOptions, ViewsHttpStats } from './http.ts';
