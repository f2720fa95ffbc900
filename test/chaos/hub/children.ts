// The chaos test's child processes: each a script of this folder run with tsx, killed with
// SIGKILL or retired (a newer generation took over and it exits by itself), never left behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LOG_TAIL_LINES = 20;

export type ChildScript = 'source' | 'relay' | 'sink' | 'hub-node';

export class ChildProcessHandle {
  readonly name: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #child: ChildProcess;
  readonly #log: string[] = [];
  readonly #stdoutWaiters: ((line: string) => void)[] = [];
  readonly #stdoutLines: string[] = [];
  /** Killed or retired by the test: its exit is expected. */
  #expected = false;
  #exitedNow = false;

  /** `onUnexpectedExit` hears of an exit the test neither caused nor expects. */
  constructor(script: ChildScript, name: string, config: object, onUnexpectedExit: (error: Error) => void) {
    this.name = name;
    const path = fileURLToPath(new URL(`./${script}.ts`, import.meta.url));
    this.#child = spawn(process.execPath, ['--import', 'tsx', path, JSON.stringify(config)], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitedNow = true;
        if (!this.#expected) {
          onUnexpectedExit(
            new Error(`${name} exited unexpectedly (code ${code}, signal ${signal}):\n${this.logTail()}`),
          );
        }
        resolve({ code, signal });
      });
    });
    createInterface({ input: this.#child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      this.#log.push(line);
      if (this.#log.length > LOG_TAIL_LINES) this.#log.shift();
    });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const waiter = this.#stdoutWaiters.shift();
      if (waiter !== undefined) waiter(line);
      else if (this.#stdoutLines.length < 100) this.#stdoutLines.push(line);
    });
  }

  get running(): boolean {
    return !this.#exitedNow;
  }

  /** The next line the child prints on stdout, within `timeoutMs`. */
  nextLine(timeoutMs: number): Promise<string> {
    const ready = this.#stdoutLines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name} printed nothing within ${timeoutMs} ms:\n${this.logTail()}`));
      }, timeoutMs);
      this.#stdoutWaiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before it printed a line:\n${this.logTail()}`));
      });
    });
  }

  /** Its exit from now on is expected (a newer generation is taking over). */
  retire(): void {
    this.#expected = true;
  }

  /** SIGKILL, and waits for the exit. */
  async kill(): Promise<void> {
    this.#expected = true;
    if (this.running) this.#child.kill('SIGKILL');
    await this.exited;
  }

  logTail(): string {
    return this.#log.join('\n');
  }
}
