// The hub suite's server process (server.ts) as the bench sees it: forked with the bench's grid
// host URL, answering once with its ports, stopped by closing the IPC channel.

import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { profilingFlags, stopChild } from '../forked-server.ts';
import { parseReady, type ConnectMessage, type ReadyMessage } from './ipc.ts';

const serverModule = path.join(import.meta.dirname, 'server.ts');
const startTimeoutMs = 20_000;

export class HubServerProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly ready: Promise<ReadyMessage>;

  constructor(benchGridHost: string) {
    const child = fork(serverModule, [benchGridHost], {
      execArgv: ['--import', 'tsx', ...profilingFlags()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        resolve();
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the hub bench server did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the hub bench server exited (${signal ?? String(code)})`));
      });
      child.once('message', (message) => {
        clearTimeout(timer);
        try {
          resolve(parseReady(message));
        } catch (error) {
          reject(error);
        }
      });
    });
    this.ready.catch(() => undefined);
  }

  /** Whether the process is still running (a case fails if its hub died while timed). */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Tells the server its grid node may dial the bench's, which is now attached. */
  allowGridConnect(): void {
    const message: ConnectMessage = { type: 'connect' };
    this.#child.send(message);
  }

  stop(): Promise<void> {
    return stopChild(this.#child, this.#exited);
  }
}
