// What a checkpoint holds, and the storage contract behind it.
//
// A checkpoint is the delivery state of one stream key (`ns/run/step`) at a moment: the
// cumulative acks and the packets sent but not yet acked, so a restarted hub can replay them.

/** One sent-but-unacked packet. `packet` is the encoded DataPacket, kept as bytes. */
export interface PendingRecord {
  readonly seq: bigint;
  /** "" when the stream is not partitioned. */
  readonly partition: string;
  readonly packet: Uint8Array;
}

export interface Checkpoint {
  readonly streamKey: string;
  /** Cumulative ack of the unpartitioned sequence (partition ""). */
  readonly lastAck: bigint;
  /** Cumulative ack per partition. */
  readonly partitionAcks: ReadonlyMap<string, bigint>;
  /** In replay order: by partition, then seq. */
  readonly pending: readonly PendingRecord[];
  /** Wall time of the write; retention is measured from it, across restarts. */
  readonly updatedAtWallMs: number;
}

/** A checkpoint as read back: records whose bytes were damaged are left out and counted. */
export interface LoadedCheckpoint extends Checkpoint {
  readonly corruptRecords: number;
}

/**
 * Where checkpoints live. One checkpoint per stream key; `save` replaces it whole.
 * `load` rejects with `CheckpointCorruptError` when the checkpoint as a whole is unreadable
 * (damaged header, unknown format version); a damaged pending record is only left out.
 */
export interface CheckpointStore {
  load(streamKey: string): Promise<LoadedCheckpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
  /** Resolves also when there was nothing to delete. */
  delete(streamKey: string): Promise<void>;
  /** Every stream key with a checkpoint, in no particular order. */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

/** The cumulative ack that covers `partition`: "" is also acked by the bare `lastAck`. */
export function ackOfPartition(
  checkpoint: Pick<Checkpoint, 'lastAck' | 'partitionAcks'>,
  partition: string,
): bigint {
  const ack = checkpoint.partitionAcks.get(partition) ?? 0n;
  return partition === '' && checkpoint.lastAck > ack ? checkpoint.lastAck : ack;
}
