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

import http from 'node:http';
import https from 'node:https';

import { isAborted } from '../../internal/abort.ts';
import { systemClock, sleep, type Clock } from '../../internal/clock.ts';
import { callScope, remainingMs, type CallScope } from '../../internal/deadline.ts';
import { Backoff, type BackoffPolicy, type Random } from '../../internal/backoff.ts';
import { diagnosticChannel } from '../../internal/diagnostics.ts';
import {
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
} from '../../internal/errors.ts';
import { EndpointError, InvocationFailedError, UnknownFunctionTypeError } from '../errors.ts';
import type { FunctionInvoker, FunctionType } from '../function-invoker.ts';
import { EndpointTable, endpointUrl, type Endpoint, type EndpointSpec } from './endpoint-config.ts';
import { bodyExcerpt, httpPost, OCTET_STREAM, type HttpReply } from './http-post.ts';

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

export class RemoteInvoker implements FunctionInvoker {
  readonly #table: EndpointTable;
  readonly #agents = new Map<Endpoint, http.Agent>();
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #maxInFlight: number;
  readonly #inFlight = new Set<CallScope>();
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
      this.#agents.set(endpoint, agent);
    }
  }

  serves(type: FunctionType): boolean {
    return this.#table.match(type) !== undefined;
  }

  async invoke<T>(
    type: FunctionType,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    const functionType = `${type.namespace}/${type.name}`;
    if (signal?.aborted === true) throw signal.reason;
    if (this.#closed) throw new ClosedError('the remote invoker is closed');
    const endpoint = this.#table.match(type);
    if (endpoint === undefined) throw new UnknownFunctionTypeError(functionType);
    if (this.#inFlight.size >= this.#maxInFlight) {
      this.#refused += 1;
      throw new CapacityExceededError('remote invocations in flight', this.#maxInFlight);
    }
    const url = endpointUrl(endpoint, type);
    const scope = callScope(this.#clock, { signal, timeoutMs: endpoint.callTimeoutMs });
    this.#inFlight.add(scope);
    try {
      return await this.#invokeWithinBudget(endpoint, functionType, url, request, accept, scope, signal);
    } finally {
      this.#inFlight.delete(scope);
      scope.dispose();
    }
  }

  /** Aborts the invocations in flight (they reject with a `ClosedError`) and closes every connection. */
  close(): Promise<void> {
    this.#closed = true;
    for (const scope of this.#inFlight) scope.abort(new ClosedError('the remote invoker was closed'));
    for (const agent of this.#agents.values()) agent.destroy();
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
      inFlight: this.#inFlight.size,
    };
  }

  async #invokeWithinBudget<T>(
    endpoint: Endpoint,
    functionType: string,
    url: string,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    scope: CallScope,
    callerSignal: AbortSignal | undefined,
  ): Promise<T> {
    const agent = this.#agents.get(endpoint) as http.Agent;
    const backoff = new Backoff(RETRY_BACKOFF, this.#random);
    let attempts = 0;
    let lastError: EndpointError | undefined;
    while (!isAborted(scope.signal)) {
      attempts += 1;
      this.#attempts += 1;
      try {
        const reply = await httpPost({
          url,
          agent,
          body: request,
          clock: this.#clock,
          connectTimeoutMs: endpoint.connectTimeoutMs,
          maxReplyBytes: endpoint.maxReplyBytes,
          signal: scope.signal,
        });
        const accepted = acceptReply(url, reply, accept);
        this.#succeeded += 1;
        return accepted;
      } catch (error) {
        lastError = isAborted(scope.signal) ? abortedAttempt(url, scope, error) : toEndpointError(url, error);
      }
      if (isAborted(scope.signal)) break;

      const delayMs = backoff.next();
      if (delayMs >= remainingMs(this.#clock, scope.deadline)) break;
      this.#retries += 1;
      const error = lastError;
      remoteRetryChannel.publishLazy(() => ({ functionType, url, attempt: attempts, error, delayMs }));
      try {
        await sleep(this.#clock, delayMs, scope.signal);
      } catch {
        break;
      }
    }

    if (callerSignal?.aborted === true) {
      this.#aborted += 1;
      throw callerSignal.reason;
    }
    const reason: unknown = scope.signal.reason;
    if (reason instanceof ClosedError) {
      this.#aborted += 1;
      throw reason;
    }
    this.#failed += 1;
    const cause = lastError ?? new EndpointError(url, 'no attempt could start before the deadline');
    throw new InvocationFailedError(
      functionType,
      `function ${functionType} at ${url} failed after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'} ` +
        `within ${endpoint.callTimeoutMs} ms: ${cause.message}`,
      { cause },
    );
  }
}

/** Judges a complete HTTP reply; throws an `EndpointError` for anything but an accepted one. */
function acceptReply<T>(url: string, reply: HttpReply, accept: (reply: Uint8Array) => T): T {
  const { status, body } = reply;
  const details = { status, body: bodyExcerpt(body) };
  if (status < 200 || status > 299) {
    throw new EndpointError(url, `status ${status}`, details);
  }
  if (reply.contentType?.toLowerCase() !== OCTET_STREAM) {
    const got = reply.contentType === undefined ? 'none' : JSON.stringify(reply.contentType);
    throw new EndpointError(
      url,
      `status ${status} with content type ${got}, expected ${OCTET_STREAM}`,
      details,
    );
  }
  if (body.length === 0) throw new EndpointError(url, `status ${status} with an empty body`, details);
  try {
    return accept(body);
  } catch (error) {
    throw new EndpointError(url, `reply refused: ${errorMessage(error)}`, { ...details, cause: error });
  }
}

/** What to record for an attempt that ended because the call did (budget spent, abort, close). */
function abortedAttempt(url: string, scope: CallScope, error: unknown): EndpointError {
  const reason: unknown = scope.signal.reason;
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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
