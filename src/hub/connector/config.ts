// The connector's options, their defaults and their checks.

import type { ChannelCredentials } from '@grpc/grpc-js';

import type { Clock } from '../../internal/clock.ts';
import { ConfigError } from '../../internal/errors.ts';
import type { HubGridTarget } from '../grid/connector-transport.ts';

export interface ReconnectConfig {
  /** Wait before the first reconnect after a retryable end; doubles per failure. */
  readonly initialDelayMs: number;
  /** No wait exceeds this (jitter included). */
  readonly maxDelayMs: number;
}

export interface HubConnectorOptions {
  /** `host:port` of the hub's gRPC port. Give this or `grid`. */
  readonly address?: string;
  /** Default: insecure. gRPC only. */
  readonly credentials?: ChannelCredentials;
  /**
   * For a step inside the Weft cluster: reach the hub over a grid stream, from this node's
   * `manager` to the hub's node (its grid host URL), where `serveHubOnGrid` serves it. Give
   * this or `address`.
   */
  readonly grid?: HubGridTarget;
  /** Story run namespace (`storyrun-namespace`). */
  readonly namespace: string;
  /** Story run name (`storyrun-name`). */
  readonly run: string;
  /** This connector's step (`current-step-id`). */
  readonly step: string;
  /** `connector-generation`, a positive int32; a higher one takes over the step's stream. */
  readonly generation?: number;
  /** `story-name`, for a run the hub was not told of. */
  readonly story?: string;
  /** Packets sent and not yet acknowledged by the hub; `send` waits past this. Default 1000. */
  readonly maxUnacked?: number;
  /**
   * Packets received and not yet acked; the SDK stops reading from the hub past this. That also
   * stops it reading the acks of its own sends, so a step that acks its input only once its
   * output is acknowledged needs this above what the hub sends unacked (the story's maxInFlight
   * per partition, times its partitions). Default 10,000.
   */
  readonly maxUnackedReceived?: number;
  /** `send` calls waiting for room at once; one more is refused. Default 10,000. */
  readonly maxWaitingSends?: number;
  /** Partitions tracked per direction; the oldest is forgotten past this. Default 10,000. */
  readonly maxPartitions?: number;
  /** Ack messages also grant that many message credits (for a step whose flow mode is `credits`). Default false. */
  readonly grantCredits?: boolean;
  readonly reconnect?: ReconnectConfig;
  /** How long `close()` waits for the hub to end the stream after the half-close before cancelling it. Default 2000. */
  readonly closeGraceMs?: number;
  readonly clock?: Clock;
  /** Jitter source for reconnect delays, in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export const defaultConnectorConfig = {
  maxUnacked: 1000,
  maxUnackedReceived: 10_000,
  maxWaitingSends: 10_000,
  maxPartitions: 10_000,
  grantCredits: false,
  closeGraceMs: 2_000,
  reconnect: { initialDelayMs: 100, maxDelayMs: 10_000 },
} as const;

const MAX_INT32 = 2 ** 31 - 1;

export function verifyConnectorOptions(options: HubConnectorOptions): void {
  const grid = options.grid;
  if (grid === undefined) {
    if (typeof options.address !== 'string' || options.address === '') {
      throw new ConfigError('connector.address', 'is required (or grid)');
    }
  } else {
    if (options.address !== undefined) {
      throw new ConfigError('connector.grid', 'cannot be given with address: the hub is reached one way');
    }
    if (typeof grid.node !== 'string' || grid.node === '') {
      throw new ConfigError('connector.grid.node', "is required: the hub node's grid host URL");
    }
    // Throws a ConfigError naming the host when it is not a peer of the manager.
    grid.manager.connection(grid.node);
    const window = grid.window;
    if (window !== undefined && !(Number.isSafeInteger(window) && window > 0)) {
      throw new ConfigError('connector.grid.window', `must be a positive integer, got ${String(window)}`);
    }
  }
  for (const field of ['namespace', 'run', 'step'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') {
      throw new ConfigError(`connector.${field}`, 'is required');
    }
  }
  const generation = options.generation;
  if (
    generation !== undefined &&
    !(Number.isSafeInteger(generation) && generation > 0 && generation <= MAX_INT32)
  ) {
    throw new ConfigError(
      'connector.generation',
      `must be an integer in [1, 2^31-1], got ${String(generation)}`,
    );
  }
  for (const field of ['maxUnacked', 'maxUnackedReceived', 'maxWaitingSends', 'maxPartitions'] as const) {
    const value = options[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw new ConfigError(`connector.${field}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  const grace = options.closeGraceMs;
  if (grace !== undefined && !(Number.isFinite(grace) && grace >= 0)) {
    throw new ConfigError('connector.closeGraceMs', `must be a number >= 0, got ${String(grace)}`);
  }
  const reconnect = options.reconnect;
  if (reconnect !== undefined) {
    for (const field of ['initialDelayMs', 'maxDelayMs'] as const) {
      const value = reconnect[field];
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new ConfigError(`connector.reconnect.${field}`, `must be a number >= 0, got ${String(value)}`);
      }
    }
    if (reconnect.maxDelayMs < reconnect.initialDelayMs) {
      throw new ConfigError('connector.reconnect.maxDelayMs', 'must be at least initialDelayMs');
    }
  }
}
