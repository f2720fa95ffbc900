// The grid suite's server process (server.ts) as the bench process sees it: forked with
// --expose-gc (it measures its own heap), spoken to over IPC (ipc.ts), stopped by closing the
// IPC channel so that it shuts its servers down and exits on its own.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { profilingFlags, stopChild } from '../forked-server.ts';

import { parseFromServer, type ReadyMessage, type StatsMessage, type ToServer } from './ipc.ts';

const serverModule = path.join(import.meta.dirname, 'server.ts');
/** The forked server process and the IPC requests waiting on it. */
export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #pendingStats = new Map<
    number,
    { resolve(stats: StatsMessage): void; reject(error: Error): void }
  >();
  readonly ready: Promise<ReadyMessage>;
  readonly #exited: Promise<void>;
  #failure: Error | undefined;
  #nextId = 0;

  constructor(benchHost: string, startTimeoutMs: number) {
    this.#child = fork(serverModule, [benchHost], {
      execArgv: ['--import', 'tsx', '--expose-gc', ...profilingFlags()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = this.#child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#fail(new Error(`the grid bench server exited (${signal ?? String(code)})`));
        resolve();
      });
    });
    child.on('error', (error) => {
      this.#fail(error);
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the grid bench server did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        reject(this.#failure ?? new Error('the grid bench server exited before it was ready'));
      });
      child.on('message', (raw) => {
        const message = parseFromServer(raw);
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message);
          return;
        }
        this.#pendingStats.get(message.id)?.resolve(message);
        this.#pendingStats.delete(message.id);
      });
    });
  }

  send(message: ToServer): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#child.send(message);
  }

  stats(gc: boolean): Promise<StatsMessage> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pendingStats.set(id, { resolve, reject });
      this.send({ type: 'stats', id, gc });
    });
  }

  /** Asks the server to exit (it does when the IPC channel closes); kills it if it does not. */
  stop(): Promise<void> {
    return stopChild(this.#child, this.#exited);
  }

  // The first failure sticks: later requests fail at once instead of waiting for an answer.
  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pendingStats.values()) pending.reject(this.#failure);
    this.#pendingStats.clear();
  }
}
