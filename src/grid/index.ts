// weft/grid: node-to-node RPC and streams over one multiplexed WebSocket per pair of
// nodes, with MinIO grid semantics.
//
// A `Manager` per node holds one `Connection` per peer. Exactly one side of each pair
// dials; the handshake (a challenge and response with a nonce from each side) proves
// both hold the cluster secret, for that exchange only. Over that one socket run any
// number of single requests (bytes in, bytes out, with a deadline) and streams (an
// initial payload, then items both ways). Streams are flow-controlled per item with
// credits ("mux" = one multiplexed stream; "credit" = permission to send one item), so
// the connection's reader never blocks and a slow consumer only slows its own stream.
// When a socket dies, every call bound to it fails with `DisconnectedError` and every
// handler's signal aborts; nothing is replayed, callers retry. The wire format is in
// docs/wire/grid.md.

export { Manager, MAX_GRID_HOSTS } from './manager.ts';
export { handshakeTranscript, hmacAuth, MIN_SECRET_BYTES } from './auth.ts';
export { shouldDial } from './dial-direction.ts';
export { defaultGridLimits } from './config.ts';
export { subrouteId, joinRoute } from './subroute.ts';
export { callerFault } from './handler-registry.ts';
export { defineSingle, defineStream, msgpackCodec } from './typed.ts';
export { FIRST_USER_HANDLER, GRID_PATH, PROTOCOL_VERSION } from './protocol.ts';
export {
  DisconnectedError,
  FrameTooLargeError,
  HandshakeRefusedError,
  IncorrectSequenceError,
  ProtocolError,
  REFUSAL_REASONS,
  RemoteError,
  UnknownHandlerError,
} from './errors.ts';

export * from '../internal/public-errors.ts';
export type { ManagerOptions, ManagerStats } from './manager.ts';
export type {
  ConnectionState,
  ConnectionStats,
  FrameChecksum,
  GridConnection,
  RequestOptions,
} from './grid-connection.ts';
export type { Logger } from './logger.ts';
export type { Msgpackable } from './msgpack-value.ts';
export type { GridStream, StreamOptions } from './client-stream.ts';
export type { StatelessGridStream, StatelessStreamOptions } from './stateless-stream.ts';
export type { GridAuth, HandshakeClaims, HandshakeParty, HandshakeRole } from './auth.ts';
export type { GateRefusal } from './handshake-gate.ts';
export type { GridLimits } from './config.ts';
export type {
  RegisterOptions,
  SingleHandler,
  SingleHandlerContext,
  StreamHandler,
  StreamHandlerContext,
} from './handler-registry.ts';
export type { RefusalReason } from './errors.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { CallOptions } from '../internal/deadline.ts';
export type {
  Codec,
  CodecOption,
  DefinitionOptions,
  SingleDefinition,
  SingleDefinitionOptions,
  StreamDefinition,
  StreamDefinitionOptions,
  TypedStream,
  TypedStreamContext,
} from './typed.ts';
