// Limits and timings of a grid Manager, with their defaults and their check.

import { ConfigError } from '../internal/errors.ts';

export interface GridLimits {
  /** Largest WebSocket message accepted or sent (also `ws`'s maxPayload). */
  readonly maxFrameBytes: number;
  /** Encoded frames waiting for the socket, per connection; past it sends fail at once. */
  readonly maxQueuedBytes: number;
  /** Bytes handed to the socket but not yet written; past it the writer waits. */
  readonly writeHighWaterBytes: number;
  /** Open streams per connection and direction; past it a new stream is refused. */
  readonly maxStreams: number;
  /** Single requests being served per connection; past it a request is refused (retryable). */
  readonly maxIncomingRequests: number;
  /** Single requests in flight per connection from this side. */
  readonly maxOutgoingRequests: number;
  /**
   * Acceptor: time from TCP accept to an authenticated Connect, the upgrade included; a
   * socket's first HTTP request must also arrive within it. Dialler: time for the handshake.
   */
  readonly handshakeTimeoutMs: number;
  /** Handshakes under way at once; past it the oldest pending socket of the busiest source is dropped. */
  readonly maxPendingHandshakes: number;
  /** Handshakes under way from one source (an IPv4 address or an IPv6 /64); past it its oldest is dropped. */
  readonly maxPendingHandshakesPerSource: number;
  /** Accepted sockets that have not sent their first request; past it the oldest is dropped. */
  readonly maxSocketsAwaitingRequest: number;
  /** Largest accepted difference between the peer's wall clock and ours. */
  readonly maxClockSkewMs: number;
  /** Connection ping period; the peer is dead after `pongTimeoutMs` without a pong. */
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  /** A socket whose writes make no progress for this long is dead (blackholed peer). */
  readonly writeStallTimeoutMs: number;
  /** Caller-side stream ping period and the silence after which the stream fails. */
  readonly streamPingIntervalMs: number;
  readonly streamPongTimeoutMs: number;
  /** Handler side: a stream with no ping for this long is cancelled. */
  readonly handlerIdleTimeoutMs: number;
  /** Deadline of a single request when the caller gives none. */
  readonly defaultRequestTimeoutMs: number;
  /** Redial delay after a failed dial, drawn from [min, max). A dropped link redials at once. */
  readonly redialMinMs: number;
  readonly redialMaxMs: number;
}

/**
 * Items a stream buffers in each direction when neither `outCapacity` (caller) nor
 * `inCapacity` (handler) names a window: past the knee of the throughput curve measured
 * in docs/grid.md (Streams), and small enough that a stalled stream holds little. Windows
 * are per stream and side, not limits of the Manager.
 */
export const DEFAULT_STREAM_WINDOW = 32;

export const defaultGridLimits: Required<GridLimits> = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxQueuedBytes: 64 * 1024 * 1024,
  writeHighWaterBytes: 4 * 1024 * 1024,
  maxStreams: 10_000,
  maxIncomingRequests: 4_096,
  maxOutgoingRequests: 65_536,
  handshakeTimeoutMs: 5_000,
  maxPendingHandshakes: 256,
  maxPendingHandshakesPerSource: 16,
  maxSocketsAwaitingRequest: 4_096,
  maxClockSkewMs: 5 * 60_000,
  pingIntervalMs: 10_000,
  pongTimeoutMs: 20_000,
  writeStallTimeoutMs: 20_000,
  streamPingIntervalMs: 15_000,
  streamPongTimeoutMs: 30_000,
  handlerIdleTimeoutMs: 60_000,
  defaultRequestTimeoutMs: 60_000,
  redialMinMs: 1_000,
  redialMaxMs: 2_000,
};

/** Fills in defaults and checks every field; a bad one is a `ConfigError` naming it. */
export function resolveGridLimits(limits: Partial<GridLimits> = {}): Required<GridLimits> {
  const resolved = { ...defaultGridLimits, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`grid.limits.${name}`, `must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.pongTimeoutMs <= resolved.pingIntervalMs) {
    throw new ConfigError('grid.limits.pongTimeoutMs', 'must be longer than pingIntervalMs');
  }
  if (resolved.streamPongTimeoutMs <= resolved.streamPingIntervalMs) {
    throw new ConfigError('grid.limits.streamPongTimeoutMs', 'must be longer than streamPingIntervalMs');
  }
  if (resolved.redialMaxMs < resolved.redialMinMs) {
    throw new ConfigError('grid.limits.redialMaxMs', 'must be at least redialMinMs');
  }
  return resolved;
}
