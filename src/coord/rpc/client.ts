// The calling side of the coord RPCs. A call addressed to this node itself takes the local
// path (the server's `localIntent`/`localPleaseFetch`, no grid, no encoding); any other goes
// over the grid to that node's coord server. Both give the same answers.
//
// pleaseFetch carries at most 256 keys per call: a longer request is split into chunks of 256,
// sent at once, and their results joined in order. If any chunk fails the whole call fails
// and the other chunks are cancelled; partial results are discarded, as Gantry does, since the
// caller cannot tell which of its keys were started.

import { msgpackCodec, type Manager } from '../../grid/index.ts';
import { type Clock, systemClock } from '../../internal/clock.ts';
import { callScope, type CallOptions } from '../../internal/deadline.ts';
import { DeadlineExceededError } from '../../internal/errors.ts';
import {
  COORD_INTENT_HANDLER,
  COORD_PLEASE_FETCH_HANDLER,
  MAX_KEYS_PER_PLEASE_FETCH,
  checkIntentKey,
  parseIntentAnswer,
  parsePleaseFetchAnswer,
  parsePleaseFetchRequest,
  type IntentAnswer,
  type PleaseFetchRequest,
  type PleaseFetchResult,
} from './messages.ts';
import type { CoordServer } from './server.ts';

/** Default deadline of a coord call (Gantry's client RPC timeout). */
export const DEFAULT_COORD_TIMEOUT_MS = 2_000;

export interface CoordClientOptions {
  /** The grid the peers are called on: node ids are its host URLs. */
  readonly grid: Pick<Manager, 'connection'>;
  /** This node's coord server: calls to `local.self` are answered by it directly. */
  readonly local: CoordServer;
  /** Source of time for deadlines; default the system clock. */
  readonly clock?: Clock | undefined;
}

const decodeAnswer = msgpackCodec<unknown>();
const encodeIntentRequest = msgpackCodec<{ key: string }>();
const encodePleaseFetchRequest = msgpackCodec<PleaseFetchRequest>();

export class CoordClient {
  readonly #grid: Pick<Manager, 'connection'>;
  readonly #local: CoordServer;
  readonly #clock: Clock;

  constructor(options: CoordClientOptions) {
    this.#grid = options.grid;
    this.#local = options.local;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * What `node` knows about `key`. A key that is not a digest is refused here with
   * `MalformedCoordRequestError`; a refusal by the node arrives as a `RemoteError` with the
   * node's code (`WEFT_COORD_BUSY`, …); no answer within `timeoutMs` (default 2 s) is a
   * `DeadlineExceededError`.
   */
  async intent(node: string, key: string, options: CallOptions = {}): Promise<IntentAnswer> {
    const checkedKey = checkIntentKey(key);
    const scope = callScope(this.#clock, options, DEFAULT_COORD_TIMEOUT_MS);
    try {
      if (node === this.#local.self) {
        return await withCallerStack(this.#local.localIntent(checkedKey, { signal: scope.signal }));
      }
      const payload = await this.#grid
        .connection(node)
        .request(COORD_INTENT_HANDLER, encodeIntentRequest.encode({ key: checkedKey }), {
          signal: scope.signal,
        });
      return parseIntentAnswer(decodeAnswer.decode(payload));
    } finally {
      scope.dispose();
    }
  }

  /**
   * Asks `node` to fetch `request.keys` from the origin; one result per well-formed key, in
   * order. A request with a missing or bad origin, repository or kind is refused here with
   * `MalformedCoordRequestError`. More than 256 keys go as several calls under one deadline.
   */
  async pleaseFetch(
    node: string,
    request: PleaseFetchRequest,
    options: CallOptions = {},
  ): Promise<PleaseFetchResult[]> {
    const checked = parsePleaseFetchRequest(request, Number.POSITIVE_INFINITY);
    const chunks: string[][] = [];
    for (let i = 0; i < checked.keys.length; i += MAX_KEYS_PER_PLEASE_FETCH) {
      chunks.push(request.keys.slice(i, i + MAX_KEYS_PER_PLEASE_FETCH));
    }
    if (chunks.length === 0) return [];
    const scope = callScope(this.#clock, options, DEFAULT_COORD_TIMEOUT_MS);
    try {
      const answers = await Promise.all(
        chunks.map(async (keys) => {
          try {
            return await this.#pleaseFetchChunk(node, { ...checked, keys }, scope.signal);
          } catch (error) {
            scope.abort(error);
            throw error;
          }
        }),
      );
      return answers.flat();
    } finally {
      scope.dispose();
    }
  }

  async #pleaseFetchChunk(
    node: string,
    request: PleaseFetchRequest,
    signal: AbortSignal,
  ): Promise<PleaseFetchResult[]> {
    if (node === this.#local.self) {
      if (signal.aborted) throw signal.reason;
      return this.#local.localPleaseFetch(request);
    }
    const payload = await this.#grid
      .connection(node)
      .request(COORD_PLEASE_FETCH_HANDLER, encodePleaseFetchRequest.encode(request), { signal });
    return parsePleaseFetchAnswer(decodeAnswer.decode(payload), request.keys);
  }
}

/** A deadline that fired in a timer callback is rethrown here, so its stack shows the caller. */
async function withCallerStack<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof DeadlineExceededError) {
      throw new DeadlineExceededError(error.message, {
        cause: error,
        ...(error.timeoutMs === undefined ? {} : { timeoutMs: error.timeoutMs }),
      });
    }
    throw error;
  }
}
