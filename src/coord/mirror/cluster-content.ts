// Brings a blob or manifest into this node's store from wherever the cluster says it is: this
// node, a peer that holds it, a peer that is fetching it (wait, then take it from that peer), the
// node HRW designates to fetch it from the origin, or (when the cascade runs out) the origin
// itself, rate-limited. The cascade decides; this file carries the decision out.
//
// On one node a key is obtained once at a time: a second request for it waits for the first
// (or for this node's origin fetch of it) rather than fetching it again.
//
// A blob taken from a peer can be streamed to the requesting client while it is being stored
// (`sink`): the client then waits for neither a full download nor a second read from disk. The
// last chunk is held back until the store has verified the digest, so a client never receives
// the whole of a blob that turned out to be wrong; on a mismatch its response is cut short.

import type { Readable } from 'node:stream';

import { raceSignal } from '../../internal/abort.ts';
import { CapacityExceededError, ClosedError } from '../../internal/errors.ts';
import type { Cascade, Decision } from '../cascade/index.ts';
import type { ContentStore } from '../content-store.ts';
import type { FetchKind } from '../in-flight.ts';
import { fetchChannel, type OriginFetcher } from './origin-fetcher.ts';
import type { OriginCredential } from './origin-client.ts';
import type { PeerClient, PeerFetched } from './peer-client.ts';

/** Where a blob streamed from a peer goes as it arrives: the client's response. */
export interface BlobSink {
  /** True once `start` ran: from then on the sink holds part of the blob and cannot be retried. */
  readonly started: boolean;
  start(size: number | undefined): void;
  /** Sends a chunk; resolves when the sink can take more (or has given up on its client). */
  write(chunk: Buffer): Promise<void>;
  /** Sends the last chunk (held back until the blob was verified) and ends. */
  finish(last: Buffer | undefined): void;
  /** Cuts the response short: the blob failed after some of it was sent. */
  abort(): void;
}

export interface ObtainRequest {
  readonly kind: FetchKind;
  readonly repository: string;
  /** The origin the key may come from; undefined serves it from the cluster only. */
  readonly origin: string | undefined;
  /** The requester's own registry credential. */
  readonly credential?: OriginCredential | undefined;
  /** The client's signal: aborting ends its wait (a fetch under way goes on, for the next asker). */
  readonly signal: AbortSignal;
  readonly sink?: BlobSink | undefined;
}

/** `stored`: serve it from the store. `streamed`: the sink already has all of it. */
export type Obtained = 'stored' | 'streamed';

export interface ClusterContentOptions {
  readonly store: ContentStore;
  readonly cascade: Pick<Cascade, 'resolve'>;
  readonly fetcher: OriginFetcher;
  readonly peerClient: PeerClient;
  /** A peer's node id → the base URL of its mirror. */
  readonly peerUrl: (node: string) => string;
  /** Called with every key this node stores (announced to the directory by the mirror). */
  readonly onStored: (key: string) => void;
  /** Keys being obtained at once; one more is refused with `CapacityExceededError`. */
  readonly maxPending: number;
  /** Providers tried per request before giving up (Gantry: 3). */
  readonly maxPeersPerRequest: number;
}

export interface ClusterContentStats {
  /** Keys being obtained now. */
  readonly pending: number;
  /** Requests that waited for this node's fetch of the same key. */
  readonly joined: number;
  readonly peerFetches: number;
  readonly peerFetchFailures: number;
  readonly peerBytes: number;
  /** Blobs streamed to a client while being stored. */
  readonly streamed: number;
  /** Requests refused because `maxPending` keys were being obtained. */
  readonly refused: number;
  /** Decisions the cascade took, by action. */
  readonly decisions: Readonly<Record<Decision['action'], number>>;
}

/** Ends the cascade's wait when another request on this node stored the key. */
class StoredMeanwhile extends Error {}

/** Ends the cascade's wait when this node's fetch of the key failed: no point polling for it. */
class FailedMeanwhile extends Error {
  readonly failure: unknown;

  constructor(failure: unknown) {
    super('the fetch waited for failed');
    this.failure = failure;
  }
}

export class ClusterContent {
  readonly #options: ClusterContentOptions;
  /** Keys being obtained, settling (never rejecting) when done. */
  readonly #pending = new Map<string, Promise<void>>();
  /** Cascades waiting on a key, aborted when the key is stored. */
  readonly #waiters = new Map<string, Set<AbortController>>();
  readonly #closing = new AbortController();
  #joined = 0;
  #peerFetches = 0;
  #peerFetchFailures = 0;
  #peerBytes = 0;
  #streamed = 0;
  #refused = 0;
  readonly #decisions: Record<Decision['action'], number> = {
    'serve-local': 0,
    'fetch-from-peer': 0,
    'fetch-from-origin': 0,
    fail: 0,
  };

  constructor(options: ClusterContentOptions) {
    this.#options = options;
  }

  /**
   * Makes `key` available: resolves `stored` when it is in this node's store, `streamed` when the
   * sink was given all of it. Rejects with what failed: a cascade error (`CascadeCooldownError`,
   * `FailureShortCircuitError`, `CascadeExhaustedError`), the last `PeerFetchError`, an
   * `OriginFetchError`, `CapacityExceededError`, or the signal's reason.
   */
  async obtain(key: string, request: ObtainRequest): Promise<Obtained> {
    const { store, fetcher } = this.#options;
    if (this.#closing.signal.aborted) throw new ClosedError('mirror');
    if (store.has(key)) return 'stored';
    const running = this.#pending.get(key) ?? fetcher.running(key);
    if (running !== undefined) {
      this.#joined++;
      await raceSignal(running, request.signal);
      // If that attempt failed, this request makes its own (the cascade may know better now).
      if (store.has(key)) return 'stored';
    }
    if (this.#pending.has(key)) return this.obtain(key, request);
    if (this.#pending.size >= this.#options.maxPending) {
      this.#refused++;
      throw new CapacityExceededError('mirror requests being resolved', this.#options.maxPending);
    }
    const work = this.#resolveAndFetch(key, request);
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.set(key, settled);
    try {
      return await work;
    } finally {
      if (this.#pending.get(key) === settled) this.#pending.delete(key);
    }
  }

  /** Tells the cascades waiting on `key` that it is stored now. */
  stored(key: string): void {
    this.#wake(key, new StoredMeanwhile());
  }

  /**
   * Tells the cascades waiting on `key` that this node's fetch of it failed. A request without a
   * credential of its own fails with `failure`; one with its own credential fetches with it (the
   * node's failure says nothing about that credential).
   */
  failed(key: string, failure: unknown): void {
    this.#wake(key, new FailedMeanwhile(failure));
  }

  stats(): ClusterContentStats {
    return {
      pending: this.#pending.size,
      joined: this.#joined,
      peerFetches: this.#peerFetches,
      peerFetchFailures: this.#peerFetchFailures,
      peerBytes: this.#peerBytes,
      streamed: this.#streamed,
      refused: this.#refused,
      decisions: { ...this.#decisions },
    };
  }

  /** Stops new work and aborts peer fetches under way. */
  close(): void {
    this.#closing.abort(new ClosedError('mirror'));
  }

  #wake(key: string, reason: StoredMeanwhile | FailedMeanwhile): void {
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) return;
    this.#waiters.delete(key);
    for (const waiter of waiters) waiter.abort(reason);
  }

  async #resolveAndFetch(key: string, request: ObtainRequest): Promise<Obtained> {
    const decision = await this.#resolve(key, request);
    this.#decisions[decision.action]++;
    switch (decision.action) {
      case 'serve-local':
        return 'stored';
      case 'fetch-from-peer':
        return this.#fromPeers(key, decision.providers, request);
      case 'fetch-from-origin': {
        const origin = request.origin as string; // the cascade falls back only when there is one
        const fetchRequest = {
          origin,
          repository: request.repository,
          kind: request.kind,
          credential: request.credential,
        };
        await this.#options.fetcher.fetch(key, fetchRequest, request.signal);
        return 'stored';
      }
      case 'fail':
        throw decision.error;
    }
  }

  /** The cascade's decision, cut short as `serve-local` when the key is stored meanwhile. */
  async #resolve(key: string, request: ObtainRequest): Promise<Decision> {
    const waiter = new AbortController();
    const onClientAbort = (): void => {
      waiter.abort(request.signal.reason);
    };
    request.signal.addEventListener('abort', onClientAbort, { once: true });
    const onClosing = (): void => {
      waiter.abort(this.#closing.signal.reason);
    };
    this.#closing.signal.addEventListener('abort', onClosing, { once: true });
    let waiters = this.#waiters.get(key);
    if (waiters === undefined) this.#waiters.set(key, (waiters = new Set()));
    waiters.add(waiter);
    try {
      if (request.signal.aborted) throw request.signal.reason;
      return await this.#options.cascade.resolve(key, {
        kind: request.kind,
        origin: request.origin,
        repository: request.repository,
        delegatedCredential: request.credential !== undefined,
        signal: waiter.signal,
      });
    } catch (error) {
      const reason: unknown = waiter.signal.reason;
      if (reason instanceof StoredMeanwhile) return { action: 'serve-local' };
      if (reason instanceof FailedMeanwhile) {
        if (request.credential !== undefined && request.origin !== undefined) {
          return { action: 'fetch-from-origin', reason: 'untrusted-failure' };
        }
        throw reason.failure;
      }
      throw error;
    } finally {
      request.signal.removeEventListener('abort', onClientAbort);
      this.#closing.signal.removeEventListener('abort', onClosing);
      waiters.delete(waiter);
      if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
    }
  }

  async #fromPeers(key: string, providers: readonly string[], request: ObtainRequest): Promise<Obtained> {
    const { store, peerClient, peerUrl } = this.#options;
    let lastError: unknown = new ClosedError('mirror');
    for (const peer of providers.slice(0, this.#options.maxPeersPerRequest)) {
      if (this.#closing.signal.aborted) break;
      const startedAt = performance.now();
      this.#peerFetches++;
      try {
        // The fetch runs under the node's signal, not the client's: if the client leaves, the
        // blob is stored all the same for whoever asks next.
        const fetched = await peerClient.fetch({
          peer,
          baseUrl: peerUrl(peer),
          repository: request.repository,
          kind: request.kind === 'manifest' ? 'manifest' : 'blob',
          digest: key,
          signal: this.#closing.signal,
        });
        const size = await this.#storeFromPeer(key, fetched, request.sink);
        this.#peerBytes += size;
        fetchChannel.publishLazy(() => ({
          key,
          source: 'peer',
          from: peer,
          outcome: 'stored',
          bytes: size,
          durationMs: performance.now() - startedAt,
        }));
        this.#options.onStored(key);
        return request.sink?.started === true ? 'streamed' : 'stored';
      } catch (error) {
        this.#peerFetchFailures++;
        lastError = error;
        fetchChannel.publishLazy(() => ({
          key,
          source: 'peer',
          from: peer,
          outcome: 'failed',
          durationMs: performance.now() - startedAt,
        }));
        // Part of the blob already went to the client: the client must retry, not us.
        if (request.sink?.started === true) throw error;
        if (store.has(key)) return 'stored';
      }
    }
    throw lastError;
  }

  /** Stores what a peer sends, through the sink when there is one; resolves with the size. */
  async #storeFromPeer(key: string, fetched: PeerFetched, sink: BlobSink | undefined): Promise<number> {
    const holder: { last: Buffer | undefined } = { last: undefined };
    const source = sink === undefined ? fetched.body : relay(fetched.body, sink, fetched.size, holder);
    try {
      const result = await this.#options.store.write(key, source, {
        signal: this.#closing.signal,
        ...(fetched.size === undefined ? {} : { expectedSize: fetched.size }),
      });
      if (sink?.started === true) {
        sink.finish(holder.last);
        this.#streamed++;
      }
      return result.size;
    } catch (error) {
      if (sink?.started === true) sink.abort();
      throw error;
    } finally {
      // The store leaves an iterable it never read alone (the key was stored meanwhile).
      fetched.body.destroy();
    }
  }
}

/** Yields the body's chunks to the store, sending each to the sink once the next one arrives. */
async function* relay(
  body: Readable,
  sink: BlobSink,
  size: number | undefined,
  holder: { last: Buffer | undefined },
): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    // Headers go out with the first byte: a peer that fails before it lets the next one be tried.
    if (!sink.started) sink.start(size);
    if (holder.last !== undefined) await sink.write(holder.last);
    holder.last = chunk;
    yield chunk;
  }
}
