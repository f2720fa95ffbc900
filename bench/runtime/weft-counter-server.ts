// The Weft side of the durable-counter cases, in a process of its own (the bench process is the
// load client, as Restate's client is separate from its server): the runtime (compiled, from
// dist/) on lmdb in a fresh temporary directory, its HTTP ingress on loopback, and the counter
// function in process (read `count`, add the message's int, write it). Forked by
// weft-counter.ts; reports its port over IPC, answers the commands of weft-counter-messages.ts,
// and exits when the parent disconnects, closing the runtime (so a `--cpu-prof` profile is
// written) and removing its directory.
//
// It opens the lmdb store itself and gives it to the runtime, which is what
// `Runtime.open({ dataDir })` does (`LmdbStateStore.open({ path })`), so that `counts` can read
// the committed state back while the runtime runs.

import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { loadStatefun } from '../statefun/load-statefun.ts';
import {
  parseCommand,
  weftCounter,
  type CounterCommand,
  type CounterReply,
  type CounterStats,
} from './weft-counter-messages.ts';
import {
  batchChannelName,
  loadRuntime,
  type BatchEvent,
  type LmdbStateStore,
  type Runtime,
} from './weft-load-runtime.ts';
import { counterKey } from './workload.ts';

/** How long `settle` waits for the runtime to catch up with the ingress. */
const settleTimeoutMs = 60_000;

/** A `settle` waiting for the committed messages to reach `target`. */
interface Waiter {
  readonly target: number;
  readonly done: () => void;
}

class CounterProcess {
  readonly #runtime: Runtime;
  readonly #store: LmdbStateStore;
  readonly #decodeInt: (bytes: Uint8Array) => number;
  readonly #figures: { invocations: number; errorsLogged: number };
  #committedMessages = 0;
  #waiting: Waiter[] = [];

  constructor(
    runtime: Runtime,
    store: LmdbStateStore,
    decodeInt: (bytes: Uint8Array) => number,
    figures: { invocations: number; errorsLogged: number },
  ) {
    this.#runtime = runtime;
    this.#store = store;
    this.#decodeInt = decodeInt;
    this.#figures = figures;
    // The runtime's batch events, summed: the one count of messages run and committed.
    diagnosticsChannel.subscribe(batchChannelName, this.#onBatch);
  }

  readonly #onBatch = (event: unknown): void => {
    this.#committedMessages += (event as BatchEvent).messages;
    if (this.#waiting.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.#waiting) {
      if (this.#committedMessages >= waiter.target) waiter.done();
      else still.push(waiter);
    }
    this.#waiting = still;
  };

  async execute(command: CounterCommand): Promise<CounterReply> {
    if (command.op === 'counts')
      return { type: 'counts', id: command.id, counts: await this.#counts(command.keys) };
    await this.#settle(command.accepted);
    return { type: 'settled', id: command.id, stats: this.#stats() };
  }

  async close(): Promise<void> {
    diagnosticsChannel.unsubscribe(batchChannelName, this.#onBatch);
    await this.#runtime.close();
    await this.#store.close();
  }

  #settle(accepted: number): Promise<void> {
    if (this.#committedMessages >= accepted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((waiter) => waiter.done !== done);
        const stats = JSON.stringify(this.#runtime.stats());
        reject(
          new Error(
            `the runtime committed ${this.#committedMessages} of ${accepted} messages within ${settleTimeoutMs} ms; stats: ${stats}`,
          ),
        );
      }, settleTimeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiting.push({ target: accepted, done });
    });
  }

  #stats(): CounterStats {
    const stats = this.#runtime.stats();
    return {
      accepted: stats.ingress.accepted,
      committedMessages: this.#committedMessages,
      invocations: this.#figures.invocations,
      commits: stats.commits.commits,
      batches: stats.commits.batches,
      largestCommit: stats.commits.largest,
      batchFailures: stats.batchFailures + stats.commits.failedBatches,
      refused: stats.ingress.refused + stats.commits.refused,
      errorsLogged: this.#figures.errorsLogged,
    };
  }

  async #counts(keys: number): Promise<number[]> {
    const now = Date.now();
    const counts: number[] = [];
    for (let key = 0; key < keys; key++) {
      const state = await this.#store.readState(
        [weftCounter.namespace, weftCounter.name, counterKey(key)],
        now,
      );
      const entry = state.get(weftCounter.state);
      if (entry !== undefined && entry.typename !== weftCounter.messageType) {
        throw new Error(`${counterKey(key)}: ${weftCounter.state} is a ${entry.typename}`);
      }
      counts.push(entry === undefined ? 0 : this.#decodeInt(entry.value));
    }
    return counts;
  }
}

async function start(dataDir: string): Promise<{ counter: CounterProcess; port: number }> {
  const sdk = await loadStatefun();
  const { Runtime, LmdbStateStore } = await loadRuntime();

  const figures = { invocations: 0, errorsLogged: 0 };
  const count = sdk.valueSpec({ name: weftCounter.state, type: sdk.intType });
  const functions = new sdk.StatefulFunctions().withSpec({
    typeName: `${weftCounter.namespace}/${weftCounter.name}`,
    specs: [count],
    fn(context, message) {
      figures.invocations += 1;
      context.storage.set(count, (context.storage.get(count) ?? 0) + message.asInt());
    },
  });
  // Anything the runtime logs is trouble the check must see, and a reader of the output too.
  const logger = {
    warn: (message: string, details?: Record<string, unknown>): void => {
      figures.errorsLogged += 1;
      console.error(`weft counter: ${message}`, details ?? '');
    },
    error: (message: string, details?: Record<string, unknown>): void => {
      figures.errorsLogged += 1;
      console.error(`weft counter: ${message}`, details ?? '');
    },
  };

  const store = await LmdbStateStore.open({ path: dataDir });
  let runtime: Runtime;
  try {
    runtime = await Runtime.open({
      store,
      functions,
      ingress: { http: { port: 0, host: '127.0.0.1' } },
      logger,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  const port = runtime.httpAddress?.port;
  if (port === undefined) {
    await runtime.close();
    await store.close();
    throw new Error('the runtime has no HTTP ingress address');
  }
  return {
    counter: new CounterProcess(runtime, store, (bytes) => sdk.intType.deserialize(bytes), figures),
    port,
  };
}

function send(reply: CounterReply): void {
  process.send?.(reply);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-runtime-bench-'));
  let stopping: Promise<void> | undefined;
  let counter: CounterProcess | undefined;
  const stop = (code: number): Promise<void> => {
    stopping ??= (async () => {
      try {
        await counter?.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
        process.exit(code);
      }
    })();
    return stopping;
  };
  process.once('disconnect', () => void stop(0));
  try {
    const started = await start(dataDir);
    counter = started.counter;
    const running = started.counter;
    process.on('message', (message: unknown) => {
      let command: CounterCommand;
      try {
        command = parseCommand(message);
      } catch (error) {
        console.error(error);
        void stop(1);
        return;
      }
      running.execute(command).then(send, (error: unknown) => {
        send({
          type: 'failed',
          id: command.id,
          message: error instanceof Error ? error.message : String(error),
        });
      });
    });
    send({ type: 'ready', port: started.port });
  } catch (error) {
    console.error('weft counter: failed to start:', error);
    await stop(1);
  }
}

if (process.send === undefined) {
  console.error('usage: forked by bench/runtime/weft-counter.ts');
  process.exit(2);
}
await main();
