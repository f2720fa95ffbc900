// The client the mirror uses to fetch manifests and blobs from an origin registry (OCI
// distribution API), speaking to it as registries expect:
//
// - Auth: a 401 carries a `WWW-Authenticate` challenge. For `Bearer realm=…,service=…,scope=…`
//   we GET the realm with those parameters (and the requester's Basic credential, if any), take
//   `token` or `access_token` and retry once with `Authorization: Bearer …`; for `Basic` we retry
//   once with the credential. Tokens are cached per (origin, repository pull scope, credential)
//   until `expires_in` (default 60 s) on the injected clock, at most `maxCachedTokens` of them.
// - Redirects: registries send blob GETs to object storage. Up to 5 hops are followed; the
//   Authorization header never crosses to another origin, and https never downgrades to http.
// - Integrity: a manifest fetched by digest, or answered with `Docker-Content-Digest`, must hash
//   to it. Blobs are streamed to the caller, which verifies them (ContentStore.write does).
// - Failures are `OriginFetchError`s with a failure class; an error's `url` has no credentials and
//   no query string (signed storage URLs carry their credentials there).
// - Bounds: manifests and token answers have a byte limit; `timeoutMs` covers a manifest fetch
//   end to end and, for a blob, the wait for its headers and every gap between body chunks.

import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

import { linkSignals, onAbort } from '../../internal/abort.ts';
import { type Clock, systemClock } from '../../internal/clock.ts';
import { ConfigError, DeadlineExceededError, errorMessage } from '../../internal/errors.ts';
import { parseDigest } from '../digest.ts';
import { InvalidOriginRequestError, OriginFetchError } from '../errors.ts';
import { failureClassOfStatus } from '../failure-class.ts';
import { parseOriginChallenge } from './bearer-challenge.ts';
import { guardBody } from './guarded-body.ts';
import { isRepositoryName, isTag } from './oci-names.ts';

export interface OriginClientConfig {
  /** Sent on every request, e.g. `weft-coord/0.1`. */
  readonly userAgent: string;
  /** Source of time for timeouts and token expiry. Default the system clock. */
  readonly clock?: Clock;
  /** A manifest fetch end to end; a blob's headers, and each gap between its body chunks. Default 30 s. */
  readonly timeoutMs?: number;
  /** Largest manifest accepted. Default 4 MiB (what registries themselves accept). */
  readonly maxManifestBytes?: number;
  /** Bearer tokens held at most; the oldest is dropped for a new one. Default 1000. */
  readonly maxCachedTokens?: number;
}

export const defaultOriginClientConfig = {
  clock: systemClock,
  timeoutMs: 30_000,
  maxManifestBytes: 4 * 1024 * 1024,
  maxCachedTokens: 1000,
} as const satisfies Partial<OriginClientConfig>;

/** A requester's registry credential, sent as HTTP Basic to the origin or its token realm. */
export interface OriginCredential {
  readonly username: string;
  readonly password: string;
}

export interface OriginTarget {
  /** `http(s)://host[:port]`, no path, no credentials. */
  readonly origin: string;
  /** Repository name, e.g. `library/alpine`. */
  readonly repository: string;
  readonly credential?: OriginCredential;
  readonly signal?: AbortSignal;
}

export interface FetchBlobRequest extends OriginTarget {
  readonly digest: string;
}

export interface FetchedBlob {
  /** The blob's bytes, unverified. Consume it or destroy it: it holds a connection until then. */
  readonly body: Readable;
  /** Content-Length of the answer, when the origin sent a valid one. */
  readonly size: number | undefined;
}

export interface FetchManifestRequest extends OriginTarget {
  /** A tag or a digest. */
  readonly reference: string;
  /** Media types asked for. Default OCI and Docker v2 manifests and indexes. */
  readonly accept?: readonly string[];
}

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** The reference when it is a digest, else `Docker-Content-Digest`, else the bytes' sha256. */
  readonly digest: string;
}

export interface ManifestHead {
  readonly mediaType: string;
  /** The reference when it is a digest, else `Docker-Content-Digest` (undefined when absent). */
  readonly digest: string | undefined;
  readonly size: number | undefined;
}

export interface OriginClientStats {
  readonly cachedTokens: number;
  /** Token requests made to realms. */
  readonly tokenFetches: number;
  /** Tokens dropped before expiry because the cache was full. */
  readonly tokenEvictions: number;
}

export const manifestMediaTypes = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
] as const;

const maxRedirects = 5;
const maxTokenResponseBytes = 64 * 1024;
const maxTokenLength = 16 * 1024;
const defaultTokenLifetimeMs = 60_000;
// A token lives at most a day here, whatever the realm claims.
const maxTokenLifetimeMs = 24 * 60 * 60 * 1000;
// Bodies we do not want (errors, redirects) up to this size are drained to keep the connection.
const maxDrainBytes = 64 * 1024;
const maxSocketsPerHost = 64;
const visibleAscii = /^[\x21-\x7e]+$/;

interface CachedToken {
  readonly authorization: string;
  readonly expiresAt: number;
}

/** One origin request with its auth state: where it goes and what it sends. */
interface Attempt {
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  readonly tokenKey: string;
  readonly credential: OriginCredential | undefined;
  readonly signal: AbortSignal;
}

export class OriginClient {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #maxManifestBytes: number;
  readonly #maxCachedTokens: number;
  readonly #userAgent: string;
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxSockets: maxSocketsPerHost });
  readonly #httpsAgent = new https.Agent({ keepAlive: true, maxSockets: maxSocketsPerHost });
  /** Insertion order is age: the first entry is the one dropped when full. */
  readonly #tokens = new Map<string, CachedToken>();
  #tokenFetches = 0;
  #tokenEvictions = 0;

  constructor(config: OriginClientConfig) {
    const merged = { ...defaultOriginClientConfig, ...config };
    if (typeof merged.userAgent !== 'string' || !/^[\x20-\x7e]+$/.test(merged.userAgent)) {
      throw new ConfigError('userAgent', 'must be a non-empty printable ASCII string');
    }
    for (const field of ['timeoutMs', 'maxManifestBytes', 'maxCachedTokens'] as const) {
      if (!Number.isSafeInteger(merged[field]) || merged[field] <= 0) {
        throw new ConfigError(field, `must be a positive integer, got ${String(merged[field])}`);
      }
    }
    this.#clock = merged.clock;
    this.#timeoutMs = merged.timeoutMs;
    this.#maxManifestBytes = merged.maxManifestBytes;
    this.#maxCachedTokens = merged.maxCachedTokens;
    this.#userAgent = merged.userAgent;
  }

  /** GETs a blob, following redirects to storage. The body is unverified: hash it as you store it. */
  async fetchBlob(request: FetchBlobRequest): Promise<FetchedBlob> {
    const digest = parseDigest(request.digest).digest;
    const base = checkTarget(request);
    const blobUrl = new URL(`/v2/${base.repository}/blobs/${digest}`, base.origin);
    const deadline = this.#deadline(request.signal);
    let response: IncomingMessage;
    let url: URL;
    try {
      ({ response, url } = await this.#authorized({
        url: blobUrl,
        method: 'GET',
        headers: { accept: '*/*' },
        tokenKey: tokenKeyOf(base.origin, base.repository, request.credential),
        credential: request.credential,
        signal: deadline.signal,
      }));
    } catch (error) {
      throw deadline.failure(error, blobUrl);
    } finally {
      deadline.dispose();
    }
    if (response.statusCode !== 200) throw statusFailure(response, url);
    return { body: this.#guardBody(response, url, request.signal), size: contentLength(response.headers) };
  }

  /** GETs a manifest by tag or digest and checks its bytes against every digest it is named by. */
  async fetchManifest(request: FetchManifestRequest): Promise<FetchedManifest> {
    const { attempt, referenceDigest, accepted } = this.#manifestAttempt(request, 'GET');
    const deadline = this.#deadline(request.signal);
    try {
      const { response, url } = await this.#authorized({ ...attempt, signal: deadline.signal });
      if (response.statusCode !== 200) throw statusFailure(response, url);
      const mediaType = manifestMediaType(response.headers, accepted, url);
      const headerDigest = headerDigestOf(response.headers, url);
      const bytes = await readBounded(response, this.#maxManifestBytes, deadline.signal, url, 'manifest');
      for (const expected of [referenceDigest, headerDigest]) {
        if (expected !== undefined) checkDigest(bytes, expected, url);
      }
      const digest = referenceDigest ?? headerDigest ?? sha256Of(bytes);
      return { bytes, mediaType, digest };
    } catch (error) {
      throw deadline.failure(error, attempt.url);
    } finally {
      deadline.dispose();
    }
  }

  /** HEADs a manifest: its media type, digest and size, without its bytes. */
  async headManifest(request: FetchManifestRequest): Promise<ManifestHead> {
    const { attempt, referenceDigest, accepted } = this.#manifestAttempt(request, 'HEAD');
    const deadline = this.#deadline(request.signal);
    try {
      const { response, url } = await this.#authorized({ ...attempt, signal: deadline.signal });
      response.resume(); // a HEAD answer has no body
      if (response.statusCode !== 200) throw statusFailure(response, url);
      const mediaType = manifestMediaType(response.headers, accepted, url);
      const headerDigest = headerDigestOf(response.headers, url);
      if (referenceDigest !== undefined && headerDigest !== undefined && headerDigest !== referenceDigest) {
        throw new OriginFetchError(`origin named manifest ${referenceDigest} as ${headerDigest}`, {
          failureClass: 'transient',
          url: redact(url),
        });
      }
      return { mediaType, digest: referenceDigest ?? headerDigest, size: contentLength(response.headers) };
    } catch (error) {
      throw deadline.failure(error, attempt.url);
    } finally {
      deadline.dispose();
    }
  }

  stats(): OriginClientStats {
    return {
      cachedTokens: this.#tokens.size,
      tokenFetches: this.#tokenFetches,
      tokenEvictions: this.#tokenEvictions,
    };
  }

  /** Closes idle keep-alive connections and forgets tokens. Requests in flight are not stopped. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
    this.#tokens.clear();
  }

  #manifestAttempt(
    request: FetchManifestRequest,
    method: 'GET' | 'HEAD',
  ): {
    base: { origin: URL; repository: string };
    attempt: Omit<Attempt, 'signal'>;
    referenceDigest: string | undefined;
    accepted: readonly string[];
  } {
    const base = checkTarget(request);
    const reference = request.reference;
    let referenceDigest: string | undefined;
    if (typeof reference === 'string' && reference.includes(':')) {
      referenceDigest = parseDigest(reference).digest;
    } else if (typeof reference !== 'string' || !isTag(reference)) {
      throw new InvalidOriginRequestError(
        `manifest reference ${describe(reference)} is neither a tag nor a digest`,
      );
    }
    const accepted = request.accept ?? manifestMediaTypes;
    if (accepted.length === 0 || accepted.some((type) => !/^[\w.+-]+\/[\w.+-]+$/.test(type))) {
      throw new InvalidOriginRequestError(
        'accept must list media types like application/vnd.oci.image.index.v1+json',
      );
    }
    return {
      base,
      referenceDigest,
      accepted,
      attempt: {
        url: new URL(`/v2/${base.repository}/manifests/${referenceDigest ?? reference}`, base.origin),
        method,
        headers: { accept: accepted.join(', ') },
        tokenKey: tokenKeyOf(base.origin, base.repository, request.credential),
        credential: request.credential,
      },
    };
  }

  /** Sends with a cached token if any; on a 401 answers the challenge and tries once more. */
  async #authorized(attempt: Attempt): Promise<{ response: IncomingMessage; url: URL }> {
    const cached = this.#cachedToken(attempt.tokenKey);
    const first = await this.#followRedirects(attempt, cached);
    if (first.response.statusCode !== 401) return first;
    if (cached !== undefined) this.#tokens.delete(attempt.tokenKey);
    const headerValues = first.response.headersDistinct['www-authenticate'] ?? [];
    discard(first.response);
    const parsed = parseOriginChallenge(headerValues);
    if (parsed.challenge === undefined) {
      throw new OriginFetchError(`origin answered 401 with an unusable challenge: ${parsed.problem}`, {
        failureClass: 'auth',
        status: 401,
        url: redact(first.url),
      });
    }
    let authorization: string;
    if (parsed.challenge.scheme === 'basic') {
      if (attempt.credential === undefined) {
        throw new OriginFetchError('origin requires a credential (Basic) and none was given', {
          failureClass: 'auth',
          status: 401,
          url: redact(first.url),
        });
      }
      authorization = basicAuthorization(attempt.credential);
    } else {
      authorization = await this.#fetchToken(parsed.challenge, attempt);
    }
    const second = await this.#followRedirects(attempt, authorization);
    if (second.response.statusCode === 401) this.#tokens.delete(attempt.tokenKey);
    return second;
  }

  #cachedToken(key: string): string | undefined {
    const entry = this.#tokens.get(key);
    if (entry === undefined) return undefined;
    if (this.#clock.now() >= entry.expiresAt) {
      this.#tokens.delete(key);
      return undefined;
    }
    return entry.authorization;
  }

  async #fetchToken(
    challenge: { realm: URL; service: string | undefined; scope: string | undefined },
    attempt: Attempt,
  ): Promise<string> {
    const url = new URL(challenge.realm);
    if (challenge.service !== undefined) url.searchParams.append('service', challenge.service);
    if (challenge.scope !== undefined) url.searchParams.append('scope', challenge.scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (attempt.credential !== undefined) headers['authorization'] = basicAuthorization(attempt.credential);
    this.#tokenFetches++;
    const response = await this.#send(url, 'GET', headers, attempt.signal);
    if (response.statusCode !== 200) {
      discard(response);
      const status = response.statusCode ?? 0;
      // The realm's own 404 or 5xx says nothing about the image: transient.
      const failureClass =
        status === 401 || status === 403 || status === 429 ? failureClassOfStatus(status) : 'transient';
      throw new OriginFetchError(`token realm answered ${status}`, {
        failureClass,
        status,
        url: redact(url),
      });
    }
    const body = await readBounded(response, maxTokenResponseBytes, attempt.signal, url, 'token answer');
    const { token, lifetimeMs } = parseTokenAnswer(body, url);
    const authorization = `Bearer ${token}`;
    if (this.#tokens.size >= this.#maxCachedTokens && !this.#tokens.has(attempt.tokenKey)) {
      const oldest = this.#tokens.keys().next().value;
      if (oldest !== undefined) {
        this.#tokens.delete(oldest);
        this.#tokenEvictions++;
      }
    }
    this.#tokens.delete(attempt.tokenKey);
    this.#tokens.set(attempt.tokenKey, { authorization, expiresAt: this.#clock.now() + lifetimeMs });
    return authorization;
  }

  /** Sends `attempt`, following up to 5 redirects; Authorization stays on the first origin. */
  async #followRedirects(
    attempt: Attempt,
    authorization: string | undefined,
  ): Promise<{ response: IncomingMessage; url: URL }> {
    let url = attempt.url;
    let auth = authorization;
    for (let hop = 0; ; hop++) {
      const headers = auth === undefined ? attempt.headers : { ...attempt.headers, authorization: auth };
      const response = await this.#send(url, attempt.method, headers, attempt.signal);
      const status = response.statusCode ?? 0;
      if (![301, 302, 303, 307, 308].includes(status)) return { response, url };
      discard(response);
      const location = response.headers.location;
      const fail = (problem: string, cause?: unknown): OriginFetchError =>
        new OriginFetchError(problem, { failureClass: 'transient', status, url: redact(url) }, { cause });
      if (hop >= maxRedirects) throw fail(`more than ${maxRedirects} redirects`);
      if (location === undefined || location === '') throw fail(`redirect ${status} without a Location`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch (error) {
        throw fail('redirect to an invalid Location', error);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw fail(`redirect to ${next.protocol} refused`);
      if (url.protocol === 'https:' && next.protocol === 'http:')
        throw fail('redirect from https to http refused');
      // Storage hosts get signed URLs; the registry's token must not travel to them.
      if (next.origin !== url.origin) auth = undefined;
      url = next;
    }
  }

  #send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const transport = url.protocol === 'https:' ? https : http;
      const agent = url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent;
      const request = transport.request(url, {
        method,
        agent,
        headers: { ...headers, 'user-agent': this.#userAgent },
      });
      const stopListening = onAbort(signal, (reason) => {
        request.destroy(reason as Error);
      });
      request.once('response', (response) => {
        stopListening();
        resolve(response);
      });
      request.once('error', (error) => {
        stopListening();
        reject(signal.aborted ? (signal.reason as Error) : error);
      });
      request.end();
    });
  }

  /**
   * The blob body as handed to the caller: errors become transient `OriginFetchError`s (or the
   * caller's abort reason), a stall of `timeoutMs` between chunks ends it, and destroying it
   * closes the connection.
   */
  #guardBody(response: IncomingMessage, url: URL, signal: AbortSignal | undefined): Readable {
    return guardBody(response, {
      clock: this.#clock,
      idleTimeoutMs: this.#timeoutMs,
      signal,
      failure: (cause) =>
        new OriginFetchError(
          'blob body failed mid-stream',
          { failureClass: 'transient', url: redact(url) },
          { cause },
        ),
    });
  }

  /** A signal for one operation that also aborts after `timeoutMs`, and the mapping of its errors. */
  #deadline(callerSignal: AbortSignal | undefined): {
    signal: AbortSignal;
    dispose: () => void;
    failure: (error: unknown, url: URL) => unknown;
  } {
    const linked = linkSignals(callerSignal);
    const timeout = new DeadlineExceededError(`origin did not answer within ${this.#timeoutMs} ms`, {
      timeoutMs: this.#timeoutMs,
    });
    const timer = this.#clock.setTimeout(() => {
      linked.abort(timeout);
    }, this.#timeoutMs);
    return {
      signal: linked.signal,
      dispose: () => {
        timer.cancel();
        linked.dispose();
      },
      failure: (error, attemptUrl) => {
        if (error instanceof OriginFetchError) return error;
        if (callerSignal?.aborted === true && error === callerSignal.reason) return error;
        if (error instanceof InvalidOriginRequestError) return error;
        const url = redact(attemptUrl);
        if (error === timeout) {
          return new OriginFetchError(timeout.message, { failureClass: 'transient', url }, { cause: error });
        }
        const message = errorMessage(error);
        return new OriginFetchError(
          `origin request failed: ${message}`,
          { failureClass: 'transient', url },
          { cause: error },
        );
      },
    };
  }
}

function checkTarget(target: OriginTarget): { origin: URL; repository: string } {
  let origin: URL;
  try {
    origin = new URL(target.origin);
  } catch {
    throw new InvalidOriginRequestError(`origin ${describe(target.origin)} is not a URL`);
  }
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
    throw new InvalidOriginRequestError(`origin must be http(s), not ${origin.protocol}`);
  }
  if (
    origin.username !== '' ||
    origin.password !== '' ||
    origin.pathname !== '/' ||
    origin.search !== '' ||
    origin.hash !== ''
  ) {
    throw new InvalidOriginRequestError(
      'origin must be scheme://host[:port] only (no credentials, path or query)',
    );
  }
  const repository = target.repository;
  if (!isRepositoryName(repository)) {
    throw new InvalidOriginRequestError(
      `repository ${describe(repository)} is not a valid OCI repository name`,
    );
  }
  if (target.credential !== undefined) {
    const { username, password } = target.credential;
    if (typeof username !== 'string' || typeof password !== 'string' || username.includes(':')) {
      throw new InvalidOriginRequestError(
        'a credential needs a string username without ":" and a string password',
      );
    }
  }
  return { origin, repository };
}

/** Tokens are scoped to a repository's pull and to who asked for them. */
function tokenKeyOf(origin: URL, repository: string, credential: OriginCredential | undefined): string {
  const who =
    credential === undefined
      ? 'anonymous'
      : createHash('sha256').update(`${credential.username}\0${credential.password}`).digest('hex');
  return `${origin.origin} repository:${repository}:pull ${who}`;
}

function basicAuthorization(credential: OriginCredential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
}

function parseTokenAnswer(body: Buffer, url: URL): { token: string; lifetimeMs: number } {
  const fail = (problem: string): OriginFetchError =>
    new OriginFetchError(`token realm answer ${problem}`, {
      failureClass: 'auth',
      status: 200,
      url: redact(url),
    });
  let answer: unknown;
  try {
    answer = JSON.parse(body.toString('utf8'));
  } catch {
    throw fail('is not JSON');
  }
  if (typeof answer !== 'object' || answer === null) throw fail('is not a JSON object');
  const fields = answer as Record<string, unknown>;
  const token =
    typeof fields['token'] === 'string' && fields['token'] !== '' ? fields['token'] : fields['access_token'];
  if (typeof token !== 'string' || token === '') throw fail('has no token or access_token');
  if (token.length > maxTokenLength || !visibleAscii.test(token))
    throw fail('has a token that cannot be sent');
  const expiresIn = fields['expires_in'];
  const lifetimeMs =
    typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
      ? Math.min(expiresIn * 1000, maxTokenLifetimeMs)
      : defaultTokenLifetimeMs;
  return { token, lifetimeMs };
}

function manifestMediaType(headers: IncomingHttpHeaders, accepted: readonly string[], url: URL): string {
  const mediaType = (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!accepted.includes(mediaType)) {
    throw new OriginFetchError(
      `origin answered a manifest of type ${JSON.stringify(mediaType.slice(0, 100))}, not one asked for`,
      {
        failureClass: 'transient',
        status: 200,
        url: redact(url),
      },
    );
  }
  return mediaType;
}

function headerDigestOf(headers: IncomingHttpHeaders, url: URL): string | undefined {
  const raw = headers['docker-content-digest'];
  if (raw === undefined) return undefined;
  // Node joins repeated headers with ", ", which then fails the digest check below.
  const value = Array.isArray(raw) ? raw.join(', ') : raw;
  try {
    return parseDigest(value.trim()).digest;
  } catch (error) {
    throw new OriginFetchError(
      'origin sent an invalid Docker-Content-Digest',
      {
        failureClass: 'transient',
        status: 200,
        url: redact(url),
      },
      { cause: error },
    );
  }
}

function checkDigest(bytes: Buffer, expected: string, url: URL): void {
  const { algorithm, hex } = parseDigest(expected);
  const actual = createHash(algorithm).update(bytes).digest('hex');
  if (actual !== hex) {
    throw new OriginFetchError(`manifest bytes hash to ${algorithm}:${actual}, not ${expected}`, {
      failureClass: 'transient',
      status: 200,
      url: redact(url),
    });
  }
}

function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Reads a whole body of at most `limit` bytes; a longer one is refused as soon as it shows. */
async function readBounded(
  response: IncomingMessage,
  limit: number,
  signal: AbortSignal,
  url: URL,
  what: string,
): Promise<Buffer> {
  const tooLarge = (): OriginFetchError =>
    new OriginFetchError(`${what} exceeds ${limit} bytes`, {
      failureClass: 'transient',
      status: 200,
      url: redact(url),
    });
  const announced = contentLength(response.headers);
  if (announced !== undefined && announced > limit) {
    response.destroy();
    throw tooLarge();
  }
  const stopListening = onAbort(signal, (reason) => response.destroy(reason as Error));
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) {
        response.destroy();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    stopListening();
  }
  return Buffer.concat(chunks, total);
}

function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['content-length'];
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

function statusFailure(response: IncomingMessage, url: URL): OriginFetchError {
  discard(response);
  const status = response.statusCode ?? 0;
  return new OriginFetchError(`origin answered ${status} for ${redact(url)}`, {
    failureClass: failureClassOfStatus(status),
    status,
    url: redact(url),
  });
}

/** Drops a body we do not read: a small one is drained to keep the connection, a large one closes it. */
function discard(response: IncomingMessage): void {
  const length = contentLength(response.headers);
  if (length !== undefined && length <= maxDrainBytes) response.resume();
  else response.destroy();
}

/** A URL fit for errors and logs: no credentials, no query (signed URLs carry secrets there). */
function redact(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 300)) : typeof value;
}
