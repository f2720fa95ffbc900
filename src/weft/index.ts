// weft: a runtime for distributed, stateful, streaming services on Node.js.
//
// The package is a set of modules, each imported by its own subpath:
//
//   weft/grid      node-to-node RPC and streams over one WebSocket per pair of nodes
//   weft/views     materialized views over event streams, with blocking queries and SSE
//   weft/statefun  stateful functions, wire-compatible with Apache Flink StateFun
//   weft/runtime   the engine that runs those functions, embedded and durable
//   weft/testing   a fake clock, a test grid and service gates for your own tests
//
// This root entry holds what they share: every error class a Weft call can throw (each
// module exports its own as well), and the package version. Errors carry a stable `code`
// and a `retryable` verdict; docs/errors.md lists every code.

import { createRequire } from 'node:module';

export * from '../internal/public-errors.ts';
export {
  DisconnectedError,
  FrameTooLargeError,
  HandshakeRefusedError,
  IncorrectSequenceError,
  ProtocolError,
  RemoteError,
  UnknownHandlerError,
} from '../grid/index.ts';
export {
  FunctionFailedError,
  InvalidRequestError,
  InvalidTypeNameError,
  UnknownFunctionError,
  ValueTypeError,
} from '../statefun/index.ts';
export {
  EntryEvictingError,
  EventStreamError,
  EventTooLargeError,
  MaterializerStoppedError,
  SubscriberTooSlowError,
  UnauthorizedError,
  UnknownTopicError,
  ViewStaleError,
} from '../views/index.ts';

export {
  BlobTooLargeError,
  CascadeCooldownError,
  CascadeExhaustedError,
  FailureShortCircuitError,
  CoordBusyError,
  CoordMessageTooLargeError,
  DigestMismatchError,
  InvalidDigestError,
  InvalidOriginRequestError,
  InvalidRangeError,
  OriginFetchError,
  MalformedCoordRequestError,
  NoOriginError,
  PeerFetchError,
} from '../coord/index.ts';
export {
  CheckpointCorruptError,
  CheckpointStoreClosedError,
  CheckpointStoreFullError,
  ChunkBudgetExceededError,
  ChunkInvalidError,
  InvalidBufferInputError,
  InvalidCheckpointError,
  InvalidConnectorGenerationError,
  InvalidFlowInputError,
  InvalidHubRegistrationError,
  InvalidHubRequestError,
  InvalidStreamKeyError,
  PartitionLimitError,
  StoryLoadError,
  StoryValidationError,
  UndecodableHubMessageError,
  UnknownStepError,
  OffloadBlobCorruptError,
  OffloadBlobNotFoundError,
  OffloadStoreClosedError,
  OffloadStoreFullError,
  OffloadBlobTooLargeError,
  InvalidBlobRefError,
  InvalidMaterializeMessageError,
  InvalidOffloadMarkerError,
  MaterializeRunLimitError,
  MaterializeRunNotOwnedError,
  ConnectorClosedError,
  ConnectorRefusedError,
  ConnectorSendQueueFullError,
  HubStatusError,
} from '../hub/index.ts';
export {
  EgressDeliveryError,
  EndpointError,
  FencedError,
  OwnerUnavailableError,
  InvalidReplyError,
  InvocationFailedError,
  MalformedEgressRecordError,
  UnknownFunctionTypeError,
} from '../runtime/index.ts';

export type { WeftErrorOptions } from '../internal/errors.ts';
export type { ExhaustedReason, FailureClass } from '../coord/index.ts';
export type { RefusalReason } from '../grid/index.ts';
export type { ChunkBudget, ChunkInvalidReason, StoryProblem, WireFailure } from '../hub/index.ts';

/** The version of this package, as its package.json says. */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/** The package's modules, by import subpath. */
export const MODULES = [
  'weft/grid',
  'weft/views',
  'weft/statefun',
  'weft/runtime',
  'weft/coord',
  'weft/testing',
] as const;
