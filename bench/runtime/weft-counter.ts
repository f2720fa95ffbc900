// Our side of the durable-counter cases, as the bench process sees it: the Weft runtime with the
// counter function in a forked process (weft-counter-server.ts), and this process as its load
// client through the HTTP ingress (weft-ingress-client.ts), with the workload every peer runs
// (workload.ts: `concurrency` requests in flight over `keys` keys in turn).
//
// What a run measures differs from Restate's in one way, and the figures account for it: Restate
// answers an `add` with the new count once the call has run and is durable; our ingress answers
// 202 once the message is durable, and the function runs after. So a run's throughput counts an
// update only once it is applied: the time runs from the first request until the runtime has
// committed the effects of every message it acknowledged (`settle`). Its latencies are those of
// the 202s: the time until an update is durable, not until it is applied.
//
// `check` reads every key's count back from the store and compares it with the 202s this process
// has had for it; it fails on any batch failure, refusal or logged error in the runtime.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { profilingFlags, stopChild } from '../forked-server.ts';
import { loadStatefun } from '../statefun/load-statefun.ts';
import {
  parseReply,
  type CounterReply,
  type CounterRequest,
  type CounterStats,
} from './weft-counter-messages.ts';
import { IngressClient } from './weft-ingress-client.ts';
import {
  checkLoad,
  counterKey,
  KeyCounts,
  runClosedLoop,
  type LoadResult,
  type LoadSize,
} from './workload.ts';

const serverModule = path.join(import.meta.dirname, 'weft-counter-server.ts');
const startTimeoutMs = 20_000;
/** Longer than the server's own wait for the runtime to catch up (60 s), so its error shows. */
const replyTimeoutMs = 90_000;

export interface WeftCounterOptions {
  readonly concurrency: number;
  readonly keys: number;
}

export interface WeftCounterRun {
  /** The 202s: their rate and latencies (until durable). */
  readonly acked: LoadResult;
  /** Updates per second from the first request until the runtime had committed the last. */
  readonly appliedOpsPerS: number;
  /** Store commits made during the run, and the batches they committed. */
  readonly commits: number;
  readonly batches: number;
}

export interface WeftCounter {
  /** Runs a load of adds, each answered 202, and waits until the runtime has applied them all. */
  run(size: LoadSize): Promise<WeftCounterRun>;
  /**
   * Adds once more to a few keys, waits until the runtime has applied everything, then throws
   * unless every key's stored count is the number of 202s it had and the runtime had no trouble.
   * Resolves with the keys compared.
   */
  check(): Promise<number>;
  /** The runtime's figures once it has applied everything acknowledged so far. */
  stats(): Promise<CounterStats>;
  /** Stops the process (which removes its data directory); safe to call twice. */
  close(): Promise<void>;
}

/** The server process's replies, matched to the commands by id. */
class CommandChannel {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (reply: CounterReply) => void>();
  #nextId = 0;
  #failure: Error | undefined;

  constructor(child: ChildProcess) {
    this.#child = child;
  }

  deliver(reply: CounterReply): void {
    if (reply.type === 'ready') {
      this.fail(new Error('weft counter: a second ready message'));
      return;
    }
    const resolve = this.#pending.get(reply.id);
    if (resolve === undefined) {
      this.fail(new Error(`weft counter: a reply to no command (id ${reply.id})`));
      return;
    }
    this.#pending.delete(reply.id);
    resolve(reply);
  }

  fail(error: Error): void {
    this.#failure ??= error;
    for (const resolve of this.#pending.values()) {
      resolve({ type: 'failed', id: -1, message: this.#failure.message });
    }
    this.#pending.clear();
  }

  async ask(command: CounterRequest): Promise<CounterReply> {
    if (this.#failure !== undefined) throw this.#failure;
    const id = this.#nextId++;
    const reply = await new Promise<CounterReply>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({ type: 'failed', id, message: `no reply to ${command.op} within ${replyTimeoutMs} ms` });
      }, replyTimeoutMs);
      this.#pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.#child.send({ ...command, id });
    });
    if (reply.type === 'failed') throw new Error(`weft counter: ${command.op}: ${reply.message}`);
    return reply;
  }
}

/** Forks the runtime's process and waits until its ingress listens. */
export async function startWeftCounter(options: WeftCounterOptions): Promise<WeftCounter> {
  const { concurrency, keys } = options;
  checkLoad({ concurrency, keys, requests: 1 });
  const sdk = await loadStatefun();
  const child = fork(serverModule, [], {
    execArgv: ['--import', 'tsx', ...profilingFlags()],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const channel = new CommandChannel(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      channel.fail(new Error(`the weft counter process exited (${signal ?? String(code)})`));
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= stopChild(child, exited));

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the weft counter process did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the weft counter process exited (${signal ?? String(code)}) before it was ready`));
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        try {
          const ready = parseReply(message);
          if (ready.type !== 'ready') throw new Error(`weft counter: expected ready, got ${ready.type}`);
          resolve(ready.port);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
  } catch (error) {
    await close();
    throw error;
  }
  child.on('message', (message) => {
    try {
      channel.deliver(parseReply(message));
    } catch (error) {
      channel.fail(error instanceof Error ? error : new Error(String(error)));
    }
  });

  const client = new IngressClient(port, concurrency, sdk.intType.serialize(1));
  const counts = new KeyCounts(keys);
  let acknowledged = 0;
  let nextKey = 0;
  const add = async (key: number): Promise<void> => {
    await client.add(key);
    counts.next(key);
    acknowledged += 1;
  };
  const stats = async (): Promise<CounterStats> => {
    const reply = await channel.ask({ op: 'settle', accepted: acknowledged });
    if (reply.type !== 'settled') throw new Error(`weft counter: expected settled, got ${reply.type}`);
    return reply.stats;
  };
  let last: CounterStats | undefined;
  const run = async (size: LoadSize): Promise<WeftCounterRun> => {
    const before = (last ??= await stats());
    const start = performance.now();
    const acked = await runClosedLoop({ concurrency, keys, firstKey: nextKey, ...size }, add);
    nextKey = (nextKey + acked.count) % keys;
    const after = await stats();
    const elapsedMs = performance.now() - start;
    last = after;
    return {
      acked,
      appliedOpsPerS: (acked.count * 1000) / elapsedMs,
      commits: after.commits - before.commits,
      batches: after.batches - before.batches,
    };
  };

  return {
    run,
    check: async () => {
      await run({ requests: concurrency * 2 });
      const figures = await stats();
      const trouble = [
        figures.accepted !== acknowledged &&
          `the runtime accepted ${figures.accepted} messages, not ${acknowledged}`,
        figures.committedMessages !== acknowledged &&
          `the runtime committed ${figures.committedMessages} messages, not ${acknowledged}`,
        figures.invocations !== figures.committedMessages &&
          `the function ran ${figures.invocations} times for ${figures.committedMessages} messages`,
        figures.batchFailures > 0 && `${figures.batchFailures} batches failed`,
        figures.refused > 0 && `${figures.refused} messages or batches refused`,
        figures.errorsLogged > 0 && `the runtime logged ${figures.errorsLogged} warnings or errors`,
      ].filter((line) => line !== false);
      if (trouble.length > 0) throw new Error(`weft counter: ${trouble.join('; ')}`);
      const reply = await channel.ask({ op: 'counts', keys });
      if (reply.type !== 'counts' || reply.counts.length !== keys) {
        throw new Error(`weft counter: expected ${keys} counts, got ${reply.type}`);
      }
      reply.counts.forEach((stored, key) => {
        if (stored !== counts.get(key)) {
          throw new Error(
            `weft counter: ${counterKey(key)} holds ${stored}, but had ${counts.get(key)} 202s`,
          );
        }
      });
      return keys;
    },
    stats,
    close: async () => {
      client.close();
      await close();
    },
  };
}
