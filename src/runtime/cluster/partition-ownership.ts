// Which partitions this node runs, and under which lease.
//
// Each partition's owner is its HRW winner (weft/coord's rendezvous hash, key `partition/<n>`)
// among the members this node sees live, so every node that sees the same members names the
// same owner without asking anyone. Naming is not running: a node runs a partition only while it
// holds the partition's lease in the store (`acquirePartitions`, a new epoch each time), and each
// batch commits fenced by the epoch it read under. Taking a lease fences whoever held it before,
// so two nodes never apply effects for one address, whatever their views say.
//
// A node takes leases only while it sees a majority of the cluster's members live (itself
// included): a node cut off from the others sees itself alone, names itself the owner of
// everything, and must not take it all. The majority takes over its partitions instead, and its
// own commits are refused from then on.
//
// Reconciling (on a membership change, on a fenced commit, and every `reconcileIntervalMs`)
// compares what this node holds with the lease table and with the owners it names: it drops what
// it no longer owns or whose lease moved on, and takes what it owns but does not hold.

import { hrwTopK } from '../../coord/index.ts';
import type { Clock, Timer } from '../../internal/clock.ts';
import { logSafely, type Logger } from '../../internal/log-safely.ts';
import type { PartitionFence, PartitionLease, StoredAddress } from '../store/state-store.ts';
import { DEFAULT_PARTITIONS, partitionOf } from './partition.ts';

/** What ownership needs of the store: the lease table (the PostgreSQL store has it). */
export interface LeaseTable {
  acquirePartitions(owner: string, partitions: readonly number[], now: number): Promise<Map<number, number>>;
  partitionLeases(): Promise<PartitionLease[]>;
}

/** The cluster as this node sees it. */
export interface ClusterView {
  /** This node's member id (its advertised URL): stable across restarts. */
  readonly self: string;
  /** Members this node sees live now, itself included. */
  live(): readonly string[];
  /** Members of the cluster, live or not (not those that left): a majority is counted of them. */
  known(): number;
  /**
   * Whether this node has joined the cluster it was pointed at (absent: it has). Until it has, it
   * knows only itself and would count itself a majority of one: it takes no lease.
   */
  joined?(): boolean;
}

export interface PartitionOwnershipOptions {
  readonly view: ClusterView;
  readonly leases: LeaseTable;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often leases are checked against the table when nothing happened; default 1 000 ms. */
  readonly reconcileIntervalMs?: number | undefined;
  /**
   * How long after a membership change leases are reconciled, the wait starting again at each
   * change; default 300 ms. While nodes join, each sees the others connect one by one: waiting
   * for the views to settle saves taking and dropping partitions at every step.
   */
  readonly settleMs?: number | undefined;
  /** Told of partitions this node has just taken (their inboxes are to be woken). */
  readonly onGained: (partitions: readonly number[]) => void;
  /** Told of partitions this node has just stopped running. */
  readonly onLost?: ((partitions: readonly number[]) => void) | undefined;
}

export interface OwnershipStats {
  /** Partitions this node holds a lease on and runs. */
  readonly held: number;
  /** Partitions this node names itself the owner of (held or about to be). */
  readonly owned: number;
  /** Partitions on the move here: named this node's but not yet held, or held but named another's. */
  readonly moving: number;
  readonly liveMembers: number;
  readonly knownMembers: number;
  /** Whether this node has joined and sees a majority live, so may take leases. */
  readonly quorum: boolean;
  readonly acquired: number;
  readonly lost: number;
  readonly reconciles: number;
  readonly reconcileFailures: number;
  /** The highest epoch among the leases this node holds. */
  readonly maxEpoch: number;
}

export class PartitionOwnership {
  readonly #options: PartitionOwnershipOptions;
  readonly #intervalMs: number;
  /** Partition → the epoch this node holds it under. */
  readonly #held = new Map<number, number>();
  /** `#held`'s partitions in order, until it changes. */
  #heldList: readonly number[] | undefined;
  /** Partition → its owner among the live members, as last computed. */
  #owners: string[] = [];
  #liveKey = '';
  #liveCount = 0;
  #reconciling: Promise<void> | undefined;
  #again = false;
  #timer: Timer | undefined;
  #settleTimer: Timer | undefined;
  #closed = false;
  #acquired = 0;
  #lost = 0;
  #reconciles = 0;
  #failures = 0;

  constructor(options: PartitionOwnershipOptions) {
    this.#options = options;
    this.#intervalMs = options.reconcileIntervalMs ?? 1_000;
    if (!Number.isSafeInteger(this.#intervalMs) || this.#intervalMs < 1) {
      throw new RangeError(`reconcileIntervalMs must be a positive integer, got ${this.#intervalMs}`);
    }
    this.#recomputeOwners();
  }

  /** Takes this node's leases for the first time and keeps them reconciled until `close()`. */
  async start(): Promise<void> {
    await this.reconcile();
    this.#arm();
  }

  /** The lease under which this node runs `address`; undefined when it does not run it now. */
  fenceFor(address: StoredAddress): PartitionFence | undefined {
    const partition = partitionOf(address);
    const epoch = this.#held.get(partition);
    return epoch === undefined ? undefined : { partition, epoch };
  }

  /** The member that owns `address`'s partition, as this node sees the cluster. */
  ownerOf(address: StoredAddress): string {
    return this.#owners[partitionOf(address)] ?? this.#options.view.self;
  }

  /** Partitions held now, in order; read by the store's view at each call. */
  heldPartitions(): readonly number[] {
    this.#heldList ??= [...this.#held.keys()].sort((a, b) => a - b);
    return this.#heldList;
  }

  /** Each held partition with its epoch. */
  leases(): ReadonlyMap<number, number> {
    return this.#held;
  }

  /**
   * The live members changed (or may have): owners are named again, and leases reconciled once
   * the members have stayed put for `settleMs`.
   */
  membershipChanged(): void {
    if (!this.#recomputeOwners() || this.#closed) return;
    this.#settleTimer?.cancel();
    this.#settleTimer = this.#options.clock.setTimeout(() => {
      this.#settleTimer = undefined;
      this.#reconcileSoon();
    }, this.#options.settleMs ?? 300);
  }

  /** A commit was refused: these partitions' leases moved on, so they are no longer run here. */
  fenced(partitions: readonly number[]): void {
    this.#drop(partitions.filter((partition) => this.#held.has(partition)));
    this.#reconcileSoon();
  }

  stats(): OwnershipStats {
    let owned = 0;
    let moving = 0;
    const self = this.#options.view.self;
    this.#owners.forEach((owner, partition) => {
      if (owner === self) owned += 1;
      if ((owner === self) !== this.#held.has(partition)) moving += 1;
    });
    let maxEpoch = 0;
    for (const epoch of this.#held.values()) if (epoch > maxEpoch) maxEpoch = epoch;
    return {
      held: this.#held.size,
      owned,
      moving,
      liveMembers: this.#liveCount,
      knownMembers: this.#options.view.known(),
      quorum: this.#hasQuorum(),
      acquired: this.#acquired,
      lost: this.#lost,
      reconciles: this.#reconciles,
      reconcileFailures: this.#failures,
      maxEpoch,
    };
  }

  /**
   * Compares the leases this node holds with the table and the owners it names, drops and takes
   * what differs. One at a time; a call during one runs once more after it.
   */
  reconcile(): Promise<void> {
    if (this.#reconciling !== undefined) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = this.#reconcileLoop().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  /** Stops reconciling and drops every lease (the table keeps them until another node takes them). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#settleTimer?.cancel();
    await this.#reconciling;
    this.#held.clear();
    this.#heldList = undefined;
  }

  async #reconcileLoop(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#reconcileOnce();
      } catch (error) {
        this.#failures += 1;
        logSafely(() => {
          this.#options.logger.warn('reconciling partition leases failed; trying again', { error });
        });
        return;
      }
    } while (this.#runAgain() && !this.#isClosed());
  }

  /** Read through a call: a `reconcile()` during the round sets it, which narrowing cannot see. */
  #runAgain(): boolean {
    return this.#again;
  }

  /** Read through a call: `close()` may have run during an await, which narrowing cannot see. */
  #isClosed(): boolean {
    return this.#closed;
  }

  async #reconcileOnce(): Promise<void> {
    if (this.#closed) return;
    this.#reconciles += 1;
    this.#recomputeOwners();
    const self = this.#options.view.self;
    const table = new Map(
      (await this.#options.leases.partitionLeases()).map((lease) => [lease.partition, lease]),
    );
    if (this.#isClosed()) return;
    const lost: number[] = [];
    for (const [partition, epoch] of this.#held) {
      const lease = table.get(partition);
      const movedOn = lease === undefined || lease.owner !== self || lease.epoch !== epoch;
      if (movedOn || this.#owners[partition] !== self) lost.push(partition);
    }
    this.#drop(lost);
    if (!this.#hasQuorum()) return;
    const wanted: number[] = [];
    this.#owners.forEach((owner, partition) => {
      if (owner === self && !this.#held.has(partition)) wanted.push(partition);
    });
    if (wanted.length === 0) return;
    const epochs = await this.#options.leases.acquirePartitions(
      self,
      wanted,
      this.#options.clock.wallTimeMs(),
    );
    // Closed meanwhile: the leases were taken, and the nodes owning them next take them over.
    if (this.#isClosed()) return;
    const gained: number[] = [];
    for (const [partition, epoch] of epochs) {
      // The view may have changed while the leases were taken: a partition named for another
      // node meanwhile is still taken (fencing keeps that safe) and dropped at the next round.
      this.#held.set(partition, epoch);
      gained.push(partition);
    }
    this.#heldList = undefined;
    this.#acquired += gained.length;
    if (gained.length > 0) this.#options.onGained(gained.sort((a, b) => a - b));
  }

  #drop(partitions: readonly number[]): void {
    if (partitions.length === 0) return;
    for (const partition of partitions) this.#held.delete(partition);
    this.#heldList = undefined;
    this.#lost += partitions.length;
    this.#options.onLost?.(partitions);
  }

  #hasQuorum(): boolean {
    if (this.#options.view.joined?.() === false) return false;
    return this.#liveCount * 2 > Math.max(this.#options.view.known(), this.#liveCount);
  }

  /** Names each partition's owner from the live members; says whether the members changed. */
  #recomputeOwners(): boolean {
    const live = [...new Set([this.#options.view.self, ...this.#options.view.live()])].sort();
    const key = live.join('\n');
    if (key === this.#liveKey) return false;
    this.#liveKey = key;
    this.#liveCount = live.length;
    const owners: string[] = new Array<string>(DEFAULT_PARTITIONS);
    for (let partition = 0; partition < DEFAULT_PARTITIONS; partition++) {
      owners[partition] = hrwTopK(live, `partition/${partition}`, 1)[0] ?? this.#options.view.self;
    }
    this.#owners = owners;
    return true;
  }

  #reconcileSoon(): void {
    if (this.#closed) return;
    void this.reconcile();
  }

  #arm(): void {
    if (this.#closed) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      void this.reconcile().finally(() => {
        this.#arm();
      });
    }, this.#intervalMs);
  }
}
