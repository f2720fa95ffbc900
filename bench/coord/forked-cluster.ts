// A mirror cluster with each node in a process of its own (node-process.ts), for the throughput
// case: in one process, one event loop would do the work of every node and of the client at
// once, which no deployment does. The bench process is then only the client, as it is when it
// pulls straight from the origin (itself a process of its own).

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { loopback, profilingFlags, stopChild } from '../forked-server.ts';
import { parseFromNode, type FromNode, type NodeStats, type ToNode } from './node-ipc.ts';

const nodeModule = path.join(import.meta.dirname, 'node-process.ts');
const startTimeoutMs = 30_000;

export interface ForkedMirrorCluster {
  /** Node i's mirror base URL, which is also its grid host and node id. */
  readonly urls: readonly string[];
  stats(): Promise<NodeStats[]>;
  close(): Promise<void>;
}

class NodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly #waiting = new Map<string, { resolve(message: FromNode): void; reject(error: Error): void }>();
  #failure: Error | undefined;
  #nextId = 0;

  constructor(index: number) {
    this.child = fork(nodeModule, [], {
      execArgv: ['--import', 'tsx', ...profilingFlags()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = this.child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#fail(new Error(`mirror node ${index} exited (${signal ?? String(code)})`));
        resolve();
      });
    });
    child.on('error', (error) => {
      this.#fail(error);
    });
    child.on('message', (raw) => {
      const message = parseFromNode(raw);
      if (message.type === 'failed') {
        this.#fail(new Error(`mirror node ${index} failed: ${message.message}`));
        return;
      }
      const key = message.type === 'stats' ? `stats-${message.id}` : message.type;
      this.#waiting.get(key)?.resolve(message);
      this.#waiting.delete(key);
    });
  }

  /** Resolves with the next message of `key` (a type, or `stats-<id>`). */
  next(key: string): Promise<FromNode> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(new Error(`no "${key}" from a mirror node within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      this.#waiting.set(key, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  send(message: ToNode): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.child.send(message);
  }

  async stats(): Promise<NodeStats> {
    const id = this.#nextId++;
    const answer = this.next(`stats-${id}`);
    this.send({ type: 'stats', id });
    return (await answer) as NodeStats;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiting of this.#waiting.values()) waiting.reject(this.#failure);
    this.#waiting.clear();
  }
}

export async function startForkedMirrorCluster(options: {
  readonly nodes: number;
  readonly origin: string;
  readonly maxStoreBytes: number;
}): Promise<ForkedMirrorCluster> {
  const storeRoot = await mkdtemp(path.join(tmpdir(), 'weft-bench-mirror-'));
  const nodes: NodeProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => stopChild(node.child, node.exited)));
    await rm(storeRoot, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < options.nodes; i++) nodes.push(new NodeProcess(i));
    const ports = await Promise.all(
      nodes.map(async (node) => {
        const message = await node.next('listening');
        return message.type === 'listening' ? message.port : 0;
      }),
    );
    const urls = ports.map((port) => `http://${loopback}:${port}`);
    await Promise.all(
      nodes.map(async (node, i) => {
        const ready = node.next('ready');
        node.send({
          type: 'start',
          local: urls[i] ?? '',
          hosts: urls,
          origin: options.origin,
          storeDirectory: path.join(storeRoot, `node-${i}`),
          maxStoreBytes: options.maxStoreBytes,
        });
        await ready;
      }),
    );
    return { urls, stats: () => Promise.all(nodes.map((node) => node.stats())), close };
  } catch (error) {
    await close();
    throw error;
  }
}
