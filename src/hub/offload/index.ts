// Offload and materialize: large packet data travels as a blob reference, and is put back
// before delivery to a step that needs it inline.
//
// `offloadPacket` moves frame bytes (binary/audio/video) and payload JSON larger than a threshold
// into a `BlobStore` and leaves `weft-offloaded-*` metadata markers in their place;
// `materializePacket` restores them, checking every byte against the reference's sha256 and the
// declared size. References (`weft-blob://sha256/<hex>`) arrive in packets and are parsed
// strictly. Stores are content-addressed and reference-counted, bounded in bytes and blobs, and
// refuse rather than evict when full. For templates that need offloaded step outputs, the hub
// asks a materialize step instead (`buildMaterializeRequest` / `parseMaterializeReply`), reusing a
// materialize run only for its own story run and target (`MaterializeRuns`).

export {
  BLOB_REF_LENGTH,
  BLOB_REF_PREFIX,
  blobRefOf,
  formatBlobRef,
  isBlobRef,
  parseBlobRef,
  sha256Hex,
} from './blob-ref.ts';
export { defaultBlobStoreLimits } from './blob-store.ts';
export {
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
} from './errors.ts';
export { CountedBlobStore } from './counted-blob-store.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export {
  buildMaterializeRequest,
  DEFAULT_MAX_MATERIALIZE_INPUT_BYTES,
  MATERIALIZE_MODE_OBJECT,
  MATERIALIZE_NEXT_STEP_KEY,
  materializeStepId,
  parseMaterializeReply,
} from './materialize-request.ts';
export { defaultMaterializeRunsConfig, MaterializeRuns } from './materialize-runs.ts';
export { MemoryBlobStore } from './memory-blob-store.ts';
export {
  hasOffloadMarkers,
  OFFLOADED_BYTES_KEY,
  OFFLOADED_FIELD_KEY,
  OFFLOADED_PAYLOAD_BYTES_KEY,
  OFFLOADED_PAYLOAD_REF_KEY,
  OFFLOADED_REF_KEY,
  offloadMarkerKeys,
  parseOffloadMarkers,
  stripOffloadMarkers,
} from './offload-markers.ts';
export { materializePacket, offloadedRefsOf, offloadPacket } from './offload-packet.ts';

export type { BackendRead, BlobBackend, ExistingBlob } from './counted-blob-store.ts';
export type {
  BlobGetOptions,
  BlobPutOptions,
  BlobStore,
  BlobStoreLimits,
  BlobStoreStats,
} from './blob-store.ts';
export type { FsBlobStoreOptions } from './fs-blob-store.ts';
export type { MaterializeReply, MaterializeRequestInput } from './materialize-request.ts';
export type {
  MaterializeRun,
  MaterializeRunOwner,
  MaterializeRunsConfig,
  MaterializeRunsStats,
} from './materialize-runs.ts';
export type { OffloadedField, OffloadedFrameField, OffloadedPart, ParsedMarkers } from './offload-markers.ts';
export type {
  MaterializeOptions,
  MaterializeResult,
  OffloadOptions,
  OffloadResult,
} from './offload-packet.ts';
