// Delivery and flow settings of one stream key, as the user wrote them and as the hub uses them.
//
// Normalisation follows the reference hub: replay implies at-least-once, at-least-once implies
// ordering (per stream unless per partition was asked for), and an unknown mode falls back to
// the safe default instead of failing the story. Numbers out of range are a configuration
// error naming the field.

import { ConfigError } from '../../internal/errors.ts';

export type OrderingMode = 'none' | 'per_stream' | 'per_partition';
export type DeliverySemantics = 'best_effort' | 'at_least_once';
export type ReplayMode = 'none' | 'memory' | 'durable';
export type FlowMode = 'none' | 'credits' | 'window';

/** What a story may say about a step's delivery; every field optional, strings matched loosely. */
export interface DeliveryConfigInput {
  readonly ordering?: string;
  readonly semantics?: string;
  readonly replay?: string;
  readonly flowMode?: string;
  /** Credits mode: messages the downstream may receive before it grants more. Window mode: the window. */
  readonly initialCreditsMessages?: number;
  /** Credits mode: bytes (encoded size) the downstream may receive before it grants more. */
  readonly initialCreditsBytes?: number;
  /** At-least-once: most packets sent and not yet acked (per partition under per_partition); 0 = no limit but the hard cap. */
  readonly maxInFlight?: number;
  /** Buffer utilisation, in percent, at which one PAUSE is sent upstream; 0 = never. */
  readonly pausePct?: number;
  /** Buffer utilisation, in percent, at which the RESUME follows; defaults to half of pausePct. */
  readonly resumePct?: number;
  /** Hard cap on unacked packets held for replay across all partitions. */
  readonly maxUnacked?: number;
  /** Most partitions one stream key tracks sequences for. */
  readonly maxPartitions?: number;
}

/** The buffer limits credits and the window default to. */
export interface FlowBufferLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

/** Settings after normalisation: every field set, every mode known. */
export interface DeliveryConfig {
  readonly ordering: OrderingMode;
  readonly semantics: DeliverySemantics;
  readonly replay: ReplayMode;
  readonly flowMode: FlowMode;
  /** Credits mode only (0 otherwise). */
  readonly initialCreditsMessages: number;
  /** Credits mode only (0 otherwise). */
  readonly initialCreditsBytes: number;
  /** Window mode only (0 otherwise): packets past lastAck + window wait. */
  readonly windowMessages: number;
  readonly maxInFlight: number;
  readonly pausePct: number;
  readonly resumePct: number;
  readonly maxUnacked: number;
  readonly maxPartitions: number;
  /** Fields whose value was not understood and fell back to the default, e.g. `ordering=fifo`. */
  readonly fallbacks: readonly string[];
}

export const defaultFlowBufferLimits: Readonly<FlowBufferLimits> = {
  maxMessages: 100,
  maxBytes: 10 * 1024 * 1024,
};

export const DEFAULT_MAX_UNACKED = 10_000;
export const DEFAULT_MAX_PARTITIONS = 4_096;

const ORDERINGS: readonly OrderingMode[] = ['none', 'per_stream', 'per_partition'];
const SEMANTICS: readonly DeliverySemantics[] = ['best_effort', 'at_least_once'];
const REPLAYS: readonly ReplayMode[] = ['none', 'memory', 'durable'];
const FLOW_MODES: readonly FlowMode[] = ['none', 'credits', 'window'];

/** Resolves a story's delivery settings against the step's buffer limits. Throws ConfigError on bad numbers. */
export function normalizeDeliveryConfig(
  input: DeliveryConfigInput = {},
  bufferLimits: FlowBufferLimits = defaultFlowBufferLimits,
): DeliveryConfig {
  const fallbacks: string[] = [];
  let ordering = pickMode('ordering', input.ordering, ORDERINGS, 'none', fallbacks);
  let semantics = pickMode('semantics', input.semantics, SEMANTICS, 'best_effort', fallbacks);
  const replay = pickMode('replay', input.replay, REPLAYS, 'none', fallbacks);
  const flowMode = pickMode('flowMode', input.flowMode, FLOW_MODES, 'none', fallbacks);

  // Replay only makes sense when packets are kept until acked, and acks need sequences.
  if (replay !== 'none') semantics = 'at_least_once';
  if (semantics === 'at_least_once' && ordering === 'none') ordering = 'per_stream';

  const creditsMessages = count('initialCreditsMessages', input.initialCreditsMessages, 0);
  const creditsBytes = count('initialCreditsBytes', input.initialCreditsBytes, 0);
  const limitMessages =
    bufferLimits.maxMessages > 0 ? bufferLimits.maxMessages : defaultFlowBufferLimits.maxMessages;
  const limitBytes = bufferLimits.maxBytes > 0 ? bufferLimits.maxBytes : defaultFlowBufferLimits.maxBytes;

  const pausePct = percent('pausePct', input.pausePct, 0);
  let resumePct = percent('resumePct', input.resumePct, 0);
  // Without a gap between the two thresholds the hub would flap PAUSE/RESUME on every packet.
  if (pausePct > 0 && (resumePct <= 0 || resumePct >= pausePct)) resumePct = pausePct * 0.5;
  if (pausePct === 0) resumePct = 0;

  return {
    ordering,
    semantics,
    replay,
    flowMode,
    initialCreditsMessages: flowMode === 'credits' ? creditsMessages || limitMessages : 0,
    initialCreditsBytes: flowMode === 'credits' ? creditsBytes || limitBytes : 0,
    windowMessages: flowMode === 'window' ? creditsMessages || Math.max(bufferLimits.maxMessages, 1) : 0,
    maxInFlight: count('maxInFlight', input.maxInFlight, 0),
    pausePct,
    resumePct,
    maxUnacked: positive('maxUnacked', input.maxUnacked, DEFAULT_MAX_UNACKED),
    maxPartitions: positive('maxPartitions', input.maxPartitions, DEFAULT_MAX_PARTITIONS),
    fallbacks,
  };
}

function pickMode<M extends string>(
  field: string,
  value: string | undefined,
  known: readonly M[],
  fallback: M,
  fallbacks: string[],
): M {
  if (value === undefined) return fallback;
  const normalised = value.trim().toLowerCase();
  if (normalised === '') return fallback;
  const match = known.find((mode) => mode === normalised);
  if (match !== undefined) return match;
  fallbacks.push(`${field}=${value}`);
  return fallback;
}

function count(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(`hub.delivery.${field}`, `must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  const n = count(field, value, fallback);
  if (n === 0) throw new ConfigError(`hub.delivery.${field}`, 'must be at least 1');
  return n;
}

function percent(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw new ConfigError(
      `hub.delivery.${field}`,
      `must be a percentage from 0 to 100, got ${String(value)}`,
    );
  }
  return value;
}
