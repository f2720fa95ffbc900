// The cold-start cascade (Gantry's C4): where a node gets a key it does not hold.
//
//   1. local hit → serve it;
//   2. the provider directory names holders → fetch from them;
//   3. otherwise (unless an honor window is open) probe the top-K HRW nodes with `intent` and
//      take the first rule that matches: a trusted failure short-circuits; a holder is fetched
//      from; a fresh puller is waited for by polling the directory; a transient failure opens
//      an honor window; nobody reachable, or a degraded directory, widens the probe to 2K;
//      otherwise the reachable node with the lowest rank, as this node ranks them, is asked to
//      fetch (`pleaseFetch`) and its outcome decides;
//   4. exhausted → this node fetches from the origin itself, jittered and rate limited.
//
// The engine decides only; it moves no bytes. Everything it touches is injected (`CascadeDeps`).

import { raceSignal } from '../../internal/abort.ts';
import { sleep } from '../../internal/clock.ts';
import { callScope } from '../../internal/deadline.ts';
import { diagnosticChannel } from '../../internal/diagnostics.ts';
import { ConfigError } from '../../internal/errors.ts';
import { InvalidDigestError } from '../errors.ts';
import { isDigest } from '../digest.ts';
import type { FailureClass } from '../failure-class.ts';
import { hrwTopK } from '../hrw.ts';
import { stallThresholdMs, type FetchKind } from '../in-flight.ts';
import type { IntentAnswer, PleaseFetchResult } from '../rpc/index.ts';
import {
  CascadeCooldownError,
  CascadeExhaustedError,
  FailureShortCircuitError,
  type ExhaustedReason,
} from './errors.ts';
import { HonorWindows } from './honor-windows.ts';
import { OriginFallbackLimiter } from './origin-fallback-limiter.ts';
import {
  CASCADE_RULES,
  type CascadeDeps,
  type CascadeEvent,
  type CascadeRule,
  type CascadeStats,
  type Decision,
  type ResolveOptions,
} from './types.ts';

export interface CascadeConfig {
  /** Nodes probed first (Gantry's K). Default 3. */
  readonly topK?: number;
  /** Nodes probed after an expansion. Default 2 × topK. */
  readonly expandedK?: number;
  /** Budget of one intent or pleaseFetch call. Default 2 s. */
  readonly rpcTimeoutMs?: number;
  /** Directory poll interval while a manifest or config is being pulled. Default 200 ms. */
  readonly smallObjectPollMs?: number;
  /** Directory poll interval while a blob is being pulled. Default 1 s. */
  readonly blobPollMs?: number;
  /** Longest honor window. Default 30 s. */
  readonly maxHonorWindowMs?: number;
  /** Below this directory health a first pass that finds nothing widens to 2K. Default 0.7. */
  readonly healthThreshold?: number;
  /** Direct-origin fallbacks allowed per window, per node. Default 2. */
  readonly originFallbacksPerWindow?: number;
  /** Default 60 s. */
  readonly originFallbackWindowMs?: number;
  /** The fallback waits a uniform random delay below this first. Default 1 s. */
  readonly originFallbackJitterMs?: number;
  /** Providers a decision names at most. Default 8. */
  readonly maxProviders?: number;
  /** Honor windows held at once; the oldest is dropped when full (counted). Default 10 000. */
  readonly maxHonorWindows?: number;
}

export const defaultCascadeConfig: Required<Omit<CascadeConfig, 'expandedK'>> = {
  topK: 3,
  rpcTimeoutMs: 2_000,
  smallObjectPollMs: 200,
  blobPollMs: 1_000,
  maxHonorWindowMs: 30_000,
  healthThreshold: 0.7,
  originFallbacksPerWindow: 2,
  originFallbackWindowMs: 60_000,
  originFallbackJitterMs: 1_000,
  maxProviders: 8,
  maxHonorWindows: 10_000,
};

const TRUSTED_CLASSES: ReadonlySet<FailureClass> = new Set(['auth', 'not-found', 'rate-limited']);

const cascadeChannel = diagnosticChannel<CascadeEvent>('coord', 'cascade');

/** The outcome of one pass over the table: a decision, or "probe more nodes". */
type TableOutcome = Ruled | { readonly expand: 'none-reachable' | 'degraded' };

interface Ruled {
  readonly rule: CascadeRule;
  readonly decision: Decision | { readonly exhausted: ExhaustedReason };
}

/** A probed node: its requester-computed rank and its answer (undefined when unreachable). */
interface Probe {
  readonly node: string;
  readonly answer: IntentAnswer | undefined;
}

interface Resolution {
  readonly key: string;
  readonly kind: FetchKind;
  readonly size: number | undefined;
  readonly origin: string | undefined;
  readonly repository: string | undefined;
  readonly delegated: boolean;
  readonly signal: AbortSignal | undefined;
}

export class Cascade {
  readonly #deps: CascadeDeps;
  readonly #config: Required<CascadeConfig>;
  readonly #random: () => number;
  readonly #honor: HonorWindows;
  readonly #fallbacks: OriginFallbackLimiter;
  readonly #rules = Object.fromEntries(CASCADE_RULES.map((r) => [r, 0])) as Record<CascadeRule, number>;
  #expandedNoneReachable = 0;
  #expandedDegraded = 0;
  #probes = 0;
  #probesFailed = 0;
  #rankMismatches = 0;
  #takeovers = 0;
  #pullersGone = 0;
  #pleaseFetches = 0;
  #polls = 0;
  #lookupFailures = 0;
  #honorWindowsOpened = 0;
  #originFallbacks = 0;
  #originFallbacksRefused = 0;

  constructor(deps: CascadeDeps, config: CascadeConfig = {}) {
    this.#deps = deps;
    this.#config = verifyCascadeConfig(config);
    this.#random = deps.random ?? Math.random;
    this.#honor = new HonorWindows(this.#config.maxHonorWindows);
    this.#fallbacks = new OriginFallbackLimiter(
      this.#config.originFallbacksPerWindow,
      this.#config.originFallbackWindowMs,
    );
  }

  /**
   * Decides where `key` comes from. Failures the cascade decides on are a `fail` decision, never
   * a rejection; it rejects only with `InvalidDigestError` for a key that is not a digest, or
   * with the signal's reason when `options.signal` aborts.
   */
  async resolve(key: string, options: ResolveOptions): Promise<Decision> {
    if (!isDigest(key))
      throw new InvalidDigestError(`cascade key is not a digest: ${String(key).slice(0, 80)}`);
    if (options.signal?.aborted === true) throw options.signal.reason;
    const resolution: Resolution = {
      key,
      kind: options.kind,
      size: options.size,
      origin: options.origin,
      repository: options.repository,
      delegated: options.delegatedCredential === true,
      signal: options.signal,
    };
    let ruled = await this.#decide(resolution);
    if ('exhausted' in ruled.decision && ruled.decision.exhausted === 'puller-gone') {
      // The node fetching it died: decide again on the membership without it, so one node
      // fetches for the cluster rather than every waiter falling back to the origin.
      ruled = await this.#decide(resolution);
    }
    const decision =
      'exhausted' in ruled.decision
        ? await this.#fallBack(resolution, ruled.decision.exhausted)
        : ruled.decision;
    this.#rules[ruled.rule]++;
    cascadeChannel.publish({ key, rule: ruled.rule, action: decision.action });
    return decision;
  }

  stats(): CascadeStats {
    return {
      rules: { ...this.#rules },
      expansions: { noneReachable: this.#expandedNoneReachable, degraded: this.#expandedDegraded },
      probes: this.#probes,
      probesFailed: this.#probesFailed,
      rankMismatches: this.#rankMismatches,
      takeovers: this.#takeovers,
      pullersGone: this.#pullersGone,
      pleaseFetches: this.#pleaseFetches,
      polls: this.#polls,
      lookupFailures: this.#lookupFailures,
      honorWindowsOpened: this.#honorWindowsOpened,
      honorWindowsEvicted: this.#honor.evicted,
      originFallbacks: this.#originFallbacks,
      originFallbacksRefused: this.#originFallbacksRefused,
    };
  }

  async #decide(r: Resolution): Promise<Ruled> {
    if (await this.#hasLocal(r.key)) return { rule: 'local-hit', decision: { action: 'serve-local' } };
    const providers = await this.#findProviders(r);
    if (providers.length > 0) {
      return { rule: 'directory', decision: { action: 'fetch-from-peer', providers } };
    }

    const { clock } = this.#deps;
    const honorUntil = this.#honor.openUntil(r.key, clock.now());
    if (honorUntil !== undefined) {
      const error = new CascadeCooldownError(r.key, honorUntil, honorUntil - clock.now());
      return { rule: 'honor-window', decision: { action: 'fail', error } };
    }

    const health = this.#readHealth();
    const members = this.#deps.membership.members();
    const answers = new Map<string, IntentAnswer | undefined>();
    for (const k of [this.#config.topK, this.#config.expandedK]) {
      const firstPass = k === this.#config.topK;
      const candidates = hrwTopK(members, r.key, k);
      await this.#probe(r, candidates, answers);
      const probes = candidates.map((node) => ({ node, answer: answers.get(node) }));
      const outcome = await this.#applyTable(r, probes, firstPass, health);
      if (!('expand' in outcome)) return outcome;
      if (!firstPass) break; // only rule 5 can ask again; the widened pass found nobody either
      if (outcome.expand === 'degraded') this.#expandedDegraded++;
      else this.#expandedNoneReachable++;
    }
    return { rule: 'none-reachable', decision: { exhausted: 'none-reachable' } };
  }

  /** The table of step 3, in order; the first matching rule wins. */
  async #applyTable(
    r: Resolution,
    probes: readonly Probe[],
    firstPass: boolean,
    health: number,
  ): Promise<TableOutcome> {
    const reachable = probes.filter((p): p is Probe & { answer: IntentAnswer } => p.answer !== undefined);
    const now = this.#deps.clock.now();

    // 1. A trusted failure anywhere: the origin would refuse this node too.
    if (!r.delegated) {
      const failed = reachable.find((p) => p.answer.recentlyFailed && this.#isTrusted(p.answer.failureClass));
      if (failed !== undefined) {
        return { rule: 'trusted-failure', decision: this.#shortCircuit(r, failed.node, failed.answer) };
      }
    }

    // 2. Holders first (in rank order), then the rest of those reachable.
    const cached = reachable.filter((p) => p.answer.hasCached);
    if (cached.some((p) => p.node === this.#deps.self)) {
      return { rule: 'peer-cached', decision: { action: 'serve-local' } };
    }
    if (cached.length > 0) {
      const rest = reachable.filter((p) => !p.answer.hasCached && p.node !== this.#deps.self);
      const providers = [...cached, ...rest].map((p) => p.node).slice(0, this.#config.maxProviders);
      return { rule: 'peer-cached', decision: { action: 'fetch-from-peer', providers } };
    }

    // 3. A puller that is not stalled: wait for it to announce the key. Stalled ones are skipped.
    const stallMs = stallThresholdMs(r.kind, r.size);
    let waitUntil: number | undefined;
    const pullers: string[] = [];
    for (const p of reachable) {
      if (!p.answer.inFlight) continue;
      const startedAt = this.#toLocalTime(p.answer.startedAtWallMs, now);
      if (now - startedAt > stallMs) {
        this.#takeovers++;
        continue;
      }
      waitUntil = Math.max(waitUntil ?? 0, startedAt + stallMs);
      pullers.push(p.node);
    }
    if (waitUntil !== undefined) {
      return { rule: 'in-flight', decision: await this.#poll(r, waitUntil, pullers) };
    }

    // 4. A transient failure (a class not trusted above; unclassified counts as transient).
    const transient = reachable.find(
      (p) => p.answer.recentlyFailed && !TRUSTED_CLASSES.has(p.answer.failureClass ?? 'transient'),
    );
    if (transient !== undefined) {
      return {
        rule: 'transient-failure',
        decision: this.#openHonorWindow(r, transient.answer.cooldownUntilWallMs),
      };
    }

    // 5. Nobody answered.
    if (reachable.length === 0) return { expand: 'none-reachable' };

    // 6. Nobody has it or is pulling it, and the directory may simply have lost the providers.
    const idle = reachable.every((p) => !p.answer.hasCached && !p.answer.inFlight);
    if (firstPass && idle && health < this.#config.healthThreshold) return { expand: 'degraded' };

    // 7. Ask the reachable node this node ranks first.
    return { rule: 'please-fetch', decision: await this.#askToFetch(r, (reachable[0] as Probe).node) };
  }

  async #askToFetch(r: Resolution, node: string): Promise<Ruled['decision']> {
    if (r.origin === undefined || r.origin === '' || r.repository === undefined || r.repository === '') {
      return { exhausted: 'no-origin' };
    }
    this.#pleaseFetches++;
    let result: PleaseFetchResult | undefined;
    const scope = callScope(this.#deps.clock, { signal: r.signal, timeoutMs: this.#config.rpcTimeoutMs });
    try {
      const request = { keys: [r.key], origin: r.origin, repository: r.repository, kind: r.kind };
      const results = await raceSignal(this.#deps.pleaseFetch(node, request, scope.signal), scope.signal);
      result = results.find((x) => x.key === r.key);
    } catch {
      if (r.signal?.aborted === true) throw r.signal.reason;
      return { exhausted: 'please-fetch-failed' };
    } finally {
      scope.dispose();
    }

    const now = this.#deps.clock.now();
    switch (result?.outcome) {
      case 'started':
      case 'already-running': {
        const startedAt = this.#toLocalTime(result.startedAtWallMs, now);
        return this.#poll(r, startedAt + stallThresholdMs(r.kind, r.size), [node]);
      }
      case 'recently-failed':
        if (this.#isTrusted(result.failureClass)) {
          // Under the requester's own credential a trusted class says nothing: fall back.
          return r.delegated ? { exhausted: 'untrusted-failure' } : this.#shortCircuit(r, node, result);
        }
        return this.#openHonorWindow(r, result.cooldownUntilWallMs);
      default:
        return { exhausted: 'unspecified' };
    }
  }

  /**
   * Polls this node's store and the directory until a provider appears or `deadline` passes, or
   * until every node it waits on has left the membership (a puller that died never announces;
   * waiting out its stall time would only delay the fallback).
   */
  async #poll(r: Resolution, deadline: number, pullers: readonly string[]): Promise<Ruled['decision']> {
    const { clock } = this.#deps;
    const intervalMs = r.kind === 'blob' ? this.#config.blobPollMs : this.#config.smallObjectPollMs;
    for (let waitMs = deadline - clock.now(); waitMs > 0; waitMs = deadline - clock.now()) {
      await sleep(clock, Math.min(intervalMs, waitMs), r.signal);
      this.#polls++;
      if (await this.#hasLocal(r.key)) return { action: 'serve-local' };
      const providers = await this.#findProviders(r);
      if (providers.length > 0) return { action: 'fetch-from-peer', providers };
      const members = this.#deps.membership.members();
      const live = pullers.filter((node) => members.includes(node));
      if (live.length === 0) {
        this.#pullersGone++;
        return { exhausted: 'puller-gone' };
      }
      const ended = await this.#pullEnded(r, live);
      if (ended !== undefined) return ended;
    }
    return { exhausted: 'pull-stalled' };
  }

  /**
   * Asks the pullers how their fetch went: one that holds the key now is fetched from (its
   * announcement may not have landed yet); when every puller that answers has stopped without
   * it, the failure it recorded decides at once, rather than after the stall deadline.
   * Undefined while a fetch is still running or nobody answers.
   */
  async #pullEnded(r: Resolution, pullers: readonly string[]): Promise<Ruled['decision'] | undefined> {
    const answers = await Promise.all(pullers.map((node) => this.#intent(r, node)));
    const holders = pullers.filter((_, i) => answers[i]?.hasCached === true);
    if (holders.length > 0) return { action: 'fetch-from-peer', providers: holders };
    const answered = pullers
      .map((node, i) => ({ node, answer: answers[i] }))
      .filter((p): p is { node: string; answer: IntentAnswer } => p.answer !== undefined);
    if (answered.length === 0 || answered.some((p) => p.answer.inFlight)) return undefined;
    const failed = answered.find((p) => p.answer.recentlyFailed);
    if (failed === undefined) return { exhausted: 'pull-stalled' };
    if (this.#isTrusted(failed.answer.failureClass)) {
      return r.delegated
        ? { exhausted: 'untrusted-failure' }
        : this.#shortCircuit(r, failed.node, failed.answer);
    }
    return this.#openHonorWindow(r, failed.answer.cooldownUntilWallMs);
  }

  async #probe(
    r: Resolution,
    candidates: readonly string[],
    answers: Map<string, IntentAnswer | undefined>,
  ): Promise<void> {
    const fresh = candidates.filter((node) => !answers.has(node));
    const results = await Promise.all(fresh.map((node) => this.#intent(r, node)));
    fresh.forEach((node, i) => answers.set(node, results[i]));
    candidates.forEach((node, rank) => {
      const answer = answers.get(node);
      // Self's rank is this node's own; a peer's may come from another view. Only counted.
      if (
        fresh.includes(node) &&
        node !== this.#deps.self &&
        answer !== undefined &&
        answer.hrwRank !== rank
      ) {
        this.#rankMismatches++;
      }
    });
  }

  async #intent(r: Resolution, node: string): Promise<IntentAnswer | undefined> {
    this.#probes++;
    const scope = callScope(this.#deps.clock, { signal: r.signal, timeoutMs: this.#config.rpcTimeoutMs });
    try {
      return await raceSignal(this.#deps.intent(node, r.key, scope.signal), scope.signal);
    } catch {
      if (r.signal?.aborted === true) throw r.signal.reason;
      this.#probesFailed++;
      return undefined;
    } finally {
      scope.dispose();
    }
  }

  #shortCircuit(
    r: Resolution,
    node: string,
    failure: { readonly failureClass?: FailureClass; readonly cooldownUntilWallMs?: number },
  ): Decision {
    const now = this.#deps.clock.now();
    const cooldownUntil =
      failure.cooldownUntilWallMs === undefined
        ? undefined
        : this.#toLocalTime(failure.cooldownUntilWallMs, now, false);
    const error = new FailureShortCircuitError({
      key: r.key,
      failureClass: failure.failureClass ?? 'transient',
      node,
      cooldownUntil,
    });
    return { action: 'fail', error };
  }

  /** Rule 4: no probing of `key` for min(cooldown − now, 30 s); a cooldown error meanwhile. */
  #openHonorWindow(r: Resolution, cooldownUntilWallMs: number | undefined): Decision {
    const now = this.#deps.clock.now();
    const cooldownUntil = this.#toLocalTime(cooldownUntilWallMs, now, false);
    const windowMs = Math.min(Math.max(0, cooldownUntil - now), this.#config.maxHonorWindowMs);
    if (windowMs > 0) {
      this.#honor.open(r.key, now + windowMs);
      this.#honorWindowsOpened++;
    }
    return { action: 'fail', error: new CascadeCooldownError(r.key, now + windowMs, windowMs) };
  }

  /** Step 4: fetch from the origin directly, if there is one and the rate limit allows. */
  async #fallBack(r: Resolution, reason: ExhaustedReason): Promise<Decision> {
    if (r.origin === undefined || r.origin === '') {
      return { action: 'fail', error: new CascadeExhaustedError(r.key, reason, false) };
    }
    if (!this.#fallbacks.tryTake(this.#deps.clock.now())) {
      this.#originFallbacksRefused++;
      return { action: 'fail', error: new CascadeExhaustedError(r.key, reason, true) };
    }
    this.#originFallbacks++;
    // Jitter spreads the nodes that all ran out at the same moment.
    const jitterMs = Math.floor(clampUnit(this.#random()) * this.#config.originFallbackJitterMs);
    if (jitterMs > 0) await sleep(this.#deps.clock, jitterMs, r.signal);
    return { action: 'fetch-from-origin', reason };
  }

  #isTrusted(failureClass: FailureClass | undefined): boolean {
    return failureClass !== undefined && TRUSTED_CLASSES.has(failureClass);
  }

  async #hasLocal(key: string): Promise<boolean> {
    try {
      return await this.#deps.hasLocal(key);
    } catch {
      this.#lookupFailures++;
      return false;
    }
  }

  /** Distinct providers other than this node (which already missed locally), at most `maxProviders`. */
  async #findProviders(r: Resolution): Promise<string[]> {
    const scope = callScope(this.#deps.clock, { signal: r.signal, timeoutMs: this.#config.rpcTimeoutMs });
    try {
      const found = await raceSignal(this.#deps.findProviders(r.key, scope.signal), scope.signal);
      if (!Array.isArray(found)) return [];
      const providers = new Set<string>();
      for (const node of found) {
        if (typeof node !== 'string' || node === '' || node === this.#deps.self) continue;
        providers.add(node);
        if (providers.size >= this.#config.maxProviders) break;
      }
      return [...providers];
    } catch {
      if (r.signal?.aborted === true) throw r.signal.reason;
      this.#lookupFailures++;
      return [];
    } finally {
      scope.dispose();
    }
  }

  /** Directory health, read once; anything but a number in [0, 1] reads as degraded (0). */
  #readHealth(): number {
    if (this.#deps.directoryHealth === undefined) return 1;
    try {
      const health = this.#deps.directoryHealth();
      return typeof health === 'number' && health >= 0 && health <= 1 ? health : 0;
    } catch {
      this.#lookupFailures++;
      return 0;
    }
  }

  /**
   * A peer's wall-clock instant as this node's `clock.now()`. Missing means "now". A start in the
   * future (clock skew, a hostile peer) is clamped to now, so it can never buy more than one stall.
   */
  #toLocalTime(wallMs: number | undefined, now: number, clampToNow = true): number {
    if (wallMs === undefined || !Number.isFinite(wallMs)) return now;
    const local = now + (wallMs - this.#deps.clock.wallTimeMs());
    return clampToNow ? Math.min(local, now) : local;
  }
}

function clampUnit(value: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(value, 0), 1) : 0;
}

/** Fills in defaults and checks every field; a bad one throws `ConfigError` naming it. */
export function verifyCascadeConfig(config: CascadeConfig): Required<CascadeConfig> {
  const topK = config.topK ?? defaultCascadeConfig.topK;
  const resolved: Required<CascadeConfig> = {
    ...defaultCascadeConfig,
    ...stripUndefined(config),
    topK,
    expandedK: config.expandedK ?? 2 * topK,
  };
  const positiveIntegers = [
    'topK',
    'expandedK',
    'rpcTimeoutMs',
    'smallObjectPollMs',
    'blobPollMs',
    'maxHonorWindowMs',
    'originFallbacksPerWindow',
    'originFallbackWindowMs',
    'maxProviders',
    'maxHonorWindows',
  ] as const;
  for (const field of positiveIntegers) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`cascade.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.expandedK < resolved.topK) {
    throw new ConfigError('cascade.expandedK', 'must be at least cascade.topK');
  }
  const jitter = resolved.originFallbackJitterMs;
  if (!Number.isSafeInteger(jitter) || jitter < 0) {
    throw new ConfigError(
      'cascade.originFallbackJitterMs',
      `must be a non-negative integer, got ${String(jitter)}`,
    );
  }
  const threshold = resolved.healthThreshold;
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
    throw new ConfigError('cascade.healthThreshold', `must be a number in [0, 1], got ${String(threshold)}`);
  }
  return resolved;
}

function stripUndefined(config: CascadeConfig): CascadeConfig {
  return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
}
