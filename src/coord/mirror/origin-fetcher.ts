// The node's fetcher: brings a blob or manifest from its origin registry into the content store,
// once per key on this node. It serves both `pleaseFetch` from peers (`startFetch`, through the
// coord server, which has already claimed the key) and this node's own direct-origin fallback
// (`fetch`, which claims the key itself or joins the fetch already running).
//
// Only origins this node is configured with are fetched from: a peer naming another origin is
// declined. Otherwise any grid member could make this node fetch from any URL, and poison its
// negative cache for a digest with an origin that answers 404.
//
// When a fetch ends, its claim is released (in every case), the negative cache learns the outcome
// (a failure under a requester's credential is not recorded), and a stored key is announced.

import { Readable } from 'node:stream';

import { raceSignal } from '../../internal/abort.ts';
import { diagnosticChannel } from '../../internal/diagnostics.ts';
import { ClosedError, ConfigError } from '../../internal/errors.ts';
import type { ContentStore } from '../content-store.ts';
import { OriginFetchError } from '../errors.ts';
import type { FailureClass } from '../failure-class.ts';
import type { FetchKind, InFlightHandle, InFlightMap } from '../in-flight.ts';
import type { NegativeCache } from '../negative-cache.ts';
import type { FetchOrder, Fetcher } from '../rpc/index.ts';
import type { OriginClient, OriginCredential } from './origin-client.ts';

export interface OriginFetcherOptions {
  readonly store: ContentStore;
  readonly originClient: Pick<OriginClient, 'fetchBlob' | 'fetchManifest'>;
  readonly inFlight: InFlightMap;
  readonly negativeCache: NegativeCache;
  /** Origins (`http(s)://host[:port]`) this node fetches from; any other is declined. */
  readonly origins: readonly string[];
  /** This node's own credential for an origin, if it has one. */
  readonly credentialFor?: (origin: string) => OriginCredential | undefined;
  /** Called with every key stored; the mirror announces it to the provider directory. */
  readonly onStored?: (key: string) => void;
  /** Called with every key whose fetch failed (not when closing), and the failure. */
  readonly onFailed?: (key: string, failure: unknown) => void;
  /** Fetches running at once; `startFetch` declines beyond it. Default 64. */
  readonly maxConcurrentFetches?: number;
}

export interface FetchRequest {
  readonly origin: string;
  readonly repository: string;
  readonly kind: FetchKind;
  /** Bytes, when known: sets the stall threshold and is checked against what arrives. */
  readonly size?: number | undefined;
  /** The requester's own credential; a failure under it is not cached. */
  readonly credential?: OriginCredential | undefined;
}

export interface OriginFetcherStats {
  /** Fetches running now. */
  readonly running: number;
  readonly started: number;
  readonly stored: number;
  readonly failed: number;
  /** Bytes stored from the origin. */
  readonly bytes: number;
  /** `fetch` calls that joined a fetch already running on this node. */
  readonly joined: number;
  /** `startFetch` orders declined: an origin not configured, the fetch limit, or closed. */
  readonly declined: number;
  readonly failuresByClass: Readonly<Record<FailureClass, number>>;
}

/** Published on `weft:coord:fetch` when a fetch from an origin or a peer ends. */
export interface FetchEvent {
  readonly key: string;
  readonly source: 'origin' | 'peer';
  /** The origin URL or the peer's id. */
  readonly from: string;
  readonly outcome: 'stored' | 'failed';
  readonly bytes?: number;
  readonly failureClass?: FailureClass;
  readonly durationMs: number;
}

export const fetchChannel = diagnosticChannel<FetchEvent>('coord', 'fetch');

export const DEFAULT_MAX_CONCURRENT_FETCHES = 64;

export class OriginFetcher implements Fetcher {
  readonly #options: OriginFetcherOptions;
  readonly #origins: ReadonlySet<string>;
  readonly #maxConcurrentFetches: number;
  /** This node's fetches by key (rejecting on failure), so local requests join, not fetch twice. */
  readonly #running = new Map<string, Promise<void>>();
  readonly #closing = new AbortController();
  #started = 0;
  #stored = 0;
  #failed = 0;
  #bytes = 0;
  #joined = 0;
  #declined = 0;
  readonly #failuresByClass: Record<FailureClass, number> = {
    auth: 0,
    'not-found': 0,
    'rate-limited': 0,
    transient: 0,
  };

  constructor(options: OriginFetcherOptions) {
    const max = options.maxConcurrentFetches ?? DEFAULT_MAX_CONCURRENT_FETCHES;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new ConfigError('maxConcurrentFetches', `must be a positive integer, got ${String(max)}`);
    }
    this.#options = options;
    this.#origins = new Set(options.origins);
    this.#maxConcurrentFetches = max;
  }

  /** True when `origin` is one this node fetches from. */
  allows(origin: string): boolean {
    return this.#origins.has(origin);
  }

  /** The fetch of `key` running on this node, if any; it settles (never rejects) when it ends. */
  running(key: string): Promise<void> | undefined {
    return this.#running.get(key)?.then(noop, noop);
  }

  /** For `pleaseFetch`: the key is claimed already; starts in the background or declines. */
  startFetch(order: FetchOrder): boolean {
    if (!this.#admits(order.origin)) {
      this.#declined++;
      return false;
    }
    void this.#launch(order.key, order, order.claim);
    return true;
  }

  /**
   * Fetches `key` from the origin into the store, or joins this node's fetch of it already
   * running. Resolves once stored; rejects with the fetch's failure (an `OriginFetchError`, a
   * `DigestMismatchError`, …). The fetch goes on if `signal` aborts; only the wait ends.
   */
  async fetch(key: string, request: FetchRequest, signal?: AbortSignal): Promise<void> {
    if (this.#closing.signal.aborted) throw new ClosedError('origin fetcher');
    if (!this.#origins.has(request.origin)) {
      throw new OriginFetchError(`origin ${request.origin} is not one this node fetches from`, {
        failureClass: 'transient',
        url: request.origin,
      });
    }
    let outcome = this.#running.get(key);
    if (outcome !== undefined) {
      this.#joined++;
    } else {
      // This node's own recent failure holds for a request without a credential of its own.
      const recent = request.credential === undefined ? this.#options.negativeCache.lookup(key) : undefined;
      if (recent !== undefined) {
        throw new OriginFetchError(
          `${key} failed at the origin recently (${recent.failureClass}); not asking again before its cooldown ends`,
          { failureClass: recent.failureClass, url: request.origin },
        );
      }
      const claim = this.#options.inFlight.start(key, {
        kind: request.kind,
        ...(request.size === undefined ? {} : { size: request.size }),
      });
      if (!claim.claimed) {
        // Claimed by something other than this fetcher: it is not ours to wait for.
        throw new OriginFetchError(`a fetch of ${key} is already claimed on this node`, {
          failureClass: 'transient',
          url: request.origin,
        });
      }
      outcome = this.#launch(key, request, claim.handle);
    }
    await raceSignal(outcome, signal);
  }

  stats(): OriginFetcherStats {
    return {
      running: this.#running.size,
      started: this.#started,
      stored: this.#stored,
      failed: this.#failed,
      bytes: this.#bytes,
      joined: this.#joined,
      declined: this.#declined,
      failuresByClass: { ...this.#failuresByClass },
    };
  }

  /** Aborts the fetches running and waits for them to release their claims. */
  async close(): Promise<void> {
    this.#closing.abort(new ClosedError('origin fetcher'));
    await Promise.all([...this.#running.values()].map((fetch) => fetch.then(noop, noop)));
  }

  #admits(origin: string): boolean {
    return (
      !this.#closing.signal.aborted &&
      this.#origins.has(origin) &&
      this.#running.size < this.#maxConcurrentFetches
    );
  }

  /** Runs the fetch in the background; the promise returned rejects with its failure. */
  #launch(key: string, request: FetchRequest, claim: InFlightHandle): Promise<void> {
    this.#started++;
    const outcome = this.#run(key, request).finally(() => {
      claim.done();
      this.#running.delete(key);
    });
    this.#running.set(key, outcome);
    // Nobody may be waiting (a pleaseFetch from a peer): the failure is recorded, not thrown.
    outcome.catch(noop);
    return outcome;
  }

  async #run(key: string, request: FetchRequest): Promise<void> {
    const { store, originClient, negativeCache } = this.#options;
    const credential = request.credential ?? this.#options.credentialFor?.(request.origin);
    const delegated = request.credential !== undefined;
    const startedAt = performance.now();
    const signal = this.#closing.signal;
    const target = {
      origin: request.origin,
      repository: request.repository,
      signal,
      ...(credential === undefined ? {} : { credential }),
    };
    try {
      let size: number;
      if (request.kind === 'manifest') {
        const manifest = await originClient.fetchManifest({ ...target, reference: key });
        const source = Readable.from([manifest.bytes], { objectMode: false });
        size = (await store.write(key, source, { signal })).size;
      } else {
        const blob = await originClient.fetchBlob({ ...target, digest: key });
        const expectedSize = request.size ?? blob.size;
        const options = expectedSize === undefined ? { signal } : { signal, expectedSize };
        size = (await store.write(key, blob.body, options)).size;
      }
      negativeCache.recordSuccess(key);
      this.#stored++;
      this.#bytes += size;
      fetchChannel.publishLazy(() => ({
        key,
        source: 'origin',
        from: request.origin,
        outcome: 'stored',
        bytes: size,
        durationMs: performance.now() - startedAt,
      }));
      this.#options.onStored?.(key);
    } catch (error) {
      this.#failed++;
      const failureClass = classify(error);
      this.#failuresByClass[failureClass]++;
      // A fetch cut short by this node closing says nothing about the origin.
      if (!signal.aborted) negativeCache.recordFailure(key, failureClass, { delegatedCredential: delegated });
      fetchChannel.publishLazy(() => ({
        key,
        source: 'origin',
        from: request.origin,
        outcome: 'failed',
        failureClass,
        durationMs: performance.now() - startedAt,
      }));
      // A failure under one requester's credential says nothing to the others waiting.
      if (!signal.aborted && !delegated) this.#options.onFailed?.(key, error);
      throw error;
    }
  }
}

/** The failure class of a fetch error: the origin's own, else transient (bytes that lied included). */
function classify(error: unknown): FailureClass {
  return error instanceof OriginFetchError ? error.failureClass : 'transient';
}

function noop(): void {}
