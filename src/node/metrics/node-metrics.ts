// A node's Prometheus metrics: its modules' `stats()` read at scrape time, the events they
// publish on `node:diagnostics_channel`, and prom-client's process metrics, all on a registry
// of the node's own (never prom-client's global one), so several nodes in one process do
// not collide.

import { collectDefaultMetrics, Registry } from 'prom-client';

import { ConfigError } from '../../internal/errors.ts';
import { clusterMetrics, poolMetrics, type ClusterSource, type PoolSource } from './cluster-metrics.ts';
import { gridMetrics, type GridSource } from './grid-metrics.ts';
import { hubMetrics, type HubSource } from './hub-metrics.ts';
import { metricKit } from './metric-kit.ts';
import { mirrorMetrics, type MirrorSource } from './mirror-metrics.ts';
import { runtimeMetrics, type RuntimeSource } from './runtime-metrics.ts';
import { publisherMetrics, viewsMetrics, type PublisherSource, type ViewsSource } from './views-metrics.ts';

/** The modules a node runs; each one given adds its series. */
export interface NodeMetricSources {
  readonly grid?: GridSource;
  readonly runtime?: RuntimeSource;
  readonly hub?: HubSource;
  readonly mirror?: MirrorSource;
  /** The views' HTTP handler (`viewsHttpHandler`). */
  readonly views?: ViewsSource;
  readonly publisher?: PublisherSource;
  /** The runtime on the cluster's PostgreSQL (`ClusterRuntime`): leases, forwards, wakes. */
  readonly cluster?: ClusterSource;
  /** The node's PostgreSQL pool (`NodePool`). */
  readonly pool?: PoolSource;
}

export interface NodeMetricsOptions {
  /** Put before every series name, process metrics included. Default `weft_`. */
  readonly prefix?: string;
}

export interface NodeMetrics {
  readonly registry: Registry;
  /** The Content-Type of `text()`, for the HTTP answer. */
  readonly contentType: string;
  /** The exposition text of every series, read now. */
  text(): Promise<string>;
  /** Unsubscribes from the diagnostics channels; series read from `stats()` still answer. */
  close(): void;
}

export const DEFAULT_METRICS_PREFIX = 'weft_';

// Prometheus' metric name grammar; the prefix starts every name, so it must fit it too.
const PREFIX_PATTERN = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

export function createNodeMetrics(sources: NodeMetricSources, options: NodeMetricsOptions = {}): NodeMetrics {
  const prefix = options.prefix ?? DEFAULT_METRICS_PREFIX;
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError('metrics.prefix', `${JSON.stringify(prefix)} is not a Prometheus name prefix`);
  }
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  const kit = metricKit(registry, prefix);

  const unsubscribers: (() => void)[] = [];
  if (sources.grid !== undefined) unsubscribers.push(gridMetrics(kit, sources.grid));
  if (sources.runtime !== undefined) unsubscribers.push(runtimeMetrics(kit, sources.runtime));
  if (sources.hub !== undefined) unsubscribers.push(hubMetrics(kit, sources.hub));
  if (sources.mirror !== undefined) unsubscribers.push(mirrorMetrics(kit, sources.mirror));
  if (sources.views !== undefined) viewsMetrics(kit, sources.views);
  if (sources.publisher !== undefined) publisherMetrics(kit, sources.publisher);
  if (sources.cluster !== undefined) clusterMetrics(kit, sources.cluster);
  if (sources.pool !== undefined) poolMetrics(kit, sources.pool);

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
    },
  };
}
