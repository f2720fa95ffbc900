// A runtime for tests: in-memory store, a FakeClock, egress collected in memory. Send a message,
// let the runtime settle, move time forward, read an address's state, look at what went to
// egress; nothing sleeps and nothing touches the disk.

import { FakeClock } from '../internal/fake-clock.ts';
import {
  InProcessSink,
  MemoryStateStore,
  Runtime,
  type EndpointSpec,
  type OutboxRecord,
  type RuntimeLimits,
  type RuntimeLogger,
} from '../runtime/index.ts';
import type { Address, Message, StatefulFunctions, ValueSpec } from '../statefun/index.ts';

export interface RuntimeHarnessOptions {
  readonly functions?: StatefulFunctions;
  readonly endpoints?: readonly EndpointSpec[];
  /** Egress ids (`namespace/type`) to collect; a function sending to any other fails its batch. */
  readonly egress?: readonly string[];
  readonly clock?: FakeClock;
  readonly limits?: RuntimeLimits;
  readonly logger?: RuntimeLogger;
}

/** An egress record as a function emitted it. */
export interface CollectedEgress {
  readonly typename: string;
  readonly value: Uint8Array;
}

/** Event-loop turns `settle` allows before it gives up on a runtime that never goes idle. */
const MAX_SETTLE_TURNS = 100_000;

export class RuntimeHarness {
  readonly clock: FakeClock;
  readonly store: MemoryStateStore;
  readonly runtime: Runtime;
  readonly #egress: Map<string, CollectedEgress[]>;

  private constructor(
    clock: FakeClock,
    store: MemoryStateStore,
    runtime: Runtime,
    egress: Map<string, CollectedEgress[]>,
  ) {
    this.clock = clock;
    this.store = store;
    this.runtime = runtime;
    this.#egress = egress;
  }

  static async start(options: RuntimeHarnessOptions): Promise<RuntimeHarness> {
    const clock = options.clock ?? new FakeClock();
    const store = new MemoryStateStore();
    const egress = new Map<string, CollectedEgress[]>();
    const sinks: Record<string, InProcessSink> = {};
    for (const id of options.egress ?? []) {
      const collected: CollectedEgress[] = [];
      egress.set(id, collected);
      sinks[id] = new InProcessSink((record: OutboxRecord) => {
        collected.push({ typename: record.value.typename, value: record.value.value });
      });
    }
    const runtime = await Runtime.open({
      store,
      functions: options.functions,
      endpoints: options.endpoints,
      egress: sinks,
      clock,
      limits: options.limits,
      logger: options.logger,
    });
    const harness = new RuntimeHarness(clock, store, runtime, egress);
    await harness.settle();
    return harness;
  }

  /** Sends `message` as ingress does (no caller), then lets the runtime run everything it caused. */
  async send(message: Message, options: { ingressId?: string } = {}): Promise<void> {
    await this.runtime.sendMessage(message, options);
    await this.settle();
  }

  /** Moves the clock forward by `ms`, firing timers (delayed messages, retries) on the way, and settles. */
  async advance(ms: number): Promise<void> {
    await this.clock.advanceAsync(ms);
    await this.settle();
  }

  /**
   * Waits until no batch runs, none waits for a turn and the outbox is delivered. Parked
   * addresses wait for the clock, so they do not keep it from settling.
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let turn = 0; turn < MAX_SETTLE_TURNS; turn++) {
      await new Promise<void>((resolve) => {
        setImmediate(resolve);
      });
      const stats = this.runtime.stats();
      const busy =
        stats.runningBatches > 0 ||
        stats.waitingAddresses > 0 ||
        stats.commits.pending > 0 ||
        stats.outbox.inFlight > 0;
      quiet = busy ? 0 : quiet + 1;
      // Idle across a few turns: a store's promise chain that was mid-way has finished too.
      if (quiet >= 3) return;
    }
    throw new Error(`the runtime did not settle within ${MAX_SETTLE_TURNS} event-loop turns`);
  }

  /** The value `spec` of `address`, decoded; undefined when it is unset or has expired. */
  async state<T>(address: Address, spec: ValueSpec<T>): Promise<T | undefined> {
    const values = await this.store.readState(
      [address.type.namespace, address.type.name, address.id],
      this.clock.wallTimeMs(),
    );
    const entry = values.get(spec.name);
    return entry === undefined ? undefined : spec.type.deserialize(entry.value);
  }

  /** What reached egress `id` so far, in order. */
  egress(id: string): readonly CollectedEgress[] {
    const collected = this.#egress.get(id);
    if (collected === undefined)
      throw new Error(`egress ${id} is not collected: name it in the harness options`);
    return collected;
  }

  async close(): Promise<void> {
    await this.runtime.close();
    await this.store.close();
  }
}
