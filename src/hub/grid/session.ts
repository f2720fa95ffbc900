// One grid stream as the hub's ConnectorSession: its input items decoded as ProcessRequests,
// the hub's responses written as items under the stream's credits, and the end the hub gives
// it (a clean end, or a status) kept for the handler to return or throw.

import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Metadata, status } from '@grpc/grpc-js';

import {
  ProcessRequestSchema,
  type ProcessResponse,
  ProcessResponseSchema,
} from '../../gen/transport/v1/hub_pb.ts';
import type { StreamHandlerContext } from '../../grid/index.ts';
import type { ConnectorSession } from '../hub.ts';
import type { OutboundTransport } from '../outbound-stream.ts';
import { UndecodableHubMessageError } from '../wire/errors.ts';
import { HUB_MAX_MESSAGE_BYTES, type IncomingRequest, UndecodableRequest } from '../wire/service.ts';

/** Responses taken by `write` and not yet sent under credits; past this `write` asks to wait. */
const HIGH_WATER = 16;

type Listener = () => void;

const STOPPED: unique symbol = Symbol('stopped');

/** What the session counts into the server's stats. */
export interface SessionCounters {
  oversizeRequests: number;
  undecodableRequests: number;
}

export class GridConnectorSession implements ConnectorSession {
  readonly metadata: Metadata;
  readonly requests: AsyncIterable<IncomingRequest>;
  readonly transport: OutboundTransport<ProcessResponse>;
  readonly #context: StreamHandlerContext;
  readonly #counters: SessionCounters;
  /** Encoded responses in write order, sent one at a time (each waits for a credit). */
  readonly #queue: Uint8Array[] = [];
  readonly #listeners = { drain: new Set<Listener>(), close: new Set<Listener>() };
  #sending = false;
  #askedToWait = false;
  #closed = false;
  /** The hub ended its side (`end`); the handler returns once the queue is sent. */
  #ending = false;
  #failure: { code: status; details: string } | undefined;
  readonly #stopped: Promise<void>;
  #stop!: () => void;
  /** Resolves when the queue is empty after `end`, or at once on a failure or a close. */
  readonly #finished: Promise<void>;
  #finish!: () => void;

  constructor(metadata: Metadata, context: StreamHandlerContext, counters: SessionCounters) {
    this.metadata = metadata;
    this.#context = context;
    this.#counters = counters;
    this.#stopped = new Promise((resolve) => (this.#stop = resolve));
    this.#finished = new Promise((resolve) => (this.#finish = resolve));
    this.requests = { [Symbol.asyncIterator]: () => this.#read() };
    this.transport = {
      write: (message) => this.#write(message),
      once: (event, listener) => this.#listeners[event].add(listener),
      off: (event, listener) => this.#listeners[event].delete(listener),
      end: () => {
        this.#end();
      },
    };
    if (context.signal.aborted) this.#close();
    else {
      context.signal.addEventListener(
        'abort',
        () => {
          this.#close();
        },
        { once: true },
      );
    }
  }

  /** Resolves when the stream should end: `failure` is then the status to end it with, if any. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  get failure(): { code: status; details: string } | undefined {
    return this.#failure;
  }

  fail(code: status, details: string): void {
    if (this.#closed || this.#failure !== undefined) return;
    // What is still queued is not sent: the connector reconnects and the hub replays.
    this.#failure = { code, details };
    this.#queue.length = 0;
    this.#close();
  }

  /** The connector's input ended or the hub finished with it: the handler may return once sent. */
  drainAndFinish(): void {
    this.#end();
  }

  #write(message: ProcessResponse): boolean {
    if (this.#closed || this.#ending) return true;
    this.#queue.push(toBinary(ProcessResponseSchema, message));
    void this.#send();
    if (this.#queue.length < HIGH_WATER) return true;
    this.#askedToWait = true;
    return false;
  }

  async #send(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const next = this.#queue[0] as Uint8Array;
        await this.#context.send(next);
        this.#queue.shift();
        if (this.#askedToWait && this.#queue.length < HIGH_WATER / 2) {
          this.#askedToWait = false;
          this.#emit('drain');
        }
      }
    } catch {
      // The stream is over (the caller went away, or its link did): the hub hears `close`.
      this.#close();
    } finally {
      this.#sending = false;
    }
    if (this.#ending && this.#queue.length === 0) this.#finish();
  }

  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#stop();
    if (this.#queue.length === 0 && !this.#sending) this.#finish();
  }

  /** The stream cannot carry more: stop reading, tell the hub, let the handler end. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    this.#finish();
    this.#emit('close');
  }

  #isClosed(): boolean {
    return this.#closed;
  }

  #emit(event: 'drain' | 'close'): void {
    const listeners = [...this.#listeners[event]];
    this.#listeners[event].clear();
    for (const listener of listeners) listener();
  }

  /** The connector's items as requests; ends when the session stops, whatever the grid still holds. */
  async *#read(): AsyncGenerator<IncomingRequest> {
    const items = this.#context.requests[Symbol.asyncIterator]();
    const stopped = this.#stopped.then((): typeof STOPPED => STOPPED);
    while (!this.#closed && !this.#ending) {
      const next = items.next();
      // A wait abandoned by a stop must not surface later as an unhandled rejection.
      next.catch(() => undefined);
      let result: IteratorResult<Uint8Array> | typeof STOPPED;
      try {
        result = await Promise.race([next, stopped]);
      } catch (error) {
        // The grid ends the input with an error when the caller cancels or its link drops:
        // that is the end of this connector, not a hub failure.
        if (this.#context.signal.aborted || this.#isClosed()) return;
        throw error;
      }
      if (result === STOPPED || result.done === true) return;
      const bytes = result.value;
      if (bytes.byteLength > HUB_MAX_MESSAGE_BYTES) {
        this.#counters.oversizeRequests++;
        this.fail(
          status.RESOURCE_EXHAUSTED,
          `a request of ${bytes.byteLength} bytes is over the limit of ${HUB_MAX_MESSAGE_BYTES}`,
        );
        return;
      }
      const request = decodeRequest(bytes);
      if (request instanceof UndecodableRequest) this.#counters.undecodableRequests++;
      yield request;
    }
  }
}

function decodeRequest(bytes: Uint8Array): IncomingRequest {
  try {
    // A plain Uint8Array view: decoded `bytes` fields then are plain views too, as over gRPC.
    return fromBinary(ProcessRequestSchema, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (cause) {
    return new UndecodableRequest(
      new UndecodableHubMessageError('transport.v1.ProcessRequest', bytes.byteLength, { cause }),
    );
  }
}
