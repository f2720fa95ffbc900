// A node the crash tests kill: a script run as its own process (with tsx, from the sources), one
// life at a time, each ended by SIGKILL (or SIGTERM, a graceful stop), all on the same data. It
// prints a ReadyLine ({"port": n}) on stdout once it serves, and logs to stderr, whose last
// lines are kept for failure messages. Not a test file itself.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { ReadyLine } from './chaos-workload.ts';

const START_TIMEOUT_MS = 30_000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A node process: one life at a time, each killed with SIGKILL, all on the same data. */
export class NodeProcess {
  readonly #script: string;
  readonly #config: unknown;
  readonly #onUnexpectedExit: (error: Error) => void;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #port: number | undefined;
  #killing = false;
  readonly #log: string[] = [];
  /** How often each kind of log line came, across lives (bounded: the first 50 kinds). */
  readonly #logKinds = new Map<string, number>();

  /** `script` is run with `config` as JSON, its one argument; it prints a ReadyLine once it serves. */
  constructor(script: string, config: unknown, onUnexpectedExit: (error: Error) => void) {
    this.#script = script;
    this.#config = config;
    this.#onUnexpectedExit = onUnexpectedExit;
  }

  /** Starts a life; resolves with its port once it serves. */
  async start(): Promise<number> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=weft-source', this.#script, JSON.stringify(this.#config)],
      {
        cwd: REPO_ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.#child = child;
    this.#killing = false;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.#killing) {
          this.#remember(`[exited by itself: code ${code}, signal ${signal}]`);
          this.#onUnexpectedExit(
            new Error(`the node exited unkilled; its last log lines:\n${this.logTail()}`),
          );
        }
        resolve();
      });
    });
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      this.#remember(line);
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timeout = AbortSignal.timeout(START_TIMEOUT_MS);
    const ready = new Promise<number>((resolve, reject) => {
      lines.once('line', (line) => {
        const port = (JSON.parse(line) as Partial<ReadyLine> | null)?.port;
        if (typeof port === 'number') resolve(port);
        else reject(new Error(`the node announced ${line}, not {"port": n}`));
      });
      child.once('exit', () => {
        reject(new Error(`the node exited before it served:\n${this.logTail()}`));
      });
      timeout.addEventListener('abort', () => {
        reject(new Error(`the node did not serve within ${START_TIMEOUT_MS} ms:\n${this.logTail()}`));
      });
    });
    this.#port = await ready;
    return this.#port;
  }

  port(): number {
    if (this.#port === undefined) throw new Error('the node is not running');
    return this.#port;
  }

  /** Whether a life is running (started, not yet exited). */
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** SIGTERM, a graceful stop, and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#port = undefined;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      this.#killing = true;
      child.kill('SIGTERM');
    }
    await this.#exited;
    this.#child = undefined;
  }

  /** SIGKILL, and waits for the exit: the next life must not overlap this one. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#port = undefined;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      this.#killing = true;
      child.kill('SIGKILL');
    }
    await this.#exited;
    this.#child = undefined;
  }

  logTail(): string {
    return this.#log.join('\n');
  }

  /** Log lines by kind: level and message up to its first number ("retrying in 90 ms"). */
  logSummary(): string {
    return [...this.#logKinds].map(([kind, count]) => `${count}× ${kind}`).join('; ') || 'none';
  }

  #remember(line: string): void {
    this.#log.push(line);
    if (this.#log.length > 40) this.#log.shift();
    const kind = line.replace(/\d.*$/, '…').slice(0, 120);
    if (this.#logKinds.has(kind) || this.#logKinds.size < 50) {
      this.#logKinds.set(kind, (this.#logKinds.get(kind) ?? 0) + 1);
    }
  }
}
