// The Restate peer's driver: runs inside a network namespace with only loopback (and a pid
// namespace whose first process it is), started by restate-peer.ts. It starts restate-server
// (the binary @restatedev/restate-server ships) with its data in the directory it is given,
// forks the SDK endpoint (restate-endpoint.ts), registers it through the admin API, warms up,
// then runs the commands it reads on stdin (restate-messages.ts) and answers each on stdout.
//
// Why a namespace: restate-server looks for a newer release on the internet when it starts, and
// nothing turns that off; with no route out, the look-up fails at once and nothing leaves the
// machine. Why a pid namespace: when this process ends, however it ends, the kernel kills
// everything else in it, so no restate-server outlives a run.
//
// Calls go through Restate's HTTP ingress (POST /counter/<key>/add), on node:http keep-alive
// connections, one per call in flight. Every reply is checked: a key's n-th `add` must return n.
// `check` reads a sample of keys back with the shared handler `get` and compares.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { stopChild } from '../forked-server.ts';
import {
  maxLineBytes,
  parseCommand,
  parseEndpointReady,
  restateCounter,
  type DriverCommand,
  type DriverReply,
} from './restate-messages.ts';
import { counterKey, KeyCounts, runClosedLoop, type Load, type LoadResult } from './workload.ts';

const loopback = '127.0.0.1';
// restate-server's default ports; nothing else listens in a fresh namespace.
const ingressPort = 8080;
const adminPort = 9070;
const startTimeoutMs = 60_000;
const requestTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;
const pollIntervalMs = 50;
/** Replies from the ingress and the admin API are small; anything near this is not one. */
const maxReplyBytes = 1024 * 1024;
/** The last bytes of restate-server's and the endpoint's output, shown when something fails. */
const logTailBytes = 16 * 1024;
/** Keys `check` reads back. */
const checkedKeys = 100;

// ---------------------------------------------------------------------------------------
// Output of the child processes: kept, the last few KiB, for the failure message

let logTail = '';

function keepLog(chunk: Buffer): void {
  logTail = (logTail + chunk.toString()).slice(-logTailBytes);
}

const logMarker = '--- restate-server and endpoint output, last lines:';

/** An error whose message ends with the children's last output, unless it has it already. */
function fail(what: string): Error {
  if (logTail === '' || what.includes(logMarker)) return new Error(what);
  return new Error(`${what}\n${logMarker}\n${logTail}`);
}

// ---------------------------------------------------------------------------------------
// HTTP

interface Reply {
  readonly status: number;
  readonly body: string;
}

function request(agent: http.Agent, port: number, method: string, target: string, body = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        agent,
        host: loopback,
        port,
        method,
        path: target,
        headers: body === '' ? {} : { 'Content-Type': 'application/json' },
        timeout: requestTimeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > maxReplyBytes)
            response.destroy(new Error(`${method} ${target}: reply over ${maxReplyBytes} bytes`));
          else chunks.push(chunk);
        });
        response.once('error', reject);
        response.once('end', () => {
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        });
      },
    );
    outgoing.once('timeout', () => {
      outgoing.destroy(new Error(`${method} ${target}: no reply within ${requestTimeoutMs} ms`));
    });
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `ready` resolves true; fails after `timeoutMs` or as soon as `failed()` says why. */
async function waitFor(
  what: string,
  timeoutMs: number,
  ready: () => Promise<boolean>,
  failed: () => string | undefined,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason !== undefined) throw fail(`${what}: ${reason}`);
    if (await ready().catch(() => false)) return;
    if (performance.now() > deadline) throw fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(pollIntervalMs);
  }
}

// ---------------------------------------------------------------------------------------
// The processes

function restateServerBinary(): string {
  const name = `@restatedev/restate-server-${process.platform}-${process.arch}/bin/restate-server`;
  try {
    return createRequire(import.meta.url).resolve(name);
  } catch {
    throw new Error(`no restate-server binary for this platform: ${name} is not installed`);
  }
}

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Why the process is gone, once it is. */
  exitReason(): string | undefined;
}

function watch(child: ChildProcess): Started {
  let reason: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      reason = `exited (${signal ?? String(code)})`;
      resolve();
    });
  });
  child.once('error', (error) => {
    reason = `failed to start: ${error.message}`;
  });
  child.stdout?.on('data', keepLog);
  child.stderr?.on('data', keepLog);
  return { child, exited, exitReason: () => reason };
}

function startRestateServer(dataDir: string): Started {
  const child = spawn(
    restateServerBinary(),
    ['--no-logo', '--base-dir', dataDir, '--log-filter', 'warn', '--log-disable-ansi-codes', 'true'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return watch(child);
}

async function stopRestateServer(server: Started): Promise<void> {
  if (server.exitReason() !== undefined) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), stopTimeoutMs);
  await server.exited;
  clearTimeout(timer);
}

async function startEndpoint(): Promise<{ started: Started; port: number }> {
  const child = fork(path.join(import.meta.dirname, 'restate-endpoint.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, RESTATE_LOGGING: 'WARN' },
  });
  const started = watch(child);
  const message = await new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(fail('the restate endpoint did not start in time'));
    }, startTimeoutMs);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(fail(`the restate endpoint ${started.exitReason() ?? 'exited'} before it was ready`));
    });
  });
  return { started, port: parseEndpointReady(message).port };
}

// ---------------------------------------------------------------------------------------
// The counter through the ingress

class Counter {
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #counts = new KeyCounts();
  /** Where the next run starts: after the last key the previous one called. */
  #nextKey = 0;

  async add(key: number): Promise<void> {
    const id = counterKey(key);
    const reply = await request(this.#agent, ingressPort, 'POST', `/${restateCounter.service}/${id}/add`);
    if (reply.status !== 200)
      throw new Error(`add ${id}: status ${reply.status}: ${reply.body.slice(0, 500)}`);
    const expected = this.#counts.get(key) + 1;
    if (Number(reply.body) !== expected || reply.body.trim() === '') {
      throw new Error(`add ${id}: returned ${reply.body.slice(0, 100)}, expected ${expected}`);
    }
    this.#counts.next(key);
  }

  async stored(key: number): Promise<{ status: number; count: number }> {
    const reply = await request(
      this.#agent,
      ingressPort,
      'POST',
      `/${restateCounter.service}/${counterKey(key)}/get`,
    );
    return { status: reply.status, count: Number(reply.body) };
  }

  async run(load: Load): Promise<LoadResult> {
    this.#agent.maxSockets = load.concurrency;
    const firstKey = this.#nextKey % load.keys;
    const result = await runClosedLoop({ ...load, firstKey }, (key) => this.add(key));
    this.#nextKey = (firstKey + result.count) % load.keys;
    return result;
  }

  /** Reads a sample of the keys called so far back; throws unless each holds its calls. */
  async check(): Promise<number> {
    const sampled = this.#counts.sample(checkedKeys);
    for (const key of sampled) {
      const { status, count } = await this.stored(key);
      const expected = this.#counts.get(key);
      if (status !== 200 || count !== expected) {
        throw new Error(`${counterKey(key)}: status ${status}, count ${count}; expected ${expected}`);
      }
    }
    return sampled.length;
  }

  close(): void {
    this.#agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// Commands from stdin, replies on stdout

function send(reply: DriverReply): void {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

async function execute(counter: Counter, command: DriverCommand): Promise<DriverReply> {
  if (command.op === 'run') return { type: 'result', result: await counter.run(command.load) };
  return { type: 'checked', keys: await counter.check() };
}

/**
 * Commands from stdin, one per line, each run after the last one's reply. `onEnd` is called once
 * stdin ends, at once, even with a command running or before the driver is ready: the bench
 * process has closed it or has gone.
 */
class Commands {
  readonly #lines: string[] = [];
  #buffered = '';
  #wake: (() => void) | undefined;

  constructor(onEnd: () => void, onError: (error: Error) => void) {
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      this.#buffered += chunk;
      if (this.#buffered.length > maxLineBytes) {
        onError(new Error(`a command line over ${maxLineBytes} bytes`));
        return;
      }
      let end = this.#buffered.indexOf('\n');
      while (end >= 0) {
        this.#lines.push(this.#buffered.slice(0, end));
        this.#buffered = this.#buffered.slice(end + 1);
        end = this.#buffered.indexOf('\n');
      }
      this.#wake?.();
    });
    process.stdin.once('end', onEnd);
    process.stdin.once('error', onError);
  }

  /** The next command line; waits for one. */
  async next(): Promise<string> {
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      concurrency: { type: 'string', default: '32' },
      keys: { type: 'string', default: '10000' },
      'warmup-ms': { type: 'string', default: '1000' },
    },
  });
  const dataDir = values['data-dir'];
  if (dataDir === undefined) {
    throw new Error('usage: restate-driver.ts --data-dir DIR [--concurrency N] [--keys N] [--warmup-ms N]');
  }
  const warmup = {
    concurrency: Number(values.concurrency),
    keys: Number(values.keys),
    durationMs: Number(values['warmup-ms']),
  };

  let server: Started | undefined;
  let endpoint: Started | undefined;
  const counter = new Counter();
  let stopping: Promise<never> | undefined;
  /** Stops the endpoint and the server, removes the data, exits; whatever is running is dropped. */
  const stop = (code: number): Promise<never> => {
    stopping ??= (async () => {
      counter.close();
      if (endpoint !== undefined) await stopChild(endpoint.child, endpoint.exited);
      if (server !== undefined) await stopRestateServer(server);
      await rm(dataDir, { recursive: true, force: true });
      process.exit(code);
    })();
    return stopping;
  };
  const failed = (error: unknown): Promise<never> => {
    const message = error instanceof Error ? error.message : String(error);
    send({ type: 'failed', message: fail(message).message.slice(-maxLineBytes / 2) });
    return stop(1);
  };
  // The first process of a pid namespace ignores the signals it does not handle.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void stop(1));
  // Nobody left to answer: the bench process has gone.
  process.stdout.on('error', () => void stop(1));
  const commands = new Commands(
    () => void stop(0),
    (error) => void failed(error),
  );

  try {
    const admin = new http.Agent({ keepAlive: false });
    const running = startRestateServer(dataDir);
    server = running;
    await waitFor(
      'restate-server start',
      startTimeoutMs,
      async () =>
        (await request(admin, adminPort, 'GET', '/health')).status === 200 &&
        (await request(admin, ingressPort, 'GET', '/restate/health')).status === 200,
      () => running.exitReason(),
    );
    const about = JSON.parse((await request(admin, adminPort, 'GET', '/version')).body) as {
      version?: unknown;
    };
    const { started, port } = await startEndpoint();
    endpoint = started;
    const registered = await request(
      admin,
      adminPort,
      'POST',
      '/deployments',
      JSON.stringify({ uri: `http://${loopback}:${port}` }),
    );
    if (registered.status !== 200 && registered.status !== 201) {
      throw fail(`registering the endpoint: status ${registered.status}: ${registered.body}`);
    }
    // The ingress learns of a new service shortly after the admin API does.
    await waitFor(
      'the counter service at the ingress',
      startTimeoutMs,
      async () => (await counter.stored(0)).status === 200,
      () => running.exitReason() ?? started.exitReason(),
    );
    await counter.run(warmup);
    send({ type: 'ready', version: typeof about.version === 'string' ? about.version : 'unknown' });
    for (;;) send(await execute(counter, parseCommand(await commands.next())));
  } catch (error) {
    await failed(error);
  }
}

await main();
