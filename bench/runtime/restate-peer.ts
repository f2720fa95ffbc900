// The Restate peer of the runtime suite's durable-counter case, as the bench process sees it:
// Restate (restate-server from @restatedev/restate-server, a virtual object `counter` written with
// @restatedev/restate-sdk) incrementing counters through its HTTP ingress with default durability.
//
// Everything Restate runs (the server, the SDK endpoint and the load client) lives in a child
// (restate-driver.ts) inside new network and pid namespaces: the network one has only loopback,
// because restate-server looks for a newer release on the internet when it starts and nothing
// turns that off; the pid one, because when its first process (the driver) ends the kernel kills
// the rest, so no restate-server outlives a run or a crash. `unshare --kill-child` ends the driver
// if `unshare` itself is killed, and the driver stops when its stdin closes, which it does when
// this process ends. Needs `unshare` (Debian: util-linux) and `ip` (iproute2); as a user other
// than root, unprivileged user namespaces too (`--map-root-user`).
//
// Starting takes a few seconds (server, endpoint, registration, warm-up), so a session serves
// many runs: `startRestateCounter`, then `run` and `check` as often as needed, then `close`.
// `runRestateCounter` is one checked run in a session of its own.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { maxLineBytes, parseReply, type DriverCommand, type DriverReply } from './restate-messages.ts';
import { checkLoad, type Load, type LoadResult } from './workload.ts';

const driverModule = path.join(import.meta.dirname, 'restate-driver.ts');
/** Server start, registration and warm-up; the warm-up's own time comes on top. */
const readyTimeoutMs = 90_000;
const exitTimeoutMs = 20_000;

export interface RestateCounterOptions {
  /** The warm-up's load, run once the service is registered; default 32 in flight over 10 000 keys for 1 s. */
  readonly warmup?: { readonly concurrency: number; readonly keys: number; readonly durationMs: number };
}

export interface RestateCounter {
  /** restate-server's version, from its admin API. */
  readonly version: string;
  /** Durable `add` calls through the ingress; every reply checked. Throughput and latency. */
  run(load: Load): Promise<LoadResult>;
  /**
   * Reads a sample of the keys called so far (up to 100) back and throws unless each holds the
   * number of calls made to it; resolves with how many were read.
   */
  check(): Promise<number>;
  /** Stops everything and removes the data directory; safe to call twice. */
  close(): Promise<void>;
}

const defaultWarmup = { concurrency: 32, keys: 10_000, durationMs: 1_000 };

/** Lines of the driver's stdout, handed in order to whoever waits for the next reply. */
class ReplyReader {
  readonly #waiting: { resolve: (reply: DriverReply) => void; reject: (error: Error) => void }[] = [];
  #buffered = '';
  #failure: Error | undefined;

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.#buffered += chunk;
      if (this.#buffered.length > maxLineBytes)
        this.fail(new Error(`restate driver: a reply over ${maxLineBytes} bytes`));
      let end = this.#buffered.indexOf('\n');
      while (end >= 0 && this.#failure === undefined) {
        const line = this.#buffered.slice(0, end);
        this.#buffered = this.#buffered.slice(end + 1);
        this.#deliver(line);
        end = this.#buffered.indexOf('\n');
      }
    });
  }

  next(): Promise<DriverReply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(this.#failure);
  }

  #deliver(line: string): void {
    let reply: DriverReply;
    try {
      reply = parseReply(line);
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter === undefined)
      this.fail(new Error(`restate driver: a reply nobody asked for: ${line.slice(0, 200)}`));
    else if (reply.type === 'failed') this.fail(new Error(`restate driver failed: ${reply.message}`));
    else waiter.resolve(reply);
  }
}

function namespaceCommand(args: readonly string[]): { command: string; args: string[] } {
  // As root the namespaces need no user namespace; otherwise map this user to root in one.
  const asUser = process.getuid?.() === 0 ? [] : ['--map-root-user'];
  return {
    command: 'unshare',
    args: [
      ...asUser,
      '--net',
      '--pid',
      '--fork',
      '--kill-child',
      '--',
      'sh',
      '-c',
      'ip link set lo up && exec "$0" "$@"',
      process.execPath,
      '--import',
      'tsx',
      driverModule,
      ...args,
    ],
  };
}

/** Starts Restate in its namespaces, registers the counter and warms it up. */
export async function startRestateCounter(options: RestateCounterOptions = {}): Promise<RestateCounter> {
  const warmup = options.warmup ?? defaultWarmup;
  checkLoad(warmup);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-restate-'));
  const { command, args } = namespaceCommand([
    '--data-dir',
    dataDir,
    '--concurrency',
    String(warmup.concurrency),
    '--keys',
    String(warmup.keys),
    '--warmup-ms',
    String(warmup.durationMs),
  ]);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const replies = new ReplyReader(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      replies.fail(new Error(`the restate driver exited (${signal ?? String(code)})`));
      resolve();
    });
    // A process that never started never exits.
    child.once('error', (error) => {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      replies.fail(
        missing
          ? new Error('the restate peer needs `unshare` (Debian: util-linux) and `ip` (iproute2)')
          : error,
      );
      if (child.pid === undefined) resolve();
    });
  });
  // A write to a driver that has gone fails the next reply, which says why.
  child.stdin.on('error', () => undefined);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      child.stdin.end();
      if (child.exitCode === null && child.signalCode === null) {
        // SIGKILL: unshare passes it to the driver (--kill-child), whose end ends the namespace.
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
        }, exitTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    })();
    return closed;
  };

  let queue: Promise<unknown> = Promise.resolve();
  const ask = (command: DriverCommand): Promise<DriverReply> => {
    const asked = queue.then(() => {
      const reply = replies.next();
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return reply;
    });
    queue = asked.catch(() => undefined);
    return asked;
  };

  try {
    const timer = setTimeout(() => {
      replies.fail(
        new Error(`the restate peer was not ready within ${readyTimeoutMs + warmup.durationMs} ms`),
      );
    }, readyTimeoutMs + warmup.durationMs);
    const ready = await replies.next().finally(() => {
      clearTimeout(timer);
    });
    if (ready.type !== 'ready') throw new Error(`restate driver: expected ready, got ${ready.type}`);
    return {
      version: ready.version,
      run: async (load) => {
        checkLoad(load);
        const reply = await ask({ op: 'run', load });
        if (reply.type !== 'result') throw new Error(`restate driver: expected a result, got ${reply.type}`);
        return reply.result;
      },
      check: async () => {
        const reply = await ask({ op: 'check' });
        if (reply.type !== 'checked') throw new Error(`restate driver: expected checked, got ${reply.type}`);
        return reply.keys;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** One checked run in a Restate session of its own: start, warm up, run `load`, check, close. */
export async function runRestateCounter(load: Load): Promise<LoadResult & { readonly version: string }> {
  checkLoad(load);
  const restate = await startRestateCounter({
    warmup: { concurrency: load.concurrency, keys: load.keys, durationMs: defaultWarmup.durationMs },
  });
  try {
    const result = await restate.run(load);
    await restate.check();
    return { ...result, version: restate.version };
  } finally {
    await restate.close();
  }
}
