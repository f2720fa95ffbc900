// The bounds of a runtime, with StateFun's defaults where it has one. Every table the runtime
// fills is bounded here; when one is full, ingress is refused (HTTP 503, JetStream paused) and
// the refusal counted, instead of anything being dropped.

import type { BackoffPolicy } from '../internal/backoff.ts';
import { verifyBackoffPolicy } from '../internal/backoff.ts';
import { ConfigError } from '../internal/errors.ts';
import { MAX_STORE_LIMIT } from './store/store-records.ts';

export interface RuntimeLimits {
  /** Messages in one batch, and the most an address's backlog holds for ingress; default 1000 (StateFun). */
  readonly maxNumBatchRequests?: number;
  /** Batches in flight across all addresses; default 1024. */
  readonly maxConcurrentBatches?: number;
  /** Inbox messages across all addresses before ingress is refused; default 100 000. */
  readonly maxInboxMessages?: number;
  /** Outbox records before ingress is refused and new batches wait; default 100 000. */
  readonly maxOutboxRecords?: number;
  /** Delayed messages pending before ingress is refused; default 1 000 000. */
  readonly maxDelayedMessages?: number;
  /** Batches waiting for a commit; default 10 000. */
  readonly maxPendingCommits?: number;
  /** Batches in one store commit; default 512. */
  readonly maxBatchesPerCommit?: number;
  /** How long a failed address waits before it runs again; default exponential 1 s to 60 s. */
  readonly parkBackoff?: BackoffPolicy;
  /** How often expired values are swept; default 10 s. */
  readonly sweepIntervalMs?: number;
  /** How often the store's counts are read again to correct the runtime's own; default 1 s. */
  readonly countsRefreshMs?: number;
  /** How long `close()` waits for the outbox to be delivered; default 10 s. */
  readonly drainTimeoutMs?: number;
}

export type ResolvedLimits = Required<RuntimeLimits>;

export const DEFAULT_PARK_BACKOFF: BackoffPolicy = {
  kind: 'exponential',
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
};

export function resolveLimits(limits: RuntimeLimits = {}): ResolvedLimits {
  const resolved: ResolvedLimits = {
    maxNumBatchRequests: limits.maxNumBatchRequests ?? 1_000,
    maxConcurrentBatches: limits.maxConcurrentBatches ?? 1_024,
    maxInboxMessages: limits.maxInboxMessages ?? 100_000,
    maxOutboxRecords: limits.maxOutboxRecords ?? 100_000,
    maxDelayedMessages: limits.maxDelayedMessages ?? 1_000_000,
    maxPendingCommits: limits.maxPendingCommits ?? 10_000,
    maxBatchesPerCommit: limits.maxBatchesPerCommit ?? 512,
    parkBackoff: limits.parkBackoff ?? DEFAULT_PARK_BACKOFF,
    sweepIntervalMs: limits.sweepIntervalMs ?? 10_000,
    countsRefreshMs: limits.countsRefreshMs ?? 1_000,
    drainTimeoutMs: limits.drainTimeoutMs ?? 10_000,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (name === 'parkBackoff') continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new ConfigError(`limits.${name}`, `must be a positive integer, got ${value as number}`);
    }
  }
  // The store reads at most 100 000 records per call.
  if (resolved.maxNumBatchRequests > MAX_STORE_LIMIT) {
    throw new ConfigError('limits.maxNumBatchRequests', `must be at most ${MAX_STORE_LIMIT}`);
  }
  verifyBackoffPolicy(resolved.parkBackoff, 'limits.parkBackoff');
  return resolved;
}
