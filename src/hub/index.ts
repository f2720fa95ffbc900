// weft/hub: a streaming packet hub between the steps of a pipeline ("story"), after the bubustack
// hub, with its known bugs fixed (docs/hub.md).
//
// - `Hub`: HubService.Process over gRPC; routes each step's packets to the steps after it.
// - `parseStory`/`loadStory`/`validateStory`: stories as DAGs of steps with per-step policies.
// - `StreamManager`: per stream key, the connector's stream, the buffer, delivery and flow,
//   blue-green handoff by connector generation.
// - `createMessageBuffer`, `DeliveryState`, `PauseController`: the buffer and flow state on their own.
// - `Checkpointer`, `LmdbCheckpointStore`, `MemoryCheckpointStore`: unacked packets kept across restarts.
// - `ChunkReassembler`, `checkProcessRequest`, `parseRegistration`: the wire's rules.
// - `HubConnector`: a step's connector in TypeScript (register, receive and ack, send, flow).
// - `FsBlobStore`, `offloadPacket`, `materializePacket`: large payloads travel as references.
// - `serveHubOnGrid`: in-cluster connectors reach the hub over a grid stream (handler 20).

export { Hub, STORY_NAME_KEY } from './hub.ts';
export { StreamManager, bufferReasons, defaultStreamManagerLimits } from './stream-manager.ts';
export { OutboundStream, defaultOutboundStreamConfig } from './outbound-stream.ts';
export { AckLedger } from './ack-ledger.ts';
export { streamOptionsOf } from './step-options.ts';
export {
  HUB_MAX_MESSAGE_BYTES,
  HUB_PROCESS_PATH,
  HUB_SERVICE_NAME,
  HubServiceClientConstructor,
  hubChannelOptions,
  hubServiceDefinition,
} from './wire/service.ts';
export {
  CONNECTOR_GENERATION_KEY,
  CURRENT_STEP_ID_KEY,
  STORYRUN_NAME_KEY,
  STORYRUN_NAMESPACE_KEY,
  parseRegistration,
} from './wire/registration.ts';
export { HEARTBEAT_METADATA_KEY, isHeartbeat, newHeartbeatPacket } from './wire/heartbeat.ts';
export { ChunkReassembler, defaultChunkReassemblerConfig } from './wire/reassembly.ts';
export { checkDataPacket, checkFlowControl, checkProcessRequest, wireLimits } from './wire/validate.ts';
export {
  ChunkBudgetExceededError,
  ChunkInvalidError,
  InvalidConnectorGenerationError,
  InvalidHubRegistrationError,
  InvalidHubRequestError,
  UndecodableHubMessageError,
  grpcStatusOf,
} from './wire/errors.ts';

export * from './story/index.ts';
export {
  createMessageBuffer,
  defaultMessageBufferConfig,
  resolveMessageBufferConfig,
  defaultRetryPolicy,
  fallbackRetryDelay,
  resolveRetryPolicy,
  retryDelayMs,
  dropReasons,
  isDropReason,
  isLane,
  InvalidBufferInputError,
} from './buffer/index.ts';
export type {
  AddResult,
  BufferEntry,
  Dropped,
  FlushOptions,
  LaneUsage,
  MessageBuffer,
  MessageBufferOptions,
  MessageBufferStats,
  SendPacket,
  LaneLimit,
  MessageBufferConfig,
  MessageBufferConfigInput,
  RetryBackoff,
  RetryPolicy as BufferRetryPolicy,
  DropReason,
} from './buffer/index.ts';
export {
  normalizeDeliveryConfig,
  defaultFlowBufferLimits,
  DEFAULT_MAX_UNACKED,
  DEFAULT_MAX_PARTITIONS,
  DeliveryState,
  PauseController,
  PartitionLimitError,
  InvalidFlowInputError,
} from './flow/index.ts';
export type {
  OrderingMode,
  DeliverySemantics,
  ReplayMode as DeliveryReplayMode,
  FlowMode as DeliveryFlowMode,
  DeliveryConfigInput,
  DeliveryConfig,
  FlowBufferLimits,
  FlowEnvelope,
  AssignOptions,
  FlowUpdate,
  FlowUpdateResult,
  UnackedPacket,
  DeliveryCheckpoint,
  SendBlock,
  DeliveryStats,
  PauseSignal,
  PauseThresholds,
  PauseControllerStats,
} from './flow/index.ts';
export * from './checkpoint/index.ts';
export * from './offload/index.ts';
export * from './connector/index.ts';
export * from './grid/index.ts';
export { REDELIVERED_METADATA_KEY } from './redelivered.ts';
export * from '../internal/public-errors.ts';

export type { ConnectorSession, HubCall, HubOptions, HubStats } from './hub.ts';
export type {
  AddStreamResult,
  BufferReason,
  Connection,
  HandoffEvent,
  HandoffPhase,
  OutboundEncoder,
  RoutedPacket,
  StreamManagerConfig,
  StreamManagerStats,
  StreamOptions,
} from './stream-manager.ts';
export type { OutboundStreamConfig, OutboundStreamStats, OutboundTransport } from './outbound-stream.ts';
export type { AckLedgerStats, AckTicket } from './ack-ledger.ts';
export { UndecodableRequest } from './wire/service.ts';
export type { HubServiceClient, HubServiceDefinition, IncomingRequest } from './wire/service.ts';
// The wire's messages, as @bufbuild/protobuf generates them from proto/transport/v1.
export { DataPacketSchema, ProcessRequestSchema, ProcessResponseSchema } from '../gen/transport/v1/hub_pb.ts';
export type { DataPacket, ProcessRequest, ProcessResponse } from '../gen/transport/v1/hub_pb.ts';
export { FlowControlSignal } from '../gen/transport/v1/transport_pb.ts';
export type {
  AudioFrame,
  BinaryFrame,
  FlowControl,
  PartitionAck,
  StreamEnvelope,
  TransportConfig,
  TransportDescriptor,
  VideoFrame,
} from '../gen/transport/v1/transport_pb.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { Logger } from '../internal/log-safely.ts';
export type { BackoffKind } from '../internal/backoff.ts';
export type { Registration, RegistrationCheck } from './wire/registration.ts';
export type { ChunkReassemblerConfig, ChunkReassemblerStats, ChunkResult } from './wire/reassembly.ts';
export type { RequestCheck } from './wire/validate.ts';
export type { ChunkBudget, ChunkInvalidReason, WireFailure, WireStatus } from './wire/errors.ts';
