// The engine that runs StateFun functions without Flink: one process, its state in a
// `StateStore` (lmdb in a directory by default), functions in this process (`weft/statefun`) or
// behind HTTP endpoints (any StateFun SDK).
//
// A message's life: an ingress calls `send`, which appends it to its target's inbox durably and
// only then lets the ingress acknowledge it; the dispatcher runs the address's inbox as a batch
// (one batch in flight per address); the batch's effects and the consumption of its messages
// commit in one store transaction, grouped with other addresses' batches; messages it sent wake
// their targets; egress records leave through the outbox; delayed messages fire from the store
// when due. A crash anywhere before a commit runs the batch again: effects apply once.

import { setMaxListeners } from 'node:events';
import http from 'node:http';

import type { Clock } from '../internal/clock.ts';
import { systemClock } from '../internal/clock.ts';
import { diagnosticChannel } from '../internal/diagnostics.ts';
import { CapacityExceededError, ClosedError, ConfigError, errorMessage } from '../internal/errors.ts';
import { logSafely, type Logger } from '../internal/log-safely.ts';
import type { Message, StatefulFunctions } from '../statefun/index.ts';
import { addressKey, describeAddress, functionTypeOf } from './address-key.ts';
import { BatchRunner, type RegistrationEvent } from './batch-runner.ts';
import { DelayedMessages } from './delayed-messages.ts';
import { Dispatcher } from './dispatcher.ts';
import type { EgressSink } from './egress/egress-sink.ts';
import { OutboxDrainer } from './egress/outbox-drainer.ts';
import { FencedError, UnknownFunctionTypeError } from './errors.ts';
import type { RuntimePlacement } from './cluster/runtime-placement.ts';
import { ExpirySweeper } from './expiry-sweeper.ts';
import type { FunctionInvoker } from './function-invoker.ts';
import { GroupCommitter } from './group-committer.ts';
import { WriteGrouper } from './write-grouper.ts';
import {
  httpIngressHandler,
  type HttpIngressHandler,
  type HttpIngressOptions,
} from './ingress/http-ingress.ts';
import { JetStreamIngress, type JetStreamIngressOptions } from './ingress/jetstream-ingress.ts';
import { NatsCoreIngress, type NatsCoreIngressOptions } from './ingress/nats-core-ingress.ts';
import { InProcessInvoker } from './in-process-invoker.ts';
import type { EndpointSpec } from './remote/endpoint-config.ts';
import { RemoteInvoker } from './remote/remote-invoker.ts';
import { resolveLimits, type ResolvedLimits, type RuntimeLimits } from './runtime-limits.ts';
import type { RuntimeInput } from './runtime-input.ts';
import type { RuntimeStats } from './runtime-stats.ts';
import type {
  Appended,
  BatchEffects,
  Envelope,
  InboxMessage,
  PartitionFence,
  StateStore,
  StoredAddress,
} from './store/state-store.ts';
import { LmdbStateStore } from './store/lmdb-store.ts';
import { ValueRegistry } from './value-registry.ts';

/** Where the runtime reports what no caller hears: failed batches, conflicts; `console` fits. */
export type RuntimeLogger = Logger;

export interface RuntimeOptions {
  /**
   * Where state, inboxes, delayed messages and the outbox live. The runtime does not close a
   * store it was given. Give either this or `dataDir`.
   */
  readonly store?: StateStore | undefined;
  /** A directory for the embedded lmdb store, created if missing; closed with the runtime. */
  readonly dataDir?: string | undefined;
  /** Functions run in this process. */
  readonly functions?: StatefulFunctions | undefined;
  /** Functions served over HTTP by any StateFun SDK. */
  readonly endpoints?: readonly EndpointSpec[] | undefined;
  /** Egress sinks by egress id (`namespace/type`). */
  readonly egress?: Readonly<Record<string, EgressSink>> | undefined;
  readonly clock?: Clock | undefined;
  readonly logger?: RuntimeLogger | undefined;
  readonly limits?: RuntimeLimits | undefined;
  /** Ingress the runtime starts with itself and stops first when it closes. */
  readonly ingress?: RuntimeIngressOptions | undefined;
  /**
   * For one node of a cluster (cluster/cluster-runtime.ts): which addresses this node runs, under
   * which lease. Absent, the runtime runs every address, unfenced.
   */
  readonly placement?: RuntimePlacement | undefined;
}

export interface RuntimeIngressOptions {
  /**
   * An HTTP server for `httpIngressHandler` (POST {pathPrefix}/{namespace}/{name}/{id}), on
   * `host` (default 127.0.0.1) and `port` (default 0: any free port; see `httpAddress`). To
   * serve ingress from a server of your own, mount `httpIngressHandler(runtime)` instead.
   */
  readonly http?: (HttpIngressOptions & { readonly port?: number; readonly host?: string }) | undefined;
  /** Durable JetStream consumers: a message is acked once it is durable here. */
  readonly jetstream?: readonly JetStreamIngressOptions[] | undefined;
  /** Core NATS subscriptions: at most once. */
  readonly nats?: readonly NatsCoreIngressOptions[] | undefined;
}

const batchChannel = diagnosticChannel<BatchEvent>('runtime', 'batch');
const failureChannel = diagnosticChannel<FailureEvent>('runtime', 'batch-failure');
const registrationChannel = diagnosticChannel<RegistrationEvent>('runtime', 'registration');

/** Published on `weft:runtime:batch` for every committed batch. */
export interface BatchEvent {
  readonly address: StoredAddress;
  readonly messages: number;
  /** Requests it took: more than one after incomplete-context replies. */
  readonly requests: number;
}

/** Published on `weft:runtime:batch-failure` when a batch failed and its address was parked. */
export interface FailureEvent {
  readonly address: StoredAddress;
  readonly error: unknown;
  readonly failures: number;
  readonly parkedForMs: number;
}

export class Runtime implements RuntimeInput {
  readonly #store: StateStore;
  readonly #ownsStore: boolean;
  readonly #clock: Clock;
  readonly #logger: RuntimeLogger;
  readonly #limits: ResolvedLimits;
  readonly #registry = new ValueRegistry();
  readonly #invokers: readonly FunctionInvoker[];
  readonly #invokerByType = new Map<string, FunctionInvoker | null>();
  readonly #egress: ReadonlyMap<string, EgressSink>;
  readonly #committer: GroupCommitter;
  /** Ingress appends grouped as commits are: one transaction for the sends of many callers. */
  readonly #appender: WriteGrouper<readonly Envelope[], Appended[]>;
  readonly #runner: BatchRunner;
  readonly #dispatcher: Dispatcher;
  readonly #delayed: DelayedMessages;
  readonly #sweeper: ExpirySweeper;
  readonly #drainer: OutboxDrainer;
  readonly #countsTimer: { cancel(): void };
  readonly #placement: RuntimePlacement | undefined;
  /** The lease each running batch read its inbox under, by address: its commit is fenced by it. */
  readonly #fences = new Map<string, PartitionFence>();
  /** Inbox messages per address, as far as this runtime has seen them: for the backlog cap. */
  readonly #backlog = new Map<string, number>();
  #inboxMessages = 0;
  #outboxRecords = 0;
  #delayedMessages = 0;
  #releaseWaiters: (() => void)[] = [];
  /** Aborts the batches still running when `close()` has waited `drainTimeoutMs` for them. */
  readonly #stopBatches = new AbortController();
  #refreshing = false;
  #httpServer: http.Server | undefined;
  #httpIngress: HttpIngressHandler | undefined;
  readonly #natsIngress: (JetStreamIngress | NatsCoreIngress)[] = [];
  #closing: Promise<void> | undefined;
  readonly #counters = {
    accepted: 0,
    duplicates: 0,
    refused: 0,
    requests: 0,
    commitSizes: 0,
    fencedBatches: 0,
  };

  private constructor(store: StateStore, ownsStore: boolean, options: RuntimeOptions) {
    this.#store = store;
    this.#ownsStore = ownsStore;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? console;
    this.#limits = resolveLimits(options.limits);
    this.#placement = options.placement;
    const invokers: FunctionInvoker[] = [];
    if (options.functions !== undefined) invokers.push(new InProcessInvoker(options.functions));
    if (options.endpoints !== undefined && options.endpoints.length > 0) {
      invokers.push(new RemoteInvoker({ endpoints: options.endpoints, clock: this.#clock }));
    }
    this.#invokers = invokers;
    this.#egress = new Map(Object.entries(options.egress ?? {}));
    this.#committer = new GroupCommitter({
      store,
      clock: this.#clock,
      maxBatchesPerCommit: this.#limits.maxBatchesPerCommit,
      maxPending: this.#limits.maxPendingCommits,
    });
    // Every batch in flight listens on it, each removing its listener when it ends: up to
    // `maxConcurrentBatches` at once is expected, not a leak.
    setMaxListeners(0, this.#stopBatches.signal);
    this.#appender = new WriteGrouper({
      write: async (calls) => {
        const appended = await store.append(calls.flat(), this.#clock.wallTimeMs());
        let next = 0;
        return calls.map((envelopes) => appended.slice(next, (next += envelopes.length)));
      },
      maxItemsPerWrite: 512,
      maxInFlight: store.writeConcurrency ?? 1,
      maxPending: this.#limits.maxPendingCommits,
      queueName: 'the ingress append queue',
      // A failed append may have been written (a connection lost after COMMIT); appending again
      // would store a message without an ingress id twice. Only the stores' checks of their input,
      // made before anything is written, are safe to split on.
      retryAlone: (error) => error instanceof RangeError,
    });
    this.#runner = new BatchRunner({
      store,
      registry: this.#registry,
      invokerFor: (address) => this.#invokerFor(address[0], address[1]),
      hasEgress: (egress) => this.#egress.has(egress),
      serves: (address) => this.servesType(address[0], address[1]),
      now: () => this.#clock.wallTimeMs(),
      onRegistration: (event) => {
        this.#reportRegistration(event);
      },
    });
    this.#dispatcher = new Dispatcher({
      clock: this.#clock,
      maxNumBatchRequests: this.#limits.maxNumBatchRequests,
      maxConcurrentBatches: this.#limits.maxConcurrentBatches,
      parkBackoff: this.#limits.parkBackoff,
      readInbox: (address, limit) => this.#readInbox(address, limit),
      runBatch: (address, messages) => this.#runBatch(address, messages),
      onFailure: (address, error, failures, parkedForMs) => {
        this.#reportFailure({ address, error, failures, parkedForMs });
      },
      held: () => this.#outboxRecords >= this.#limits.maxOutboxRecords,
    });
    this.#delayed = new DelayedMessages({
      store,
      clock: this.#clock,
      sliceSize: 1_000,
      retryMs: 1_000,
      held: () => this.#inboxMessages >= this.#limits.maxInboxMessages,
      onFired: (messages) => {
        this.#delayedMessages = Math.max(0, this.#delayedMessages - messages.length);
        this.#arrived(messages);
      },
      onError: (error) => {
        logSafely(() => {
          this.#logger.error('firing delayed messages failed; trying again', { error });
        });
      },
    });
    this.#sweeper = new ExpirySweeper({
      store,
      clock: this.#clock,
      intervalMs: this.#limits.sweepIntervalMs,
      sliceSize: 1_000,
      maxSlices: 100,
      onError: (error) => {
        logSafely(() => {
          this.#logger.error('sweeping expired values failed', { error });
        });
      },
    });
    this.#drainer = new OutboxDrainer({
      store,
      routes: this.#egress,
      clock: this.#clock,
      logger: this.#logger,
      onAcknowledged: (records) => {
        const wasHeld = this.#outboxRecords >= this.#limits.maxOutboxRecords;
        this.#outboxRecords = Math.max(0, this.#outboxRecords - records);
        this.#maybeRelease();
        if (wasHeld) this.#dispatcher.resume();
      },
    });
    this.#countsTimer = this.#clock.setInterval(() => {
      void this.#refreshCounts();
    }, this.#limits.countsRefreshMs);
  }

  /**
   * Opens a runtime on `store` (or an lmdb store in `dataDir`), picks up what a previous run
   * left (inboxes, delayed messages, the outbox) and starts running it.
   */
  static async open(options: RuntimeOptions): Promise<Runtime> {
    if ((options.store === undefined) === (options.dataDir === undefined)) {
      throw new ConfigError('store', 'give either a store or a dataDir for the embedded lmdb store');
    }
    if (
      options.functions === undefined &&
      (options.endpoints === undefined || options.endpoints.length === 0)
    ) {
      throw new ConfigError('functions', 'give in-process functions, endpoints, or both');
    }
    let store = options.store;
    const ownsStore = store === undefined;
    if (store === undefined) {
      store = await LmdbStateStore.open({ path: options.dataDir as string });
    }
    let runtime: Runtime;
    try {
      runtime = new Runtime(store, ownsStore, options);
    } catch (error) {
      if (ownsStore) await store.close();
      throw error;
    }
    try {
      await runtime.#recover();
      await runtime.#startIngress(options.ingress);
    } catch (error) {
      await runtime.close();
      throw error;
    }
    return runtime;
  }

  servesType(namespace: string, type: string): boolean {
    return this.#invokerFor(namespace, type) !== undefined;
  }

  async send(envelopes: readonly Envelope[]): Promise<Appended[]> {
    if (this.#closing !== undefined) throw new ClosedError('the runtime is closing');
    for (const envelope of envelopes) {
      const [namespace, type] = envelope.target;
      if (!this.servesType(namespace, type)) throw new UnknownFunctionTypeError(`${namespace}/${type}`);
    }
    const pressure = this.#pressure();
    if (pressure !== undefined) {
      this.#counters.refused += envelopes.length;
      throw pressure;
    }
    // Counted within the call too: one call with many messages for one address is held to the cap.
    const adding = new Map<string, number>();
    for (const envelope of envelopes) {
      const key = addressKey(envelope.target);
      const depth = (this.#backlog.get(key) ?? 0) + (adding.get(key) ?? 0);
      adding.set(key, (adding.get(key) ?? 0) + 1);
      if (depth >= this.#limits.maxNumBatchRequests) {
        this.#counters.refused += envelopes.length;
        throw new CapacityExceededError(
          `the backlog of ${describeAddress(envelope.target)}`,
          this.#limits.maxNumBatchRequests,
        );
      }
    }
    let appended: Appended[];
    try {
      appended = await this.#appender.submit(envelopes);
    } catch (error) {
      // The append may have been written before it failed: wake the targets, so that what was
      // stored runs now rather than after a restart. A wake that finds nothing costs one read.
      if (!(error instanceof RangeError || error instanceof CapacityExceededError)) {
        for (const envelope of envelopes) this.#dispatcher.wake(envelope.target);
      }
      throw error;
    }
    const stored: InboxMessage[] = [];
    for (const message of appended) {
      if (message.duplicate) this.#counters.duplicates += 1;
      else stored.push(message);
    }
    this.#counters.accepted += stored.length;
    this.#arrived(stored);
    return appended;
  }

  /**
   * Sends a message built with the SDK's `messageBuilder` from outside any function (caller
   * absent, as for ingress); resolves once it is durable. `ingressId` deduplicates retries.
   * Rejects with a retryable `CapacityExceededError` under backpressure (`released()` resolves
   * when input is taken again), `UnknownFunctionTypeError` for a type nobody serves, and
   * `ClosedError` once the runtime is closing.
   */
  async sendMessage(message: Message, options: { ingressId?: string | undefined } = {}): Promise<Appended> {
    const target = message.targetAddress;
    const [appended] = await this.send([
      {
        target: [target.type.namespace, target.type.name, target.id],
        argument: { typename: message.valueTypeName, value: message.rawValue },
        ingressId: options.ingressId,
      },
    ]);
    return appended as Appended;
  }

  released(): Promise<void> {
    if (this.#pressure() === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.#releaseWaiters.push(resolve);
    });
  }

  /**
   * Addresses that may have inbox messages this runtime has not seen appended: another node
   * stored them, or this node has just taken their partition. A wake that finds nothing costs one
   * read.
   */
  wake(addresses: readonly StoredAddress[]): void {
    if (this.#closing !== undefined) return;
    for (const address of addresses) this.#dispatcher.wake(address);
  }

  /**
   * The partitions this node holds have changed: what the store shows it (delayed messages due,
   * outbox records, counts) is read again. The caller wakes the addresses with inbox messages.
   */
  ownershipChanged(): void {
    if (this.#closing !== undefined) return;
    void this.#delayed.arm().catch((error: unknown) => {
      logSafely(() => {
        this.#logger.warn('reading the delayed messages after an ownership change failed', { error });
      });
    });
    void this.#refreshCounts();
    this.#drainer.wake();
  }

  stats(): RuntimeStats {
    const dispatcher = this.#dispatcher.stats();
    const commits = this.#committer.stats();
    const registry = this.#registry.stats();
    const drainer = this.#drainer.stats();
    let largestBacklog = 0;
    for (const depth of this.#backlog.values()) if (depth > largestBacklog) largestBacklog = depth;
    return {
      activeAddresses: dispatcher.activeAddresses,
      runningBatches: dispatcher.running,
      waitingAddresses: dispatcher.waiting,
      parkedAddresses: dispatcher.parked,
      backlog: { messages: this.#inboxMessages, largestAddress: largestBacklog },
      batches: dispatcher.batches,
      batchFailures: dispatcher.failures,
      fencedBatches: this.#counters.fencedBatches,
      requests: this.#counters.requests,
      registrations: registry,
      commits: {
        commits: commits.commits,
        batches: commits.batchesCommitted,
        largest: commits.largestCommit,
        meanBatches: commits.commits === 0 ? 0 : commits.batchesCommitted / commits.commits,
        failedBatches: commits.batchesFailed,
        refused: commits.refused,
        pending: commits.pending,
      },
      ingress: {
        accepted: this.#counters.accepted,
        duplicates: this.#counters.duplicates,
        refused: this.#counters.refused,
        http: this.#httpIngress?.stats(),
        nats: this.#natsIngress.map((ingress) => ingress.stats()),
      },
      delayed: { pending: this.#delayedMessages, fired: this.#delayed.fired },
      outbox: { records: this.#outboxRecords, ...drainer },
      expiredSwept: this.#sweeper.swept,
      ingressIdsForgotten: this.#sweeper.forgotten,
    };
  }

  /**
   * Stops taking input, finishes the batches in flight and commits them, delivers the outbox
   * (waiting at most `limits.drainTimeoutMs`), and closes what the runtime opened. Messages not
   * yet run stay in the store for the next start.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Where the HTTP ingress listens, once open with `ingress.http`. */
  get httpAddress(): { readonly host: string; readonly port: number } | undefined {
    const address = this.#httpServer?.address();
    if (address === null || address === undefined || typeof address === 'string') return undefined;
    return { host: address.address, port: address.port };
  }

  async #startIngress(ingress: RuntimeIngressOptions | undefined): Promise<void> {
    if (ingress?.http !== undefined) {
      const { port = 0, host = '127.0.0.1', ...options } = ingress.http;
      const handler = httpIngressHandler(this, { logger: this.#logger, ...options });
      const server = http.createServer(handler);
      this.#httpIngress = handler;
      this.#httpServer = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
    for (const options of ingress?.jetstream ?? []) {
      this.#natsIngress.push(await JetStreamIngress.start(this, { logger: this.#logger, ...options }));
    }
    for (const options of ingress?.nats ?? []) {
      this.#natsIngress.push(await NatsCoreIngress.start(this, { logger: this.#logger, ...options }));
    }
  }

  async #stopIngress(): Promise<void> {
    for (const ingress of this.#natsIngress) await ingress.stop();
    const server = this.#httpServer;
    if (server !== undefined && server.listening) {
      const closed = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      server.closeIdleConnections();
      // A request in flight gets its answer; a client that keeps its connection busy past the
      // drain timeout is cut off.
      await this.#within(closed, this.#limits.drainTimeoutMs);
      server.closeAllConnections();
      await closed;
    }
  }

  async #close(): Promise<void> {
    this.#countsTimer.cancel();
    await this.#stopIngress();
    for (const release of this.#releaseWaiters.splice(0)) release();
    // Batches in flight finish and commit; one stuck past the drain timeout is aborted, and its
    // messages stay in the store for the next start.
    const batchesDone = this.#dispatcher.close();
    await this.#within(batchesDone, this.#limits.drainTimeoutMs);
    this.#stopBatches.abort(new ClosedError('the runtime is closing'));
    await batchesDone;
    await this.#appender.close();
    await this.#committer.close();
    await this.#delayed.close();
    await this.#sweeper.close();
    const stopWaiting = new AbortController();
    await this.#within(
      this.#drainer.drained({ signal: stopWaiting.signal }).catch(() => undefined),
      this.#limits.drainTimeoutMs,
    );
    stopWaiting.abort();
    await this.#drainer.close();
    for (const invoker of this.#invokers) await invoker.close();
    if (this.#ownsStore) await this.#store.close();
  }

  /** Waits for `done`, or `timeoutMs` on the runtime's clock, whichever comes first. */
  async #within(done: Promise<void>, timeoutMs: number): Promise<void> {
    let timer: { cancel(): void } | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = this.#clock.setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([done, timedOut]);
    } finally {
      timer?.cancel();
    }
  }

  async #recover(): Promise<void> {
    await this.#refreshCounts();
    // Every address with messages waiting, from a previous run or a crash, runs again.
    let after: StoredAddress | undefined;
    for (;;) {
      const addresses = await this.#store.addressesWithInbox(1_000, after);
      for (const address of addresses) this.#dispatcher.wake(address);
      if (addresses.length < 1_000) break;
      after = addresses[addresses.length - 1];
    }
    await this.#delayed.arm();
    if (this.#outboxRecords > 0) this.#drainer.wake();
  }

  /**
   * An address's inbox, which also corrects its backlog count: a read that is not full saw the
   * whole inbox. (After a commit that applied but reported failure, the count would otherwise
   * stay too high, and the address refuse ingress it has room for.)
   */
  async #readInbox(address: StoredAddress, limit: number): Promise<InboxMessage[]> {
    const key = addressKey(address);
    if (this.#placement !== undefined) {
      // Taken before anything of the address is read: a batch that read under a lease commits
      // only while that lease holds, so it never applies effects computed from stale state.
      const fence = this.#placement.fenceFor(address);
      if (fence === undefined) {
        // Another node runs it now (its partition moved while it waited its turn).
        this.#backlog.delete(key);
        return [];
      }
      this.#fences.set(key, fence);
    }
    const messages = await this.#store.inbox(address, limit);
    if (messages.length === limit) {
      // A full read: at least this many wait (after a restart the count started from nothing).
      this.#backlog.set(key, Math.max(this.#backlog.get(key) ?? 0, limit));
    } else if (messages.length > 0) {
      this.#backlog.set(key, messages.length);
    } else {
      this.#backlog.delete(key);
    }
    return messages;
  }

  async #runBatch(address: StoredAddress, messages: readonly InboxMessage[]): Promise<void> {
    const key = addressKey(address);
    const fence = this.#fences.get(key);
    this.#fences.delete(key);
    const outcome = await this.#runner.run(address, messages, this.#stopBatches.signal);
    this.#counters.requests += outcome.requests;
    const effects = fence === undefined ? outcome.effects : { ...outcome.effects, fence };
    try {
      await this.#committer.submit(effects);
    } catch (error) {
      if (error instanceof FencedError) {
        // The partition moved to another node, which runs these messages from the store: not a
        // failure of the address, and nothing of the batch was applied.
        this.#counters.fencedBatches += 1;
        this.#backlog.delete(key);
        this.#placement?.fenced(error.partitions);
        return;
      }
      // The commit may have applied before it failed (a connection lost after COMMIT): wake
      // what it would have fed. A wake that finds nothing costs one empty read.
      this.#mayHaveCommitted(effects);
      throw error;
    }
    this.#committed(address, effects);
    batchChannel.publishLazy(() => ({ address, messages: messages.length, requests: outcome.requests }));
  }

  /** Accounts for a committed batch and wakes whatever it fed. */
  #committed(address: StoredAddress, effects: BatchEffects): void {
    const consumed = effects.consumed?.length ?? 0;
    this.#inboxMessages = Math.max(0, this.#inboxMessages - consumed);
    const key = addressKey(address);
    const left = (this.#backlog.get(key) ?? 0) - consumed;
    if (left > 0) this.#backlog.set(key, left);
    else this.#backlog.delete(key);
    for (const message of effects.messages ?? []) this.#arrivedAt(message.target);
    for (const timer of effects.timers ?? []) {
      if ('send' in timer) {
        this.#delayedMessages += 1;
        this.#delayed.noteDue(timer.send.dueAt);
      }
    }
    if (effects.egress !== undefined && effects.egress.length > 0) {
      this.#outboxRecords += effects.egress.length;
      this.#drainer.wake();
    }
    this.#maybeRelease();
  }

  #mayHaveCommitted(effects: BatchEffects): void {
    for (const message of effects.messages ?? []) this.#dispatcher.wake(message.target);
    for (const timer of effects.timers ?? []) if ('send' in timer) this.#delayed.noteDue(timer.send.dueAt);
    if (effects.egress !== undefined && effects.egress.length > 0) this.#drainer.wake();
  }

  #arrived(messages: readonly InboxMessage[]): void {
    for (const message of messages) this.#arrivedAt(message.target);
  }

  #arrivedAt(target: StoredAddress): void {
    if (this.#placement !== undefined && this.#placement.fenceFor(target) === undefined) {
      // Stored for an address another node runs: that node is told, and counts it.
      this.#placement.storedElsewhere(target);
      return;
    }
    const key = addressKey(target);
    this.#backlog.set(key, (this.#backlog.get(key) ?? 0) + 1);
    this.#inboxMessages += 1;
    this.#dispatcher.wake(target);
  }

  /** Why ingress is refused now, or undefined when it is taken. */
  #pressure(): CapacityExceededError | undefined {
    const limits = this.#limits;
    if (this.#inboxMessages >= limits.maxInboxMessages) {
      return new CapacityExceededError('the runtime inbox', limits.maxInboxMessages);
    }
    if (this.#outboxRecords >= limits.maxOutboxRecords) {
      return new CapacityExceededError('the egress outbox', limits.maxOutboxRecords);
    }
    if (this.#delayedMessages >= limits.maxDelayedMessages) {
      return new CapacityExceededError('the delayed messages', limits.maxDelayedMessages);
    }
    return undefined;
  }

  #maybeRelease(): void {
    if (this.#releaseWaiters.length === 0 || this.#pressure() !== undefined) return;
    for (const release of this.#releaseWaiters.splice(0)) release();
  }

  /** Corrects the runtime's counts from the store's own: deliveries and cancellations lower them. */
  async #refreshCounts(): Promise<void> {
    // One at a time: on a slow store, reads must not pile up.
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      const counts = await this.#store.counts();
      this.#inboxMessages = counts.inboxMessages;
      this.#outboxRecords = counts.outboxRecords;
      this.#delayedMessages = counts.delayedMessages;
    } catch (error) {
      if (this.#closing !== undefined) return;
      logSafely(() => {
        this.#logger.warn('reading the store counts failed', { error });
      });
      return;
    } finally {
      this.#refreshing = false;
    }
    this.#maybeRelease();
    this.#dispatcher.resume();
    // Safety nets for whatever a lost wake-up left behind: records waiting in the outbox.
    if (this.#outboxRecords > 0) this.#drainer.wake();
  }

  #invokerFor(namespace: string, name: string): FunctionInvoker | undefined {
    const type = `${namespace}/${name}`;
    let invoker = this.#invokerByType.get(type);
    if (invoker === undefined) {
      invoker = this.#invokers.find((candidate) => candidate.serves({ namespace, name })) ?? null;
      // Bounded: ingress may ask about any number of made-up types.
      if (this.#invokerByType.size >= 10_000) this.#invokerByType.clear();
      this.#invokerByType.set(type, invoker);
    }
    return invoker ?? undefined;
  }

  #reportRegistration(event: RegistrationEvent): void {
    registrationChannel.publish(event);
    for (const conflict of event.conflicts) {
      logSafely(() => {
        this.#logger.error(conflict.message, { functionType: conflict.functionType, value: conflict.name });
      });
    }
    if (event.refused.length > 0) {
      logSafely(() => {
        this.#logger.error(
          `function ${event.functionType} declares more values than a type may register; refused: ${event.refused.join(', ')}`,
          { functionType: event.functionType },
        );
      });
    }
  }

  #reportFailure(event: FailureEvent): void {
    failureChannel.publish(event);
    const { address, error, failures, parkedForMs } = event;
    logSafely(() => {
      this.#logger.error(
        `a batch for ${describeAddress(address)} failed (${failures} in a row); it runs again in ${Math.round(parkedForMs)} ms: ` +
          errorMessage(error),
        { functionType: functionTypeOf(address), error },
      );
    });
  }
}
