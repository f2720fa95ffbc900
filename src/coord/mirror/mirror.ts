// The OCI pull-through mirror: one per node, on the node's HTTP server, serving any OCI client
// (containerd, Docker, skopeo, crane) from a cluster that fetches each blob from the origin once.
//
// It assembles coord: the content store, the in-flight map and negative cache, the `intent` and
// `pleaseFetch` RPCs and the provider directory (on the grid), the cold-start cascade, the origin
// fetcher and the peer client. What it answers:
//
// - `GET/HEAD /v2/`: 200, so clients know a registry API is here.
// - `GET/HEAD /v2/<name>/blobs/<digest>` (with `Range`): from the cluster (`ClusterContent`).
// - `GET/HEAD /v2/<name>/manifests/<digest>`: the same, as a manifest.
// - `GET/HEAD /v2/<name>/manifests/<tag>`: the tag is resolved at the origin (a tag moves; a
//   digest does not), then served by digest from the cluster.
// - A request from a peer's mirror (carrying `Weft-Mirrored`, any value) is served from this node's store only,
//   404 on a miss, so two mirrors can never send a request round in circles.
//
// A digest the origin may have is never answered 404 (spegel#1378: containerd then stops falling
// back to the origin and the pull loops); every failure is a 5xx with a Retry-After where known.

import type http from 'node:http';
import { Readable } from 'node:stream';

import { type Clock, systemClock, type Timer } from '../../internal/clock.ts';
import { CapacityExceededError, ClosedError, ConfigError, errorMessage } from '../../internal/errors.ts';
import { type Logger, logSafely } from '../../internal/log-safely.ts';
import type { Manager } from '../../grid/index.ts';
import {
  Cascade,
  CascadeCooldownError,
  CascadeExhaustedError,
  FailureShortCircuitError,
  type CascadeConfig,
  type CascadeStats,
} from '../cascade/index.ts';
import { ContentStore, type ContentStoreStats } from '../content-store.ts';
import {
  ProviderDirectory,
  type ProviderDirectoryConfig,
  type ProviderDirectoryStats,
} from '../directory/index.ts';
import { DigestMismatchError, NoOriginError, OriginFetchError, PeerFetchError } from '../errors.ts';
import { InFlightMap, type InFlightStats } from '../in-flight.ts';
import { gridMembership, type Membership } from '../membership.ts';
import { NegativeCache, type NegativeCacheConfig, type NegativeCacheStats } from '../negative-cache.ts';
import {
  CoordBusyError,
  CoordClient,
  CoordServer,
  type CoordServerConfig,
  type CoordServerStats,
} from '../rpc/index.ts';
import { ResponseSink, serveStored } from './blob-responder.ts';
import { ClusterContent, type ClusterContentStats, type ObtainRequest } from './cluster-content.ts';
import { manifestMediaTypeOf } from './manifest-media-type.ts';
import { OCI_API_VERSION_HEADER, writeOciError } from './oci-errors.ts';
import { parseMirrorPath, type MirrorRoute } from './oci-routes.ts';
import { OriginClient, type OriginClientStats, type OriginCredential } from './origin-client.ts';
import { OriginFetcher, type OriginFetcherStats } from './origin-fetcher.ts';
import { MIRRORED_HEADER, PeerClient } from './peer-client.ts';

export interface MirrorOptions {
  /** This node's grid: the coord RPCs and the directory are served on it. */
  readonly grid: Pick<Manager, 'registerSingle' | 'connection' | 'hostName' | 'targets'>;
  /** Whom HRW ranks on. Default: the grid's hosts that are connected (`gridMembership`). */
  readonly membership?: Membership;
  /** Directory of the content store; created when missing. */
  readonly storeDirectory: string;
  /** Bytes the store holds at most; least recently used blobs are evicted beyond. */
  readonly maxStoreBytes: number;
  /**
   * The registry this mirror fronts, `http(s)://host[:port]`: tags are resolved there, and blobs
   * nobody in the cluster holds are fetched from it. Without one the mirror serves digests the
   * cluster holds, and nothing else.
   */
  readonly origin?: string;
  /**
   * More registries, by the `ns` query parameter containerd adds to mirror requests
   * (`{ 'docker.io': 'https://registry-1.docker.io' }`). A request naming another `ns` is served
   * from the cluster only.
   */
  readonly namespaces?: Readonly<Record<string, string>>;
  /** This node's own credentials, by origin URL. */
  readonly credentials?: Readonly<Record<string, OriginCredential>>;
  /** A peer's node id → its mirror's base URL. Default: the id itself (the grid's host URL). */
  readonly peerUrl?: (node: string) => string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Sent to origins and peers. Default `weft-mirror`. */
  readonly userAgent?: string;
  /** Keys resolved at once; one more is answered 503. Default 1024. */
  readonly maxPendingRequests?: number;
  /** Origin fetches at once on behalf of peers; more are declined. Default 64. */
  readonly maxConcurrentFetches?: number;
  /** A peer or a client that moves no bytes for this long is cut off. Default 10 s. */
  readonly stallMs?: number;
  /** Every stored key is announced again this often. Default 5 min (half the directory TTL). */
  readonly reannounceIntervalMs?: number;
  readonly cascade?: CascadeConfig;
  readonly directory?: ProviderDirectoryConfig;
  readonly coordServer?: CoordServerConfig;
  readonly negativeCache?: NegativeCacheConfig;
  /** Origin requests' timeout (a manifest end to end; a blob's headers and each gap). Default 30 s. */
  readonly originTimeoutMs?: number;
}

export interface MirrorStats {
  readonly requests: {
    readonly base: number;
    readonly blobs: number;
    readonly manifests: number;
    /** Requests from peers' mirrors (served from the store only). */
    readonly fromPeers: number;
    /** Peer requests for a key this node does not hold (answered 404). */
    readonly peerMisses: number;
    /** Requests refused before any work: bad names, digests, methods. */
    readonly refused: number;
  };
  /** Answers by status class. */
  readonly responses: { readonly ok: number; readonly clientErrors: number; readonly serverErrors: number };
  /** Bytes of blobs and manifests sent to clients and peers. */
  readonly bytesServed: number;
  /** Keys announced to the directory, withdrawn on eviction, and calls that failed. */
  readonly announcements: { readonly sent: number; readonly withdrawn: number; readonly failed: number };
  readonly content: ClusterContentStats;
  readonly originFetches: OriginFetcherStats;
  readonly cascade: CascadeStats;
  readonly inFlight: InFlightStats;
  readonly negativeCache: NegativeCacheStats;
  readonly store: ContentStoreStats;
  readonly directory: ProviderDirectoryStats;
  readonly coordServer: CoordServerStats;
  readonly originClient: OriginClientStats;
}

const DEFAULTS = {
  userAgent: 'weft-mirror',
  maxPendingRequests: 1024,
  stallMs: 10_000,
  reannounceIntervalMs: 5 * 60_000,
  originTimeoutMs: 30_000,
} as const;

// Gantry tries three providers before it gives up on peers.
const MAX_PEERS_PER_REQUEST = 3;
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class Mirror {
  readonly #options: MirrorOptions;
  readonly #clock: Clock;
  readonly #stallMs: number;
  readonly #store: ContentStore;
  readonly #inFlight: InFlightMap;
  readonly #negativeCache: NegativeCache;
  readonly #originClient: OriginClient;
  readonly #fetcher: OriginFetcher;
  readonly #coordServer: CoordServer;
  readonly #directory: ProviderDirectory;
  readonly #cascade: Cascade;
  readonly #peerClient: PeerClient;
  readonly #content: ClusterContent;
  readonly #reannounce: Timer;
  #closed = false;
  #base = 0;
  #blobs = 0;
  #manifests = 0;
  #fromPeers = 0;
  #peerMisses = 0;
  #refused = 0;
  #ok = 0;
  #clientErrors = 0;
  #serverErrors = 0;
  #bytesServed = 0;
  #announced = 0;
  #announceFailures = 0;
  #withdrawn = 0;

  /** Opens the store, serves coord on the grid and announces what the store already holds. */
  static async open(options: MirrorOptions): Promise<Mirror> {
    checkOptions(options);
    // The store exists before the mirror that withdraws what it evicts: route through a slot.
    let onEvicted: (digest: string) => void = () => undefined;
    const store = await ContentStore.open({
      directory: options.storeDirectory,
      maxBytes: options.maxStoreBytes,
      onEvicted: (digest) => {
        onEvicted(digest);
      },
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    let mirror: Mirror;
    try {
      mirror = new Mirror(options, store);
    } catch (error) {
      await store.close();
      throw error;
    }
    onEvicted = (digest) => {
      mirror.#withdraw(digest);
    };
    mirror.#announce(store.digests());
    return mirror;
  }

  private constructor(options: MirrorOptions, store: ContentStore) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const clock = this.#clock;
    const membership = options.membership ?? gridMembership(options.grid);
    this.#store = store;
    this.#inFlight = new InFlightMap({ clock });
    this.#negativeCache = new NegativeCache({ clock, ...options.negativeCache });
    this.#originClient = new OriginClient({
      userAgent: options.userAgent ?? DEFAULTS.userAgent,
      clock,
      timeoutMs: options.originTimeoutMs ?? DEFAULTS.originTimeoutMs,
    });
    this.#fetcher = new OriginFetcher({
      store,
      originClient: this.#originClient,
      inFlight: this.#inFlight,
      negativeCache: this.#negativeCache,
      origins: configuredOrigins(options),
      credentialFor: (origin) => options.credentials?.[origin],
      onStored: (key) => {
        this.#stored(key);
      },
      onFailed: (key, failure) => {
        this.#content.failed(key, failure);
      },
      ...(options.maxConcurrentFetches === undefined
        ? {}
        : { maxConcurrentFetches: options.maxConcurrentFetches }),
    });
    this.#coordServer = new CoordServer(
      {
        membership,
        inFlight: this.#inFlight,
        negativeCache: this.#negativeCache,
        hasCached: (key) => Promise.resolve(store.has(key)),
        fetcher: this.#fetcher,
      },
      { clock, ...options.coordServer },
    );
    this.#coordServer.register(options.grid);
    const coordClient = new CoordClient({ grid: options.grid, local: this.#coordServer, clock });
    this.#directory = new ProviderDirectory({ membership, grid: options.grid, clock, ...options.directory });
    this.#directory.register(options.grid);
    this.#cascade = new Cascade(
      {
        membership,
        self: membership.self,
        clock,
        hasLocal: (key) => Promise.resolve(store.has(key)),
        // A provider that left the membership (dead) is still in the directory until its TTL.
        findProviders: async (key, signal) =>
          (await this.#directory.findProviders(key, { signal })).filter((n) =>
            membership.members().includes(n),
          ),
        intent: (node, key, signal) => coordClient.intent(node, key, { signal }),
        pleaseFetch: (node, request, signal) => coordClient.pleaseFetch(node, request, { signal }),
      },
      options.cascade,
    );
    const stallMs = options.stallMs ?? DEFAULTS.stallMs;
    this.#stallMs = stallMs;
    this.#peerClient = new PeerClient({
      clock,
      stallMs,
      userAgent: options.userAgent ?? DEFAULTS.userAgent,
    });
    this.#content = new ClusterContent({
      store,
      cascade: this.#cascade,
      fetcher: this.#fetcher,
      peerClient: this.#peerClient,
      peerUrl: options.peerUrl ?? ((node) => node),
      onStored: (key) => {
        this.#stored(key);
      },
      maxPending: options.maxPendingRequests ?? DEFAULTS.maxPendingRequests,
      maxPeersPerRequest: MAX_PEERS_PER_REQUEST,
    });
    this.#reannounce = clock.setInterval(() => {
      this.#directory.sweep();
      this.#negativeCache.sweep();
      this.#announce(store.digests());
    }, options.reannounceIntervalMs ?? DEFAULTS.reannounceIntervalMs);
  }

  /**
   * Answers `req` when it is for the registry API (`/v2/…`) and returns true; returns false,
   * touching nothing, for any other path, so a server can route it elsewhere.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const route = parseMirrorPath(req.method ?? '', req.url ?? '');
    if (route.kind === 'not-mirror') return false;
    res.once('finish', () => {
      this.#countStatus(res.statusCode);
    });
    this.#serve(route, req, res).catch((error: unknown) => {
      this.#answerError(res, error);
    });
    return true;
  }

  /** A request listener for a server of the mirror's own: anything but `/v2/…` is 404. */
  readonly requestListener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (!this.handle(req, res)) writeOciError(res, 404, 'NOT_FOUND', 'this server only serves /v2/');
  };

  stats(): MirrorStats {
    return {
      requests: {
        base: this.#base,
        blobs: this.#blobs,
        manifests: this.#manifests,
        fromPeers: this.#fromPeers,
        peerMisses: this.#peerMisses,
        refused: this.#refused,
      },
      responses: { ok: this.#ok, clientErrors: this.#clientErrors, serverErrors: this.#serverErrors },
      bytesServed: this.#bytesServed,
      announcements: { sent: this.#announced, withdrawn: this.#withdrawn, failed: this.#announceFailures },
      content: this.#content.stats(),
      originFetches: this.#fetcher.stats(),
      cascade: this.#cascade.stats(),
      inFlight: this.#inFlight.stats(),
      negativeCache: this.#negativeCache.stats(),
      store: this.#store.stats(),
      directory: this.#directory.stats(),
      coordServer: this.#coordServer.stats(),
      originClient: this.#originClient.stats(),
    };
  }

  /**
   * Stops serving (requests get 503), aborts fetches under way and closes the store. The grid's
   * handlers stay registered until the grid closes; they answer from state that no longer grows.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#reannounce.cancel();
    this.#content.close();
    await this.#fetcher.close();
    this.#peerClient.close();
    this.#originClient.close();
    await this.#store.close();
  }

  async #serve(route: MirrorRoute, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    switch (route.kind) {
      case 'not-mirror':
        return;
      case 'refused':
        this.#refused++;
        writeOciError(
          res,
          route.status,
          route.code,
          route.message,
          route.status === 405 ? { allow: 'GET, HEAD' } : {},
        );
        return;
      case 'base':
        this.#base++;
        res.writeHead(200, {
          ...OCI_API_VERSION_HEADER,
          'content-type': 'application/json',
          'content-length': 2,
        });
        res.end(req.method === 'HEAD' ? undefined : '{}');
        return;
      case 'blob':
      case 'manifest':
        if (route.kind === 'blob') this.#blobs++;
        else this.#manifests++;
        if (this.#closed) throw new ClosedError('mirror');
        if (req.headers[MIRRORED_HEADER] !== undefined) {
          await this.#serveForPeer(route, req, res);
          return;
        }
        if (route.kind === 'blob') await this.#serveBlob(route, req, res);
        else await this.#serveManifest(route, req, res);
        return;
    }
  }

  /** A peer's mirror asks: this node's store or 404, never the cluster (it may be why it asks). */
  async #serveForPeer(
    route: Extract<MirrorRoute, { kind: 'blob' | 'manifest' }>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    this.#fromPeers++;
    const key = route.kind === 'blob' ? route.digest : route.reference;
    const sent =
      route.kind === 'blob' || route.referenceIsDigest
        ? await serveStored(this.#store, key, req, res, { ranges: route.kind === 'blob' })
        : undefined;
    if (sent === undefined) {
      this.#peerMisses++;
      const code = route.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN';
      writeOciError(res, 404, code, `${key} is not held by this node`);
      return;
    }
    this.#bytesServed += sent;
  }

  async #serveBlob(
    route: Extract<MirrorRoute, { kind: 'blob' }>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const key = route.digest;
    // A whole GET streams through while it is stored; HEAD and ranges wait for the whole blob.
    const streamable = req.method === 'GET' && req.headers.range === undefined;
    const sink = streamable ? new ResponseSink(res, key, this.#clock, this.#stallMs) : undefined;
    const obtained = await this.#obtain(key, 'blob', route, req, res, sink);
    if (obtained === 'streamed') {
      this.#bytesServed += this.#store.size(key) ?? 0;
      return;
    }
    await this.#sendStored(key, req, res, { ranges: true });
  }

  async #serveManifest(
    route: Extract<MirrorRoute, { kind: 'manifest' }>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    let key = route.reference;
    let mediaType: string | undefined;
    if (!route.referenceIsDigest) ({ key, mediaType } = await this.#resolveTag(route, req));
    await this.#obtain(key, 'manifest', route, req, res, undefined);
    mediaType ??= manifestMediaTypeOf(await this.#readManifest(key));
    await this.#sendStored(key, req, res, { ranges: false, mediaType });
  }

  /** A tag names whatever the origin says today: ask it (HEAD), then serve that digest. */
  async #resolveTag(
    route: Extract<MirrorRoute, { kind: 'manifest' }>,
    req: http.IncomingMessage,
  ): Promise<{ key: string; mediaType: string | undefined }> {
    const origin = this.#originFor(route.namespace);
    if (origin === undefined) {
      const where = route.namespace === undefined ? 'this mirror' : `namespace ${route.namespace}`;
      throw new NoOriginError(
        `no origin is configured for ${where}, so tag ${route.reference} cannot be resolved`,
      );
    }
    const credential = basicCredential(req) ?? this.#options.credentials?.[origin];
    const target = {
      origin,
      repository: route.repository,
      reference: route.reference,
      ...(credential === undefined ? {} : { credential }),
    };
    const head = await this.#originClient.headManifest(target);
    if (head.digest !== undefined) return { key: head.digest, mediaType: head.mediaType };
    // The origin did not name the digest: take the manifest itself and store it by its hash.
    const manifest = await this.#originClient.fetchManifest(target);
    await this.#store.write(manifest.digest, Readable.from([manifest.bytes], { objectMode: false }));
    this.#stored(manifest.digest);
    return { key: manifest.digest, mediaType: manifest.mediaType };
  }

  #obtain(
    key: string,
    kind: 'blob' | 'manifest',
    route: Extract<MirrorRoute, { kind: 'blob' | 'manifest' }>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    sink: ResponseSink | undefined,
  ): Promise<'stored' | 'streamed'> {
    const client = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) client.abort(new ClosedError('client connection'));
    });
    const credential = basicCredential(req);
    const request: ObtainRequest = {
      kind,
      repository: route.repository,
      origin: this.#originFor(route.namespace),
      credential,
      signal: client.signal,
      sink,
    };
    return this.#content.obtain(key, request);
  }

  async #sendStored(
    key: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    options: { ranges: boolean; mediaType?: string | undefined },
  ): Promise<void> {
    const sent = await serveStored(this.#store, key, req, res, options);
    // Evicted between being obtained and being read: rare, and the client's retry fetches it again.
    if (sent === undefined) throw new CapacityExceededError('mirror store (evicted while served)', 0);
    this.#bytesServed += sent;
  }

  async #readManifest(key: string): Promise<Buffer> {
    const stream = await this.#store.read(key);
    if (stream === undefined) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > MAX_MANIFEST_BYTES) {
        stream.destroy();
        return Buffer.alloc(0);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }

  /** The origin for a request: its `ns` when one is mapped, else the default; none for an unknown `ns`. */
  #originFor(namespace: string | undefined): string | undefined {
    if (namespace === undefined) return this.#options.origin;
    const mapped = this.#options.namespaces?.[namespace];
    if (mapped !== undefined) return mapped;
    const origin = this.#options.origin;
    return origin !== undefined && new URL(origin).host === namespace ? origin : undefined;
  }

  #stored(key: string): void {
    this.#content.stored(key);
    this.#announce([key]);
  }

  /** An evicted key is withdrawn, so peers stop asking this node for it. */
  #withdraw(key: string): void {
    if (this.#closed) return;
    this.#directory.withdraw([key]).then(
      () => {
        this.#withdrawn++;
      },
      () => {
        this.#announceFailures++;
      },
    );
  }

  #announce(keys: readonly string[]): void {
    if (keys.length === 0 || this.#closed) return;
    this.#directory.announce(keys).then(
      (report) => {
        this.#announced += keys.length;
        if (report.unreachable.length > 0) this.#announceFailures++;
      },
      (error: unknown) => {
        this.#announceFailures++;
        logSafely(() =>
          this.#options.logger?.warn('mirror: announce failed', { error: errorMessage(error) }),
        );
      },
    );
  }

  #answerError(res: http.ServerResponse, error: unknown): void {
    const { status, code, retryAfterMs } = httpFailure(error, this.#clock.now());
    if (status === 500) {
      logSafely(() => this.#options.logger?.error('mirror: request failed', { error: errorMessage(error) }));
    }
    const headers: Record<string, string> =
      retryAfterMs === undefined
        ? {}
        : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) };
    writeOciError(res, status, code, errorMessage(error), headers);
  }

  #countStatus(status: number): void {
    if (status >= 500) this.#serverErrors++;
    else if (status >= 400) this.#clientErrors++;
    else this.#ok++;
  }
}

/**
 * The answer for a failure. Never 404 for a digest: a client must fall back to the origin. A tag
 * the origin itself does not know is the one 404.
 */
function httpFailure(
  error: unknown,
  now: number,
): { status: number; code: string; retryAfterMs?: number | undefined } {
  if (error instanceof OriginFetchError && error.failureClass === 'not-found' && !isDigestUrl(error.url)) {
    return { status: 404, code: 'MANIFEST_UNKNOWN' };
  }
  if (error instanceof CascadeCooldownError) {
    return { status: 503, code: 'UNAVAILABLE', retryAfterMs: error.retryAfterMs };
  }
  if (error instanceof FailureShortCircuitError) {
    const retryAfterMs = error.cooldownUntil === undefined ? undefined : error.cooldownUntil - now;
    return { status: 503, code: 'UNAVAILABLE', retryAfterMs };
  }
  if (error instanceof CascadeExhaustedError || error instanceof CapacityExceededError) {
    return { status: 503, code: 'UNAVAILABLE', retryAfterMs: 1_000 };
  }
  if (error instanceof CoordBusyError || error instanceof ClosedError || error instanceof NoOriginError) {
    return { status: 503, code: 'UNAVAILABLE' };
  }
  if (
    error instanceof OriginFetchError ||
    error instanceof PeerFetchError ||
    error instanceof DigestMismatchError
  ) {
    return { status: 502, code: 'UPSTREAM_FAILED' };
  }
  return { status: 500, code: 'INTERNAL' };
}

function isDigestUrl(url: string): boolean {
  return /\/(?:blobs|manifests)\/sha(?:256|512):[0-9a-f]+$/.test(url);
}

/** The client's `Authorization: Basic` credential, passed on to the origin as its own. */
function basicCredential(req: http.IncomingMessage): OriginCredential | undefined {
  const header = req.headers.authorization;
  if (header === undefined || header.length > 4096) return undefined;
  const match = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(header.trim());
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function configuredOrigins(options: MirrorOptions): string[] {
  return [
    ...(options.origin === undefined ? [] : [options.origin]),
    ...Object.values(options.namespaces ?? {}),
  ];
}

function checkOptions(options: MirrorOptions): void {
  for (const origin of configuredOrigins(options)) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError('origin', `${JSON.stringify(origin)} is not a URL`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin) {
      throw new ConfigError('origin', `${origin} must be http(s)://host[:port], nothing more`);
    }
  }
  for (const field of [
    'maxPendingRequests',
    'maxConcurrentFetches',
    'stallMs',
    'reannounceIntervalMs',
    'originTimeoutMs',
  ] as const) {
    const value = options[field];
    if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) {
      throw new ConfigError(field, `must be a positive integer, got ${String(value)}`);
    }
  }
}
