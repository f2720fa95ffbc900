// A node's Prometheus metrics. `createNodeMetrics(sources)` takes the modules the node runs
// and returns a registry of its own: series read from each module's `stats()` when scraped,
// counters and histograms fed by the modules' diagnostics channels until `close()`, and
// prom-client's process metrics. docs/metrics.md lists every series.

export { createNodeMetrics, DEFAULT_METRICS_PREFIX } from './node-metrics.ts';
export type { NodeMetrics, NodeMetricSources, NodeMetricsOptions } from './node-metrics.ts';
export type { ClusterSource, PoolSource } from './cluster-metrics.ts';
export type { GridSource } from './grid-metrics.ts';
export type { HubSource } from './hub-metrics.ts';
export type { MirrorSource } from './mirror-metrics.ts';
export type { RuntimeSource } from './runtime-metrics.ts';
export type { PublisherSource, ViewsSource } from './views-metrics.ts';
