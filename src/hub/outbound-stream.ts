// The hub's side of one connector's stream: what the hub sends to it, written to the transport (a
// grpc-js call, a grid stream, or a test double) in order, honouring its backpressure. A send
// writes at once when nothing is queued; otherwise it joins a bounded queue, flow messages first,
// that is pumped when the transport drains.
//
// Flow messages (acks, credits, PAUSE/RESUME for what the connector produces) go ahead of queued
// data: a connector that stops reading its input must still hear that its output is paused or
// acknowledged. They cannot overtake what the transport already holds, so a flow send that cannot
// be written within `flowTimeoutMs` fails instead of waiting behind blocked data forever (the
// reference hub's flow sends got stuck there).

import { type Clock, systemClock, type Timer } from '../internal/clock.ts';
import {
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
} from '../internal/errors.ts';

/** Where an outbound stream writes: the shape of a Node Writable in object mode. */
export interface OutboundTransport<M> {
  /** Writes one message; false when the caller should wait for `drain` before the next. */
  write(message: M): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  end(): unknown;
}

export interface OutboundStreamConfig {
  readonly clock?: Clock;
  /**
   * Messages queued at most, data and flow each: a data send beyond waits for room, a flow send
   * beyond fails with `CapacityExceededError`. Default 100 (the reference's channel).
   */
  readonly maxQueued?: number;
  /** Longest a data send waits to be written. Default 10 min (the reference's per-message timeout). */
  readonly sendTimeoutMs?: number;
  /** Longest a flow send waits to be written. Default 5 s. */
  readonly flowTimeoutMs?: number;
}

export const defaultOutboundStreamConfig = {
  clock: systemClock,
  maxQueued: 100,
  sendTimeoutMs: 10 * 60_000,
  flowTimeoutMs: 5_000,
} as const satisfies Required<OutboundStreamConfig>;

export interface OutboundStreamStats {
  readonly sent: number;
  readonly flowSent: number;
  readonly queued: number;
  readonly timeouts: number;
  /** Times the transport asked the loop to wait for `drain`. */
  readonly blocked: number;
}

interface Pending<M> {
  readonly message: M;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  timer: Timer | undefined;
  settled: boolean;
}

export class OutboundStream<M> {
  readonly #transport: OutboundTransport<M>;
  readonly #config: Required<OutboundStreamConfig>;
  readonly #data: Pending<M>[] = [];
  readonly #flow: Pending<M>[] = [];
  /** Senders waiting for room in the data queue, oldest first. */
  readonly #waitingForRoom: (() => void)[] = [];
  #blocked = false;
  #closed: Error | undefined;
  #sent = 0;
  #flowSent = 0;
  #timeouts = 0;
  #blockedCount = 0;

  constructor(transport: OutboundTransport<M>, config: OutboundStreamConfig = {}) {
    const merged = { ...defaultOutboundStreamConfig, ...config };
    for (const field of ['maxQueued', 'sendTimeoutMs', 'flowTimeoutMs'] as const) {
      if (!Number.isSafeInteger(merged[field]) || merged[field] <= 0) {
        throw new ConfigError(
          `outboundStream.${field}`,
          `must be a positive integer, got ${String(merged[field])}`,
        );
      }
    }
    this.#transport = transport;
    this.#config = merged;
    transport.once('close', () => {
      this.close(new ClosedError('connector stream'));
    });
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Sends a data message after those queued before it. Resolves once the transport took it;
   * rejects with `ClosedError` when the stream closes first, or `DeadlineExceededError` after
   * `sendTimeoutMs` (the message is then not sent).
   */
  send(message: M): Promise<void> {
    // Nothing queued and the transport taking writes: written now, as the queue would do at once,
    // without the promise, timer and queue entry per message (the hub's hot path).
    if (this.#canWriteNow()) return this.#writeNow(message, false);
    return this.#sendQueued(message);
  }

  async #sendQueued(message: M): Promise<void> {
    while (this.#closed === undefined && this.#data.length >= this.#config.maxQueued) {
      await new Promise<void>((resolve) => this.#waitingForRoom.push(resolve));
    }
    return this.#enqueue(this.#data, message, this.#config.sendTimeoutMs);
  }

  /** Sends a flow message ahead of queued data; fails after `flowTimeoutMs` if it cannot be written. */
  sendFlow(message: M): Promise<void> {
    if (this.#canWriteNow()) return this.#writeNow(message, true);
    if (this.#flow.length >= this.#config.maxQueued) {
      return Promise.reject(new CapacityExceededError('connector stream flow queue', this.#config.maxQueued));
    }
    return this.#enqueue(this.#flow, message, this.#config.flowTimeoutMs);
  }

  /** Ends the stream: queued sends fail with `reason`, the transport is ended. Idempotent. */
  close(reason: Error = new ClosedError('connector stream')): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    for (const pending of [...this.#flow.splice(0), ...this.#data.splice(0)]) this.#settle(pending, reason);
    for (const wake of this.#waitingForRoom.splice(0)) wake();
    try {
      this.#transport.end();
    } catch {
      // A transport that already failed has nothing left to end.
    }
  }

  stats(): OutboundStreamStats {
    return {
      sent: this.#sent,
      flowSent: this.#flowSent,
      queued: this.#data.length + this.#flow.length,
      timeouts: this.#timeouts,
      blocked: this.#blockedCount,
    };
  }

  #enqueue(queue: Pending<M>[], message: M, timeoutMs: number): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise<void>((resolve, reject) => {
      const pending: Pending<M> = { message, resolve, reject, timer: undefined, settled: false };
      pending.timer = this.#config.clock.setTimeout(() => {
        const index = queue.indexOf(pending);
        if (index >= 0) queue.splice(index, 1);
        this.#timeouts++;
        this.#settle(pending, new DeadlineExceededError(`not written within ${timeoutMs} ms`, { timeoutMs }));
        this.#wakeOneForRoom();
      }, timeoutMs);
      queue.push(pending);
      this.#pump();
    });
  }

  #canWriteNow(): boolean {
    return !this.#blocked && this.#closed === undefined && this.#data.length === 0 && this.#flow.length === 0;
  }

  /** One write with nothing queued before it: what `#pump` does for a single queued message. */
  #writeNow(message: M, isFlow: boolean): Promise<void> {
    let accepted: boolean;
    try {
      accepted = this.#transport.write(message);
    } catch (error) {
      this.close(new ClosedError('connector stream (write failed)', { cause: error }));
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    this.#afterWrite(accepted, isFlow);
    return resolved;
  }

  #afterWrite(accepted: boolean, isFlow: boolean): void {
    if (isFlow) this.#flowSent++;
    else {
      this.#sent++;
      this.#wakeOneForRoom();
    }
    if (!accepted) {
      this.#blocked = true;
      this.#blockedCount++;
      this.#transport.once('drain', this.#onDrain);
    }
  }

  /** Writes queued messages, flow first, until the transport pushes back. */
  #pump(): void {
    while (!this.#blocked && this.#closed === undefined) {
      const isFlow = this.#flow.length > 0;
      const pending = isFlow ? this.#flow.shift() : this.#data.shift();
      if (pending === undefined) return;
      let accepted: boolean;
      try {
        accepted = this.#transport.write(pending.message);
      } catch (error) {
        this.#settle(pending, error instanceof Error ? error : new Error(String(error)));
        this.close(new ClosedError('connector stream (write failed)', { cause: error }));
        return;
      }
      this.#afterWrite(accepted, isFlow);
      this.#settle(pending);
    }
  }

  readonly #onDrain = (): void => {
    this.#blocked = false;
    this.#pump();
  };

  #wakeOneForRoom(): void {
    this.#waitingForRoom.shift()?.();
  }

  #settle(pending: Pending<M>, error?: Error): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.timer?.cancel();
    if (error === undefined) pending.resolve();
    else pending.reject(error);
  }
}

const resolved = Promise.resolve();
