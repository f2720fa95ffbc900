// The serving side of the coord RPCs: answers `intent` and `pleaseFetch` from this node's own
// state, for peers over the grid and for this node itself (`localIntent`, `localPleaseFetch`,
// the path a self-call takes). Both paths run the same code, so they give the same answers.
//
// Limits (Gantry's): at most 512 coord calls served at once, and the next one is refused at
// once with a retryable `CoordBusyError` rather than queued; requests over 1 MiB are refused
// unread; each call gets a 2 s dispatch budget. A request that is not well formed is refused
// with a `MalformedCoordRequestError` naming the problem. Every refusal is counted in `stats()`
// and none is logged as a handler failure: a hostile peer could otherwise fill the log.

import { msgpackCodec, type Manager, type SingleHandlerContext } from '../../grid/index.ts';
import { callerFault } from '../../grid/index.ts';
import { type Clock, systemClock } from '../../internal/clock.ts';
import { CapacityExceededError, ConfigError } from '../../internal/errors.ts';
import { isDigest } from '../digest.ts';
import { rankOf } from '../hrw.ts';
import type { FetchKind, InFlightHandle, InFlightMap } from '../in-flight.ts';
import type { Membership } from '../membership.ts';
import type { NegativeCache } from '../negative-cache.ts';
import { withinBudget } from './dispatch-budget.ts';
import { CoordBusyError, CoordMessageTooLargeError, MalformedCoordRequestError } from './errors.ts';
import {
  COORD_INTENT_HANDLER,
  COORD_PLEASE_FETCH_HANDLER,
  MAX_COORD_MESSAGE_BYTES,
  checkIntentKey,
  parseIntentRequest,
  parsePleaseFetchRequest,
  type CheckedPleaseFetch,
  type IntentAnswer,
  type PleaseFetchRequest,
  type PleaseFetchResult,
} from './messages.ts';

/** A fetch the coord server asks the fetcher to start: the key is already claimed for it. */
export interface FetchOrder {
  readonly key: string;
  readonly origin: string;
  readonly repository: string;
  readonly kind: FetchKind;
  /** The in-flight claim on `key`. The fetcher calls `claim.done()` when the fetch ends. */
  readonly claim: InFlightHandle;
}

export interface Fetcher {
  /**
   * Starts fetching in the background and returns at once: true when started, false to
   * decline (at its own limit, shutting down). On false or a throw the server releases the
   * claim and answers `unspecified`.
   */
  startFetch(order: FetchOrder): boolean;
}

/** The node state the coord RPCs answer from. */
export interface CoordNode {
  readonly membership: Membership;
  readonly inFlight: InFlightMap;
  readonly negativeCache: NegativeCache;
  /**
   * True when the store holds `key`. A rejection counts as "not cached" (an unavailable store
   * is never a reason to send a peer here). `signal` aborts when the call's budget runs out.
   */
  hasCached(key: string, options: { readonly signal: AbortSignal }): Promise<boolean>;
  /** Starts origin fetches for `pleaseFetch`; without one every key is `unspecified`. */
  readonly fetcher?: Fetcher | undefined;
}

export interface CoordServerConfig {
  /** Source of time for the dispatch budget; default the system clock. */
  readonly clock?: Clock;
  /** Coord calls served at once from peers; the next is refused with `CoordBusyError`. Default 512. */
  readonly maxConcurrentCalls?: number;
  /** Largest request read; a larger one is refused with `CoordMessageTooLargeError`. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Longest a call is worked on before it is answered with `DeadlineExceededError`. Default 2 s. */
  readonly dispatchBudgetMs?: number;
}

export const defaultCoordServerConfig: Required<CoordServerConfig> = {
  clock: systemClock,
  maxConcurrentCalls: 512,
  maxMessageBytes: MAX_COORD_MESSAGE_BYTES,
  dispatchBudgetMs: 2_000,
};

export interface CoordServerStats {
  /** Calls received from peers (intent and pleaseFetch), refused ones included. */
  readonly calls: number;
  /** Calls this node made to itself (the local path). */
  readonly localCalls: number;
  /** Calls from peers being served now. */
  readonly serving: number;
  /** Calls refused because `maxConcurrentCalls` were being served. */
  readonly refusedBusy: number;
  /** Requests refused as not well formed (more than 256 keys included). */
  readonly malformed: number;
  /** Requests refused for their size. */
  readonly tooLarge: number;
  /** Calls answered with `DeadlineExceededError` at the dispatch budget. */
  readonly timeouts: number;
  /** pleaseFetch keys that are not digests, left out of the results. */
  readonly keysLeftOut: number;
  /** `hasCached` rejections, answered as "not cached". */
  readonly storeUnavailable: number;
  /** `startFetch` calls that threw, answered `unspecified`. */
  readonly fetcherFailed: number;
}

const decodeRequest = msgpackCodec<unknown>();
const encodeIntentAnswer = msgpackCodec<IntentAnswer>();
const encodePleaseFetchAnswer = msgpackCodec<{ results: PleaseFetchResult[] }>();

export class CoordServer {
  readonly #node: CoordNode;
  readonly #clock: Clock;
  readonly #maxConcurrentCalls: number;
  readonly #maxMessageBytes: number;
  readonly #dispatchBudgetMs: number;
  #serving = 0;
  #calls = 0;
  #localCalls = 0;
  #refusedBusy = 0;
  #malformed = 0;
  #tooLarge = 0;
  #timeouts = 0;
  #keysLeftOut = 0;
  #storeUnavailable = 0;
  #fetcherFailed = 0;

  constructor(node: CoordNode, config: CoordServerConfig = {}) {
    const resolved = verifyCoordServerConfig(config);
    this.#node = node;
    this.#clock = resolved.clock;
    this.#maxConcurrentCalls = resolved.maxConcurrentCalls;
    this.#maxMessageBytes = resolved.maxMessageBytes;
    this.#dispatchBudgetMs = resolved.dispatchBudgetMs;
  }

  /** This node's membership id: calls addressed to it take the local path. */
  get self(): string {
    return this.#node.membership.self;
  }

  /** Serves both RPCs on `manager`'s grid (reserved handler ids 16 and 17). */
  register(manager: Pick<Manager, 'registerSingle'>): void {
    manager.registerSingle(
      COORD_INTENT_HANDLER,
      (payload, context) => this.#serve(payload, context, (request) => this.#serveIntent(request, context)),
      { reserved: true },
    );
    manager.registerSingle(
      COORD_PLEASE_FETCH_HANDLER,
      (payload, context) => this.#serve(payload, context, (request) => this.#servePleaseFetch(request)),
      { reserved: true },
    );
  }

  /** The intent answer for `key`, as a peer asking over the grid would get it. */
  async localIntent(
    key: string,
    options: { readonly signal?: AbortSignal | undefined } = {},
  ): Promise<IntentAnswer> {
    this.#localCalls++;
    return this.#intent(checkIntentKey(key), options.signal);
  }

  /** The pleaseFetch results, as a peer asking over the grid would get them (≤ 256 keys). */
  localPleaseFetch(request: PleaseFetchRequest): PleaseFetchResult[] {
    this.#localCalls++;
    return this.#pleaseFetch(parsePleaseFetchRequest(request));
  }

  stats(): CoordServerStats {
    return {
      calls: this.#calls,
      localCalls: this.#localCalls,
      serving: this.#serving,
      refusedBusy: this.#refusedBusy,
      malformed: this.#malformed,
      tooLarge: this.#tooLarge,
      timeouts: this.#timeouts,
      keysLeftOut: this.#keysLeftOut,
      storeUnavailable: this.#storeUnavailable,
      fetcherFailed: this.#fetcherFailed,
    };
  }

  /**
   * Admits one call from a peer, in order: room (else busy), size (else too large), a payload
   * that decodes. Then `handle` runs with the call counted as served until it settles.
   */
  #serve(
    payload: Uint8Array | undefined,
    context: SingleHandlerContext,
    handle: (request: unknown) => Promise<Uint8Array | undefined> | Uint8Array | undefined,
  ): Promise<Uint8Array | undefined> | Uint8Array | undefined {
    this.#calls++;
    if (this.#serving >= this.#maxConcurrentCalls) {
      this.#refusedBusy++;
      throw callerFault(new CoordBusyError(this.self, this.#maxConcurrentCalls));
    }
    const size = payload?.length ?? 0;
    if (size > this.#maxMessageBytes) {
      this.#tooLarge++;
      throw callerFault(new CoordMessageTooLargeError(size, this.#maxMessageBytes));
    }
    let request: unknown;
    try {
      request = decodeRequest.decode(payload);
    } catch (error) {
      this.#malformed++;
      throw callerFault(
        new MalformedCoordRequestError('a coord request must be MessagePack', { cause: error }),
      );
    }
    this.#serving++;
    let result: ReturnType<typeof handle>;
    try {
      result = handle(request);
    } catch (error) {
      this.#serving--;
      throw callerFault(error);
    }
    if (!(result instanceof Promise)) {
      this.#serving--;
      return result;
    }
    return result.then(
      (bytes) => {
        this.#serving--;
        return bytes;
      },
      (error: unknown) => {
        this.#serving--;
        throw callerFault(error);
      },
    );
  }

  async #serveIntent(request: unknown, context: SingleHandlerContext): Promise<Uint8Array | undefined> {
    const key = this.#checked(() => parseIntentRequest(request));
    return encodeIntentAnswer.encode(await this.#intent(key, context.signal));
  }

  #servePleaseFetch(request: unknown): Uint8Array | undefined {
    const checked = this.#checked(() => parsePleaseFetchRequest(request));
    return encodePleaseFetchAnswer.encode({ results: this.#pleaseFetch(checked) });
  }

  #checked<T>(parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      this.#malformed++;
      throw error;
    }
  }

  async #intent(key: string, signal: AbortSignal | undefined): Promise<IntentAnswer> {
    const hasCached = await withinBudget(
      this.#clock,
      this.#dispatchBudgetMs,
      `coord intent for ${key}`,
      signal,
      (budget) => this.#hasCached(key, budget),
      () => {
        this.#timeouts++;
      },
    );
    const { membership, inFlight, negativeCache } = this.#node;
    const running = inFlight.get(key);
    const failure = negativeCache.lookup(key);
    return {
      hasCached,
      inFlight: running !== undefined,
      ...(running === undefined ? {} : { startedAtWallMs: running.startedAtWallMs }),
      hrwRank: rankOf(membership.members(), key, membership.self),
      recentlyFailed: failure !== undefined,
      ...(failure === undefined
        ? {}
        : { cooldownUntilWallMs: failure.cooldownUntilWallMs, failureClass: failure.failureClass }),
    };
  }

  async #hasCached(key: string, signal: AbortSignal): Promise<boolean> {
    try {
      return await this.#node.hasCached(key, { signal });
    } catch {
      // Abandoned at the budget: the caller has its answer already, and this is not the store's fault.
      if (!signal.aborted) this.#storeUnavailable++;
      return false;
    }
  }

  #pleaseFetch(request: CheckedPleaseFetch): PleaseFetchResult[] {
    const results: PleaseFetchResult[] = [];
    for (const key of request.keys) {
      if (!isDigest(key)) {
        this.#keysLeftOut++;
        continue;
      }
      results.push(this.#fetchOne(key, request));
    }
    return results;
  }

  /** One key's outcome. No await from the claim to the answer: concurrent calls see one fetcher. */
  #fetchOne(key: string, request: CheckedPleaseFetch): PleaseFetchResult {
    const failure = this.#node.negativeCache.lookup(key);
    if (failure !== undefined) {
      return {
        key,
        outcome: 'recently-failed',
        cooldownUntilWallMs: failure.cooldownUntilWallMs,
        failureClass: failure.failureClass,
      };
    }
    const { inFlight, fetcher } = this.#node;
    const running = inFlight.get(key);
    if (running !== undefined) {
      return { key, outcome: 'already-running', startedAtWallMs: running.startedAtWallMs };
    }
    if (fetcher === undefined) return { key, outcome: 'unspecified' };
    let claim: InFlightHandle;
    try {
      const result = inFlight.start(key, { kind: request.kind });
      // Unreachable (checked just above, with no await between), but the type allows it.
      if (!result.claimed) {
        return { key, outcome: 'already-running', startedAtWallMs: result.entry.startedAtWallMs };
      }
      claim = result.handle;
    } catch (error) {
      // The in-flight map is full (and counts it): this node takes on no more fetches now.
      if (error instanceof CapacityExceededError) return { key, outcome: 'unspecified' };
      throw error;
    }
    let started = false;
    try {
      started = fetcher.startFetch({
        key,
        origin: request.origin,
        repository: request.repository,
        kind: request.kind,
        claim,
      });
    } catch {
      this.#fetcherFailed++;
    }
    if (!started) {
      claim.done();
      return { key, outcome: 'unspecified' };
    }
    return { key, outcome: 'started', startedAtWallMs: claim.entry.startedAtWallMs };
  }
}

/** Fills in defaults and checks every field; a bad one throws `ConfigError` naming it. */
export function verifyCoordServerConfig(config: CoordServerConfig): Required<CoordServerConfig> {
  const resolved: Required<CoordServerConfig> = {
    clock: config.clock ?? defaultCoordServerConfig.clock,
    maxConcurrentCalls: config.maxConcurrentCalls ?? defaultCoordServerConfig.maxConcurrentCalls,
    maxMessageBytes: config.maxMessageBytes ?? defaultCoordServerConfig.maxMessageBytes,
    dispatchBudgetMs: config.dispatchBudgetMs ?? defaultCoordServerConfig.dispatchBudgetMs,
  };
  for (const field of ['maxConcurrentCalls', 'maxMessageBytes', 'dispatchBudgetMs'] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`coord.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  return resolved;
}
