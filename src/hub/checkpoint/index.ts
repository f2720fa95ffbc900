// Durable checkpoints of unacked packets, so a restarted hub replays what it had sent but not
// seen acked.
//
// A `Checkpointer` writes the state of each changed stream key (`ns/run/step`) once per interval
// (1 s) to a `CheckpointStore`: lmdb in a data directory by default, or memory. Invariants: a
// failed write is retried at the next interval; at most `maxPending` packets per key are kept;
// loading never throws and never returns a record already acked, a damaged record, or a
// checkpoint past retention. The stored form is compact binary with one checksum per record, so
// one damaged record costs that record only.

export { ackOfPartition } from './checkpoint.ts';
export {
  CHECKPOINT_FORMAT_VERSION,
  decodeCheckpoint,
  encodeCheckpoint,
  MAX_PARTITION_BYTES,
  MAX_STREAM_KEY_BYTES,
} from './codec.ts';
export { Checkpointer, defaultCheckpointerConfig } from './checkpointer.ts';
export {
  CheckpointCorruptError,
  CheckpointStoreClosedError,
  CheckpointStoreFullError,
  InvalidCheckpointError,
} from './errors.ts';
export { LmdbCheckpointStore } from './lmdb-store.ts';
export { MemoryCheckpointStore } from './memory-store.ts';

export type { Checkpoint, CheckpointStore, LoadedCheckpoint, PendingRecord } from './checkpoint.ts';
export type {
  CheckpointerConfig,
  CheckpointerOptions,
  CheckpointerStats,
  CheckpointSnapshot,
} from './checkpointer.ts';
export type { LmdbCheckpointStoreOptions } from './lmdb-store.ts';
export type { MemoryCheckpointStoreOptions } from './memory-store.ts';
