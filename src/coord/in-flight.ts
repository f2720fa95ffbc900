// The in-flight map: which keys this node is fetching from the origin right now.
//
// `start` claims a key atomically (there is no await between the check and the claim), so
// however many requests race for one key, exactly one gets the handle and fetches; the
// others get the running entry and wait for it. `handle.done()` releases the claim; it is
// idempotent and only ever removes the entry it created, never a later claim of the key.
//
// An entry that has run longer than its stall threshold is presumed stuck: peers stop
// waiting for it (the cold-start cascade skips stale fetchers). Manifests and configs are
// small, so 5 s; a blob gets three times the longer of 10 s and its size at 50 MiB/s.

import { type Clock, systemClock } from '../internal/clock.ts';
import { CapacityExceededError, ConfigError } from '../internal/errors.ts';

export type FetchKind = 'blob' | 'manifest' | 'config';

export interface InFlightConfig {
  /** Source of time; default the system clock. */
  readonly clock?: Clock;
  /** Keys in flight at most; a claim beyond is refused with `CapacityExceededError`. Default 10 000. */
  readonly maxEntries?: number;
}

export const defaultInFlightConfig: Required<InFlightConfig> = {
  clock: systemClock,
  maxEntries: 10_000,
};

export interface StartOptions {
  readonly kind: FetchKind;
  /** Size in bytes when known (a blob's descriptor size); sets a blob's stall threshold. */
  readonly size?: number;
}

export interface InFlightEntry {
  readonly key: string;
  readonly kind: FetchKind;
  /** Bytes, or undefined when unknown (or not a finite non-negative number). */
  readonly size: number | undefined;
  /** `clock.now()` when the fetch started; compare only with this process's clock. */
  readonly startedAt: number;
  /** The same instant as Unix-epoch milliseconds, for answers sent to other nodes. */
  readonly startedAtWallMs: number;
}

/** The claim on a key. Call `done()` when the fetch ends, whether it succeeded or not. */
export interface InFlightHandle {
  readonly entry: InFlightEntry;
  done(): void;
}

export type ClaimResult =
  | { readonly claimed: true; readonly handle: InFlightHandle }
  | { readonly claimed: false; readonly entry: InFlightEntry };

export interface InFlightStats {
  /** Keys in flight now. */
  readonly inFlight: number;
  /** Claims granted. */
  readonly claimed: number;
  /** Claims answered with an entry already in flight. */
  readonly duplicates: number;
  /** Claims refused because the map was full. */
  readonly refused: number;
  /** Claims released by `done()`. */
  readonly completed: number;
}

const SMALL_OBJECT_STALL_MS = 5_000;
const BLOB_MIN_FETCH_MS = 10_000;
const BLOB_BYTES_PER_MS = (50 * 1024 * 1024) / 1_000;
const BLOB_STALL_FACTOR = 3;

/** How long a fetch of `kind` (and `size` bytes, for a blob) may run before it counts as stalled. */
export function stallThresholdMs(kind: FetchKind, size?: number): number {
  if (kind !== 'blob') return SMALL_OBJECT_STALL_MS;
  const bytes = knownSize(size);
  const expectedMs = bytes === undefined ? 0 : Math.ceil(bytes / BLOB_BYTES_PER_MS);
  return Math.max(BLOB_MIN_FETCH_MS, expectedMs) * BLOB_STALL_FACTOR;
}

/** True once `entry` has run longer than its stall threshold at `now` (same time base as `startedAt`). */
export function isStalled(entry: InFlightEntry, now: number): boolean {
  return now - entry.startedAt > stallThresholdMs(entry.kind, entry.size);
}

export class InFlightMap {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, InFlightEntry>();
  #claimed = 0;
  #duplicates = 0;
  #refused = 0;
  #completed = 0;

  constructor(config: InFlightConfig = {}) {
    const resolved = verifyInFlightConfig(config);
    this.#clock = resolved.clock;
    this.#maxEntries = resolved.maxEntries;
  }

  /**
   * Claims `key` for this caller, or answers the fetch already running. Throws
   * `CapacityExceededError` (retryable) when `maxEntries` keys are in flight.
   */
  start(key: string, options: StartOptions): ClaimResult {
    const running = this.#entries.get(key);
    if (running !== undefined) {
      this.#duplicates++;
      return { claimed: false, entry: running };
    }
    if (this.#entries.size >= this.#maxEntries) {
      this.#refused++;
      throw new CapacityExceededError('coord in-flight map', this.#maxEntries);
    }
    const entry: InFlightEntry = {
      key,
      kind: options.kind,
      size: knownSize(options.size),
      startedAt: this.#clock.now(),
      startedAtWallMs: this.#clock.wallTimeMs(),
    };
    this.#entries.set(key, entry);
    this.#claimed++;
    return {
      claimed: true,
      handle: {
        entry,
        done: () => {
          this.#release(entry);
        },
      },
    };
  }

  get(key: string): InFlightEntry | undefined {
    return this.#entries.get(key);
  }

  /** True once `entry` has run longer than its stall threshold; `now` defaults to this map's clock. */
  isStalled(entry: InFlightEntry, now: number = this.#clock.now()): boolean {
    return isStalled(entry, now);
  }

  stats(): InFlightStats {
    return {
      inFlight: this.#entries.size,
      claimed: this.#claimed,
      duplicates: this.#duplicates,
      refused: this.#refused,
      completed: this.#completed,
    };
  }

  /** Removes `entry` only if it is still the key's claim: a stale or repeated `done()` does nothing. */
  #release(entry: InFlightEntry): void {
    if (this.#entries.get(entry.key) !== entry) return;
    this.#entries.delete(entry.key);
    this.#completed++;
  }
}

/** Fills in defaults and checks every field; a bad one throws `ConfigError` naming it. */
export function verifyInFlightConfig(config: InFlightConfig): Required<InFlightConfig> {
  const resolved: Required<InFlightConfig> = {
    clock: config.clock ?? defaultInFlightConfig.clock,
    maxEntries: config.maxEntries ?? defaultInFlightConfig.maxEntries,
  };
  if (!Number.isSafeInteger(resolved.maxEntries) || resolved.maxEntries < 1) {
    throw new ConfigError(
      'inFlight.maxEntries',
      `must be a positive integer, got ${String(resolved.maxEntries)}`,
    );
  }
  return resolved;
}

/** A usable byte count, or undefined: a hostile or missing size falls back to the default threshold. */
function knownSize(size: number | undefined): number | undefined {
  return size !== undefined && Number.isFinite(size) && size >= 0 ? size : undefined;
}
