// The negative cache: which keys this node recently failed to fetch from the origin, and
// until when it should not try again.
//
// The n-th consecutive failure of a key earns a cooldown of 10 s × 3^(n−1), capped at
// 10 min (10, 30, 90, 270, 600, 600 … s); a success clears the key. The cache is local:
// peers learn of an entry only by asking (`intent`), never by propagation. A failure under
// a credential the requester supplied (a delegated credential) is not recorded, because it
// says nothing about what this node's own credential would get.
//
// Times are `clock.now()` milliseconds (monotonic, process-local). An entry expires when
// `now >= cooldownUntil`; expired entries are dropped lazily by `lookup` and `recordFailure`,
// and in bulk by `sweep`. Once an entry has expired the ladder starts again at 10 s.
//
// Entries live in one insertion-ordered map per cooldown rung. Within a rung every entry
// has the same cooldown, so insertion order is expiry order (the clock is monotonic): the
// head of each rung is its soonest expiry, which makes `sweep` and "evict the entry
// expiring soonest" cost O(rungs) per entry instead of a scan of the whole cache.

import { type Clock, systemClock } from '../internal/clock.ts';
import { diagnosticChannel } from '../internal/diagnostics.ts';
import { ConfigError } from '../internal/errors.ts';
import type { FailureClass } from './failure-class.ts';

export interface NegativeCacheConfig {
  /** Source of time; default the system clock. */
  readonly clock?: Clock;
  /** Keys held at most; when full, the entry expiring soonest is evicted. Default 100 000. */
  readonly maxEntries?: number;
  /** Cooldown after a key's first failure; each further failure triples it. Default 10 s. */
  readonly firstCooldownMs?: number;
  /** Longest cooldown. Default 10 min. */
  readonly maxCooldownMs?: number;
}

export const defaultNegativeCacheConfig: Required<NegativeCacheConfig> = {
  clock: systemClock,
  maxEntries: 100_000,
  firstCooldownMs: 10_000,
  maxCooldownMs: 600_000,
};

const COOLDOWN_GROWTH = 3;

export interface RecordFailureOptions {
  /** The failed fetch used a credential the requester supplied; such failures are not recorded. */
  readonly delegatedCredential?: boolean;
}

export type RecordFailureResult =
  | {
      readonly recorded: true;
      /** Consecutive failures of the key, this one included. */
      readonly failures: number;
      readonly cooldownMs: number;
      /** `clock.now()` at which the cooldown ends. */
      readonly cooldownUntil: number;
    }
  | { readonly recorded: false; readonly reason: 'delegated-credential' };

/** What `lookup` answers for a key in cooldown. */
export interface RecentFailure {
  readonly recentlyFailed: true;
  readonly failureClass: FailureClass;
  readonly failures: number;
  /** `clock.now()` at which the cooldown ends; compare only with this process's clock. */
  readonly cooldownUntil: number;
  /** The same instant as Unix-epoch milliseconds, for answers sent to other nodes. */
  readonly cooldownUntilWallMs: number;
}

export interface NegativeCacheStats {
  /** Keys held now (expired ones not yet dropped included). */
  readonly entries: number;
  /** Failures recorded. */
  readonly recorded: number;
  /** Failures not recorded because they were under a delegated credential. */
  readonly skippedDelegated: number;
  /** Entries removed by a success. */
  readonly cleared: number;
  /** Live entries dropped to make room, because the cache was full. */
  readonly evicted: number;
  /** Entries dropped after their cooldown ended. */
  readonly expired: number;
}

/** Published on `weft:coord:negative-cache` each time a failure is recorded. */
export interface NegativeCacheRecordEvent {
  readonly key: string;
  readonly failureClass: FailureClass;
  readonly failures: number;
  readonly cooldownMs: number;
}

const recordChannel = diagnosticChannel<NegativeCacheRecordEvent>('coord', 'negative-cache');

interface Entry {
  readonly key: string;
  readonly failureClass: FailureClass;
  readonly failures: number;
  readonly cooldownMs: number;
  readonly cooldownUntil: number;
}

export class NegativeCache {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #firstCooldownMs: number;
  readonly #maxCooldownMs: number;
  readonly #entries = new Map<string, Entry>();
  /** Cooldown in ms → that rung's entries, in expiry order. */
  readonly #rungs = new Map<number, Map<string, Entry>>();
  #recorded = 0;
  #skippedDelegated = 0;
  #cleared = 0;
  #evicted = 0;
  #expired = 0;

  constructor(config: NegativeCacheConfig = {}) {
    const resolved = verifyNegativeCacheConfig(config);
    this.#clock = resolved.clock;
    this.#maxEntries = resolved.maxEntries;
    this.#firstCooldownMs = resolved.firstCooldownMs;
    this.#maxCooldownMs = resolved.maxCooldownMs;
  }

  /** Records a failed fetch of `key` and starts (or lengthens) its cooldown. */
  recordFailure(
    key: string,
    failureClass: FailureClass,
    options: RecordFailureOptions = {},
  ): RecordFailureResult {
    if (options.delegatedCredential === true) {
      this.#skippedDelegated++;
      return { recorded: false, reason: 'delegated-credential' };
    }
    const now = this.#clock.now();
    const previous = this.#live(key, now);
    if (previous === undefined) this.#makeRoom(now);
    else this.#remove(previous);

    const failures = (previous?.failures ?? 0) + 1;
    const cooldownMs = this.cooldownForFailure(failures);
    const entry: Entry = { key, failureClass, failures, cooldownMs, cooldownUntil: now + cooldownMs };
    this.#entries.set(key, entry);
    this.#rung(cooldownMs).set(key, entry);
    this.#recorded++;
    recordChannel.publishLazy(() => ({ key, failureClass, failures, cooldownMs }));
    return { recorded: true, failures, cooldownMs, cooldownUntil: entry.cooldownUntil };
  }

  /** A successful fetch of `key` ends its cooldown and resets its ladder. True if it had one. */
  recordSuccess(key: string): boolean {
    const entry = this.#live(key, this.#clock.now());
    if (entry === undefined) return false;
    this.#remove(entry);
    this.#cleared++;
    return true;
  }

  /** The key's failure while it is in cooldown; undefined otherwise (an expired entry is dropped). */
  lookup(key: string): RecentFailure | undefined {
    const now = this.#clock.now();
    const entry = this.#live(key, now);
    if (entry === undefined) return undefined;
    return {
      recentlyFailed: true,
      failureClass: entry.failureClass,
      failures: entry.failures,
      cooldownUntil: entry.cooldownUntil,
      cooldownUntilWallMs: this.#clock.wallTimeMs() + (entry.cooldownUntil - now),
    };
  }

  /** Drops every expired entry; returns how many. Call it periodically to free memory. */
  sweep(): number {
    const now = this.#clock.now();
    let dropped = 0;
    for (const rung of this.#rungs.values()) {
      for (const entry of rung.values()) {
        if (entry.cooldownUntil > now) break;
        this.#remove(entry);
        dropped++;
      }
    }
    this.#expired += dropped;
    return dropped;
  }

  /** The cooldown the n-th consecutive failure earns (n ≥ 1). */
  cooldownForFailure(failures: number): number {
    const grown = this.#firstCooldownMs * COOLDOWN_GROWTH ** (Math.max(1, failures) - 1);
    return Math.min(grown, this.#maxCooldownMs);
  }

  stats(): NegativeCacheStats {
    return {
      entries: this.#entries.size,
      recorded: this.#recorded,
      skippedDelegated: this.#skippedDelegated,
      cleared: this.#cleared,
      evicted: this.#evicted,
      expired: this.#expired,
    };
  }

  /** The key's entry if its cooldown is still running; an expired one is dropped and counted. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.cooldownUntil > now) return entry;
    this.#remove(entry);
    this.#expired++;
    return undefined;
  }

  /** Frees one slot when the cache is full, preferring an expired entry over a live one. */
  #makeRoom(now: number): void {
    if (this.#entries.size < this.#maxEntries) return;
    let soonest: Entry | undefined;
    for (const rung of this.#rungs.values()) {
      const head = rung.values().next().value;
      if (head !== undefined && (soonest === undefined || head.cooldownUntil < soonest.cooldownUntil)) {
        soonest = head;
      }
    }
    if (soonest === undefined) return;
    this.#remove(soonest);
    if (soonest.cooldownUntil <= now) this.#expired++;
    else this.#evicted++;
  }

  #rung(cooldownMs: number): Map<string, Entry> {
    let rung = this.#rungs.get(cooldownMs);
    if (rung === undefined) {
      rung = new Map();
      this.#rungs.set(cooldownMs, rung);
    }
    return rung;
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#rungs.get(entry.cooldownMs)?.delete(entry.key);
  }
}

/** Fills in defaults and checks every field; a bad one throws `ConfigError` naming it. */
export function verifyNegativeCacheConfig(config: NegativeCacheConfig): Required<NegativeCacheConfig> {
  const resolved: Required<NegativeCacheConfig> = {
    clock: config.clock ?? defaultNegativeCacheConfig.clock,
    maxEntries: config.maxEntries ?? defaultNegativeCacheConfig.maxEntries,
    firstCooldownMs: config.firstCooldownMs ?? defaultNegativeCacheConfig.firstCooldownMs,
    maxCooldownMs: config.maxCooldownMs ?? defaultNegativeCacheConfig.maxCooldownMs,
  };
  for (const field of ['maxEntries', 'firstCooldownMs', 'maxCooldownMs'] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`negativeCache.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.maxCooldownMs < resolved.firstCooldownMs) {
    throw new ConfigError('negativeCache.maxCooldownMs', 'must be at least negativeCache.firstCooldownMs');
  }
  return resolved;
}
