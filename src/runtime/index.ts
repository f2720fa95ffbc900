// weft/runtime: the engine that runs StateFun functions without Flink. Functions written with
// `weft/statefun` run in this process; functions written with any StateFun SDK run behind their
// HTTP endpoints. One batch in flight per address, the batch's effects and the consumption of
// its messages committed in one store transaction (so user code may run twice, its effects
// apply once), durable delayed messages, TTL'd state, ingress (HTTP, NATS JetStream, NATS
// core) acknowledged once durable, egress delivered at least once from an outbox.
//
// `Runtime.open({ dataDir | store, functions, endpoints, ingress, egress })` starts one; state
// lives in lmdb (embedded default), PostgreSQL (`PostgresStateStore`, for clusters) or memory.

export { Runtime } from './runtime.ts';
export { DEFAULT_PARK_BACKOFF } from './runtime-limits.ts';
export {
  UnknownFunctionTypeError,
  InvocationFailedError,
  InvalidReplyError,
  EndpointError,
  FencedError,
  OwnerUnavailableError,
} from './errors.ts';
export { DEFAULT_PARTITIONS, fnv1a32, partitionOf } from './cluster/partition.ts';
export { ClusterRuntime } from './cluster/cluster-runtime.ts';
export { ForwardingInput } from './cluster/forwarding-input.ts';
export { PartitionOwnership } from './cluster/partition-ownership.ts';
export { FORWARD_HANDLER, WAKE_HANDLER, MalformedForwardError } from './cluster/forward-codec.ts';

export { MemoryStateStore } from './store/memory-store.ts';
export { LmdbStateStore } from './store/lmdb-store.ts';
export { PostgresStateStore, POSTGRES_SCHEMA_VERSION } from './store/postgres-store.ts';
export { DEFAULT_DEDUP_WINDOW_MS } from './store/state-store.ts';

export { httpIngressHandler, IDEMPOTENCY_KEY_HEADER } from './ingress/http-ingress.ts';
export { JetStreamIngress } from './ingress/jetstream-ingress.ts';
export { NatsCoreIngress } from './ingress/nats-core-ingress.ts';
export { MESSAGE_TYPE_HEADER, ID_HEADER } from './ingress/subject-routes.ts';

export { InProcessSink } from './egress/in-process-sink.ts';
export { NatsCoreSink } from './egress/nats-core-sink.ts';
export { JetStreamSink } from './egress/jetstream-sink.ts';
export {
  KafkaRecordSink,
  KinesisRecordSink,
  MappedRecordSink,
  KAFKA_KEY_HEADER,
  KINESIS_PARTITION_KEY_HEADER,
  KINESIS_EXPLICIT_HASH_KEY_HEADER,
} from './egress/mapped-record-sink.ts';
export { WebhookSink } from './egress/webhook-sink.ts';
export { EgressDeliveryError, MalformedEgressRecordError } from './egress/egress-errors.ts';

export * from '../internal/public-errors.ts';
export type {
  RuntimeOptions,
  RuntimeIngressOptions,
  RuntimeLogger,
  BatchEvent,
  FailureEvent,
} from './runtime.ts';
export type { RuntimeLimits } from './runtime-limits.ts';
export type { RuntimeStats } from './runtime-stats.ts';
export type { RuntimeInput } from './runtime-input.ts';
export type { ClusterRuntimeOptions, ClusterRuntimeStats } from './cluster/cluster-runtime.ts';
export type {
  ClusterView,
  LeaseTable,
  OwnershipStats,
  PartitionOwnershipOptions,
} from './cluster/partition-ownership.ts';
export type { ForwardingInputOptions, ForwardingStats, GridRequest } from './cluster/forwarding-input.ts';
export type { WakeStats } from './cluster/wake-sender.ts';
export type { RuntimePlacement } from './cluster/runtime-placement.ts';
export type { RegistrationEvent } from './batch-runner.ts';
export type { RegistrationConflict, ValueRegistration, ValueRegistryStats } from './value-registry.ts';
export type {
  StateStore,
  StoredAddress,
  PartitionFence,
  PartitionLease,
  StoredValue,
  Envelope,
  InboxMessage,
  Appended,
  StateEntry,
  StateMutation,
  ExpiryRefresh,
  DelayedMessage,
  TimerOperation,
  EgressRecord,
  OutboxRecord,
  BatchEffects,
  StoreCounts,
  SweepResult,
} from './store/state-store.ts';
export type { MemoryStateStoreOptions } from './store/memory-store.ts';
export type { LmdbStateStoreOptions } from './store/lmdb-store.ts';
export type {
  PostgresStateStoreOptions,
  PartitionScope,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryable,
} from './store/postgres-store.ts';
export type { EndpointSpec } from './remote/endpoint-config.ts';
export type { RemoteRetryEvent } from './remote/remote-invoker.ts';
export type { HttpIngressOptions, HttpIngressStats, HttpIngressHandler } from './ingress/http-ingress.ts';
export type { JetStreamIngressOptions, JetStreamIngressStats } from './ingress/jetstream-ingress.ts';
export type { NatsCoreIngressOptions, NatsCoreIngressStats } from './ingress/nats-core-ingress.ts';
export type { SubjectRoute } from './ingress/subject-routes.ts';
export type { IngressLogger } from './ingress/ingress-logger.ts';
export type { NatsConnectionLike } from './nats-connection.ts';
export type { EgressSink } from './egress/egress-sink.ts';
export type { EgressCallback } from './egress/in-process-sink.ts';
export type { NatsCoreSinkOptions } from './egress/nats-core-sink.ts';
export type { JetStreamSinkOptions, JetStreamSinkStats } from './egress/jetstream-sink.ts';
export type {
  KafkaRecordSinkOptions,
  KinesisRecordSinkOptions,
  MappedRecordSinkOptions,
  MappedRecordSinkStats,
  RecordDestination,
} from './egress/mapped-record-sink.ts';
export type { SubjectOption } from './egress/nats-subject.ts';
export type { HeaderField } from './egress/header-value.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { BackoffPolicy, BackoffKind } from '../internal/backoff.ts';
export type { Logger } from '../internal/log-safely.ts';
export type { WebhookSinkOptions } from './egress/webhook-sink.ts';
export type { OutboxDrainerStats } from './egress/outbox-drainer.ts';
export type { EgressFailureEvent, EgressLogger } from './egress/egress-diagnostics.ts';
