// The outbox drainer: moves committed egress records from the store's outbox to their sinks.
//
// A batch's egress records are committed with its state, so they survive a crash; the drainer
// reads them from the head of the outbox, groups them by route (the egress id, `namespace/type`),
// hands each group to its route's sink and acknowledges the group once the sink resolved.
// Delivery is at least once: a crash between delivery and acknowledgement, or a group that
// failed half-way, delivers again; `record.seq` lets a destination drop the repeat.
//
// Each route is a lane with at most one delivery in flight, so a route's records arrive in seq
// order, and a slow or failing route does not hold up the others: while a lane is busy or
// backing off, the next read skips its records and widens the window by as many (up to
// `maxReadWindow`), so routes behind it keep moving.
//
// Records for an egress with no route stay in the outbox, counted and logged once per egress:
// they are never dropped, since a restart with the route configured delivers them.
//
// Reads are coalesced: `wake()` starts a read unless one is running, in which case that read is
// followed by one more. A read that finds only records it cannot deliver now (failing or
// unroutable routes, nothing in flight) holds commit wakes back for `retry.baseDelayMs`, so an
// outage does not turn every commit into a read of the store; a failing route's own retry timer
// still reads when due. When even the widest window holds nothing deliverable, the records behind
// it are out of sight: the drainer logs that it is stalled and re-reads on a growing backoff
// instead, so it never spins on a head it cannot move. Time is the injected clock's.

import { Backoff, verifyBackoffPolicy, type BackoffPolicy, type Random } from '../../internal/backoff.ts';
import type { Clock, Timer } from '../../internal/clock.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../../internal/errors.ts';
import { onAbort, raceSignal } from '../../internal/abort.ts';
import type { OutboxRecord, StateStore } from '../store/state-store.ts';
import { MAX_STORE_LIMIT } from '../store/store-records.ts';
import { logSafely } from '../../internal/log-safely.ts';
import {
  describeError,
  egressFailureChannel,
  type EgressFailureEvent,
  type EgressLogger,
} from './egress-diagnostics.ts';
import type { EgressSink } from './egress-sink.ts';

export interface OutboxDrainerOptions {
  readonly store: StateStore;
  /** Sink by egress id, `namespace/type`. One sink may serve several routes. */
  readonly routes: ReadonlyMap<string, EgressSink>;
  readonly clock: Clock;
  /** Where failures and unroutable egresses are reported; default `console`. */
  readonly logger?: EgressLogger | undefined;
  /** Records read at a time when nothing is held back; default 256. */
  readonly batchSize?: number | undefined;
  /** The widest read, when busy, failing or unroutable records fill the head; default 16 × batchSize. */
  readonly maxReadWindow?: number | undefined;
  /** Delay between attempts of a failing route (and of a failing store); default 100 ms → 30 s. */
  readonly retry?: BackoffPolicy | undefined;
  /** For the backoff's jitter; default Math.random. */
  readonly random?: Random | undefined;
  /** Told how many records left the outbox with each acknowledgement: for the runtime's backpressure. */
  readonly onAcknowledged?: ((records: number) => void) | undefined;
}

export interface OutboxDrainerStats {
  /** Records acknowledged after their sink accepted them. */
  readonly delivered: number;
  /** Delivery attempts that followed a failed one of the same route. */
  readonly retries: number;
  /** Delivery attempts a sink rejected. */
  readonly failures: number;
  /** Distinct records held in the outbox for lack of a route (counted once each). */
  readonly unroutable: number;
  /** Reads and acknowledgements the store refused. */
  readonly storeFailures: number;
  /** Records being delivered now. */
  readonly inFlight: number;
  /** Routes waiting to retry a failed delivery. */
  readonly backingOff: number;
}

export const defaultDrainerRetry: BackoffPolicy = {
  kind: 'exponential',
  baseDelayMs: 100,
  maxDelayMs: 30_000,
  jitter: 0.2,
};

const DEFAULT_BATCH_SIZE = 256;
/** Egress ids remembered as logged; past it, new ones are still counted, not logged. */
const MAX_LOGGED_UNROUTABLE = 1_024;
/** `drained()` callers waiting at once. */
const MAX_DRAIN_WAITERS = 1_024;

/** The route of an egress id, as `routes` is keyed: `namespace/type`. */
export function egressRoute(egress: readonly [namespace: string, type: string]): string {
  return `${egress[0]}/${egress[1]}`;
}

interface Lane {
  readonly route: string;
  readonly sink: EgressSink;
  readonly backoff: Backoff;
  /** The delivery in flight, acknowledgement included; it never rejects. */
  delivering: Promise<void> | undefined;
  /** Set while the lane waits to retry. */
  retryTimer: Timer | undefined;
}

interface DrainWaiter {
  /** Only a read started after this one counts. */
  readonly afterRead: number;
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
  stopListening: () => void;
}

export class OutboxDrainer {
  readonly #store: StateStore;
  readonly #clock: Clock;
  readonly #logger: EgressLogger;
  readonly #batchSize: number;
  readonly #maxReadWindow: number;
  readonly #lanes = new Map<string, Lane>();
  readonly #sinks: ReadonlySet<EgressSink>;
  /** Aborts the deliveries in flight when `close` is told to stop waiting for them. */
  readonly #stop = new AbortController();

  #reading: Promise<void> | undefined;
  /** A read was asked for while one ran: run one more. */
  #readWanted = false;
  /** Set while commits do not start reads: after a store failure, or a read that moved nothing. */
  #readTimer: Timer | undefined;
  #wokenWhileWaiting = false;
  readonly #commitReadIntervalMs: number;
  readonly #readBackoff: Backoff;
  readonly #onAcknowledged: ((records: number) => void) | undefined;
  #readsStarted = 0;
  /** Records of busy, backing-off or unroutable routes in the last read: the next read skips past them. */
  #heldBack = 0;
  #stalled = false;
  readonly #drainWaiters: DrainWaiter[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;

  readonly #unroutableSeqs = new Set<number>();
  readonly #unroutableLogged = new Set<string>();
  #delivered = 0;
  #retries = 0;
  #failures = 0;
  #storeFailures = 0;
  #inFlight = 0;

  constructor(options: OutboxDrainerOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#onAcknowledged = options.onAcknowledged;
    this.#logger = options.logger ?? console;
    this.#batchSize = limitOption('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE);
    this.#maxReadWindow = limitOption(
      'maxReadWindow',
      options.maxReadWindow ?? Math.min(MAX_STORE_LIMIT, 16 * this.#batchSize),
    );
    if (this.#maxReadWindow < this.#batchSize) {
      throw new ConfigError('egress.maxReadWindow', `must be at least batchSize (${this.#batchSize})`);
    }
    const retry = options.retry ?? defaultDrainerRetry;
    verifyBackoffPolicy(retry, 'egress.retry');
    const random = options.random ?? Math.random;
    this.#readBackoff = new Backoff(retry, random);
    this.#commitReadIntervalMs = retry.baseDelayMs;
    for (const [route, sink] of checkRoutes(options.routes)) {
      this.#lanes.set(route, {
        route,
        sink,
        backoff: new Backoff(retry, random),
        delivering: undefined,
        retryTimer: undefined,
      });
    }
    this.#sinks = new Set(options.routes.values());
  }

  /** Call after a commit that added egress records: reads the outbox unless a read is due anyway. */
  wake(): void {
    if (this.#closed) return;
    if (this.#readTimer !== undefined) {
      // The reader is holding back (see #readOnce); the timer reads for this commit.
      this.#wokenWhileWaiting = true;
      return;
    }
    this.#read();
  }

  /**
   * Resolves once a read started after this call found the outbox empty: every record committed
   * before the call has been delivered. It waits as long as records stay (a route that keeps
   * failing, an unroutable record): pass a signal to stop waiting. Rejects with ClosedError when
   * the drainer closes first.
   */
  drained(options: { readonly signal?: AbortSignal | undefined } = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#closed) return Promise.reject(new ClosedError('the outbox drainer is closed'));
    if (this.#drainWaiters.length >= MAX_DRAIN_WAITERS) {
      return Promise.reject(
        new CapacityExceededError('the outbox drainer’s drained() waiters', MAX_DRAIN_WAITERS),
      );
    }
    const promise = new Promise<void>((resolve, reject) => {
      const waiter: DrainWaiter = { afterRead: this.#readsStarted, resolve, reject, stopListening: noop };
      this.#drainWaiters.push(waiter);
      waiter.stopListening = onAbort(signal, (reason) => {
        this.#removeWaiter(waiter);
        reject(reason);
      });
    });
    this.#read();
    return promise;
  }

  /**
   * Stops: no new read or retry starts; resolves once the read and the deliveries in flight have
   * finished (their acknowledgements included) and the sinks are closed. When `signal` aborts
   * first, the deliveries in flight are aborted and no longer waited for (their records stay in
   * the outbox, for the next start).
   */
  close(options: { readonly signal?: AbortSignal | undefined } = {}): Promise<void> {
    const stopListening = onAbort(options.signal, (reason) => {
      this.#stop.abort(reason);
    });
    this.#closing ??= this.#shutDown();
    return this.#closing.finally(stopListening);
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    this.#readTimer?.cancel();
    this.#readTimer = undefined;
    for (const lane of this.#lanes.values()) {
      lane.retryTimer?.cancel();
      lane.retryTimer = undefined;
    }
    for (const waiter of this.#drainWaiters.splice(0)) {
      waiter.stopListening();
      waiter.reject(new ClosedError('the outbox drainer closed before the outbox was drained'));
    }
    // A delivery's end asks for another read, which sees `#closed` and does nothing.
    const inFlight = Promise.all([
      this.#reading,
      ...[...this.#lanes.values()].flatMap((lane) => lane.delivering ?? []),
    ]);
    try {
      await raceSignal(inFlight, this.#stop.signal);
    } catch {
      // Told to stop waiting: a sink that ignores its signal is left to finish on its own.
    }
    await Promise.all(
      [...this.#sinks].map(async (sink) => {
        try {
          await sink.close();
        } catch (error) {
          logSafely(() => {
            this.#logger.warn('an egress sink failed to close', { error: describeError(error) });
          });
        }
      }),
    );
  }

  stats(): OutboxDrainerStats {
    let backingOff = 0;
    for (const lane of this.#lanes.values()) if (lane.retryTimer !== undefined) backingOff += 1;
    return {
      delivered: this.#delivered,
      retries: this.#retries,
      failures: this.#failures,
      unroutable: this.#unroutableSeqs.size,
      storeFailures: this.#storeFailures,
      inFlight: this.#inFlight,
      backingOff,
    };
  }

  /** Starts a read, or asks the running one to read once more. */
  #read(): void {
    if (this.#closed) return;
    this.#wokenWhileWaiting = false;
    this.#readWanted = true;
    this.#reading ??= this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      while (this.#readWanted && !this.#closed) {
        this.#readWanted = false;
        await this.#readOnce();
      }
    } catch (error) {
      // A bug, not an outage (those are handled where they happen); keep draining after a pause.
      logSafely(() => {
        this.#logger.error('the egress outbox reader failed unexpectedly', { error: describeError(error) });
      });
      this.#waitToRead(this.#readBackoff.next(), 'always');
    } finally {
      this.#reading = undefined;
    }
  }

  async #readOnce(): Promise<void> {
    const readNumber = ++this.#readsStarted;
    const limit = Math.min(this.#maxReadWindow, this.#batchSize + this.#heldBack);
    let records: OutboxRecord[];
    try {
      records = await this.#store.outbox(limit);
    } catch (error) {
      this.#storeReadFailed(error);
      return;
    }
    if (this.#closed) return;
    if (records.length === 0) {
      this.#heldBack = 0;
      this.#endStall();
      this.#resolveDrainWaiters(readNumber);
      return;
    }

    let heldBack = 0;
    let dispatched = 0;
    for (const [route, group] of groupByRoute(records)) {
      const lane = this.#lanes.get(route);
      if (lane === undefined) {
        this.#holdUnroutable(route, group);
        heldBack += group.length;
      } else if (lane.delivering !== undefined || lane.retryTimer !== undefined) {
        heldBack += group.length;
      } else {
        this.#dispatch(lane, group);
        dispatched += 1;
      }
    }
    this.#heldBack = heldBack;
    // More was held back than the window left room for: read again, wider, to see past it.
    const widen =
      records.length === limit && Math.min(this.#maxReadWindow, this.#batchSize + heldBack) > limit;
    if (widen) this.#readWanted = true;
    // A delivery in flight reads again when it ends: nothing to wait for.
    if (dispatched > 0 || this.#anyLaneInFlight()) {
      this.#endStall();
      return;
    }
    if (widen) return;

    // Only failing or unroutable records at the head. If the widest window is full of them, what
    // follows is out of sight: re-read on a growing backoff. Otherwise a commit may bring records
    // a read can deliver, but reading on every commit would hammer the store during an outage:
    // commits are read at most every `retry.baseDelayMs` (a failing route's own timer still reads
    // when it is due).
    const stuck = records.length === limit && limit === this.#maxReadWindow;
    if (stuck && !this.#stalled) {
      this.#stalled = true;
      logSafely(() => {
        this.#logger.error(
          `the egress outbox is stalled: its oldest ${records.length} records cannot be delivered ` +
            '(no route, or their routes are failing); records behind them wait until those move',
          { firstSeq: records[0]?.seq },
        );
      });
    }
    if (stuck) this.#waitToRead(this.#readBackoff.next(), 'always');
    else this.#waitToRead(this.#commitReadIntervalMs, 'if-woken');
  }

  /** Holds commit wakes back for `delayMs`; then reads, always or only if one came meanwhile. */
  #waitToRead(delayMs: number, then: 'always' | 'if-woken'): void {
    if (this.#closed) return;
    this.#readTimer?.cancel();
    this.#readTimer = this.#clock.setTimeout(() => {
      this.#readTimer = undefined;
      if (then === 'always' || this.#wokenWhileWaiting) this.#read();
    }, delayMs);
  }

  #storeReadFailed(error: unknown): void {
    this.#storeFailures += 1;
    const retryInMs = this.#readBackoff.next();
    const attempt = this.#readBackoff.attempts;
    logSafely(() => {
      this.#logger.warn(`reading the egress outbox failed; retrying in ${retryInMs} ms`, {
        attempt,
        error: describeError(error),
      });
    });
    publishFailure({
      kind: 'store-failed',
      route: undefined,
      records: 0,
      firstSeq: undefined,
      attempt,
      retryInMs,
      error,
    });
    this.#waitToRead(retryInMs, 'always');
  }

  /** The head moves: reads follow commits again. */
  #endStall(): void {
    this.#readBackoff.reset();
    this.#readTimer?.cancel();
    this.#readTimer = undefined;
    if (this.#stalled) {
      this.#stalled = false;
      logSafely(() => {
        this.#logger.warn('the egress outbox is moving again');
      });
    }
  }

  #dispatch(lane: Lane, group: OutboxRecord[]): void {
    lane.delivering = this.#deliver(lane, group).finally(() => {
      lane.delivering = undefined;
      // A success may have uncovered more of this route; after a failure, the read holds this
      // route's records back and looks past them.
      this.#read();
    });
  }

  /** Delivers `group` and acknowledges it; never rejects. */
  async #deliver(lane: Lane, group: OutboxRecord[]): Promise<void> {
    const retrying = lane.backoff.attempts > 0;
    if (retrying) this.#retries += 1;
    this.#inFlight += group.length;
    try {
      try {
        await lane.sink.deliver(group, this.#stop.signal);
      } catch (error) {
        this.#deliveryFailed(lane, group, error);
        return;
      }
      lane.backoff.reset();
      try {
        await this.#store.acknowledgeOutbox(group.map((record) => record.seq));
        this.#delivered += group.length;
        this.#onAcknowledged?.(group.length);
      } catch (error) {
        // The records stay and go out again: a duplicate, which a sink's dedup key makes harmless.
        this.#storeFailures += 1;
        logSafely(() => {
          this.#logger.warn(
            `acknowledging delivered egress records of ${lane.route} failed; they will be delivered again`,
            {
              records: group.length,
              firstSeq: group[0]?.seq,
              error: describeError(error),
            },
          );
        });
        publishFailure({
          kind: 'store-failed',
          route: lane.route,
          records: group.length,
          firstSeq: group[0]?.seq,
          attempt: 1,
          retryInMs: undefined,
          error,
        });
      }
    } finally {
      this.#inFlight -= group.length;
    }
  }

  #deliveryFailed(lane: Lane, group: OutboxRecord[], error: unknown): void {
    this.#failures += 1;
    if (this.#closed) return; // no retry after close; the records stay for the next start
    const retryInMs = lane.backoff.next();
    const attempt = lane.backoff.attempts;
    const firstSeq = group[0]?.seq;
    logSafely(() => {
      this.#logger.warn(`egress delivery to ${lane.route} failed; retrying in ${retryInMs} ms`, {
        records: group.length,
        firstSeq,
        attempt,
        error: describeError(error),
      });
    });
    publishFailure({
      kind: 'delivery-failed',
      route: lane.route,
      records: group.length,
      firstSeq,
      attempt,
      retryInMs,
      error,
    });
    lane.retryTimer = this.#clock.setTimeout(() => {
      lane.retryTimer = undefined;
      this.#read();
    }, retryInMs);
  }

  #holdUnroutable(route: string, group: readonly OutboxRecord[]): void {
    for (const record of group) {
      // Bounded: unroutable records stay at the head, so no more than a window's worth is seen.
      if (this.#unroutableSeqs.size < this.#maxReadWindow) this.#unroutableSeqs.add(record.seq);
    }
    if (this.#unroutableLogged.has(route) || this.#unroutableLogged.size >= MAX_LOGGED_UNROUTABLE) return;
    this.#unroutableLogged.add(route);
    const firstSeq = group[0]?.seq;
    logSafely(() => {
      this.#logger.error(
        // Quoted: the egress id comes from a function's reply and may hold anything.
        `egress records for ${JSON.stringify(route)} have no route: no sink is configured for that egress id. ` +
          'They are kept in the outbox (not dropped) and delivered once a sink for it is configured',
        { route, records: group.length, firstSeq },
      );
    });
    publishFailure({
      kind: 'unroutable',
      route,
      records: group.length,
      firstSeq,
      attempt: 1,
      retryInMs: undefined,
      error: undefined,
    });
  }

  #anyLaneInFlight(): boolean {
    for (const lane of this.#lanes.values()) if (lane.delivering !== undefined) return true;
    return false;
  }

  #resolveDrainWaiters(readNumber: number): void {
    const waiting = this.#drainWaiters.filter((waiter) => waiter.afterRead < readNumber);
    for (const waiter of waiting) {
      this.#removeWaiter(waiter);
      waiter.stopListening();
      waiter.resolve();
    }
  }

  #removeWaiter(waiter: DrainWaiter): void {
    const index = this.#drainWaiters.indexOf(waiter);
    if (index !== -1) this.#drainWaiters.splice(index, 1);
  }
}

/** The records of each route in seq order, routes in order of their oldest record. */
function groupByRoute(records: readonly OutboxRecord[]): Map<string, OutboxRecord[]> {
  const groups = new Map<string, OutboxRecord[]>();
  for (const record of records) {
    const route = egressRoute(record.egress);
    const group = groups.get(route);
    if (group === undefined) groups.set(route, [record]);
    else group.push(record);
  }
  return groups;
}

function publishFailure(event: EgressFailureEvent): void {
  egressFailureChannel.publish(event);
}

function checkRoutes(routes: ReadonlyMap<string, EgressSink>): ReadonlyMap<string, EgressSink> {
  if (!(routes instanceof Map)) throw new ConfigError('egress.routes', 'must be a Map of egress id to sink');
  for (const [route, sink] of routes as ReadonlyMap<unknown, unknown>) {
    const slash = typeof route === 'string' ? route.lastIndexOf('/') : -1;
    if (typeof route !== 'string' || slash <= 0 || slash === route.length - 1) {
      throw new ConfigError(
        'egress.routes',
        `a route must be an egress id namespace/type, got ${String(route)}`,
      );
    }
    const candidate = sink as Partial<EgressSink> | null;
    if (typeof candidate?.deliver !== 'function' || typeof candidate.close !== 'function') {
      throw new ConfigError(`egress.routes[${route}]`, 'must be an EgressSink (deliver and close)');
    }
  }
  return routes;
}

function limitOption(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_STORE_LIMIT) {
    throw new ConfigError(
      `egress.${field}`,
      `must be an integer from 1 to ${MAX_STORE_LIMIT}, got ${String(value)}`,
    );
  }
  return value;
}

function noop(): void {
  // Nothing to stop listening to.
}
