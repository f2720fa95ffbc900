// The one-hop provider directory (DESIGN §6; it replaces Gantry's DHT). A node that holds a key
// announces it to the key's top-K HRW nodes on its own membership view; they remember it for a
// TTL. A node looking for a key asks the top-K nodes on its own view and merges what they say.
// Views that differ for a moment only cost a miss (the cascade then asks `intent`), never a
// wrong provider: every provider id a directory holds is the grid identity of the node that
// announced it, never a field the announcer chose.
//
// One object plays both parts: it serves `announce` (grid handler 18) and `whoHas` (19) from
// its table, and it calls them on other nodes; a call to itself reads or writes its own table,
// never the grid. Calls to peers are made together, each with its own 2 s deadline, and a peer
// that fails or does not answer in time is skipped and counted. Announcements are best effort:
// the holder re-announces (the caller's job, e.g. every TTL / 2) and withdraws on eviction.

import { callerFault, msgpackCodec, type Manager, type SingleHandlerContext } from '../../grid/index.ts';
import { type Clock, systemClock } from '../../internal/clock.ts';
import { callScope } from '../../internal/deadline.ts';
import { ConfigError } from '../../internal/errors.ts';
import { hrwTopK } from '../hrw.ts';
import type { Membership } from '../membership.ts';
import { CoordMessageTooLargeError, MalformedCoordRequestError } from '../rpc/errors.ts';
import { MAX_COORD_MESSAGE_BYTES } from '../rpc/messages.ts';
import {
  DIRECTORY_ANNOUNCE_HANDLER,
  DIRECTORY_WHO_HAS_HANDLER,
  MAX_KEYS_PER_ANNOUNCE,
  MAX_PROVIDERS_PER_ANSWER,
  checkKey,
  isProviderId,
  parseAnnounceAnswer,
  parseAnnounceRequest,
  parseWhoHasAnswer,
  parseWhoHasRequest,
  type AnnounceAnswer,
  type AnnounceRequest,
  type WhoHasAnswer,
} from './messages.ts';
import { ProviderTable, type ProviderTableStats } from './provider-table.ts';

export interface ProviderDirectoryConfig {
  /** Source of time for TTLs and deadlines; default the system clock. */
  readonly clock?: Clock;
  /** Directory nodes per key (the top-K of HRW). Default 3. */
  readonly replicas?: number;
  /** How long an announcement is kept without being renewed. Default 10 min. */
  readonly ttlMs?: number;
  /** Keys this node's table holds at most; past it the least recently announced is evicted. Default 100,000. */
  readonly maxEntries?: number;
  /** Providers held per key; more are refused. Default 16 (also the most a whoHas answer carries). */
  readonly maxProvidersPerKey?: number;
  /** Deadline of each call to a peer. Default 2 s. */
  readonly timeoutMs?: number;
  /** Largest request read from a peer. Default 1 MiB. */
  readonly maxMessageBytes?: number;
}

export interface ProviderDirectoryOptions extends ProviderDirectoryConfig {
  /** Who this node is and whom it ranks on; ids are grid host URLs. */
  readonly membership: Membership;
  /** The grid the peers are called on. */
  readonly grid: Pick<Manager, 'connection'>;
}

export const defaultProviderDirectoryConfig: Required<ProviderDirectoryConfig> = {
  clock: systemClock,
  replicas: 3,
  ttlMs: 10 * 60_000,
  maxEntries: 100_000,
  maxProvidersPerKey: MAX_PROVIDERS_PER_ANSWER,
  timeoutMs: 2_000,
  maxMessageBytes: MAX_COORD_MESSAGE_BYTES,
};

/** What an `announce` or `withdraw` reached. */
export interface AnnounceReport {
  /** Directory nodes that took every call sent to them (this node included when it is one). */
  readonly reached: readonly string[];
  /** Directory nodes that failed or did not answer in time; they were skipped. */
  readonly unreachable: readonly string[];
}

export interface ProviderDirectoryStats extends ProviderTableStats {
  /** announce and whoHas calls received from peers, refused ones included. */
  readonly calls: number;
  /** Requests from peers refused as not well formed (more than 256 keys included). */
  readonly malformed: number;
  /** Requests from peers refused for their size. */
  readonly tooLarge: number;
  /** Calls to peers that failed or timed out, and were skipped. */
  readonly peerFailures: number;
}

export type CallSignal = { readonly signal?: AbortSignal | undefined };

const decodeMessage = msgpackCodec<unknown>();
const encodeAnnounce = msgpackCodec<AnnounceRequest>();
const encodeWhoHas = msgpackCodec<{ key: string }>();
const encodeAnnounceAnswer = msgpackCodec<AnnounceAnswer>();
const encodeWhoHasAnswer = msgpackCodec<WhoHasAnswer>();

export class ProviderDirectory {
  readonly #membership: Membership;
  readonly #grid: Pick<Manager, 'connection'>;
  readonly #config: Required<ProviderDirectoryConfig>;
  readonly #table: ProviderTable;
  #calls = 0;
  #malformed = 0;
  #tooLarge = 0;
  #peerFailures = 0;

  constructor(options: ProviderDirectoryOptions) {
    this.#config = verifyProviderDirectoryConfig(options);
    this.#membership = options.membership;
    this.#grid = options.grid;
    this.#table = new ProviderTable(this.#config.clock, this.#config);
  }

  /** This node's id: the provider its announcements name, and the node it never calls over the grid. */
  get self(): string {
    return this.#membership.self;
  }

  /** Serves `announce` and `whoHas` on `manager`'s grid (reserved handler ids 18 and 19). */
  register(manager: Pick<Manager, 'registerSingle'>): void {
    manager.registerSingle(
      DIRECTORY_ANNOUNCE_HANDLER,
      (payload, context) => this.#serve(payload, (request) => this.#serveAnnounce(request, context)),
      { reserved: true },
    );
    manager.registerSingle(
      DIRECTORY_WHO_HAS_HANDLER,
      (payload) => this.#serve(payload, (request) => this.#serveWhoHas(request)),
      { reserved: true },
    );
  }

  /**
   * Tells each key's top-K nodes that this node holds it (at most 256 keys per call to a node;
   * more go as several calls). A key that is not a digest is refused here, before anything is
   * sent, with `MalformedCoordRequestError`. Rejects with `signal.reason` if the caller aborts.
   */
  announce(keys: readonly string[], options: CallSignal = {}): Promise<AnnounceReport> {
    return this.#announce(keys, false, options);
  }

  /** Tells each key's top-K nodes that this node no longer holds it (evicted from its store). */
  withdraw(keys: readonly string[], options: CallSignal = {}): Promise<AnnounceReport> {
    return this.#announce(keys, true, options);
  }

  /**
   * The nodes other than this one that announced `key` and whose announcement is live, as the
   * key's top-K nodes on this node's view tell it, in no particular order. A directory node that
   * fails or does not answer within 2 s is skipped; with none answering the result is `[]`.
   * This node is left out even when it announced the key: the caller has its own store.
   */
  async findProviders(key: string, options: CallSignal = {}): Promise<string[]> {
    const checkedKey = checkKey(key, 'findProviders key');
    const { signal } = options;
    throwIfAborted(signal);
    const answers = await Promise.all(
      this.#directoryNodes(checkedKey).map(async (node) => {
        if (node === this.self) return this.#table.providers(checkedKey);
        try {
          return await this.#callPeer(signal, async (callSignal) => {
            const payload = await this.#grid
              .connection(node)
              .request(DIRECTORY_WHO_HAS_HANDLER, encodeWhoHas.encode({ key: checkedKey }), {
                signal: callSignal,
              });
            return parseWhoHasAnswer(decodeMessage.decode(payload)).providers;
          });
        } catch {
          return [];
        }
      }),
    );
    throwIfAborted(signal);
    const providers = new Set(answers.flat());
    providers.delete(this.self);
    return [...providers];
  }

  /** Removes every expired announcement now (they are also dropped lazily as keys are read). */
  sweep(): number {
    return this.#table.sweep();
  }

  stats(): ProviderDirectoryStats {
    return {
      ...this.#table.stats(),
      calls: this.#calls,
      malformed: this.#malformed,
      tooLarge: this.#tooLarge,
      peerFailures: this.#peerFailures,
    };
  }

  async #announce(keys: readonly string[], withdraw: boolean, options: CallSignal): Promise<AnnounceReport> {
    const checkedKeys = keys.map((key, i) =>
      checkKey(key, `${withdraw ? 'withdraw' : 'announce'} keys[${i}]`),
    );
    const { signal } = options;
    throwIfAborted(signal);
    const keysByNode = new Map<string, string[]>();
    for (const key of checkedKeys) {
      for (const node of this.#directoryNodes(key)) {
        const list = keysByNode.get(node);
        if (list === undefined) keysByNode.set(node, [key]);
        else list.push(key);
      }
    }
    const reached: string[] = [];
    const unreachable: string[] = [];
    await Promise.all(
      [...keysByNode].map(async ([node, nodeKeys]) => {
        if (node === this.self) {
          this.#applyAnnounce(nodeKeys, this.self, withdraw);
          reached.push(node);
          return;
        }
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < nodeKeys.length; i += MAX_KEYS_PER_ANNOUNCE) {
          const chunk = nodeKeys.slice(i, i + MAX_KEYS_PER_ANNOUNCE);
          calls.push(
            this.#callPeer(signal, (callSignal) => this.#sendAnnounce(node, chunk, withdraw, callSignal)),
          );
        }
        const outcomes = await Promise.allSettled(calls);
        (outcomes.every((outcome) => outcome.status === 'fulfilled') ? reached : unreachable).push(node);
      }),
    );
    throwIfAborted(signal);
    return { reached, unreachable };
  }

  async #sendAnnounce(
    node: string,
    keys: string[],
    withdraw: boolean,
    signal: AbortSignal,
  ): Promise<AnnounceAnswer> {
    const request: AnnounceRequest = withdraw ? { keys, withdraw } : { keys };
    const payload = await this.#grid
      .connection(node)
      .request(DIRECTORY_ANNOUNCE_HANDLER, encodeAnnounce.encode(request), { signal });
    return parseAnnounceAnswer(decodeMessage.decode(payload), keys.length);
  }

  /** Runs one call to a peer under its own deadline; a failure is counted and rethrown. */
  async #callPeer<T>(signal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const scope = callScope(this.#config.clock, { signal }, this.#config.timeoutMs);
    try {
      return await call(scope.signal);
    } catch (error) {
      // The caller giving up is not the peer's failure.
      if (!isAborted(signal)) this.#peerFailures++;
      throw error;
    } finally {
      scope.dispose();
    }
  }

  #directoryNodes(key: string): string[] {
    return hrwTopK(this.#membership.members(), key, this.#config.replicas);
  }

  #applyAnnounce(keys: readonly string[], provider: string, withdraw: boolean): number {
    let recorded = 0;
    for (const key of keys) {
      if (withdraw) {
        if (this.#table.remove(key, provider)) recorded++;
      } else if (this.#table.record(key, provider) !== 'refused') {
        recorded++;
      }
    }
    return recorded;
  }

  /** Admits one call from a peer: size first, then a payload that decodes, then `handle`. */
  #serve(
    payload: Uint8Array | undefined,
    handle: (request: unknown) => Uint8Array | undefined,
  ): Uint8Array | undefined {
    this.#calls++;
    const size = payload?.length ?? 0;
    if (size > this.#config.maxMessageBytes) {
      this.#tooLarge++;
      throw callerFault(new CoordMessageTooLargeError(size, this.#config.maxMessageBytes));
    }
    try {
      let request: unknown;
      try {
        request = decodeMessage.decode(payload);
      } catch (error) {
        throw new MalformedCoordRequestError('a directory request must be MessagePack', { cause: error });
      }
      return handle(request);
    } catch (error) {
      if (error instanceof MalformedCoordRequestError) this.#malformed++;
      throw callerFault(error);
    }
  }

  #serveAnnounce(request: unknown, context: SingleHandlerContext): Uint8Array | undefined {
    const { keys, withdraw } = parseAnnounceRequest(request);
    // The provider is whoever is calling, as the grid's handshake established it.
    const provider = context.remote;
    if (!isProviderId(provider)) {
      throw new MalformedCoordRequestError('the calling node has no usable id to record as a provider');
    }
    return encodeAnnounceAnswer.encode({ recorded: this.#applyAnnounce(keys, provider, withdraw) });
  }

  #serveWhoHas(request: unknown): Uint8Array | undefined {
    const key = parseWhoHasRequest(request);
    const providers = this.#table.providers(key).slice(-MAX_PROVIDERS_PER_ANSWER);
    return encodeWhoHasAnswer.encode({ providers });
  }
}

/** Fills in defaults and checks every field; a bad one throws `ConfigError` naming it. */
export function verifyProviderDirectoryConfig(
  config: ProviderDirectoryConfig,
): Required<ProviderDirectoryConfig> {
  const d = defaultProviderDirectoryConfig;
  const resolved: Required<ProviderDirectoryConfig> = {
    clock: config.clock ?? d.clock,
    replicas: config.replicas ?? d.replicas,
    ttlMs: config.ttlMs ?? d.ttlMs,
    maxEntries: config.maxEntries ?? d.maxEntries,
    maxProvidersPerKey: config.maxProvidersPerKey ?? d.maxProvidersPerKey,
    timeoutMs: config.timeoutMs ?? d.timeoutMs,
    maxMessageBytes: config.maxMessageBytes ?? d.maxMessageBytes,
  };
  for (const field of [
    'replicas',
    'ttlMs',
    'maxEntries',
    'maxProvidersPerKey',
    'timeoutMs',
    'maxMessageBytes',
  ] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`coord.directory.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.maxProvidersPerKey > MAX_PROVIDERS_PER_ANSWER) {
    throw new ConfigError(
      'coord.directory.maxProvidersPerKey',
      `must be at most ${MAX_PROVIDERS_PER_ANSWER} (the most a whoHas answer carries), got ${resolved.maxProvidersPerKey}`,
    );
  }
  return resolved;
}

/** Throws the caller's abort reason (read at call time: the signal may have aborted while awaiting). */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (isAborted(signal)) throw (signal as AbortSignal).reason;
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
