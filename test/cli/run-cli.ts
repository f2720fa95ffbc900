// Runs the `weft` CLI from source as a child process, the way a user's shell would: its own
// process, its own exit code, stdout and stderr apart. The child sees the parent's environment
// without any WEFT_* variable (a developer's shell must not change what a test sees), plus the
// `env` the test passes.

import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Resolved here so that a child started in a scratch directory still finds tsx.
const TSX_LOADER = import.meta.resolve('tsx');
const DEFAULT_TIMEOUT_MS = 30_000;
/** Output kept per stream; a runaway child must not grow the test's memory without bound. */
const MAX_CAPTURE_CHARS = 1024 * 1024;
/**
 * Short runs at once. Each loads the CLI's module graph through tsx (seconds of CPU); more runs
 * than cores only make each one slower and its timeout likelier.
 */
const MAX_CONCURRENT_RUNS = Math.max(2, os.availableParallelism());
let runsGoing = 0;
const runsWaiting: (() => void)[] = [];

export interface CliResult {
  /** The exit code; null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Added to the environment (which holds no WEFT_* variable otherwise). */
  readonly env?: Readonly<Record<string, string>>;
  /** Default: the repository root. */
  readonly cwd?: string;
}

export interface RunCliOptions extends CliOptions {
  /** The child is killed and the run fails after this long. Default 30 s. */
  readonly timeoutMs?: number;
}

/** A CLI process the test talks to while it runs: `weft start`, `weft view --watch`. */
export interface CliProcess {
  readonly pid: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** True once the process has exited. */
  readonly done: boolean;
  readonly exited: Promise<CliResult>;
  signal(signal: NodeJS.Signals): void;
  /** Resolves with stdout once `pattern` matches it; rejects on exit or after `timeoutMs`. */
  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<string>;
}

/** Runs `weft <args>` to completion (queued while MAX_CONCURRENT_RUNS others run). */
export async function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  // A finished run hands its slot straight to the next waiter, so the count never overshoots.
  if (runsGoing < MAX_CONCURRENT_RUNS) runsGoing++;
  else await new Promise<void>((resolve) => runsWaiting.push(resolve));
  try {
    return await runToCompletion(args, options);
  } finally {
    const next = runsWaiting.shift();
    if (next === undefined) runsGoing--;
    else next();
  }
}

async function runToCompletion(args: readonly string[], options: RunCliOptions): Promise<CliResult> {
  const child = spawnCli(args, options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.signal('SIGKILL');
      reject(new Error(`weft ${args.join(' ')} ran longer than ${timeoutMs} ms:\n${describeOutput(child)}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `weft <args>` and returns at once. */
export function spawnCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, '--conditions=weft-source', MAIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...environmentWithoutWeft(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new SpawnedCli(child);
}

export function describeOutput(cli: { readonly stdout: string; readonly stderr: string }): string {
  return `--- stdout ---\n${cli.stdout}\n--- stderr ---\n${cli.stderr}`;
}

function environmentWithoutWeft(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('WEFT_')) env[key] = value;
  }
  return env;
}

class SpawnedCli implements CliProcess {
  readonly exited: Promise<CliResult>;
  readonly #child: ChildProcess;
  #stdout = '';
  #stderr = '';
  #done = false;
  readonly #outputListeners = new Set<() => void>();

  constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout = capped(this.#stdout, chunk);
      for (const listener of this.#outputListeners) listener();
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = capped(this.#stderr, chunk);
    });
    this.exited = new Promise((resolve, reject) => {
      child.once('error', reject);
      // 'close', not 'exit': by then both pipes are drained, so the output is complete.
      child.once('close', (code, signal) => {
        this.#done = true;
        for (const listener of this.#outputListeners) listener();
        resolve({ code, signal, stdout: this.#stdout, stderr: this.#stderr });
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get done(): boolean {
    return this.#done;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.#done) this.#child.kill(signal);
  }

  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.#outputListeners.delete(check);
        if (error === undefined) resolve(this.#stdout);
        else reject(error);
      };
      const check = (): void => {
        if (pattern.test(this.#stdout)) finish();
        else if (this.#done)
          finish(new Error(`exited before its output matched ${pattern}:\n${describeOutput(this)}`));
      };
      const timer = setTimeout(() => {
        finish(new Error(`output did not match ${pattern} within ${timeoutMs} ms:\n${describeOutput(this)}`));
      }, timeoutMs);
      this.#outputListeners.add(check);
      check();
    });
  }
}

function capped(kept: string, chunk: string): string {
  const room = MAX_CAPTURE_CHARS - kept.length;
  if (room <= 0) return kept;
  return chunk.length <= room
    ? kept + chunk
    : `${kept}${chunk.slice(0, room)}\n[output cut at ${MAX_CAPTURE_CHARS} chars]\n`;
}
