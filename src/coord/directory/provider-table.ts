// The table a directory node keeps: key → the nodes that announced they hold it, each until its
// announcement expires. Bounded twice: at most `maxEntries` keys and `maxProvidersPerKey`
// providers per key.
//
// Keys sit in a Map in the order they were last announced (an announcement moves its key to
// the end), and providers in each key's Map the same way. With one TTL for every announcement
// that order is also the order of expiry, so the key evicted when the table is full (the least
// recently announced, which expires first) is at the front, and `sweep()` stops at the first
// key that is still live. Expired providers are also dropped whenever their key is read.

import type { Clock } from '../../internal/clock.ts';

export interface ProviderTableConfig {
  /** How long an announcement is kept; a re-announcement starts it again. Default 10 min. */
  readonly ttlMs: number;
  /** Keys held at most; a new key past that evicts the least recently announced. Default 100,000. */
  readonly maxEntries: number;
  /** Providers held per key; a new provider past that is refused. Default 16. */
  readonly maxProvidersPerKey: number;
}

export type RecordOutcome = 'recorded' | 'refreshed' | 'refused';

export interface ProviderTableStats {
  /** Keys held now (some may have expired and not been swept yet). */
  readonly keys: number;
  /** Announcements that added a provider to a key. */
  readonly recorded: number;
  /** Announcements that renewed a provider already held. */
  readonly refreshed: number;
  /** Providers refused because their key already had `maxProvidersPerKey` live ones. */
  readonly providersRefused: number;
  /** Keys evicted, still live, to make room for a new key (`maxEntries` reached). */
  readonly keysEvicted: number;
  /** Providers removed by a withdrawal. */
  readonly withdrawn: number;
  /** Providers dropped because their announcement expired. */
  readonly expired: number;
}

export class ProviderTable {
  readonly #clock: Clock;
  readonly #config: ProviderTableConfig;
  /** key → (provider → expiry on `clock.now()`), both in announcement order. */
  readonly #entries = new Map<string, Map<string, number>>();
  #recorded = 0;
  #refreshed = 0;
  #providersRefused = 0;
  #keysEvicted = 0;
  #withdrawn = 0;
  #expired = 0;

  constructor(clock: Clock, config: ProviderTableConfig) {
    this.#clock = clock;
    this.#config = config;
  }

  /** Records that `provider` holds `key` until `ttlMs` from now. */
  record(key: string, provider: string): RecordOutcome {
    const now = this.#clock.now();
    let providers = this.#entries.get(key);
    if (providers === undefined) {
      this.#makeRoomForKey();
      providers = new Map();
    } else {
      this.#dropExpired(providers, now);
    }
    const known = providers.delete(provider);
    // Only a key that already has live providers can be full, so nothing is left empty here.
    if (!known && providers.size >= this.#config.maxProvidersPerKey) {
      this.#providersRefused++;
      return 'refused';
    }
    providers.set(provider, now + this.#config.ttlMs);
    // Re-inserted so the key moves to the end: the table stays in announcement order.
    this.#entries.delete(key);
    this.#entries.set(key, providers);
    if (known) this.#refreshed++;
    else this.#recorded++;
    return known ? 'refreshed' : 'recorded';
  }

  /** Forgets that `provider` holds `key`; true when it was held. */
  remove(key: string, provider: string): boolean {
    const providers = this.#entries.get(key);
    if (providers?.delete(provider) !== true) return false;
    this.#withdrawn++;
    if (providers.size === 0) this.#entries.delete(key);
    return true;
  }

  /** The live providers of `key`, least recently announced first. */
  providers(key: string): string[] {
    const providers = this.#entries.get(key);
    if (providers === undefined) return [];
    this.#dropExpired(providers, this.#clock.now());
    if (providers.size === 0) this.#entries.delete(key);
    return [...providers.keys()];
  }

  /** Removes every key whose announcements have all expired; returns how many keys went. */
  sweep(): number {
    const now = this.#clock.now();
    let removed = 0;
    for (const [key, providers] of this.#entries) {
      if (this.#latestExpiry(providers) > now) break;
      this.#expired += providers.size;
      this.#entries.delete(key);
      removed++;
    }
    return removed;
  }

  stats(): ProviderTableStats {
    return {
      keys: this.#entries.size,
      recorded: this.#recorded,
      refreshed: this.#refreshed,
      providersRefused: this.#providersRefused,
      keysEvicted: this.#keysEvicted,
      withdrawn: this.#withdrawn,
      expired: this.#expired,
    };
  }

  #makeRoomForKey(): void {
    if (this.#entries.size < this.#config.maxEntries) return;
    this.sweep();
    while (this.#entries.size >= this.#config.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) return;
      this.#entries.delete(oldest.value);
      this.#keysEvicted++;
    }
  }

  #dropExpired(providers: Map<string, number>, now: number): void {
    for (const [provider, expiresAt] of providers) {
      if (expiresAt > now) break;
      providers.delete(provider);
      this.#expired++;
    }
  }

  /** The last provider in a key's Map was announced last, so it expires last. */
  #latestExpiry(providers: Map<string, number>): number {
    let latest = Number.NEGATIVE_INFINITY;
    for (const expiresAt of providers.values()) latest = expiresAt;
    return latest;
  }
}
