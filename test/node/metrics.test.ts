import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Mirror } from '../../src/coord/index.ts';
import { Manager } from '../../src/grid/index.ts';
import { Hub } from '../../src/hub/index.ts';
import { diagnosticChannel } from '../../src/internal/diagnostics.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { createNodeMetrics, type NodeMetrics, type NodeMetricSources } from '../../src/node/metrics/index.ts';
import { MemoryStateStore, Runtime } from '../../src/runtime/index.ts';
import { StatefulFunctions } from '../../src/statefun/index.ts';
import { EventPublisher, ViewStore, viewsHttpHandler } from '../../src/views/index.ts';

// parse-prometheus-text-format ships no types: the shape of what it returns, as used here.
interface MetricFamily {
  readonly name: string;
  readonly type: string;
  readonly metrics: readonly {
    readonly value?: string;
    readonly count?: string;
    readonly labels?: Readonly<Record<string, string>>;
  }[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => MetricFamily[];

const A = 'http://127.0.0.1:1';
const B = 'http://127.0.0.1:2';
const C = 'http://127.0.0.1:3';
const secret = 'a metrics test secret of enough bytes';
const quiet = {
  warn: () => undefined,
  error: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};

interface DocumentedSeries {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
}

/** The rows of the series table in docs/metrics.md. */
async function documentedSeries(): Promise<DocumentedSeries[]> {
  const doc = await readFile(path.join(import.meta.dirname, '../../docs/metrics.md'), 'utf8');
  const rows = [...doc.matchAll(/^\|\s*`([a-z_:]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|/gm)];
  return rows.map(([, name = '', type = '', labels = '']) => ({
    name,
    type,
    labels: labels
      .split(',')
      .map((label) => label.trim())
      .filter((label) => label !== ''),
  }));
}

async function scrape(metrics: NodeMetrics): Promise<Map<string, MetricFamily>> {
  return new Map(parsePrometheus(await metrics.text()).map((family) => [family.name, family]));
}

/** The value of `name`'s sample whose labels include `labels`; undefined when there is none. */
async function sampleValue(
  metrics: NodeMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number | undefined> {
  const family = (await scrape(metrics)).get(name);
  const sample = family?.metrics.find((metric) =>
    Object.entries(labels).every(([label, value]) => metric.labels?.[label] === value),
  );
  const value = sample?.value ?? sample?.count;
  return value === undefined ? undefined : Number(value);
}

/**
 * The observations of a labelled histogram, read from the registry: the text parser drops the
 * labels and the count of a histogram's samples.
 */
async function histogramCount(
  metrics: NodeMetrics,
  name: string,
  labels: Readonly<Record<string, string>>,
): Promise<number | undefined> {
  const histogram = await metrics.registry.getSingleMetric(name)?.get();
  const sample = histogram?.values.find(
    (value) =>
      'metricName' in value &&
      value.metricName === `${name}_count` &&
      Object.entries(labels).every(([label, expected]) => value.labels[label] === expected),
  );
  return sample?.value;
}

const clusterStats = {
  ownership: {
    held: 3,
    owned: 4,
    moving: 1,
    liveMembers: 2,
    knownMembers: 3,
    quorum: true,
    acquired: 5,
    lost: 2,
    reconciles: 9,
    reconcileFailures: 1,
    maxEpoch: 7,
  },
  forwarding: { forwarded: 11, requests: 4, refused: 1, failed: 2, pending: 3 },
  wakes: { sent: 6, dropped: 1, received: 8 },
  malformedRequests: 0,
  scannedAddresses: 12,
};
const poolFigures = { size: 10, total: 4, idle: 1, waiting: 2, errors: 1 };

describe('node metrics', () => {
  const clock = new FakeClock();
  let dir: string;
  let sources: Required<NodeMetricSources>;
  let publisher: EventPublisher;
  const closers: (() => Promise<void> | void)[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'weft-metrics-'));
    const grid = new Manager({ local: A, hosts: [A, B], auth: { secret }, clock, logger: quiet });
    closers.push(() => grid.close());
    const runtime = await Runtime.open({
      store: new MemoryStateStore(),
      functions: new StatefulFunctions(),
      clock,
      logger: quiet,
    });
    closers.push(() => runtime.close());
    const hub = new Hub({ stories: [], clock, logger: quiet });
    closers.push(() => hub.close());
    const mirror = await Mirror.open({
      grid,
      storeDirectory: dir,
      maxStoreBytes: 1 << 20,
      clock,
      logger: quiet,
    });
    closers.push(() => mirror.close());
    const views = viewsHttpHandler(new ViewStore({ clock }), { views: {}, clock });
    publisher = new EventPublisher();
    // A ClusterRuntime needs PostgreSQL: these fakes have the shape of its `stats()` and the pool's.
    const cluster = {
      stats: () => clusterStats,
      runtime: { stats: () => ({ ...runtime.stats(), fencedBatches: 2 }) },
    };
    const pool = { figures: () => poolFigures };
    sources = { grid, runtime, hub, mirror, views, publisher, cluster, pool };
  });

  after(async () => {
    for (const close of closers.reverse()) await close();
    await rm(dir, { recursive: true, force: true });
  });

  test('every series docs/metrics.md lists is exposed, with its type and labels', async () => {
    const metrics = createNodeMetrics(sources);
    try {
      const documented = await documentedSeries();
      assert.ok(documented.length > 50, `docs/metrics.md lists ${documented.length} series`);
      const families = await scrape(metrics);
      for (const { name, type, labels } of documented) {
        const family = families.get(name);
        assert.ok(family !== undefined, `${name} is exposed`);
        assert.equal(family.type.toLowerCase(), type, `${name} is a ${type}`);
        for (const metric of family.metrics) {
          const names = Object.keys(metric.labels ?? {});
          assert.deepEqual(names.sort(), [...labels].sort(), `${name}'s labels`);
        }
      }
      const mine = [...families.keys()].filter((name) => !/^weft_(process|nodejs)_/.test(name));
      const listed = new Set(documented.map((series) => series.name));
      assert.deepEqual(
        mine.filter((name) => !listed.has(name)),
        [],
        'every series of the modules is documented',
      );
    } finally {
      metrics.close();
    }
  });

  test('series read from stats() show the modules as they are now', async () => {
    const metrics = createNodeMetrics(sources);
    try {
      assert.equal(await sampleValue(metrics, 'weft_grid_connections', { state: 'unconnected' }), 1);
      assert.equal(await sampleValue(metrics, 'weft_grid_connections', { state: 'connected' }), 0);
      assert.equal(await sampleValue(metrics, 'weft_grid_peer_sent_bytes_total', { peer: B }), 0);
      assert.equal(
        await sampleValue(metrics, 'weft_hub_dropped_packets_total', { reason: 'buffer_full' }),
        0,
      );
      assert.equal(await sampleValue(metrics, 'weft_publisher_topics'), 0);
      publisher.registerTopic('orders', { snapshot: () => ({ index: 0, events: [] }) });
      assert.equal(await sampleValue(metrics, 'weft_publisher_topics'), 1);
    } finally {
      metrics.close();
    }
  });

  test("the cluster's series read its runtime's stats and the pool's figures", async () => {
    const metrics = createNodeMetrics(sources);
    try {
      const expected: [string, Readonly<Record<string, string>>, number][] = [
        ['weft_cluster_partitions_held', {}, 3],
        ['weft_cluster_partitions_owned', {}, 4],
        ['weft_cluster_partitions_moving', {}, 1],
        ['weft_cluster_lease_epoch_max', {}, 7],
        ['weft_cluster_quorum', {}, 1],
        ['weft_cluster_members', { view: 'live' }, 2],
        ['weft_cluster_members', { view: 'known' }, 3],
        ['weft_cluster_leases_acquired_total', {}, 5],
        ['weft_cluster_leases_lost_total', {}, 2],
        ['weft_cluster_fenced_batches_total', {}, 2],
        ['weft_cluster_forwarded_messages_total', {}, 11],
        ['weft_cluster_forward_refused_total', {}, 1],
        ['weft_cluster_forward_failed_total', {}, 2],
        ['weft_cluster_forward_pending_messages', {}, 3],
        ['weft_cluster_wakes_sent_total', {}, 6],
        ['weft_cluster_wakes_received_total', {}, 8],
        ['weft_postgres_pool_connections', { state: 'total' }, 4],
        ['weft_postgres_pool_connections', { state: 'idle' }, 1],
        ['weft_postgres_pool_connections', { state: 'waiting' }, 2],
        ['weft_postgres_pool_size', {}, 10],
        ['weft_postgres_pool_errors_total', {}, 1],
      ];
      for (const [name, labels, value] of expected) {
        assert.equal(await sampleValue(metrics, name, labels), value, `${name} ${JSON.stringify(labels)}`);
      }
    } finally {
      metrics.close();
    }
    const without = createNodeMetrics({ publisher: sources.publisher });
    try {
      const names = [...(await scrape(without)).keys()];
      assert.deepEqual(
        names.filter((name) => /^weft_(cluster|postgres)_/.test(name)),
        [],
        'a node without the cluster runtime has no cluster series',
      );
    } finally {
      without.close();
    }
  });

  test('a connection-state event of this node moves its counter, and close() stops it', async () => {
    const channel = diagnosticChannel<object>('grid', 'connection-state');
    const metrics = createNodeMetrics(sources);
    const transitions = () =>
      sampleValue(metrics, 'weft_grid_connection_transitions_total', { peer: B, state: 'connected' });
    assert.equal(await transitions(), undefined);
    channel.publish({ local: A, remote: B, state: 'connected' });
    channel.publish({ local: A, remote: B, state: 'connected' });
    assert.equal(await transitions(), 2);
    metrics.close();
    channel.publish({ local: A, remote: B, state: 'connected' });
    assert.equal(await transitions(), 2);
  });

  test("another node's connection events are not counted as this node's", async () => {
    const other = new Manager({ local: C, hosts: [C, B], auth: { secret }, clock, logger: quiet });
    const mine = createNodeMetrics(sources);
    const theirs = createNodeMetrics({ grid: other });
    try {
      diagnosticChannel<object>('grid', 'connection-state').publish({
        local: C,
        remote: B,
        state: 'connecting',
      });
      const connecting = { peer: B, state: 'connecting' };
      assert.equal(await sampleValue(mine, 'weft_grid_connection_transitions_total', connecting), undefined);
      assert.equal(await sampleValue(theirs, 'weft_grid_connection_transitions_total', connecting), 1);
    } finally {
      mine.close();
      theirs.close();
      await other.close();
    }
  });

  test('runtime, hub and coord events feed their histograms and counters', async () => {
    const metrics = createNodeMetrics(sources);
    try {
      diagnosticChannel<object>('runtime', 'batch').publish({
        address: ['shop', 'cart', '1'],
        messages: 3,
        requests: 1,
      });
      diagnosticChannel<object>('runtime', 'batch-failure').publish({
        address: ['shop', 'cart', '1'],
        error: new Error('boom'),
        failures: 1,
        parkedForMs: 250,
      });
      diagnosticChannel<object>('hub', 'handoff').publish({
        key: 'ns/run/step',
        phase: 'cutover',
        reason: 'stream_replaced',
        generation: 2,
      });
      diagnosticChannel<object>('coord', 'fetch').publish({
        key: 'sha256:00',
        source: 'origin',
        from: 'https://registry.example',
        outcome: 'failed',
        failureClass: 'transient',
        durationMs: 120,
      });
      diagnosticChannel<object>('coord', 'cascade').publish({
        key: 'k',
        rule: 'local-hit',
        action: 'serve-local',
      });
      diagnosticChannel<object>('coord', 'negative-cache').publish({
        key: 'k',
        failureClass: 'not-found',
        failures: 1,
        cooldownMs: 1000,
      });

      assert.equal(await sampleValue(metrics, 'weft_runtime_batch_messages'), 1);
      assert.equal(
        await sampleValue(metrics, 'weft_runtime_function_batch_failures_total', {
          function_type: 'shop/cart',
        }),
        1,
      );
      assert.equal(await sampleValue(metrics, 'weft_runtime_batch_park_seconds'), 1);
      assert.equal(
        await sampleValue(metrics, 'weft_hub_handoff_events_total', {
          phase: 'cutover',
          reason: 'stream_replaced',
        }),
        1,
      );
      assert.equal(
        await sampleValue(metrics, 'weft_coord_fetches_total', { source: 'origin', outcome: 'failed' }),
        1,
      );
      assert.equal(
        await histogramCount(metrics, 'weft_coord_fetch_duration_seconds', { source: 'origin' }),
        1,
      );
      assert.equal(
        await sampleValue(metrics, 'weft_coord_cascade_resolutions_total', {
          rule: 'local-hit',
          action: 'serve-local',
        }),
        1,
      );
      assert.equal(
        await sampleValue(metrics, 'weft_coord_negative_cache_records_total', { class: 'not-found' }),
        1,
      );
    } finally {
      metrics.close();
    }
  });

  test('a malformed event is ignored, neither counted nor thrown', async () => {
    const metrics = createNodeMetrics(sources);
    try {
      const channel = diagnosticChannel<object>('grid', 'connection-state');
      channel.publish({ local: A, remote: B, state: 'no-such-state' });
      channel.publish({ local: A, state: 'connected' });
      diagnosticChannel<object>('hub', 'handoff').publish({ phase: 42 });
      const families = await scrape(metrics);
      assert.deepEqual(families.get('weft_grid_connection_transitions_total')?.metrics, []);
      assert.deepEqual(families.get('weft_hub_handoff_events_total')?.metrics, []);
    } finally {
      metrics.close();
    }
  });

  test('a custom prefix names every series, and a bad one is refused', async () => {
    const metrics = createNodeMetrics({ publisher: sources.publisher }, { prefix: 'edge_' });
    try {
      const names = [...(await scrape(metrics)).keys()];
      assert.ok(names.includes('edge_publisher_topics'));
      assert.ok(names.includes('edge_process_cpu_seconds_total'));
      assert.ok(names.every((name) => name.startsWith('edge_')));
      assert.match(metrics.contentType, /^text\/plain/);
    } finally {
      metrics.close();
    }
    assert.throws(
      () => createNodeMetrics({}, { prefix: 'not a prefix' }),
      (error: unknown) => error instanceof ConfigError && error.field === 'metrics.prefix',
    );
  });
});
