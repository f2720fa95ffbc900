// The runtime on one node of a cluster: state, inboxes, delayed messages and the outbox in one
// PostgreSQL shared by every node, each address run by the node that owns its partition
// (partition-ownership.ts), each batch committed under its partition's lease.
//
// How a message finds its owner:
// - ingress on any node (`input`) appends it on the owner, over the grid (forwarding-input.ts);
// - a batch's messages to other addresses are committed to the store by the sender's node, in
//   the batch's own transaction, and the owner is woken over the grid (wake-sender.ts);
// - a node that takes a partition wakes every address of it with inbox messages, and every
//   `scanIntervalMs` it looks again, for wakes that were lost.
// Delayed messages fire, and outbox records are delivered, by the node holding their partition
// (the store's `forPartitions` view). Nothing lives only in a process: a node that dies leaves
// its partitions' work in the store, and the node that takes them over picks it up.

import type { Manager } from '../../grid/index.ts';
import type { Clock, Timer } from '../../internal/clock.ts';
import { systemClock } from '../../internal/clock.ts';
import { logSafely } from '../../internal/log-safely.ts';
import { Runtime, type RuntimeOptions } from '../runtime.ts';
import type { PostgresStateStore } from '../store/postgres-store.ts';
import type { StoredAddress } from '../store/state-store.ts';
import {
  decodeForward,
  decodeWake,
  encodeAppended,
  encodeRefusal,
  FORWARD_HANDLER,
  WAKE_HANDLER,
} from './forward-codec.ts';
import { ForwardingInput, type ForwardingStats, type GridRequest } from './forwarding-input.ts';
import { PartitionOwnership, type ClusterView, type OwnershipStats } from './partition-ownership.ts';
import { WakeSender, type WakeStats } from './wake-sender.ts';

export interface ClusterRuntimeOptions extends Omit<
  RuntimeOptions,
  'store' | 'dataDir' | 'placement' | 'ingress'
> {
  /** The cluster's store; the caller owns it (and its pool). */
  readonly store: PostgresStateStore;
  /** The node's grid: forwards and wakes travel on it. */
  readonly grid: Pick<Manager, 'connection' | 'registerSingle'>;
  readonly view: ClusterView;
  /** How often leases are checked when nothing happened; default 1 000 ms. */
  readonly reconcileIntervalMs?: number | undefined;
  /** How often this node looks for inbox messages of its partitions it was not told of; default 5 000 ms. */
  readonly scanIntervalMs?: number | undefined;
  /** Grid request timeout of a forward or a wake; default 10 000 ms. */
  readonly requestTimeoutMs?: number | undefined;
}

export interface ClusterRuntimeStats {
  readonly ownership: OwnershipStats;
  readonly forwarding: ForwardingStats;
  readonly wakes: WakeStats & { readonly received: number };
  /** Forward requests from peers this node refused as malformed. */
  readonly malformedRequests: number;
  /** Addresses found with inbox messages by taking partitions or by the periodic scan. */
  readonly scannedAddresses: number;
}

/** Addresses read per page of a scan, and pages per scan. */
const SCAN_PAGE = 1_000;
const MAX_SCAN_PAGES = 1_000;

export class ClusterRuntime {
  readonly runtime: Runtime;
  /** Where ingress on this node sends: to this node's runtime or, over the grid, to the owner's. */
  readonly input: ForwardingInput;
  readonly ownership: PartitionOwnership;
  readonly #store: PostgresStateStore;
  readonly #wakes: WakeSender;
  readonly #clock: Clock;
  readonly #logger: NonNullable<RuntimeOptions['logger']>;
  readonly #scanIntervalMs: number;
  #scanTimer: Timer | undefined;
  #scanning = false;
  #closing: Promise<void> | undefined;
  #wakesReceived = 0;
  #malformed = 0;
  #scanned = 0;

  private constructor(
    runtime: Runtime,
    ownership: PartitionOwnership,
    input: ForwardingInput,
    wakes: WakeSender,
    options: ClusterRuntimeOptions,
  ) {
    this.runtime = runtime;
    this.ownership = ownership;
    this.input = input;
    this.#wakes = wakes;
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? console;
    this.#scanIntervalMs = options.scanIntervalMs ?? 5_000;
  }

  /**
   * Opens the runtime on the cluster's store, serves forwards and wakes on the grid, and takes
   * the leases of the partitions this node owns (when it sees a majority of the members).
   */
  static async open(options: ClusterRuntimeOptions): Promise<ClusterRuntime> {
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? console;
    const timeoutMs = options.requestTimeoutMs ?? 10_000;
    const request: GridRequest = (host, handler, payload) =>
      options.grid.connection(host).request(handler, payload, { timeoutMs });
    const self = options.view.self;
    // The runtime and the ownership refer to each other: `cluster` is made before ownership
    // takes any partition (in `start()`), so before `onGained` is called.
    const ownership = new PartitionOwnership({
      view: options.view,
      leases: options.store,
      clock,
      logger,
      reconcileIntervalMs: options.reconcileIntervalMs,
      onGained: (partitions) => {
        void cluster.#gained(partitions);
      },
    });
    const wakes = new WakeSender({ request });
    const runtime = await Runtime.open({
      ...options,
      store: options.store.forPartitions(() => ownership.heldPartitions()),
      placement: {
        fenceFor: (address) => ownership.fenceFor(address),
        storedElsewhere: (target) => {
          const owner = ownership.ownerOf(target);
          // Named this node's but not held yet: taking it wakes its inboxes.
          if (owner !== self) wakes.wake(owner, target);
        },
        fenced: (partitions) => {
          ownership.fenced(partitions);
        },
      },
    });
    const input = new ForwardingInput({
      local: runtime,
      self,
      ownerOf: (address) => ownership.ownerOf(address),
      request,
      clock,
    });
    const cluster = new ClusterRuntime(runtime, ownership, input, wakes, options);
    cluster.#serve(options.grid);
    try {
      await ownership.start();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    cluster.#armScan();
    return cluster;
  }

  /** The members changed (or may have): partitions are named again and leases reconciled. */
  membershipChanged(): void {
    this.ownership.membershipChanged();
  }

  stats(): ClusterRuntimeStats {
    return {
      ownership: this.ownership.stats(),
      forwarding: this.input.stats(),
      wakes: { ...this.#wakes.stats(), received: this.#wakesReceived },
      malformedRequests: this.#malformed,
      scannedAddresses: this.#scanned,
    };
  }

  /**
   * Stops taking input, finishes and commits the batches in flight, and lets go of the leases
   * (the nodes that own the partitions next take them at their next reconcile).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#scanTimer?.cancel();
    await this.input.close();
    await this.runtime.close();
    await this.ownership.close();
    this.#wakes.close();
  }

  #serve(grid: Pick<Manager, 'registerSingle'>): void {
    grid.registerSingle(
      FORWARD_HANDLER,
      async (payload) => {
        let envelopes;
        try {
          envelopes = decodeForward(payload);
        } catch (error) {
          this.#malformed += 1;
          return encodeRefusal(error);
        }
        try {
          // Appended here even if this node no longer owns them (its view moved on): the store
          // is shared, and the owner is woken.
          return encodeAppended(await this.runtime.send(envelopes));
        } catch (error) {
          return encodeRefusal(error);
        }
      },
      { reserved: true },
    );
    grid.registerSingle(
      WAKE_HANDLER,
      (payload) => {
        let addresses: StoredAddress[];
        try {
          addresses = decodeWake(payload);
        } catch {
          this.#malformed += 1;
          return undefined;
        }
        this.#wakesReceived += addresses.length;
        this.runtime.wake(addresses);
        return undefined;
      },
      { reserved: true },
    );
  }

  /** Wakes every address of `partitions` with inbox messages. */
  async #gained(partitions: readonly number[]): Promise<void> {
    this.runtime.ownershipChanged();
    await this.#wakeInboxes(partitions);
  }

  async #wakeInboxes(partitions: readonly number[]): Promise<void> {
    if (partitions.length === 0 || this.#closing !== undefined) return;
    try {
      let after: StoredAddress | undefined;
      for (let page = 0; page < MAX_SCAN_PAGES; page++) {
        const addresses = await this.#store.addressesWithInboxIn(partitions, SCAN_PAGE, after);
        this.#scanned += addresses.length;
        this.runtime.wake(addresses);
        if (addresses.length < SCAN_PAGE) return;
        after = addresses[addresses.length - 1];
      }
    } catch (error) {
      if (this.#isClosing()) return;
      logSafely(() => {
        this.#logger.warn('reading the inboxes of taken partitions failed; the next scan tries again', {
          error,
        });
      });
    }
  }

  /** Read through a call: `close()` may have run during an await, which narrowing cannot see. */
  #isClosing(): boolean {
    return this.#closing !== undefined;
  }

  #armScan(): void {
    if (this.#closing !== undefined) return;
    this.#scanTimer = this.#clock.setTimeout(() => {
      void this.#scan().finally(() => {
        this.#armScan();
      });
    }, this.#scanIntervalMs);
  }

  async #scan(): Promise<void> {
    if (this.#scanning) return;
    this.#scanning = true;
    try {
      await this.#wakeInboxes(this.ownership.heldPartitions());
    } finally {
      this.#scanning = false;
    }
  }
}
