// Fetches blobs and manifests from another node's mirror over plain HTTP, not the grid: a blob
// can be gigabytes, and the HTTP path streams it with the kernel's flow control and without
// occupying the grid connection that carries every coord call.
//
// The request carries `Weft-Mirrored: 1`, so the peer serves only from its own store and answers
// 404 when it no longer holds the key, instead of resolving it through the cluster again (which
// could loop). What arrives is unverified: the caller writes it into its store, which hashes it.
// A peer that sends nothing for `stallMs` (Gantry: 10 s) fails, and the caller tries the next one.

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

import { linkSignals } from '../../internal/abort.ts';
import { type Clock, systemClock } from '../../internal/clock.ts';
import { ConfigError, DeadlineExceededError } from '../../internal/errors.ts';
import { PeerFetchError } from '../errors.ts';
import { guardBody } from './guarded-body.ts';

/** The header that marks a request from a peer's mirror: serve from the store, or 404. */
export const MIRRORED_HEADER = 'weft-mirrored';

export interface PeerClientConfig {
  readonly clock?: Clock;
  /** No bytes (or headers) for this long fails the fetch. Default 10 s. */
  readonly stallMs?: number;
  /** Largest manifest read from a peer. Default 4 MiB. */
  readonly maxManifestBytes?: number;
  readonly userAgent?: string;
}

export const defaultPeerClientConfig = {
  clock: systemClock,
  stallMs: 10_000,
  maxManifestBytes: 4 * 1024 * 1024,
  userAgent: 'weft-mirror',
} as const satisfies Required<PeerClientConfig>;

export interface PeerFetchRequest {
  /** The peer's node id, for errors and stats. */
  readonly peer: string;
  /** The base URL of the peer's mirror, e.g. `http://10.0.0.2:9000`. */
  readonly baseUrl: string;
  readonly repository: string;
  readonly kind: 'blob' | 'manifest';
  readonly digest: string;
  readonly signal?: AbortSignal | undefined;
}

export interface PeerFetched {
  /** Unverified bytes: hash them as they are stored. Consume or destroy it. */
  readonly body: Readable;
  /** The peer's Content-Length. */
  readonly size: number | undefined;
}

const maxSocketsPerPeer = 64;

export class PeerClient {
  readonly #config: Required<PeerClientConfig>;
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxSockets: maxSocketsPerPeer });
  readonly #httpsAgent = new https.Agent({ keepAlive: true, maxSockets: maxSocketsPerPeer });

  constructor(config: PeerClientConfig = {}) {
    const merged = { ...defaultPeerClientConfig, ...config };
    for (const field of ['stallMs', 'maxManifestBytes'] as const) {
      if (!Number.isSafeInteger(merged[field]) || merged[field] <= 0) {
        throw new ConfigError(field, `must be a positive integer, got ${String(merged[field])}`);
      }
    }
    this.#config = merged;
  }

  /** GETs the key from the peer; rejects with `PeerFetchError` (404 when the peer lacks it). */
  async fetch(request: PeerFetchRequest): Promise<PeerFetched> {
    const section = request.kind === 'blob' ? 'blobs' : 'manifests';
    const url = new URL(`/v2/${request.repository}/${section}/${request.digest}`, request.baseUrl);
    const response = await this.#get(url, request);
    const failure = (message: string, cause?: unknown): PeerFetchError =>
      new PeerFetchError(`${message} (peer ${request.peer})`, { peer: request.peer }, { cause });
    if (response.statusCode !== 200) {
      // Not drained: a hostile peer's error body could be endless.
      response.destroy();
      throw new PeerFetchError(`peer ${request.peer} answered ${response.statusCode} for ${request.digest}`, {
        peer: request.peer,
        ...(response.statusCode === undefined ? {} : { status: response.statusCode }),
      });
    }
    const size = contentLength(response.headers['content-length']);
    // A manifest must say its size: a peer that does not could send one as large as the store.
    if (request.kind === 'manifest' && (size === undefined || size > this.#config.maxManifestBytes)) {
      response.destroy();
      throw failure(`manifest of ${String(size)} bytes is over ${this.#config.maxManifestBytes}`);
    }
    const body = guardBody(response, {
      clock: this.#config.clock,
      idleTimeoutMs: this.#config.stallMs,
      signal: request.signal,
      failure: (cause) => failure('body failed mid-stream', cause),
    });
    return { body, size };
  }

  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** Sends the GET and waits for its headers, for at most `stallMs`. */
  #get(url: URL, request: PeerFetchRequest): Promise<IncomingMessage> {
    const { clock, stallMs, userAgent } = this.#config;
    const linked = linkSignals(request.signal);
    const timer = clock.setTimeout(() => {
      linked.abort(new DeadlineExceededError(`no answer within ${stallMs} ms`, { timeoutMs: stallMs }));
    }, stallMs);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = client.get(url, {
        agent: url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent,
        headers: { [MIRRORED_HEADER]: '1', 'user-agent': userAgent, accept: '*/*' },
        signal: linked.signal,
      });
      req.once('response', resolve);
      req.once('error', (error) => {
        const cause: unknown = linked.signal.aborted ? linked.signal.reason : error;
        const failure: unknown =
          request.signal?.aborted === true
            ? request.signal.reason
            : new PeerFetchError(`could not reach peer ${request.peer}`, { peer: request.peer }, { cause });
        reject(failure);
      });
    }).finally(() => {
      timer.cancel();
      linked.dispose();
    });
  }
}

function contentLength(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}
