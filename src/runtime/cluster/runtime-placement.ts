// What a runtime on one node of a cluster asks about placement: whether it runs an address now
// and under which lease, and whom to tell about messages it stored for addresses it does not run.
// `PartitionOwnership` (partition-ownership.ts) answers it.

import type { PartitionFence, StoredAddress } from '../store/state-store.ts';

export interface RuntimePlacement {
  /**
   * The lease under which this node runs `address` now, taken before its inbox and state are
   * read and carried by the batch's commit; undefined when another node owns it.
   */
  fenceFor(address: StoredAddress): PartitionFence | undefined;
  /** A message was stored for `target`, which another node runs: that node is to be woken. */
  storedElsewhere(target: StoredAddress): void;
  /** A commit was refused because these partitions' leases had moved on. */
  fenced(partitions: readonly number[]): void;
}
