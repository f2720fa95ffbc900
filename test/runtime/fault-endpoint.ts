// Tools for the runtime's fault tests: a loopback StateFun endpoint whose behaviour a test switches
// between healthy (the real SDK handler) and a fault, a logger that records what the runtime
// reports, and a driver that moves a FakeClock while real sockets do their work.
//
// The driver never sleeps on wall time. While a batch runs (an HTTP exchange may be in flight) it
// moves fake time in small steps and yields to the event loop in between, so a loopback reply
// arrives long before a call budget measured in fake time runs out; while nothing runs it jumps
// to the next timer (a parked address, a delayed message, a retry).

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  FromFunctionSchema,
  type FromFunction_InvocationResponse,
} from '../../src/gen/statefun/request-reply_pb.ts';
import type { FakeClock } from '../../src/internal/fake-clock.ts';
import type { Runtime, RuntimeLogger } from '../../src/runtime/runtime.ts';
import type { StatefulFunctions } from '../../src/statefun/index.ts';

/** What a faulty endpoint does with a request. */
export type EndpointFault =
  /** Nothing listens on the port: connections are refused. */
  | 'refuse-connections'
  /** Takes the request and never answers. */
  | 'hang'
  /** 500 with a text body naming the trouble (`ERROR_BODY`). */
  | 'status-500'
  /** 200 with an HTML page: a proxy or a web server in the function's place. */
  | 'wrong-content-type'
  /** 200 application/octet-stream with bytes that are no FromFunction. */
  | 'garbage'
  /** Runs the real function, then alters its invocation result before answering. */
  | { readonly tamper: (result: FromFunction_InvocationResponse) => void };

export const ERROR_BODY = 'the database is down';
export const HTML_BODY = '<html><body><h1>Welcome to nginx!</h1></body></html>';
const GARBAGE = Buffer.from('not a protobuf at all');
const OCTET_STREAM = 'application/octet-stream';

export class FaultEndpoint {
  readonly #server: http.Server;
  readonly #functions: StatefulFunctions;
  readonly #healthy: http.RequestListener;
  readonly #held = new Set<http.ServerResponse>();
  #port = 0;
  #listening = false;
  #fault: EndpointFault | undefined;
  #requests = 0;

  private constructor(functions: StatefulFunctions) {
    this.#functions = functions;
    this.#healthy = functions.handler({ logger: { error: () => undefined } });
    this.#server = http.createServer((request, response) => {
      this.#handle(request, response);
    });
  }

  /** Serves `functions` on a loopback port, healthy. */
  static async start(functions: StatefulFunctions): Promise<FaultEndpoint> {
    const endpoint = new FaultEndpoint(functions);
    await endpoint.#listen();
    return endpoint;
  }

  /** For an endpoint spec: every function name goes to its own path. */
  get urlPathTemplate(): string {
    return `http://127.0.0.1:${this.#port}/{function.name}`;
  }

  /** Requests received, healthy or not. */
  get requests(): number {
    return this.#requests;
  }

  /** From now on, answers every request with `fault`. */
  async fail(fault: EndpointFault): Promise<void> {
    this.#fault = fault;
    if (fault === 'refuse-connections') await this.#stopListening();
    else await this.#listen();
  }

  /** From now on, serves the functions as the SDK does, on the same port. */
  async heal(): Promise<void> {
    this.#fault = undefined;
    await this.#listen();
  }

  async close(): Promise<void> {
    for (const response of this.#held) response.destroy();
    await this.#stopListening();
  }

  #handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    this.#requests += 1;
    const fault = this.#fault;
    if (fault === undefined) {
      this.#healthy(request, response);
      return;
    }
    readBody(request).then(
      (body) => this.#answerWith(fault, body, response),
      () => response.destroy(),
    );
  }

  async #answerWith(fault: EndpointFault, body: Buffer, response: http.ServerResponse): Promise<void> {
    switch (fault) {
      case 'refuse-connections': // a connection made just before the listener closed
        response.destroy();
        return;
      case 'hang':
        this.#held.add(response);
        response.on('close', () => this.#held.delete(response));
        return;
      case 'status-500':
        response.writeHead(500, { 'Content-Type': 'text/plain' }).end(ERROR_BODY);
        return;
      case 'wrong-content-type':
        response.writeHead(200, { 'Content-Type': 'text/html' }).end(HTML_BODY);
        return;
      case 'garbage':
        response.writeHead(200, { 'Content-Type': OCTET_STREAM }).end(GARBAGE);
        return;
    }
    let reply: Uint8Array;
    try {
      reply = tampered(await this.#functions.invoke(body), fault.tamper);
    } catch (error) {
      response.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(error));
      return;
    }
    response.writeHead(200, { 'Content-Type': OCTET_STREAM }).end(reply);
  }

  async #listen(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#listening = true;
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async #stopListening(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise((resolve) => this.#server.close(resolve));
    // Keep-alive connections would otherwise keep the endpoint reachable.
    this.#server.closeAllConnections();
    await closed;
  }
}

/** The SDK's reply with its invocation result altered; an incomplete-context reply goes as it is. */
function tampered(reply: Uint8Array, tamper: (result: FromFunction_InvocationResponse) => void): Uint8Array {
  const message = fromBinary(FromFunctionSchema, reply);
  if (message.response.case !== 'invocationResult') return reply;
  tamper(message.response.value);
  return toBinary(FromFunctionSchema, create(FromFunctionSchema, message));
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    request.on('error', reject);
  });
}

export interface LogEntry {
  readonly level: 'warn' | 'error';
  readonly message: string;
  readonly details: Record<string, unknown> | undefined;
}

/** A runtime logger that keeps every entry, for assertions. */
export class RecordingLogger implements RuntimeLogger {
  readonly entries: LogEntry[] = [];

  warn(message: string, details?: Record<string, unknown>): void {
    this.entries.push({ level: 'warn', message, details });
  }

  error(message: string, details?: Record<string, unknown>): void {
    this.entries.push({ level: 'error', message, details });
  }

  /** The entries of `level` whose message matches `pattern`. */
  find(level: LogEntry['level'], pattern: RegExp): LogEntry[] {
    return this.entries.filter((entry) => entry.level === level && pattern.test(entry.message));
  }
}

/** A runtime and the clock it runs on. */
export interface Driven {
  readonly clock: FakeClock;
  readonly runtime: Runtime;
}

/** Fake time per step while a batch runs. */
const BUSY_STEP_MS = 5;
const MAX_STEPS = 500_000;

/** Moves time until `done()` holds; fails after `maxMs` of fake time, naming `what` it waited for. */
export async function runUntil(
  driven: Driven,
  done: () => boolean | Promise<boolean>,
  what: string,
  maxMs = 15 * 60_000,
): Promise<void> {
  const end = driven.clock.now() + maxMs;
  for (let steps = 0; !(await done()); steps += 1) {
    if (driven.clock.now() >= end || steps > MAX_STEPS) {
      throw new Error(
        `gave up waiting for ${what} after ${driven.clock.now() - end + maxMs} ms of fake time`,
      );
    }
    await step(driven, end - driven.clock.now());
  }
}

/** Moves time forward by `ms`, letting everything due on the way run. */
export async function runFor(driven: Driven, ms: number): Promise<void> {
  const end = driven.clock.now() + ms;
  for (let steps = 0; driven.clock.now() < end; steps += 1) {
    if (steps > MAX_STEPS) throw new Error(`time did not move forward by ${ms} ms`);
    await step(driven, end - driven.clock.now());
  }
  await ioTurns(5);
}

/** Whether nothing runs, waits for a turn, or waits for a commit or a delivery. */
export function idle(runtime: Runtime): boolean {
  const stats = runtime.stats();
  return (
    stats.runningBatches === 0 &&
    stats.waitingAddresses === 0 &&
    stats.commits.pending === 0 &&
    stats.outbox.inFlight === 0
  );
}

async function step(driven: Driven, leftMs: number): Promise<void> {
  await ioTurns(3);
  const next = driven.clock.nextTimerInMs ?? BUSY_STEP_MS;
  const ms = idle(driven.runtime) ? next : BUSY_STEP_MS;
  await driven.clock.advanceAsync(Math.max(0, Math.min(ms, leftMs)));
}

function ioTurns(turns: number): Promise<void> {
  let chain = Promise.resolve();
  for (let i = 0; i < turns; i++) chain = chain.then(() => new Promise((resolve) => setImmediate(resolve)));
  return chain;
}
