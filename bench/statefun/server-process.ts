// The statefun suite's server process (server.ts) as the bench process sees it: forked, its
// ports received over IPC (ipc.ts), stopped by closing the IPC channel so that it closes its
// servers and exits on its own.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { profilingFlags, stopChild } from '../forked-server.ts';

import { parseReady, type ReadyMessage } from './ipc.ts';

const serverModule = path.join(import.meta.dirname, 'server.ts');
export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly ready: Promise<ReadyMessage>;

  constructor(startTimeoutMs: number) {
    this.#child = fork(serverModule, [], {
      execArgv: ['--import', 'tsx', ...profilingFlags()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = this.#child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        resolve();
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the statefun bench server did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the statefun bench server exited (${signal ?? String(code)}) before it was ready`));
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        try {
          resolve(parseReady(message));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
  }

  /** Asks the server to exit (it does when the IPC channel closes); kills it if it does not. */
  stop(): Promise<void> {
    return stopChild(this.#child, this.#exited);
  }
}
