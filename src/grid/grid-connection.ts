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
  /**
   * `clock.now()` of the last connection pong, or of the socket's start until its first pong;
   * undefined before the first socket.
   */
  readonly lastPongAt: number | undefined;
  /** The round trip of the last connection ping, in ms; undefined before the first pong. */
  readonly rttMs: number | undefined;
  /** Sockets established after the first. */
  readonly reconnects: number;
  /**
   * Messages from the peer that broke the protocol beyond one stream, each of which reset the
   * socket: a frame that does not decode or comes out of place (a stream opened twice, a
   * Connect after the handshake), or a WebSocket frame that `ws` refuses to read (bad framing,
   * a text message that is not UTF-8, too many fragments). Messages over `maxFrameBytes` are
   * counted apart, in `messagesTooLargeIn`.
   */
  readonly protocolErrors: number;
  /**
   * Messages from the peer larger than `maxFrameBytes`: each closed the socket (1009). A peer
   * with a larger limit than this node's sends them too, so a rising count may mean the two
   * are configured apart rather than that the peer is broken.
   */
  readonly messagesTooLargeIn: number;
  /**
   * Streams refused or ended because the peer broke the stream protocol, either side, stateless
   * streams included: an item or a credit beyond the window, a wrong sequence number, input the
   * handler takes none of, an item with neither a payload nor EOF, a bad open. The connection
   * stays up.
   */
  readonly streamProtocolErrors: number;
  /**
   * Requests from the peer answered `WEFT_GRID_UNKNOWN_HANDLER`: no single handler is
   * registered here under their handler id (and subroute).
   */
  readonly requestsUnknownHandler: number;
  /**
   * Streams and stateless streams from the peer refused with `WEFT_GRID_UNKNOWN_HANDLER`: no
   * stream handler is registered here under their handler id (and subroute).
   */
  readonly streamsUnknownHandler: number;
  /** Requests refused here, never sent, because `maxOutgoingRequests` were in flight. */
  readonly requestsRefusedOut: number;
  /** Requests from the peer answered `WEFT_CAPACITY_EXCEEDED`: `maxIncomingRequests` were being served. */
  readonly requestsRefusedIn: number;
  /**
   * Streams refused here, never opened, because `maxStreams` were open to the peer; stateless
   * streams, which are counted apart under the same limit, included.
   */
  readonly streamsRefusedOut: number;
  /** Streams from the peer answered `WEFT_CAPACITY_EXCEEDED`: `maxStreams` were being served. */
  readonly streamsRefusedIn: number;
  /** Frames refused because the send queue was full. */
  readonly framesRefused: number;
  /** Frames dropped unsent because their socket died. */
  readonly framesDropped: number;
  /**
   * Responses that arrived after their call had ended, and results of requests served here that
   * nobody waits for: past their deadline, after their socket died, or cancelled by the caller.
   */
  readonly lateResults: number;
  /** Text messages from the peer, which the grid ignores. */
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
