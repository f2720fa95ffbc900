// Our side of the remote-official case: the Weft runtime (compiled, from dist/) driving the
// official SDK's counter endpoint (official-endpoint.ts) as a remote function, against the bare
// request loop that drives the same endpoint with the same requests (official-loop.ts).
//
// The runtime runs in this process, as the loop does, so the two drivers share one process and
// one CPU alike while the endpoint has its own. Its store is a MemoryStateStore: the case asks
// what the runtime costs in front of a remote function (dispatch, the ToFunction encoding, the
// HTTP call, the reply's decoding and checks, the commit), not how fast a disk syncs, which the
// durable-counter cases measure. Messages go in through `runtime.send`, one per call, with
// `concurrency` in flight over `keys` keys in turn (workload.ts); a call completes when the
// runtime has committed the batch that ran its message, as the runtime's `weft:runtime:batch`
// diagnostics event reports. So, as in the loop, one call is one invocation of the endpoint
// (after the first request of the type, whose incomplete-context reply registers `count`).

import diagnosticsChannel from 'node:diagnostics_channel';

import { loadStatefun } from '../statefun/load-statefun.ts';
import { officialCounter } from './official-counter.ts';
import { batchChannelName, loadRuntime, type BatchEvent, type Runtime } from './weft-load-runtime.ts';
import {
  checkLoad,
  counterKey,
  KeyCounts,
  runClosedLoop,
  type LoadResult,
  type LoadSize,
} from './workload.ts';

const intTypename = 'io.statefun.types/int';

export interface RemoteCounterOptions {
  /** The official endpoint's URL (startOfficialEndpoint). */
  readonly url: string;
  readonly concurrency: number;
  readonly keys: number;
}

export interface RemoteCounter {
  /** Invocations completed per second and their latencies (send until committed). */
  run(size: LoadSize): Promise<LoadResult>;
  /**
   * Throws unless every key holds, in the store, the number of its invocations, and the runtime
   * has had no failed batch, refusal or logged warning.
   */
  check(): Promise<void>;
  /** Mean batches per store commit so far. */
  meanBatchesPerCommit(): number;
  close(): Promise<void>;
}

export async function startRemoteCounter(options: RemoteCounterOptions): Promise<RemoteCounter> {
  const { url, concurrency, keys } = options;
  checkLoad({ concurrency, keys, requests: 1 });
  const sdk = await loadStatefun();
  const { Runtime, MemoryStateStore } = await loadRuntime();

  const trouble = { logged: 0 };
  const log = (message: string, details?: Record<string, unknown>): void => {
    trouble.logged += 1;
    console.error(`weft remote counter: ${message}`, details ?? '');
  };
  const store = new MemoryStateStore();
  const runtime: Runtime = await Runtime.open({
    store,
    endpoints: [{ functions: `${officialCounter.namespace}/*`, urlPathTemplate: `${url}/{function.name}` }],
    logger: { warn: log, error: log },
  });

  // Callers waiting for their key's batch to commit, by id: calls to one key never overlap.
  const waiting = new Map<string, () => void>();
  let committedMessages = 0;
  const onBatch = (message: unknown): void => {
    const event = message as BatchEvent;
    committedMessages += event.messages;
    const id = event.address[2];
    const done = waiting.get(id);
    if (done !== undefined) {
      waiting.delete(id);
      done();
    }
  };
  diagnosticsChannel.subscribe(batchChannelName, onBatch);

  const addOne = { typename: intTypename, value: sdk.intType.serialize(1) };
  const counts = new KeyCounts(keys);
  let sent = 0;
  let nextKey = 0;
  const call = async (key: number): Promise<void> => {
    const id = counterKey(key);
    const committed = new Promise<void>((resolve) => {
      waiting.set(id, resolve);
    });
    try {
      await runtime.send([
        { target: [officialCounter.namespace, officialCounter.name, id], argument: addOne },
      ]);
    } catch (error) {
      waiting.delete(id);
      throw error;
    }
    sent += 1;
    await committed;
    counts.next(key);
  };

  return {
    run: async (size) => {
      const result = await runClosedLoop({ concurrency, keys, firstKey: nextKey, ...size }, call);
      nextKey = (nextKey + result.count) % keys;
      return result;
    },
    check: async () => {
      // One more call to a key, so a check before any run checks something.
      await call(nextKey);
      nextKey = (nextKey + 1) % keys;
      const stats = runtime.stats();
      const problems = [
        committedMessages !== sent && `${committedMessages} messages committed, ${sent} sent`,
        stats.batchFailures + stats.commits.failedBatches > 0 &&
          `${stats.batchFailures + stats.commits.failedBatches} failed batches`,
        stats.ingress.refused + stats.commits.refused > 0 && 'refused messages or batches',
        trouble.logged > 0 && `${trouble.logged} warnings or errors logged`,
      ].filter((problem) => problem !== false);
      if (problems.length > 0) throw new Error(`weft remote counter: ${problems.join('; ')}`);
      const now = Date.now();
      for (let key = 0; key < keys; key++) {
        const entry = (
          await store.readState([officialCounter.namespace, officialCounter.name, counterKey(key)], now)
        ).get(officialCounter.state);
        const stored = entry === undefined ? 0 : sdk.intType.deserialize(entry.value);
        if (stored !== counts.get(key) || (entry !== undefined && entry.typename !== intTypename)) {
          throw new Error(
            `weft remote counter: ${counterKey(key)} holds ${stored} (${entry?.typename ?? 'nothing'}), expected ${counts.get(key)}`,
          );
        }
      }
    },
    meanBatchesPerCommit: () => runtime.stats().commits.meanBatches,
    close: async () => {
      await runtime.close();
      diagnosticsChannel.unsubscribe(batchChannelName, onBatch);
    },
  };
}
