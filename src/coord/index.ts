// weft/coord: decide which node of a cluster does a piece of work, so the cluster does it once
// (after Gantry's coord), and an OCI pull-through mirror built on it (docs/coord.md).
//
// - `hrwRank`/`hrwTopK`: rendezvous hashing, SHA-256(nodeId ‖ key), highest first.
// - `Membership`: the live members a node ranks on (`gridMembership`, `staticMembership`).
// - `InFlightMap`: who is fetching what, claimed atomically, with stall thresholds.
// - `NegativeCache`: what failed recently and must not be retried yet (local only).
// - `CoordServer`/`CoordClient`: the `intent` and `pleaseFetch` RPCs over grid handlers.
// - `ContentStore`: blobs on disk by digest, verified while written, evicted least recently used.
// - `ProviderDirectory`: who holds a key, announced to the key's top-K HRW nodes (one hop).
// - `Cascade`: Gantry's cold-start rules: serve, fetch from a peer, wait, fetch, or fall back.
// - `Mirror`: all of the above on a node's HTTP server, as a registry any OCI client pulls from.

export {
  hrwScore,
  hrwRank,
  hrwTopK,
  rankOf,
  compareScores,
  compareNodeIds,
  compareCandidates,
} from './hrw.ts';
export { gridMembership, staticMembership } from './membership.ts';
export { InFlightMap, isStalled, stallThresholdMs, defaultInFlightConfig } from './in-flight.ts';
export { NegativeCache, defaultNegativeCacheConfig } from './negative-cache.ts';
export { FAILURE_CLASSES, failureClassOfStatus, isFailureClass } from './failure-class.ts';
export { ContentStore, defaultContentStoreConfig } from './content-store.ts';
export { parseDigest, isDigest, DIGEST_HEX_LENGTHS } from './digest.ts';
export {
  BlobTooLargeError,
  DigestMismatchError,
  InvalidDigestError,
  InvalidOriginRequestError,
  InvalidRangeError,
  OriginFetchError,
  NoOriginError,
  PeerFetchError,
} from './errors.ts';
export { Mirror } from './mirror/mirror.ts';
export { MIRRORED_HEADER } from './mirror/peer-client.ts';
export { OriginClient, defaultOriginClientConfig, manifestMediaTypes } from './mirror/origin-client.ts';
export { parseOriginChallenge } from './mirror/bearer-challenge.ts';
export {
  CoordClient,
  CoordServer,
  CoordBusyError,
  CoordMessageTooLargeError,
  MalformedCoordRequestError,
  DEFAULT_COORD_TIMEOUT_MS,
  defaultCoordServerConfig,
} from './rpc/index.ts';

export * from './directory/index.ts';
export * from './cascade/index.ts';

export * from '../internal/public-errors.ts';
export type { HrwCandidate } from './hrw.ts';
export type { Membership } from './membership.ts';
export type {
  ClaimResult,
  FetchKind,
  InFlightConfig,
  InFlightEntry,
  InFlightHandle,
  InFlightStats,
  StartOptions,
} from './in-flight.ts';
export type {
  NegativeCacheConfig,
  NegativeCacheRecordEvent,
  NegativeCacheStats,
  RecentFailure,
  RecordFailureOptions,
  RecordFailureResult,
} from './negative-cache.ts';
export type { FailureClass } from './failure-class.ts';
export type {
  BlobSource,
  ByteRange,
  ContentStoreConfig,
  ContentStoreStats,
  WriteOptions,
  WriteResult,
} from './content-store.ts';
export type { DigestAlgorithm, ParsedDigest } from './digest.ts';
export type {
  FetchBlobRequest,
  FetchManifestRequest,
  FetchedBlob,
  FetchedManifest,
  ManifestHead,
  OriginClientConfig,
  OriginClientStats,
  OriginCredential,
  OriginTarget,
} from './mirror/origin-client.ts';
export type { ChallengeParseResult, OriginChallenge } from './mirror/bearer-challenge.ts';
export type {
  CoordClientOptions,
  CoordNode,
  CoordServerConfig,
  CoordServerStats,
  Fetcher,
  FetchOrder,
  IntentAnswer,
  PleaseFetchOutcome,
  PleaseFetchRequest,
  PleaseFetchResult,
} from './rpc/index.ts';
export type { MirrorOptions, MirrorStats } from './mirror/mirror.ts';
export type { ClusterContentStats } from './mirror/cluster-content.ts';
export type { FetchEvent, OriginFetcherStats } from './mirror/origin-fetcher.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { CallOptions } from '../internal/deadline.ts';
export type { Logger } from '../internal/log-safely.ts';
