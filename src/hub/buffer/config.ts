// Limits of one MessageBuffer, their defaults and their validation.

import { ConfigError } from '../../internal/errors.ts';
import { isLane, type Lane } from './lane.ts';
import { resolveRetryPolicy, type RetryPolicy } from './retry-policy.ts';

/** Which message goes when the buffer is full: the one arriving (`drop_newest`) or the oldest. */
export type DropPolicy = 'drop_newest' | 'drop_oldest';

export interface LaneLimit {
  /** Messages of this lane the buffer holds at most. Unset = only the global limit. */
  readonly maxMessages?: number;
  /** Bytes of this lane the buffer holds at most; a larger message is dropped (`lane_oversize`). */
  readonly maxBytes?: number;
}

export interface MessageBufferConfig {
  readonly maxMessages: number;
  /** Sum of the entries' encoded sizes; a larger single message is dropped (`oversize`). */
  readonly maxBytes: number;
  readonly dropPolicy: DropPolicy;
  /** Messages older than this are dropped (`expired`). 0 = no limit. */
  readonly maxAgeMs: number;
  readonly laneLimits: Readonly<Partial<Record<Lane, LaneLimit>>>;
  /** Undefined = no policy: retry forever, 500 ms doubling capped at 30 s. */
  readonly retry: RetryPolicy | undefined;
}

/** What a caller may pass: any field left out keeps its default (or, in applyLimits, its current value). */
export interface MessageBufferConfigInput {
  readonly maxMessages?: number;
  readonly maxBytes?: number;
  readonly dropPolicy?: DropPolicy;
  readonly maxAgeMs?: number;
  readonly laneLimits?: Readonly<Partial<Record<Lane, LaneLimit>>>;
  /** A partial policy is filled from `defaultRetryPolicy`; `undefined` removes the policy. */
  readonly retry?: Partial<RetryPolicy> | undefined;
}

export const defaultMessageBufferConfig: MessageBufferConfig = Object.freeze({
  maxMessages: 100,
  maxBytes: 10 * 1024 * 1024,
  dropPolicy: 'drop_newest',
  maxAgeMs: 0,
  laneLimits: Object.freeze({}),
  retry: undefined,
});

/** `input` laid over `base`, checked; throws ConfigError naming the first bad field. */
export function resolveMessageBufferConfig(
  input: MessageBufferConfigInput = {},
  base: MessageBufferConfig = defaultMessageBufferConfig,
  field = 'buffer',
): MessageBufferConfig {
  const maxMessages = input.maxMessages ?? base.maxMessages;
  const maxBytes = input.maxBytes ?? base.maxBytes;
  const dropPolicy = input.dropPolicy ?? base.dropPolicy;
  const maxAgeMs = input.maxAgeMs ?? base.maxAgeMs;
  checkPositiveInteger(maxMessages, `${field}.maxMessages`);
  checkPositiveInteger(maxBytes, `${field}.maxBytes`);
  const policy: unknown = dropPolicy;
  if (policy !== 'drop_newest' && policy !== 'drop_oldest') {
    throw new ConfigError(
      `${field}.dropPolicy`,
      `expected drop_newest or drop_oldest, got ${String(policy)}`,
    );
  }
  if (typeof maxAgeMs !== 'number' || !Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
    throw new ConfigError(
      `${field}.maxAgeMs`,
      `must be a finite number >= 0 (0 = off), got ${String(maxAgeMs)}`,
    );
  }
  const laneLimits = 'laneLimits' in input ? resolveLaneLimits(input.laneLimits, field) : base.laneLimits;
  let retry = base.retry;
  if ('retry' in input) {
    retry = input.retry === undefined ? undefined : resolveRetryPolicy(input.retry, `${field}.retry`);
  }
  return Object.freeze({ maxMessages, maxBytes, dropPolicy, maxAgeMs, laneLimits, retry });
}

function resolveLaneLimits(
  input: Readonly<Partial<Record<Lane, LaneLimit>>> | undefined,
  field: string,
): Readonly<Partial<Record<Lane, LaneLimit>>> {
  const out: Partial<Record<Lane, LaneLimit>> = {};
  if (input === undefined) return Object.freeze(out);
  const raw: unknown = input;
  if (typeof raw !== 'object' || raw === null) {
    throw new ConfigError(`${field}.laneLimits`, 'must be an object keyed by lane');
  }
  for (const [lane, limit] of Object.entries(raw) as [string, LaneLimit | undefined][]) {
    // A misspelt lane would never match a packet and silently limit nothing.
    if (!isLane(lane)) {
      throw new ConfigError(
        `${field}.laneLimits.${lane}`,
        'unknown lane; expected audio, video, binary or payload',
      );
    }
    if (limit === undefined) continue;
    const { maxMessages, maxBytes } = limit;
    if (maxMessages !== undefined)
      checkPositiveInteger(maxMessages, `${field}.laneLimits.${lane}.maxMessages`);
    if (maxBytes !== undefined) checkPositiveInteger(maxBytes, `${field}.laneLimits.${lane}.maxBytes`);
    out[lane] = Object.freeze({
      ...(maxMessages === undefined ? {} : { maxMessages }),
      ...(maxBytes === undefined ? {} : { maxBytes }),
    });
  }
  return Object.freeze(out);
}

function checkPositiveInteger(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(field, `must be an integer > 0, got ${String(value)}`);
  }
}
