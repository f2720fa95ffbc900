// Per-step delivery policies: what a user may write (PolicyInput), the built-in defaults, and the
// resolved policy the hub runs with. Layers merge field by field: built-in ← story defaults ←
// step policy ← edge policy; values derived from others (credits, window, resumePct, ordering)
// are computed after the merge, so a step's own buffer size also sizes its credits.

import type { DropPolicy } from '../buffer/config.ts';
import { lanes, type Lane } from '../buffer/lane.ts';
import type { ProblemList } from './problems.ts';
import { bool, int, mapOf, num, object, oneOf, type Field, type Place } from './schema.ts';

export type { DropPolicy, Lane };
export { lanes };
export type Backoff = 'exponential' | 'linear' | 'constant';
export type DeliveryMode = 'none' | 'at_least_once';
export type Ordering = 'none' | 'per_stream' | 'per_partition';
export type ReplayMode = 'none' | 'unacked';
export type FlowMode = 'none' | 'credits' | 'window';
export type OffloadMode = 'inject' | 'reference';

export interface LaneLimits {
  readonly maxMessages: number | undefined;
  readonly maxBytes: number | undefined;
}

export interface BufferPolicy {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly dropPolicy: DropPolicy;
  /** 0 = messages never expire. */
  readonly maxAgeMs: number;
  /** Limits per lane; lanes not listed are bounded only by the buffer's own limits. */
  readonly lanes: Readonly<Partial<Record<Lane, LaneLimits>>>;
}

export interface RetryPolicy {
  /** 0 disables retry: packets that cannot be sent are dropped instead of buffered. */
  readonly maxRetries: number;
  readonly delayMs: number;
  readonly backoff: Backoff;
  readonly maxDelayMs: number;
}

export interface DeliveryPolicy {
  readonly mode: DeliveryMode;
  readonly ordering: Ordering;
  readonly replay: ReplayMode;
  /** Unacked packets in flight (per partition under per_partition) before sending waits. */
  readonly maxInFlight: number;
}

export interface FlowPolicy {
  readonly mode: FlowMode;
  readonly initialCredits: { readonly messages: number; readonly bytes: number };
  readonly window: number;
  /** Buffer utilization (percent) at which upstream is paused; 0 = never. */
  readonly pausePct: number;
  /** Utilization at which a paused upstream resumes; below pausePct. */
  readonly resumePct: number;
}

export interface DrainPolicy {
  readonly enabled: boolean;
  readonly timeoutMs: number;
}

export interface OffloadPolicy {
  /** Payloads larger than this go to the blob store as a reference; 0 = never offload. */
  readonly thresholdBytes: number;
  /** `inject`: materialize references before delivery; `reference`: deliver the reference. */
  readonly policy: OffloadMode;
}

export interface HeartbeatPolicy {
  readonly enabled: boolean;
  readonly intervalMs: number;
}

/** The policy the hub applies to packets delivered to one step (or over one edge). Frozen. */
export interface StepPolicy {
  readonly buffer: BufferPolicy;
  readonly retry: RetryPolicy;
  readonly delivery: DeliveryPolicy;
  readonly flow: FlowPolicy;
  readonly drain: DrainPolicy;
  readonly offload: OffloadPolicy;
  readonly heartbeat: HeartbeatPolicy;
}

/** Every field optional, at every depth. */
export type DeepPartial<T> = { readonly [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** What a story may write under `defaults`, `policy`, or an edge's `policy`: any subset. */
export type PolicyInput = DeepPartial<StepPolicy>;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Longest duration accepted, the largest a timer takes. */
const maxMs = 2 ** 31 - 1;

const laneLimitsField = object({ maxMessages: int(1, 1_000_000), maxBytes: int(1, GiB) });

/** The schema of a policy block. */
export const policyField: Field = object({
  buffer: object({
    maxMessages: int(1, 1_000_000),
    maxBytes: int(1, GiB),
    dropPolicy: oneOf('drop_newest', 'drop_oldest'),
    maxAgeMs: int(0, maxMs),
    lanes: mapOf(lanes, laneLimitsField),
  }),
  retry: object({
    maxRetries: int(0, 1000),
    delayMs: int(1, maxMs),
    backoff: oneOf('exponential', 'linear', 'constant'),
    maxDelayMs: int(1, maxMs),
  }),
  delivery: object({
    mode: oneOf('none', 'at_least_once'),
    ordering: oneOf('none', 'per_stream', 'per_partition'),
    replay: oneOf('none', 'unacked'),
    maxInFlight: int(1, 1_000_000),
  }),
  flow: object({
    mode: oneOf('none', 'credits', 'window'),
    initialCredits: object({ messages: int(1, 1_000_000), bytes: int(1, GiB) }),
    window: int(1, 1_000_000),
    pausePct: num(0, 100),
    resumePct: num(0, 100),
  }),
  drain: object({ enabled: bool, timeoutMs: int(1, maxMs) }),
  offload: object({ thresholdBytes: int(0, 64 * MiB), policy: oneOf('inject', 'reference') }),
  heartbeat: object({ enabled: bool, intervalMs: int(100, maxMs) }),
});

/** Built-in values for every field that does not derive from another. */
export const policyDefaults = Object.freeze({
  buffer: { maxMessages: 100, maxBytes: 10 * MiB, dropPolicy: 'drop_newest', maxAgeMs: 0 },
  retry: { maxRetries: 3, delayMs: 1000, backoff: 'exponential', maxDelayMs: 30_000 },
  delivery: { mode: 'none', replay: 'none', maxInFlight: 1000 },
  flow: { mode: 'none', pausePct: 0 },
  drain: { enabled: false, timeoutMs: 30_000 },
  offload: { thresholdBytes: MiB, policy: 'reference' },
  heartbeat: { enabled: true, intervalMs: 10_000 },
} as const);

/** Layers merged field by field, later layers winning; lanes merge per lane, per limit. */
export function mergePolicies(...layers: readonly (PolicyInput | undefined)[]): PolicyInput {
  let merged: Record<string, unknown> = {};
  for (const layer of layers) if (layer !== undefined) merged = mergeObjects(merged, layer);
  return merged;
}

function mergeObjects(base: Record<string, unknown>, over: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const previous = out[key];
    out[key] = isObject(previous) && isObject(value) ? mergeObjects(previous, value) : (value as unknown);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The resolved policy for merged input `p`, or problems (added at `place`) for combinations that
 * contradict each other once merged (resumePct ≥ pausePct, maxDelayMs < delayMs).
 */
export function resolvePolicy(p: PolicyInput, place: Place, problems: ProblemList): StepPolicy | undefined {
  const d = policyDefaults;
  const bufferLanes: Partial<Record<Lane, LaneLimits>> = {};
  for (const lane of lanes) {
    const limits = p.buffer?.lanes?.[lane];
    if (limits !== undefined) {
      bufferLanes[lane] = Object.freeze({ maxMessages: limits.maxMessages, maxBytes: limits.maxBytes });
    }
  }
  const buffer: BufferPolicy = Object.freeze({
    maxMessages: p.buffer?.maxMessages ?? d.buffer.maxMessages,
    maxBytes: p.buffer?.maxBytes ?? d.buffer.maxBytes,
    dropPolicy: p.buffer?.dropPolicy ?? d.buffer.dropPolicy,
    maxAgeMs: p.buffer?.maxAgeMs ?? d.buffer.maxAgeMs,
    lanes: Object.freeze(bufferLanes),
  });

  const delayMs = p.retry?.delayMs ?? d.retry.delayMs;
  const retry: RetryPolicy = Object.freeze({
    maxRetries: p.retry?.maxRetries ?? d.retry.maxRetries,
    delayMs,
    backoff: p.retry?.backoff ?? d.retry.backoff,
    // A long explicit delay raises the default cap rather than contradicting it.
    maxDelayMs: p.retry?.maxDelayMs ?? Math.max(d.retry.maxDelayMs, delayMs),
  });

  // Replay needs acks, and acked delivery needs an order to ack in.
  const replay = p.delivery?.replay ?? d.delivery.replay;
  const mode: DeliveryMode = replay !== 'none' ? 'at_least_once' : (p.delivery?.mode ?? d.delivery.mode);
  const requestedOrdering = p.delivery?.ordering ?? 'none';
  const delivery: DeliveryPolicy = Object.freeze({
    mode,
    ordering: mode === 'at_least_once' && requestedOrdering === 'none' ? 'per_stream' : requestedOrdering,
    replay,
    maxInFlight: p.delivery?.maxInFlight ?? d.delivery.maxInFlight,
  });

  const pausePct = p.flow?.pausePct ?? d.flow.pausePct;
  const creditMessages = p.flow?.initialCredits?.messages ?? buffer.maxMessages;
  const flow: FlowPolicy = Object.freeze({
    mode: p.flow?.mode ?? d.flow.mode,
    initialCredits: Object.freeze({
      messages: creditMessages,
      bytes: p.flow?.initialCredits?.bytes ?? buffer.maxBytes,
    }),
    window: p.flow?.window ?? creditMessages,
    pausePct,
    resumePct: p.flow?.resumePct ?? pausePct * 0.5,
  });

  const drain: DrainPolicy = Object.freeze({
    enabled: p.drain?.enabled ?? d.drain.enabled,
    timeoutMs: p.drain?.timeoutMs ?? d.drain.timeoutMs,
  });
  const offload: OffloadPolicy = Object.freeze({
    thresholdBytes: p.offload?.thresholdBytes ?? d.offload.thresholdBytes,
    policy: p.offload?.policy ?? d.offload.policy,
  });
  const heartbeat: HeartbeatPolicy = Object.freeze({
    enabled: p.heartbeat?.enabled ?? d.heartbeat.enabled,
    intervalMs: p.heartbeat?.intervalMs ?? d.heartbeat.intervalMs,
  });

  const before = problems.problems.length + problems.omitted;
  const contradiction = (path: string, message: string): void => {
    problems.add(`${place.path}.${path}`, message, place.stepId);
  };
  if (retry.maxDelayMs < retry.delayMs) {
    contradiction(
      'retry.maxDelayMs',
      `must be at least delayMs (${retry.delayMs}) once merged, got ${retry.maxDelayMs}`,
    );
  }
  if (flow.pausePct > 0 && flow.resumePct >= flow.pausePct) {
    contradiction(
      'flow.resumePct',
      `must be below pausePct (${flow.pausePct}) once merged, got ${flow.resumePct}`,
    );
  }
  if (flow.pausePct === 0 && p.flow?.resumePct !== undefined) {
    contradiction('flow.resumePct', 'has no effect without pausePct; set pausePct too');
  }
  if (problems.problems.length + problems.omitted > before) return undefined;
  return Object.freeze({ buffer, retry, delivery, flow, drain, offload, heartbeat });
}
