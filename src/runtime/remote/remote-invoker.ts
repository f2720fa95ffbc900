// The runtime's client for remote functions: any StateFun SDK serving the request-reply protocol
// over HTTP (ours, the official Java/Go/Python/JS ones), configured as StateFun endpoints.
//
// One invocation is one ToFunction POST, retried as a whole until it is accepted or its call
// budget (`callTimeoutMs`, from the first attempt, and never past the caller's own deadline) runs
// out. As StateFun's default Netty transport does, every failure is retried: no connection, a
// broken one, a non-2xx status, a reply without a body or whose Content-Type is not exactly
// `application/octet-stream` (compared case-insensitively as a whole, so `; charset=…` is refused),
// a body over `maxReplyBytes`, and a reply that `accept` refuses. Function code may therefore run
// more than once per batch; the runtime applies a batch's effects once, from the reply it accepts.
//
// Waits between attempts grow as StateFun's do, 2 ms · 2ⁿ, but stop growing at 1 s (Netty lets
// them grow to the budget's end; a short cap finds a recovered endpoint sooner) and are spread
// ±20 % so that the many addresses that failed together do not retry in lockstep. When the next
// wait would reach the end of the budget the invoker gives up at once rather than sleep for nothing;
// an attempt still in flight when the budget ends is aborted. Giving up rejects with an
// `InvocationFailedError` whose cause is the last attempt's `EndpointError`.
//
// Every retry is published on `weft:runtime:remote-retry`. Invocations in flight are bounded
// (`maxInFlight`); one past the bound is refused with a retryable `CapacityExceededError`, counted.
//
// An invocation at full load should cost about what a bare keep-alive request loop's does, so
// none makes an AbortController or listens to the caller's signal on its own (one listener per
// signal serves them all), each arms one timer for its budget, and a reply is decoded for an
// operator only once it is refused.

import http from 'node:http';
import https from 'node:https';

import { systemClock, type Clock, type Timer } from '../../internal/clock.ts';
import { deadlineOf, remainingMs, type Deadline } from '../../internal/deadline.ts';
import { Backoff, type BackoffPolicy, type Random } from '../../internal/backoff.ts';
import { diagnosticChannel } from '../../internal/diagnostics.ts';
import {
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
  errorMessage,
} from '../../internal/errors.ts';
import { EndpointError, InvocationFailedError, UnknownFunctionTypeError } from '../errors.ts';
import type { FunctionInvoker, FunctionType } from '../function-invoker.ts';
import { EndpointTable, endpointUrl, type Endpoint, type EndpointSpec } from './endpoint-config.ts';
import {
  bodyExcerpt,
  HttpExchange,
  httpTarget,
  OCTET_STREAM,
  type HttpReply,
  type HttpRoute,
  type HttpTarget,
} from './http-post.ts';

export interface RemoteInvokerOptions {
  readonly endpoints: readonly EndpointSpec[];
  readonly clock?: Clock;
  /** In [0, 1); spreads the waits between attempts. */
  readonly random?: Random;
  /** Invocations in flight at once, across endpoints; default 32 768 (StateFun's per-task limit). */
  readonly maxInFlight?: number;
}

export interface RemoteInvokerStats {
  /** HTTP requests sent, first attempts and retries. */
  readonly attempts: number;
  readonly retries: number;
  /** Invocations whose reply was accepted. */
  readonly succeeded: number;
  /** Invocations given up once their budget ran out. */
  readonly failed: number;
  /** Invocations ended by the caller's signal or by `close()`. */
  readonly aborted: number;
  /** Invocations refused because `maxInFlight` were running. */
  readonly refused: number;
  readonly inFlight: number;
}

/** Published on `weft:runtime:remote-retry` before each wait for another attempt. */
export interface RemoteRetryEvent {
  /** `namespace/name`. */
  readonly functionType: string;
  readonly url: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly error: EndpointError;
  readonly delayMs: number;
}

export const remoteRetryChannel = diagnosticChannel<RemoteRetryEvent>('runtime', 'remote-retry');

export const RETRY_BACKOFF: BackoffPolicy = {
  kind: 'exponential',
  baseDelayMs: 2,
  maxDelayMs: 1_000,
  multiplier: 2,
  jitter: 0.2,
};

const DEFAULT_MAX_IN_FLIGHT = 32_768;
/** Function names whose parsed URL an endpoint keeps; the URLs of any more are parsed per call. */
const MAX_CACHED_TARGETS = 1_024;

/** One endpoint's connections, limits and parsed URLs. */
interface Route extends HttpRoute {
  readonly endpoint: Endpoint;
  /** By function name. */
  readonly targets: Map<string, HttpTarget>;
}

export class RemoteInvoker implements FunctionInvoker {
  readonly #table: EndpointTable;
  readonly #routes = new Map<Endpoint, Route>();
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #maxInFlight: number;
  /**
   * The invocations in flight, each knowing its index so that it leaves in O(1) (the last one
   * takes its place). Not a Set: measured under load, a Set of them kept every call's objects
   * alive into the old generation, doubling the time spent collecting garbage.
   */
  readonly #inFlight: Invocation[] = [];
  /**
   * The callers' signals the invocations in flight listen to, each with how many hold it. A
   * runtime hands one long-lived signal to every invocation, so one listener per signal, added by
   * the first invocation and removed by the last, spares each call an add and a remove.
   */
  readonly #callerSignals = new Map<AbortSignal, number>();
  /** The one listener on every caller's signal: stops the invocations that signal was given to. */
  readonly #callerAborted = (event: Event): void => {
    const signal = event.target as AbortSignal;
    this.#callerSignals.delete(signal);
    signal.removeEventListener('abort', this.#callerAborted);
    for (const call of [...this.#inFlight]) {
      if (call.callerSignal === signal) call.stop(signal.reason);
    }
  };
  #closed = false;
  #attempts = 0;
  #retries = 0;
  #succeeded = 0;
  #failed = 0;
  #aborted = 0;
  #refused = 0;

  constructor(options: RemoteInvokerOptions) {
    this.#table = new EndpointTable(options.endpoints);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight <= 0) {
      throw new ConfigError('maxInFlight', `expected a positive integer, got ${String(maxInFlight)}`);
    }
    this.#maxInFlight = maxInFlight;
    for (const endpoint of this.#table.endpoints) {
      const agentOptions: http.AgentOptions = {
        keepAlive: true,
        maxSockets: endpoint.maxConnections,
        // Node applies an agent's socket timeout to idle pooled sockets only; it ends them.
        timeout: endpoint.poolTtlMs,
      };
      const agent =
        endpoint.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
      this.#routes.set(endpoint, {
        endpoint,
        agent,
        clock: this.#clock,
        connectTimeoutMs: endpoint.connectTimeoutMs,
        maxReplyBytes: endpoint.maxReplyBytes,
        targets: new Map(),
      });
    }
  }

  serves(type: FunctionType): boolean {
    return this.#table.match(type) !== undefined;
  }

  // Not `async`: the invocation's own async function is the only one a call goes through. What is
  // refused up front is still a rejection, never a throw.
  invoke<T>(
    type: FunctionType,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    const functionType = `${type.namespace}/${type.name}`;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#closed) return Promise.reject(new ClosedError('the remote invoker is closed'));
    const endpoint = this.#table.match(type);
    if (endpoint === undefined) return Promise.reject(new UnknownFunctionTypeError(functionType));
    if (this.#inFlight.length >= this.#maxInFlight) {
      this.#refused += 1;
      return Promise.reject(new CapacityExceededError('remote invocations in flight', this.#maxInFlight));
    }
    const call = new Invocation(this.#clock, endpoint.callTimeoutMs, signal);
    call.index = this.#inFlight.push(call) - 1;
    if (signal !== undefined) this.#listenTo(signal);
    return this.#invokeWithinBudget(
      this.#routes.get(endpoint) as Route,
      functionType,
      type,
      request,
      accept,
      call,
    );
  }

  /** Aborts the invocations in flight (they reject with a `ClosedError`) and closes every connection. */
  close(): Promise<void> {
    this.#closed = true;
    for (const call of [...this.#inFlight]) call.stop(new ClosedError('the remote invoker was closed'));
    for (const route of this.#routes.values()) route.agent.destroy();
    return Promise.resolve();
  }

  stats(): RemoteInvokerStats {
    return {
      attempts: this.#attempts,
      retries: this.#retries,
      succeeded: this.#succeeded,
      failed: this.#failed,
      aborted: this.#aborted,
      refused: this.#refused,
      inFlight: this.#inFlight.length,
    };
  }

  /** Runs an admitted invocation to its end, and lets go of it there. */
  async #invokeWithinBudget<T>(
    route: Route,
    functionType: string,
    type: FunctionType,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    call: Invocation,
  ): Promise<T> {
    try {
      const target = targetFor(route, type);
      const { url } = target;
      let backoff: Backoff | undefined;
      let attempts = 0;
      let lastError: EndpointError | undefined;
      while (!call.hasStopped()) {
        attempts += 1;
        this.#attempts += 1;
        try {
          const exchange = new HttpExchange(route, target, request);
          call.current = exchange;
          const accepted = acceptReply(url, await exchange.reply, accept);
          this.#succeeded += 1;
          return accepted;
        } catch (error) {
          lastError = call.hasStopped() ? abortedAttempt(url, call, error) : toEndpointError(url, error);
        }
        if (call.hasStopped()) break;

        backoff ??= new Backoff(RETRY_BACKOFF, this.#random);
        const delayMs = backoff.next();
        if (delayMs >= remainingMs(this.#clock, call.deadline)) break;
        this.#retries += 1;
        const error = lastError;
        remoteRetryChannel.publishLazy(() => ({ functionType, url, attempt: attempts, error, delayMs }));
        if (!(await this.#pause(call, delayMs))) break;
      }

      throw this.#ended(call, functionType, url, attempts, lastError);
    } finally {
      this.#release(call);
      call.end();
      if (call.callerSignal !== undefined) this.#stopListeningTo(call.callerSignal);
    }
  }

  /** Counts how an invocation that got no accepted reply ended, and returns what it rejects with. */
  #ended(
    call: Invocation,
    functionType: string,
    url: string,
    attempts: number,
    lastError: EndpointError | undefined,
  ): unknown {
    const { callerSignal, stopReason } = call;
    if (callerSignal?.aborted === true) {
      this.#aborted += 1;
      return callerSignal.reason;
    }
    if (stopReason instanceof ClosedError) {
      this.#aborted += 1;
      return stopReason;
    }
    this.#failed += 1;
    const cause = lastError ?? new EndpointError(url, 'no attempt could start before the deadline');
    return new InvocationFailedError(
      functionType,
      `function ${functionType} at ${url} failed after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'} ` +
        `within ${call.budgetMs} ms: ${cause.message}`,
      { cause },
    );
  }

  /** The wait between two attempts: true once it has passed, false if the invocation stopped first. */
  #pause(call: Invocation, delayMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        resolve(true);
      }, delayMs);
      call.current = {
        abort: () => {
          timer.cancel();
          resolve(false);
        },
      };
    });
  }

  /** Takes an invocation out of the in-flight list. */
  #release(call: Invocation): void {
    const last = this.#inFlight.pop() as Invocation;
    if (last !== call) {
      this.#inFlight[call.index] = last;
      last.index = call.index;
    }
  }

  #listenTo(signal: AbortSignal): void {
    const holders = this.#callerSignals.get(signal);
    if (holders === undefined) signal.addEventListener('abort', this.#callerAborted);
    this.#callerSignals.set(signal, (holders ?? 0) + 1);
  }

  #stopListeningTo(signal: AbortSignal): void {
    const holders = this.#callerSignals.get(signal);
    // Undefined once the signal has aborted: its listener removed itself.
    if (holders === undefined) return;
    if (holders > 1) {
      this.#callerSignals.set(signal, holders - 1);
    } else {
      this.#callerSignals.delete(signal);
      signal.removeEventListener('abort', this.#callerAborted);
    }
  }
}

/** What an invocation can be waiting on and cut short: an attempt, or the wait before the next. */
interface Interruptible {
  abort(reason: unknown): void;
}

/**
 * One invocation in flight: its deadline, the one timer that enforces it (armed per invocation,
 * not per attempt), and the step it is in. It stops early when the budget runs out, the caller's
 * signal aborts or the invoker closes; no AbortController is made for that, since nothing outside
 * the invoker listens.
 */
class Invocation {
  /** The earlier of the caller's deadline (a `callScope` signal carries one) and the budget's end. */
  readonly deadline: Deadline;
  /** The endpoint's `callTimeoutMs`. */
  readonly budgetMs: number;
  readonly callerSignal: AbortSignal | undefined;
  /** Why it stopped early (a `DeadlineExceededError`, the caller's reason, a `ClosedError`). */
  stopReason: unknown = undefined;
  /** The attempt or wait in progress, aborted by `stop`; it may have settled already. */
  current: Interruptible | undefined = undefined;
  /** Its place in the invoker's in-flight list. */
  index = -1;
  #stopped = false;
  #budgetTimer: Timer | undefined;

  constructor(clock: Clock, budgetMs: number, callerSignal: AbortSignal | undefined) {
    this.budgetMs = budgetMs;
    this.callerSignal = callerSignal;
    this.deadline = Math.min(deadlineOf(callerSignal), clock.now() + budgetMs);
    const waitMs = remainingMs(clock, this.deadline);
    if (waitMs === 0) {
      this.#expire(waitMs);
    } else {
      this.#budgetTimer = clock.setTimeout(() => {
        this.#expire(waitMs);
      }, waitMs);
    }
  }

  /**
   * Reads the flag afresh. TypeScript keeps the narrowing of a loop condition across the awaits in
   * its body, and would call a later check of a plain property dead.
   */
  hasStopped(): boolean {
    return this.#stopped;
  }

  stop(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.stopReason = reason;
    this.#budgetTimer?.cancel();
    this.current?.abort(reason);
  }

  #expire(waitMs: number): void {
    this.stop(new DeadlineExceededError(`deadline of ${waitMs} ms exceeded`, { timeoutMs: waitMs }));
  }

  /** Releases the budget timer once the invocation is over. */
  end(): void {
    this.#budgetTimer?.cancel();
  }
}

/** The parsed URL of `type` at its endpoint, from the endpoint's cache when there. */
function targetFor(route: Route, type: FunctionType): HttpTarget {
  const cached = route.targets.get(type.name);
  if (cached !== undefined) return cached;
  const target = httpTarget(endpointUrl(route.endpoint, type));
  if (route.targets.size < MAX_CACHED_TARGETS) route.targets.set(type.name, target);
  return target;
}

/** Judges a complete HTTP reply; throws an `EndpointError` for anything but an accepted one. */
function acceptReply<T>(url: string, reply: HttpReply, accept: (reply: Uint8Array) => T): T {
  const { status, contentType, body } = reply;
  if (status < 200 || status > 299) {
    throw refusedReply(url, reply, `status ${status}`);
  }
  // The usual spelling is matched without lower-casing it.
  if (contentType !== OCTET_STREAM && contentType?.toLowerCase() !== OCTET_STREAM) {
    const got = contentType === undefined ? 'none' : JSON.stringify(contentType);
    throw refusedReply(url, reply, `status ${status} with content type ${got}, expected ${OCTET_STREAM}`);
  }
  if (body.length === 0) throw refusedReply(url, reply, `status ${status} with an empty body`);
  try {
    return accept(body);
  } catch (error) {
    throw refusedReply(url, reply, `reply refused: ${errorMessage(error)}`, { cause: error });
  }
}

/** The error for a refused reply: its status and the start of its body, decoded only now. */
function refusedReply(
  url: string,
  reply: HttpReply,
  message: string,
  options?: { readonly cause: unknown },
): EndpointError {
  return new EndpointError(url, message, { ...options, status: reply.status, body: bodyExcerpt(reply.body) });
}

/** What to record for an attempt that ended because the call did (budget spent, abort, close). */
function abortedAttempt(url: string, call: Invocation, error: unknown): EndpointError {
  const reason: unknown = call.stopReason;
  if (reason instanceof DeadlineExceededError && error === reason) {
    return new EndpointError(url, 'no reply before the call budget ran out', { cause: reason });
  }
  return toEndpointError(url, error);
}

function toEndpointError(url: string, error: unknown): EndpointError {
  return error instanceof EndpointError
    ? error
    : new EndpointError(url, `attempt failed: ${errorMessage(error)}`, { cause: error });
}
