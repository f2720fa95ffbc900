// How a cold-start resolution fails. Each carries what an HTTP layer needs to answer with a 5xx
// (never a 404: containerd must fall back to the origin) and a Retry-After.

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';
import type { FailureClass } from '../failure-class.ts';

/**
 * A node of the top-K failed this key recently with a class the cascade trusts (auth, not-found,
 * rate-limited): the origin would say the same to this node, so nobody is asked to fetch it.
 * Terminal for this request; `cooldownUntil` says when the failing node will try again.
 */
export class FailureShortCircuitError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.FailureShortCircuitError');
  static readonly code = 'WEFT_COORD_FAILURE_SHORT_CIRCUIT';
  readonly key: string;
  readonly failureClass: FailureClass;
  /** The node that reported the failure. */
  readonly node: string;
  /** `clock.now()` at which that node's cooldown ends; undefined when it did not say. */
  readonly cooldownUntil: number | undefined;

  constructor(
    details: { key: string; failureClass: FailureClass; node: string; cooldownUntil: number | undefined },
    options?: WeftErrorOptions,
  ) {
    super(
      FailureShortCircuitError.code,
      `${details.key} recently failed on ${details.node} (${details.failureClass}); not asking the origin again yet`,
      false,
      options,
    );
    this.key = details.key;
    this.failureClass = details.failureClass;
    this.node = details.node;
    this.cooldownUntil = details.cooldownUntil;
  }
}

/**
 * A transient failure of this key is being honoured: no node is asked until `cooldownUntil`
 * (at most 30 s away). Retryable after that.
 */
export class CascadeCooldownError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.CascadeCooldownError');
  static readonly code = 'WEFT_COORD_COOLDOWN';
  readonly key: string;
  /** `clock.now()` at which this node will probe the key again. */
  readonly cooldownUntil: number;
  /** Milliseconds from the error's creation to `cooldownUntil`, for a Retry-After header. */
  readonly retryAfterMs: number;

  constructor(key: string, cooldownUntil: number, retryAfterMs: number, options?: WeftErrorOptions) {
    super(
      CascadeCooldownError.code,
      `${key} failed transiently on a peer; retry in ${Math.ceil(retryAfterMs / 1_000)} s`,
      true,
      options,
    );
    this.key = key;
    this.cooldownUntil = cooldownUntil;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Why the cascade ran out of peers to ask. */
export type ExhaustedReason =
  | 'none-reachable'
  | 'pull-stalled'
  | 'no-origin'
  | 'unspecified'
  | 'please-fetch-failed'
  | 'untrusted-failure'
  | 'puller-gone';

/**
 * No peer has the key or will fetch it, and the direct-origin fallback is not allowed now (the
 * rate limit is spent, or there is no origin to fall back to). Retryable.
 */
export class CascadeExhaustedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.coord.CascadeExhaustedError');
  static readonly code = 'WEFT_COORD_CASCADE_EXHAUSTED';
  readonly key: string;
  readonly reason: ExhaustedReason;
  /** True when the origin fallback was refused by its rate limit (rather than impossible). */
  readonly fallbackRateLimited: boolean;

  constructor(
    key: string,
    reason: ExhaustedReason,
    fallbackRateLimited: boolean,
    options?: WeftErrorOptions,
  ) {
    super(
      CascadeExhaustedError.code,
      `no peer could provide ${key} (${reason})` +
        (fallbackRateLimited
          ? '; the direct-origin fallback is rate limited'
          : '; no origin to fall back to'),
      true,
      options,
    );
    this.key = key;
    this.reason = reason;
    this.fallbackRateLimited = fallbackRateLimited;
  }
}
