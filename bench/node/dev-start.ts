// One start of `weft dev` as `npm start` runs it: the CLI from the sources through tsx, three
// node processes on loopback with the example application, a fresh data directory each time.
// A sample is the time from spawning the command until it printed that every node is ready;
// the cluster is then stopped with SIGINT (Ctrl-C) and must exit with 0 before the next start.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePortsAt } from './free-ports.ts';

/** What `weft dev` prints last, once every node has reported ready. */
export const readyLine = 'Ctrl-C stops the cluster.';
export const devNodes = 3;
/** Ports `weft dev --port p` uses: p, p+1, p+2 for the nodes, p+100 for the hub. */
const devPortOffsets = [0, 1, 2, 100];
/** `weft dev` gives each node 60 s to start; a little more for the command itself. */
const readyTimeoutMs = 90_000;
/** `weft dev` kills what has not stopped after 30 s; a little more for the command itself. */
const stopTimeoutMs = 45_000;
/** Output kept for an error message (and for finding the ready line). */
const outputTailChars = 16_384;
const logTailChars = 2_048;
/**
 * Untimed pause between the ready line and SIGINT. `weft dev` prints the line just before it
 * installs its SIGINT handler; a signal sent the instant the line arrives can beat the handler
 * and end the command by the default action, where a person's Ctrl-C never would.
 */
const settleBeforeStopMs = 250;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Starts of `weft dev`, one per sample; tracks its processes so that none outlives the case. */
export class DevStarts {
  readonly #repoDir: string;
  readonly #running = new Set<ChildProcess>();

  constructor(repoDir: string) {
    this.#repoDir = repoDir;
  }

  /** `weft dev` processes still running: none between samples. */
  get running(): number {
    return this.#running.size;
  }

  /** Milliseconds from spawning `weft dev` to its ready line; stops it before resolving. */
  async readyMs(): Promise<number> {
    const port = await freePortsAt(devPortOffsets);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-bench-dev-'));
    let output = '';
    let child: ChildProcess | undefined;
    try {
      const started = performance.now();
      child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--conditions=weft-source',
          'src/cli/main.ts',
          'dev',
          '--port',
          String(port),
          '--data-dir',
          dataDir,
        ],
        { cwd: this.#repoDir, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const spawned = child;
      this.#running.add(spawned);
      const exited = new Promise<Exit>((resolve) => {
        spawned.once('exit', (code, signal) => {
          this.#running.delete(spawned);
          resolve({ code, signal });
        });
      });
      const ready = new Promise<number>((resolve, reject) => {
        const onOutput = (chunk: Buffer): void => {
          output = (output + chunk.toString('utf8')).slice(-outputTailChars);
          if (output.includes(readyLine)) resolve(performance.now() - started);
        };
        spawned.stdout?.on('data', onOutput);
        spawned.stderr?.on('data', onOutput);
        spawned.once('error', reject);
        void exited.then(({ code, signal }) => {
          reject(new Error(`weft dev exited (${signal ?? `code ${String(code)}`}) before it was ready`));
        });
      });
      const readyMs = await withTimeout(
        ready,
        readyTimeoutMs,
        `weft dev was not ready within ${readyTimeoutMs} ms`,
      );
      await sleep(settleBeforeStopMs);
      spawned.kill('SIGINT');
      const exit = await withTimeout(
        exited,
        stopTimeoutMs,
        `weft dev did not stop within ${stopTimeoutMs} ms of SIGINT`,
      );
      if (exit.code !== 0) {
        throw new Error(
          `weft dev stopped with ${exit.signal ?? `code ${String(exit.code)}`} after SIGINT, not 0`,
        );
      }
      return readyMs;
    } catch (error) {
      // Its nodes stop by themselves once their parent is gone (they watch the IPC channel).
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const logs = await nodeLogTails(dataDir);
      throw new Error(`${(error as Error).message}\n--- weft dev output (end) ---\n${output}${logs}`, {
        cause: error,
      });
    } finally {
      await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** Stops any start left running (a sample that failed half-way). */
  close(): void {
    for (const child of this.#running) child.kill('SIGKILL');
  }
}

/** The end of each node's log in `dataDir`, for an error message. */
async function nodeLogTails(dataDir: string): Promise<string> {
  let text = '';
  try {
    for (const file of (await readdir(dataDir)).filter((f) => f.endsWith('.log')).sort()) {
      const log = await readFile(path.join(dataDir, file), 'utf8');
      text += `\n--- ${file} (end) ---\n${log.slice(-logTailChars)}`;
    }
  } catch {
    // No logs yet: the command failed before it started a node.
  }
  return text;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(message));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
