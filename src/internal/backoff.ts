// Retry delays.
//
// Two shapes are in use across Weft:
// - `backoffDelay`/`Backoff`: the classic policies (exponential, linear, constant) with a
//   hard cap and symmetric jitter, as the hub's retry policy and the grid's redial use.
// - `RetryWaiter`: the Consul waiter the views use. The first failure is retried at once,
//   then it waits factor·2^(n-2) (200 ms, 400 ms, …), capped, and jitters *after* the cap
//   so that many clients that all reached the cap do not retry in lockstep; hence it can
//   wait up to twice the cap. Consul's lib/retry.Waiter defines that order; its submatview
//   uses MinFailures 1, Factor 200 ms, MaxWait 60 s and +0–100 % jitter.
//
// Randomness is injected (`random: () => number in [0, 1)`) so that tests pin it.

import { sleep, type Clock } from './clock.ts';
import { ConfigError } from './errors.ts';

export type Random = () => number;

export type BackoffKind = 'exponential' | 'linear' | 'constant';

export interface BackoffPolicy {
  readonly kind: BackoffKind;
  /** Delay before the first retry. */
  readonly baseDelayMs: number;
  /** No delay exceeds this, jitter included. */
  readonly maxDelayMs: number;
  /** Growth per attempt for `exponential`. Default 2. */
  readonly multiplier?: number;
  /** Fraction in [0, 1]: the delay is drawn from [d·(1−jitter), d·(1+jitter)]. Default 0. */
  readonly jitter?: number;
}

export function verifyBackoffPolicy(policy: BackoffPolicy, field = 'backoff'): void {
  const kind: unknown = policy.kind;
  if (kind !== 'exponential' && kind !== 'linear' && kind !== 'constant') {
    throw new ConfigError(`${field}.kind`, `expected exponential, linear or constant, got ${String(kind)}`);
  }
  checkNonNegative(policy.baseDelayMs, `${field}.baseDelayMs`);
  checkNonNegative(policy.maxDelayMs, `${field}.maxDelayMs`);
  if (policy.maxDelayMs < policy.baseDelayMs) {
    throw new ConfigError(`${field}.maxDelayMs`, `must be at least baseDelayMs (${policy.baseDelayMs})`);
  }
  if (policy.multiplier !== undefined && !(policy.multiplier >= 1 && Number.isFinite(policy.multiplier))) {
    throw new ConfigError(`${field}.multiplier`, `must be a finite number >= 1, got ${policy.multiplier}`);
  }
  if (policy.jitter !== undefined && !(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new ConfigError(`${field}.jitter`, `must be within [0, 1], got ${policy.jitter}`);
  }
}

/** Delay before retry number `attempt` (1 = the first retry) under `policy`. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: Random = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  let delay: number;
  switch (policy.kind) {
    case 'exponential':
      delay = policy.baseDelayMs * (policy.multiplier ?? 2) ** (n - 1);
      break;
    case 'linear':
      delay = policy.baseDelayMs * n;
      break;
    case 'constant':
      delay = policy.baseDelayMs;
      break;
  }
  delay = Math.min(delay, policy.maxDelayMs);
  const jitter = policy.jitter ?? 0;
  if (jitter > 0) delay *= 1 + jitter * (2 * random() - 1);
  return Math.min(Math.round(delay), policy.maxDelayMs);
}

/** Counts attempts for one retry loop. */
export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: Random;
  #attempt = 0;

  constructor(policy: BackoffPolicy, random: Random = Math.random) {
    verifyBackoffPolicy(policy);
    this.#policy = policy;
    this.#random = random;
  }

  /** Retries handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** Delay before the next retry; each call counts one attempt. */
  next(): number {
    this.#attempt += 1;
    return backoffDelay(this.#policy, this.#attempt, this.#random);
  }

  /** Call after a success: the next failure starts from the base delay again. */
  reset(): void {
    this.#attempt = 0;
  }
}

export interface RetryWaiterConfig {
  /** Failures retried without waiting. */
  readonly minFailures: number;
  /** Unit of growth: the first real wait. */
  readonly factorMs: number;
  /** Cap applied before jitter. */
  readonly maxWaitMs: number;
  /** Floor for every wait after the first `minFailures`, applied last. */
  readonly minWaitMs: number;
  /** Adds a random 0–N % of the capped wait. */
  readonly jitterPercent: number;
}

/** The values Consul's submatview uses for its materializers. */
export const defaultRetryWaiterConfig: Required<RetryWaiterConfig> = {
  minFailures: 1,
  factorMs: 200,
  maxWaitMs: 60_000,
  minWaitMs: 0,
  jitterPercent: 100,
};

export function retryWaiterDelay(config: RetryWaiterConfig, failures: number, random: Random): number {
  if (failures <= config.minFailures) return 0;
  const shift = failures - config.minFailures - 1;
  // Above 2^30 the product overflows any useful cap; treat it as the cap.
  let wait = shift < 31 ? config.factorMs * 2 ** shift : config.maxWaitMs;
  if (config.maxWaitMs > 0 && wait > config.maxWaitMs) wait = config.maxWaitMs;
  if (config.jitterPercent > 0) wait += Math.floor(random() * ((wait * config.jitterPercent) / 100));
  return Math.max(wait, config.minWaitMs);
}

export class RetryWaiter {
  readonly #config: RetryWaiterConfig;
  readonly #clock: Clock;
  readonly #random: Random;
  #failures = 0;

  constructor(clock: Clock, config: Partial<RetryWaiterConfig> = {}, random: Random = Math.random) {
    const merged = { ...defaultRetryWaiterConfig, ...config };
    for (const [field, value] of Object.entries(merged)) checkNonNegative(value, `retryWaiter.${field}`);
    this.#config = merged;
    this.#clock = clock;
    this.#random = random;
  }

  /** Failures recorded since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /** Records a failure and waits the delay it earns. Rejects with the signal's reason on abort. */
  wait(signal?: AbortSignal): Promise<void> {
    // A zero delay still goes through a clock timer, as Consul's time.NewTimer(0) does,
    // so a retry loop always yields to the event loop.
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    this.#failures += 1;
    const delay = retryWaiterDelay(this.#config, this.#failures, this.#random);
    return sleep(this.#clock, delay, signal);
  }

  /** Call after a success. */
  reset(): void {
    this.#failures = 0;
  }
}

function checkNonNegative(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(field, `must be a finite number >= 0, got ${String(value)}`);
  }
}
