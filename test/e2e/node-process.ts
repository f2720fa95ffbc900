// A Weft node as a real process: `weft start` run from the sources, as an operator would run
// it, so a test can SIGKILL it and its peers see what they would see of a crashed machine
// (sockets reset, no goodbye), then start it again on the same port and data dir.
//
// Its stdout and stderr are appended to `<dataDir>/<name>.log`, kept across restarts; an error
// about a node that would not start quotes the end of that log.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface NodeProcessOptions {
  readonly name: string;
  readonly port: number;
  /** URLs of the members to join through. */
  readonly seeds: readonly string[];
  readonly dataDir: string;
  /** The cluster secret (16 bytes or more), handed over in WEFT_CLUSTER_SECRET. */
  readonly secret: string;
  /** Runs the example application (`--example`). */
  readonly example: boolean;
  /** Runs the hub too, on a port of its own picked by the system. Default false. */
  readonly hub?: boolean;
  /** How long the node may take to answer /readyz with 200. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface NodeProcess {
  readonly name: string;
  /** http://127.0.0.1:<port>: the node's URL, its dashboard's and its API's. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  /** False once the process has exited. */
  readonly running: boolean;
  /** SIGTERM (a graceful stop), then waits for the exit; SIGKILL past `timeoutMs` (default 30 s). */
  stop(timeoutMs?: number): Promise<ProcessExit>;
  /** SIGKILL, then waits for the exit. Safe to call on a process that has exited. */
  kill(): Promise<ProcessExit>;
}

/** The repository's root: the CLI runs from there, as `npm run weft` does. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliEntry = 'src/cli/main.ts';
const readyPollMs = 100;
const readyRequestTimeoutMs = 1_000;
const logTailBytes = 4 * 1024;

// Nodes still running when the test process exits are killed, so none outlive it.
// (A process killed by a signal runs no exit handlers; the OS then reaps nothing for us.)
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The argument vector that runs the `weft` CLI from the sources with this Node binary. */
export function weftCliArgs(args: readonly string[]): string[] {
  return ['--import', 'tsx', '--conditions=weft-source', cliEntry, ...args];
}

/** A port nothing listens on now (listen on 0, then close); a race with other processes is possible but rare. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  return port;
}

/** Starts `weft start` as a child process; resolves once GET /readyz answers 200. */
export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const url = `http://127.0.0.1:${options.port}`;
  await mkdir(options.dataDir, { recursive: true });
  const logFile = path.join(options.dataDir, `${options.name}.log`);
  const args = [
    'start',
    '--name',
    options.name,
    '--port',
    String(options.port),
    '--data-dir',
    options.dataDir,
    ...options.seeds.flatMap((seed) => ['--seed', seed]),
    ...(options.example ? ['--example'] : []),
    '--log-level',
    'warn',
  ];
  if (options.hub === true) {
    // No flag turns the hub on; a config file does (the flags above win over it).
    const configFile = path.join(options.dataDir, `${options.name}.config.json`);
    await writeFile(configFile, JSON.stringify({ hub: { enabled: true, port: 0, host: '127.0.0.1' } }));
    args.push('--config', configFile);
  }

  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, weftCliArgs(args), {
      cwd: repoRoot,
      env: nodeEnvironment(options.secret),
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  running.add(child);
  let spawnError: Error | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    // A spawn failure arrives as 'error', and no 'exit' need follow it.
    child.once('error', (error) => {
      spawnError = error;
      running.delete(child);
      resolve({ code: null, signal: null });
    });
  });

  const handle: NodeProcess = {
    name: options.name,
    url,
    port: options.port,
    pid: child.pid ?? -1,
    logFile,
    get running() {
      return spawnError === undefined && child.exitCode === null && child.signalCode === null;
    },
    async stop(timeoutMs = 30_000) {
      if (!handle.running) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        const exit = await exited;
        if (exit.signal === 'SIGKILL') {
          throw new Error(
            `${options.name} did not stop within ${timeoutMs} ms of SIGTERM and was killed; see ${logFile}`,
          );
        }
        return exit;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (handle.running) child.kill('SIGKILL');
      return exited;
    },
  };

  const polling = new AbortController();
  try {
    await Promise.race([
      waitUntilReady(url, options.readyTimeoutMs ?? 30_000, polling.signal),
      exited.then((exit) => {
        if (spawnError !== undefined) throw spawnError;
        throw new Error(`exited (code ${String(exit.code)}, signal ${String(exit.signal)}) while starting`);
      }),
    ]);
  } catch (error) {
    await handle.kill();
    throw new Error(
      `${options.name} did not start at ${url}: ${(error as Error).message}\n${logTail(logFile)}`,
      {
        cause: error,
      },
    );
  } finally {
    polling.abort();
  }
  return handle;
}

/** The parent's environment without its WEFT_* settings (only the flags configure the node). */
function nodeEnvironment(secret: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // NODE_TEST_CONTEXT would make the child think it is a test file of this run.
    if (key.startsWith('WEFT_') || key === 'NODE_TEST_CONTEXT') continue;
    env[key] = value;
  }
  env['WEFT_CLUSTER_SECRET'] = secret;
  return env;
}

async function waitUntilReady(url: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline && !signal.aborted) {
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(readyRequestTimeoutMs) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `/readyz answered ${response.status}`;
    } catch (error) {
      last = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    }
    await sleep(readyPollMs, undefined, { signal }).catch(() => undefined);
  }
  throw new Error(`not ready within ${timeoutMs} ms (last: ${last})`);
}

function logTail(logFile: string): string {
  try {
    const text = readFileSync(logFile, 'utf8');
    return `--- end of ${logFile} ---\n${text.slice(-logTailBytes)}`;
  } catch (error) {
    return `(cannot read ${logFile}: ${(error as Error).message})`;
  }
}
