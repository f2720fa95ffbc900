// A Weft node: one process that wires the modules behind one HTTP server.
//
//   /weft/grid/v2            the grid (WebSocket upgrade; peers only, mutually authenticated)
//   /v1/cluster/join         a new node joins (signed with the cluster secret)
//   /v1/views/<name>         views: blocking queries and SSE (cluster.members, node.stats, functions)
//   /v1/ingress/<ns>/<type>/<id>   a message into the runtime (POST)
//   /v1/status               what `weft status` prints, as JSON
//   /v2/…                    the OCI pull-through mirror, when enabled
//   /metrics /healthz /readyz
//   / and /dashboard/…       the dashboard
//
// The hub's gRPC port is a listener of its own (gRPC needs HTTP/2). `close()` stops in the
// reverse order of start: tell peers this node leaves, stop taking requests, let the hub and the
// runtime finish what they hold, then the grid and the stores.

import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { Mirror } from '../coord/index.ts';
import { Manager } from '../grid/index.ts';
import { Hub, LmdbCheckpointStore, loadStory, serveHubOnGrid, type Story } from '../hub/index.ts';
import { systemClock, type Clock, type Timer } from '../internal/clock.ts';
import {
  ClusterRuntime,
  httpIngressHandler,
  PostgresStateStore,
  Runtime,
  type EgressSink,
  type HttpIngressHandler,
} from '../runtime/index.ts';
import type { StatefulFunctions } from '../statefun/index.ts';
import {
  EventPublisher,
  MapView,
  Materializer,
  ViewStore,
  viewsHttpHandler,
  type View,
  type ViewFactory,
  type ViewsHttpHandler,
} from '../views/index.ts';
import type { NodeConfig } from './config.ts';
import { dashboardHandler } from './dashboard/dashboard-handler.ts';
import {
  ExampleApp,
  exampleFunctions,
  exampleStory,
  FunctionsTopic,
  FUNCTIONS_TOPIC,
} from './example-app.ts';
import { LatestValueView } from './latest-value-view.ts';
import { createNodeLogger, moduleLogger, type NodeLogger } from './logger.ts';
import { KnownMembers } from './known-members.ts';
import { Membership, MEMBERS_TOPIC } from './membership.ts';
import { createNodeMetrics, type NodeMetrics } from './metrics/index.ts';
import { NODE_STATS_TOPIC, nodeStatsOf, type NodeStats } from './node-stats.ts';
import { openPostgresPool, type NodePool } from './postgres-pool.ts';
import { countViewWatchers } from './view-watchers.ts';

export const INGRESS_PREFIX = '/v1/ingress';
export const VIEWS_PREFIX = '/v1/views/';
export const STATUS_PATH = '/v1/status';
/** How often the node refreshes its stats view and member round trips. */
const TICK_MS = 1_000;
/** How long `close()` gives the hub and the runtime to finish what they hold. */
const DRAIN_MS = 10_000;
const RUNTIME_BATCH_CHANNEL = 'weft:runtime:batch';

interface BatchEvent {
  readonly messages: number;
}

export interface StartNodeOptions {
  /** Functions this node runs (in addition to the example's, when `example` is on). */
  readonly functions?: StatefulFunctions;
  readonly egress?: Readonly<Record<string, EgressSink>>;
  /** Where log lines go. Default stdout. */
  readonly logDestination?: NodeJS.WritableStream;
  readonly clock?: Clock;
}

export interface WeftNode {
  readonly name: string;
  /** The URL peers and clients reach this node at. */
  readonly url: string;
  /** The port the HTTP server listens on. */
  readonly port: number;
  /** `host:port` of the hub's gRPC port, when the hub runs here. */
  readonly hubAddress: string | undefined;
  readonly logger: NodeLogger;
  status(): NodeStats;
  /** Stops gracefully (idempotent); resolves when everything is closed. */
  close(): Promise<void>;
}

export async function startNode(config: NodeConfig, options: StartNodeOptions = {}): Promise<WeftNode> {
  const clock = options.clock ?? systemClock;
  const logger = createNodeLogger({
    level: config.log.level,
    name: config.name,
    destination: options.logDestination,
  });
  const startedAt = Date.now();
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        logger.warn({ error: (error as Error).message }, 'a part of the node failed to close');
      }
    }
  };
  try {
    await mkdir(config.dataDir, { recursive: true });
    const server = http.createServer();
    // A client must send its whole request in time (this bounds receiving it, not the answer:
    // SSE streams and blocking queries run on past it).
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    // Closed last: the grid and the hub's grid connectors use it until then.
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
          server.closeAllConnections();
        }),
    );
    const grid = new Manager({
      local: config.advertise,
      hosts: [config.advertise],
      auth: { secret: config.cluster.secret },
      logger: moduleLogger(logger, 'grid'),
      clock,
    });
    closers.push(() => grid.close());

    const publisher = new EventPublisher();
    const viewStore = new ViewStore({ clock });
    closers.push(() => {
      viewStore.close();
    });
    // Set once the runtime runs on the cluster's store: it names partition owners from the members.
    let cluster: ClusterRuntime | undefined;
    const membership = new Membership({
      grid,
      self: { host: config.advertise, name: config.name },
      secret: config.cluster.secret,
      publisher,
      clock,
      logger: logger.child({ module: 'membership' }),
      onChange: () => {
        cluster?.membershipChanged();
      },
    });
    // Runs once the hub and the runtime have drained, before the grid closes: peers forget this
    // node only when it has nothing more to send them.
    closers.push(() => membership.leave());
    const knownMembers = new KnownMembers(path.join(config.dataDir, 'members.json'), logger);
    closers.push(() => {
      knownMembers.save(membership.members());
    });

    const functionsTopic = new FunctionsTopic(publisher);
    const example = config.example
      ? new ExampleApp(functionsTopic, logger.child({ module: 'example' }))
      : undefined;

    let hub: Hub | undefined;
    let hubAddress: string | undefined;
    if (config.hub.enabled) {
      const stories: Story[] = await Promise.all(config.hub.stories.map((file) => loadStory(file)));
      if (config.example) stories.push(exampleStory());
      hub = await Hub.open({
        stories,
        checkpoints: await LmdbCheckpointStore.open({ path: path.join(config.dataDir, 'hub') }),
        logger: moduleLogger(logger, 'hub'),
        clock,
      });
      const opened = hub;
      closers.push(() => opened.close());
      serveHubOnGrid(hub, grid);
      const port = await hub.listen({ port: config.hub.port, host: config.hub.host });
      hubAddress = `${config.hub.host}:${port}`;
      if (example !== undefined) await example.connectHub(hubAddress);
    }
    if (example !== undefined) closers.push(() => example.close());

    // Opened after the hub and the example's connectors, so closed before them: the batches it
    // finishes while closing still have somewhere to send their egress.
    let runtime: Runtime | undefined;
    let ingress: HttpIngressHandler | undefined;
    const functions = config.example ? exampleFunctions() : options.functions;
    let pool: NodePool | undefined;
    if (config.runtime.enabled && functions !== undefined) {
      const runtimeOptions = {
        functions,
        egress: { ...options.egress, ...example?.egress() },
        logger: moduleLogger(logger, 'runtime'),
        clock,
      };
      if (config.runtime.postgres === undefined) {
        runtime = await Runtime.open({ ...runtimeOptions, dataDir: path.join(config.dataDir, 'runtime') });
        const opened = runtime;
        closers.push(() => opened.close());
        ingress = httpIngressHandler(runtime, { pathPrefix: INGRESS_PREFIX });
      } else {
        const opened = openPostgresPool(
          config.runtime.postgres,
          config.runtime.postgresPoolSize,
          logger.child({ module: 'postgres' }),
        );
        pool = opened;
        closers.push(() => opened.end());
        const store = await PostgresStateStore.open({
          pool: opened.pool,
          schema: config.runtime.postgresSchema,
        });
        const clustered = await ClusterRuntime.open({
          ...runtimeOptions,
          store,
          grid,
          view: {
            self: config.advertise,
            live: () =>
              membership
                .members()
                .filter((member) => member.state === 'self' || member.state === 'connected')
                .map((member) => member.host),
            known: () => membership.members().length,
            // A node started with seeds takes partitions once it has joined through one.
            joined: () => membership.joined,
          },
        });
        cluster = clustered;
        closers.push(() => clustered.close());
        runtime = clustered.runtime;
        ingress = httpIngressHandler(clustered.input, { pathPrefix: INGRESS_PREFIX });
      }
    }

    let mirror: Mirror | undefined;
    if (config.mirror.enabled) {
      mirror = await Mirror.open({
        grid,
        storeDirectory: path.join(config.dataDir, 'mirror'),
        maxStoreBytes: config.mirror.maxStoreBytes,
        origin: config.mirror.origin,
        logger: moduleLogger(logger, 'mirror'),
        clock,
      });
      const opened = mirror;
      closers.push(() => opened.close());
    }

    // One runtime per node process: every batch on the channel is this node's.
    let messagesProcessed = 0;
    const onBatch = (message: unknown): void => {
      messagesProcessed += (message as BatchEvent).messages;
    };
    diagnosticsChannel.subscribe(RUNTIME_BATCH_CHANNEL, onBatch);
    closers.push(() => {
      diagnosticsChannel.unsubscribe(RUNTIME_BATCH_CHANNEL, onBatch);
    });
    const statsTopic = new LatestStats(publisher);
    const views = viewsHttpHandler(viewStore, {
      prefix: VIEWS_PREFIX,
      views: {
        [MEMBERS_TOPIC]: topicView(publisher, MEMBERS_TOPIC, () => new MapView(), clock),
        [FUNCTIONS_TOPIC]: topicView(publisher, FUNCTIONS_TOPIC, () => new MapView(), clock),
        [NODE_STATS_TOPIC]: topicView(publisher, NODE_STATS_TOPIC, () => new LatestValueView(), clock),
      },
      logger: moduleLogger(logger, 'views'),
      clock,
    });
    const watched = countViewWatchers(views, VIEWS_PREFIX, [
      MEMBERS_TOPIC,
      FUNCTIONS_TOPIC,
      NODE_STATS_TOPIC,
    ]);
    const metrics: NodeMetrics = createNodeMetrics({
      grid,
      views,
      publisher,
      ...(runtime === undefined ? {} : { runtime }),
      ...(hub === undefined ? {} : { hub }),
      ...(mirror === undefined ? {} : { mirror }),
      ...(cluster === undefined ? {} : { cluster }),
      ...(pool === undefined ? {} : { pool }),
    });
    closers.push(() => {
      metrics.close();
    });

    const status = (): NodeStats =>
      nodeStatsOf({
        name: config.name,
        url: config.advertise,
        startedAt,
        members: membership.members(),
        grid,
        runtime,
        cluster,
        pool: pool?.figures(),
        functionTypes: functions === undefined || runtime === undefined ? [] : typesOf(functions),
        addresses: functionsTopic.size,
        messagesProcessed,
        hub,
        hubAddress,
        mirror,
        views: watched.watchers(),
      });
    let ready = false;
    let stopping = false;
    const dashboard = dashboardHandler();
    server.on('request', (request, response) => {
      route(request, response).catch((error: unknown) => {
        logger.error({ error: (error as Error).message, url: request.url }, 'request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error\n');
      });
    });
    async function route(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
      let pathname: string;
      try {
        pathname = new URL(request.url ?? '/', 'http://x').pathname;
      } catch {
        text(response, 400, 'bad request target\n');
        return;
      }
      if (pathname === '/healthz') {
        text(response, 200, 'ok\n');
        return;
      }
      if (pathname === '/readyz') {
        if (ready && !stopping) text(response, 200, 'ready\n');
        else text(response, 503, 'not ready\n');
        return;
      }
      if (pathname === '/metrics') {
        const body = await metrics.text();
        response.writeHead(200, { 'content-type': metrics.contentType }).end(body);
        return;
      }
      if (pathname === STATUS_PATH) {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status()));
        return;
      }
      if (membership.handle(request, response)) return;
      if (pathname.startsWith(VIEWS_PREFIX)) {
        watched.handler(request, response);
        return;
      }
      if (pathname === INGRESS_PREFIX || pathname.startsWith(`${INGRESS_PREFIX}/`)) {
        if (stopping) {
          response
            .writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' })
            .end('this node is stopping\n');
          return;
        }
        if (ingress === undefined) {
          text(response, 404, 'this node runs no functions\n');
          return;
        }
        ingress(request, response);
        return;
      }
      if (mirror?.handle(request, response) === true) return;
      if (dashboard(request, response)) return;
      text(response, 404, 'not found\n');
    }

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listen.port, config.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.listen.port;
    grid.attach(server);
    membership.startJoining([...new Set([...config.cluster.seeds, ...knownMembers.load()])]);

    const tick = (): void => {
      membership.refresh();
      knownMembers.save(membership.members());
      statsTopic.publish(status());
    };
    let timer: Timer | undefined = clock.setTimeout(function again() {
      tick();
      timer = clock.setTimeout(again, TICK_MS);
    }, TICK_MS);
    closers.push(() => timer?.cancel());
    tick();
    ready = true;
    logger.info(
      { url: config.advertise, port, hub: hubAddress, seeds: config.cluster.seeds },
      'node started',
    );

    let closing: Promise<void> | undefined;
    return {
      name: config.name,
      url: config.advertise,
      port,
      hubAddress,
      logger,
      status,
      close() {
        closing ??= (async () => {
          stopping = true;
          logger.info('node stopping');
          timer?.cancel();
          timer = undefined;
          // In-flight work drains as the parts close, then peers are told this node leaves.
          await withDeadline(closeAll(), DRAIN_MS * 2);
          logger.info('node stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** The `node.stats` topic: one whole value per tick, the latest kept for new subscribers. */
class LatestStats {
  readonly #publisher: EventPublisher;
  #latest: NodeStats | undefined;

  constructor(publisher: EventPublisher) {
    this.#publisher = publisher;
    publisher.registerTopic<NodeStats>(NODE_STATS_TOPIC, {
      snapshot: () => ({
        index: publisher.index(NODE_STATS_TOPIC),
        events: this.#latest === undefined ? [] : [{ subject: 'node', payload: this.#latest }],
      }),
    });
  }

  publish(stats: NodeStats): void {
    this.#latest = stats;
    this.#publisher.publish(NODE_STATS_TOPIC, [{ subject: 'node', payload: stats }]);
  }
}

/** A view of one of the node's topics, materialized by `newView`. */
function topicView(
  publisher: EventPublisher,
  topic: string,
  newView: () => View<unknown, unknown>,
  clock: Clock,
): ViewFactory {
  return () => ({
    key: topic,
    newMaterializer: () =>
      new Materializer({
        source: (request, signal) => publisher.subscribe(request, { signal }),
        request: { topic },
        view: newView(),
        clock,
      }),
  });
}

function typesOf(functions: StatefulFunctions): string[] {
  return functions.typeNames().map((name) => name.toString());
}

function text(response: http.ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}

async function withDeadline(done: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export type { ViewsHttpHandler };
