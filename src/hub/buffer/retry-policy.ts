// When a buffer whose flush failed may try again, and when it gives up.
//
// With a policy: retry n waits delay·2^(n-1) (exponential), delay·n (linear) or delay
// (constant), capped at maxDelayMs; after maxRetries failures in a row the buffer is dropped.
// maxRetries 0 disables retries: the hub then refuses to buffer at all. Without a policy the
// buffer retries forever, 500 ms doubling, capped at 30 s.

import { backoffDelay, type BackoffKind } from '../../internal/backoff.ts';
import { ConfigError } from '../../internal/errors.ts';

export type RetryBackoff = BackoffKind;

export interface RetryPolicy {
  /** Failed flushes in a row before the buffer is dropped (`retry_exhausted`); 0 disables retries. */
  readonly maxRetries: number;
  /** Base delay before a retry. */
  readonly delayMs: number;
  readonly backoff: RetryBackoff;
  /** No delay exceeds this. */
  readonly maxDelayMs: number;
}

export const defaultRetryPolicy: Required<RetryPolicy> = {
  maxRetries: 3,
  delayMs: 1_000,
  backoff: 'exponential',
  maxDelayMs: 30_000,
};

/** The ladder used when no policy is configured: 500 ms doubling, capped at 30 s, never giving up. */
export const fallbackRetryDelay = { baseDelayMs: 500, maxDelayMs: 30_000 } as const;

/** Fills a partial policy with the defaults and checks it; errors name the field under `field`. */
export function resolveRetryPolicy(input: Partial<RetryPolicy>, field = 'retry'): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...withoutUndefined(input) };
  if (!Number.isSafeInteger(policy.maxRetries) || policy.maxRetries < 0) {
    throw new ConfigError(`${field}.maxRetries`, `must be an integer >= 0, got ${String(policy.maxRetries)}`);
  }
  checkDelay(policy.delayMs, `${field}.delayMs`);
  checkDelay(policy.maxDelayMs, `${field}.maxDelayMs`);
  const backoff: unknown = policy.backoff;
  if (backoff !== 'exponential' && backoff !== 'linear' && backoff !== 'constant') {
    throw new ConfigError(
      `${field}.backoff`,
      `expected exponential, linear or constant, got ${String(backoff)}`,
    );
  }
  if (policy.maxDelayMs < policy.delayMs) {
    throw new ConfigError(`${field}.maxDelayMs`, `must be at least delayMs (${policy.delayMs})`);
  }
  return Object.freeze(policy);
}

/** Delay before retry number `attempt` (1 = after the first failure). */
export function retryDelayMs(policy: RetryPolicy | undefined, attempt: number): number {
  if (policy === undefined) {
    return backoffDelay({ kind: 'exponential', ...fallbackRetryDelay }, attempt);
  }
  return backoffDelay(
    { kind: policy.backoff, baseDelayMs: policy.delayMs, maxDelayMs: policy.maxDelayMs },
    attempt,
  );
}

function checkDelay(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a finite number > 0, got ${String(value)}`);
  }
}

function withoutUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
