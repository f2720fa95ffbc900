// The connector's grid transport: one grid stream to the hub's node per connection, opened
// with the registration; requests go out as items under the hub's credits, responses come in
// under ours. The connector's logic (hub-connector.ts) is the same as over gRPC.

import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';

import { ProcessRequestSchema, ProcessResponseSchema } from '../../gen/transport/v1/hub_pb.ts';
import type { GridStream, Manager } from '../../grid/index.ts';
import { errorMessage } from '../../internal/errors.ts';
import {
  registrationEntries,
  type CallEnd,
  type HubCall,
  type HubCallListener,
  type HubTransport,
} from '../connector/transport.ts';
import { DEFAULT_HUB_GRID_WINDOW, HUB_GRID_HANDLER } from './protocol.ts';
import { encodeGridRegistration } from './registration.ts';
import { callEndOf } from './status.ts';

/** Where a connector inside the cluster reaches the hub. */
export interface HubGridTarget {
  /** This node's grid. */
  readonly manager: Pick<Manager, 'connection'>;
  /** The hub's node: its grid host URL (`http://10.0.0.1:9000`), where `serveHubOnGrid` runs. */
  readonly node: string;
  /** Responses buffered here (the stream's output window). Default 32. */
  readonly window?: number;
}

/**
 * Requests written and not yet sent under the hub's credits. The connector holds at most
 * `maxUnacked` packets and one ack message per turn, so this is a guard, not a working limit:
 * a call past it is cancelled (and reopened, resending what was not acknowledged).
 */
const MAX_QUEUED_WRITES = 65_536;

export function gridHubTransport(target: HubGridTarget): HubTransport {
  return {
    open: (registration, listener) =>
      new GridHubCall(target, encodeGridRegistration(registrationEntries(registration)), listener),
    close: () => undefined,
  };
}

interface QueuedWrite {
  readonly bytes: Uint8Array;
  readonly onWritten: (() => void) | undefined;
}

class GridHubCall implements HubCall {
  readonly #listener: HubCallListener;
  readonly #stream: GridStream | undefined;
  readonly #queue: QueuedWrite[] = [];
  #sending = false;
  #halfClosing = false;
  #ended = false;
  #paused = false;
  #resume: (() => void) | undefined;

  constructor(target: HubGridTarget, initial: Uint8Array, listener: HubCallListener) {
    this.#listener = listener;
    try {
      this.#stream = target.manager
        .connection(target.node)
        .openStream(HUB_GRID_HANDLER, { initial, outCapacity: target.window ?? DEFAULT_HUB_GRID_WINDOW });
    } catch (error) {
      // Never end from inside `open`: the connector learns of the call once it returns.
      queueMicrotask(() => {
        this.#end(callEndOf(error));
      });
      return;
    }
    void this.#read(this.#stream);
  }

  write(request: Parameters<HubCall['write']>[0], onWritten?: () => void): void {
    if (this.#ended || this.#halfClosing) return;
    if (this.#queue.length >= MAX_QUEUED_WRITES) {
      this.#abandon({ code: status.RESOURCE_EXHAUSTED, details: 'too many requests waiting for the hub' });
      return;
    }
    this.#queue.push({ bytes: toBinary(ProcessRequestSchema, request), onWritten });
    void this.#send();
  }

  end(): void {
    if (this.#ended || this.#halfClosing) return;
    this.#halfClosing = true;
    // The end goes after what is queued; the grid sends it once the items before it are out.
    if (!this.#sending) this.#stream?.end();
  }

  cancel(): void {
    this.#abandon({ code: status.CANCELLED, details: 'cancelled by the connector' });
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#resume?.();
    this.#resume = undefined;
  }

  async #send(): Promise<void> {
    const stream = this.#stream;
    if (this.#sending || stream === undefined) return;
    this.#sending = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined && !this.#ended; next = this.#queue.shift()) {
        await stream.send(next.bytes);
        next.onWritten?.();
      }
    } catch (error) {
      // An item that did not go out leaves a gap the hub must not see: the call ends, and the
      // connector resends on the next one.
      this.#abandon(callEndOf(error));
    } finally {
      this.#sending = false;
    }
    if (this.#halfClosing && !this.#ended) stream.end();
  }

  async #read(stream: GridStream): Promise<void> {
    const responses = stream[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (this.#paused) await new Promise<void>((resolve) => (this.#resume = resolve));
        if (this.#ended) return;
        const next = await responses.next();
        if (next.done === true) break;
        let response;
        try {
          response = fromBinary(ProcessResponseSchema, next.value);
        } catch (error) {
          this.#abandon({
            code: status.INTERNAL,
            details: `the hub sent a response that does not decode: ${errorMessage(error)}`,
          });
          return;
        }
        // A response already taken when the call was cancelled is not the connector's any more.
        if (this.#isEnded()) return;
        this.#listener.onResponse(response);
      }
      this.#end(callEndOf(undefined));
    } catch (error) {
      this.#end(callEndOf(error));
    }
  }

  #isEnded(): boolean {
    return this.#ended;
  }

  /** Ends the call here and tells the hub's side to stop. */
  #abandon(end: CallEnd): void {
    if (this.#ended) return;
    this.#stream?.cancel();
    this.#end(end);
  }

  #end(end: CallEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#queue.length = 0;
    this.resume();
    this.#listener.onEnd(end);
  }
}
