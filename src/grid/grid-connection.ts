// What an application sees of the link to one peer. The implementation (connection.ts)
// also takes sockets and redials; those parts are the Manager's business, not the caller's.

import type { CallOptions } from '../internal/deadline.ts';
import type { GridStream, StreamOptions } from './client-stream.ts';
import type { StatelessGridStream, StatelessStreamOptions } from './stateless-stream.ts';

export type ConnectionState = 'unconnected' | 'connecting' | 'connected' | 'connection-error' | 'shutdown';

export interface RequestOptions extends CallOptions {
  /** Reach the handler on a static subroute (a 32-byte id from `subrouteId`). */
  readonly subroute?: Uint8Array | undefined;
}

export interface ConnectionStats {
  readonly state: ConnectionState;
  /** The peer's node id (hex) on the current or last socket. */
  readonly remoteNodeId: string | undefined;
  readonly streamsIn: number;
  readonly streamsOut: number;
  /** Stateless streams held open from this side (open or waiting for a socket). */
  readonly statelessStreamsOut: number;
  readonly requestsIn: number;
  readonly requestsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** `clock.now()` of the last connection pong, undefined before the first. */
  readonly lastPongAt: number | undefined;
  readonly rttMs: number | undefined;
  /** Sockets established after the first. */
  readonly reconnects: number;
  readonly protocolErrors: number;
  /** Frames refused because the send queue was full. */
  readonly framesRefused: number;
  /** Frames dropped unsent because their socket died. */
  readonly framesDropped: number;
  /**
   * Responses that arrived after their call had ended, and handler results past their deadline
   * or of requests the caller cancelled.
   */
  readonly lateResults: number;
  /** Text messages and other traffic ignored. */
  readonly ignoredMessages: number;
}

/**
 * 'auto': a CRC on every frame unless both hosts are https (TLS already guards the bytes), as
 * MinIO does; 'always'; 'never', for links trusted not to corrupt data, where the checksum is
 * the largest single cost per frame. Receivers check a CRC whenever a frame carries one, so
 * nodes with different settings interoperate.
 */
export type FrameChecksum = 'auto' | 'always' | 'never';

export interface GridConnection {
  /** This node's host URL. */
  readonly local: string;
  /** The peer's host URL. */
  readonly remote: string;
  /** True if this side dials the peer (the dial rule of docs/wire/grid.md §2). */
  readonly dials: boolean;
  state(): ConnectionState;
  /**
   * Resolves once connected. Rejects with `DeadlineExceededError` after `timeoutMs`, with
   * `CancelledError` when `signal` aborts, with `ClosedError` on shutdown, and (dialling
   * side) with the peer's `HandshakeRefusedError` while it refuses for a reason that needs
   * an operator (bad-token, unknown-host, …).
   */
  waitForConnect(options?: CallOptions): Promise<void>;
  stats(): ConnectionStats;
  /** One request, one response: see docs/grid.md. */
  request(
    handler: number,
    payload: Uint8Array | undefined,
    options?: RequestOptions,
  ): Promise<Uint8Array | undefined>;
  /** Opens a flow-controlled stream to `handler`. */
  openStream(handler: number, options?: StreamOptions): GridStream;
  /** Opens a stateless stream (responses only, no credits, reopened after reconnects). */
  openStatelessStream(handler: number, options?: StatelessStreamOptions): StatelessGridStream;
}
