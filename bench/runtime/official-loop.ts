// The remote-official peer: how fast the official StateFun SDK (apache-flink-statefun) serves a
// counter over HTTP when driven by the least a runtime must do. The endpoint runs in its own
// process (official-endpoint.ts); this process is a bare request loop on node:http with a
// keep-alive Agent, `concurrency` requests in flight over `keys` keys (workload.ts). It holds
// each key's count in memory, sends it with each invocation and applies the reply's mutation,
// which is the runtime's job without the runtime: no log, no store, no batching.
//
// Every reply is checked as it arrives: it must be an invocation result that writes the key's
// count plus one (official-counter.ts). A wrong reply, a status other than 200 or a broken
// connection fails the run.

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

import { profilingFlags, stopChild } from '../forked-server.ts';
import { counterRequest, countFromReply, parseOfficialEndpointReady } from './official-counter.ts';
import {
  checkLoad,
  counterKey,
  KeyCounts,
  runClosedLoop,
  type LoadResult,
  type LoadSize,
} from './workload.ts';

const endpointModule = path.join(import.meta.dirname, 'official-endpoint.ts');
const startTimeoutMs = 20_000;
const requestTimeoutMs = 30_000;
/** A counter's reply is tens of bytes; anything near this is not one. */
const maxReplyBytes = 64 * 1024;
/** Keys `check` sends one more request to. */
const checkedKeys = 32;

export interface OfficialEndpoint {
  /** Where to POST ToFunction requests, e.g. http://127.0.0.1:41234/statefun. */
  readonly url: string;
  close(): Promise<void>;
}

/** Forks the official SDK's endpoint process and waits until it listens. */
export async function startOfficialEndpoint(): Promise<OfficialEndpoint> {
  const child: ChildProcess = fork(endpointModule, [], {
    execArgv: ['--import', 'tsx', ...profilingFlags()],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const close = (): Promise<void> => stopChild(child, exited);
  try {
    const ready = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the official endpoint did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the official endpoint exited (${signal ?? String(code)}) before it was ready`));
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        resolve(message);
      });
    });
    const { port } = parseOfficialEndpointReady(ready);
    return { url: `http://127.0.0.1:${port}/statefun`, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The body of a POST of `body` to `url`; rejects unless the status is 200. */
function post(agent: http.Agent, url: URL, body: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength },
        timeout: requestTimeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > maxReplyBytes) {
            response.destroy(new Error(`official endpoint: a reply over ${maxReplyBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.once('error', reject);
        response.once('end', () => {
          const reply = Buffer.concat(chunks);
          if (response.statusCode === 200) resolve(reply);
          else
            reject(
              new Error(`official endpoint: status ${String(response.statusCode)}: ${reply.toString()}`),
            );
        });
      },
    );
    request.once('timeout', () => {
      request.destroy(new Error(`official endpoint: no reply within ${requestTimeoutMs} ms`));
    });
    request.once('error', reject);
    request.end(body);
  });
}

export interface RequestLoopOptions {
  readonly url: string;
  readonly concurrency: number;
  readonly keys: number;
}

/** A loop's connections and the counts it holds; runs go on from the counts the last one left. */
export interface RequestLoop {
  run(size: LoadSize): Promise<LoadResult>;
  /** One more checked request to each of a sample of the keys run so far. */
  check(): Promise<void>;
  close(): void;
}

export function createRequestLoop(options: RequestLoopOptions): RequestLoop {
  const { concurrency, keys } = options;
  checkLoad({ concurrency, keys, requests: 1 });
  const url = new URL(options.url);
  if (url.protocol !== 'http:') throw new TypeError(`expected an http: url, got ${options.url}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const counts = new KeyCounts(keys);
  const call = async (key: number): Promise<void> => {
    const id = counterKey(key);
    const count = counts.get(key);
    const reply = await post(agent, url, counterRequest(id, count));
    const written = countFromReply(reply, `official endpoint, ${id}`);
    if (written !== count + 1) {
      throw new Error(`official endpoint, ${id}: wrote ${written}, expected ${count + 1}`);
    }
    counts.next(key);
  };
  // Where the next run starts: after the last key the previous one called.
  let nextKey = 0;
  return {
    run: async (size) => {
      const result = await runClosedLoop({ concurrency, keys, firstKey: nextKey, ...size }, call);
      nextKey = (nextKey + result.count) % keys;
      return result;
    },
    check: async () => {
      const sampled = counts.sample(checkedKeys);
      await Promise.all((sampled.length > 0 ? sampled : [0]).map(call));
    },
    close: () => {
      agent.destroy();
    },
  };
}

/** One run of a fresh loop against `url`: its throughput and latency, every reply checked. */
export async function runRequestLoop(
  options: RequestLoopOptions & { readonly requests: number },
): Promise<LoadResult> {
  const loop = createRequestLoop(options);
  try {
    return await loop.run({ requests: options.requests });
  } finally {
    loop.close();
  }
}
