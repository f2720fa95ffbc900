// What a stream (either side) needs from its connection, and the per-mux sequence
// counters both sides keep.

import type { Clock } from '../internal/clock.ts';
import type { CreditWindow } from '../internal/credit-window.ts';
import { CapacityExceededError } from '../internal/errors.ts';
import type { GridLimits } from './config.ts';
import { DisconnectedError, IncorrectSequenceError, ProtocolError } from './errors.ts';
import type { Frame } from './frame.ts';
import { Flag, type Op as OpCode } from './protocol.ts';

/** What became of a frame handed to the connection. */
export type SendResult = 'sent' | 'queue-full' | 'disconnected';

export interface MuxHost {
  readonly clock: Clock;
  readonly limits: Required<GridLimits>;
  /** Host URL of the peer. */
  readonly remote: string;
  /**
   * Encodes and queues a frame on the current socket. `control` frames (credits, acks,
   * ends, pings, cancels) are small and bounded by the protocol itself, so they are never
   * refused for a full queue: losing one would stall or desynchronise a stream. Throws
   * `FrameTooLargeError` for a frame over the limit.
   */
  sendFrame(frame: Frame, control: boolean): SendResult;
  /** The mux is over: forget it. */
  release(muxId: number): void;
}

/** The sequence numbers of one direction pair of a mux: each side counts its own sends. */
export class MuxSequence {
  #send = 0;
  #receive: number;

  constructor(firstExpected = 0) {
    this.#receive = firstExpected;
  }

  /**
   * Sends `frame` with the next seq, and uses the number up only if the frame was queued:
   * a refused frame must not leave a gap the peer would take for a lost frame.
   */
  send(host: MuxHost, frame: Omit<Frame, 'seq'>, control: boolean): SendResult {
    return this.#sent(host.sendFrame({ ...frame, seq: this.#send }, control));
  }

  /**
   * `send` for the frames a stream sends most (items, credits, ends): no deadline, no handler,
   * no subroute, built once here rather than built and then copied with its seq.
   */
  sendOp(
    host: MuxHost,
    muxId: number,
    op: OpCode,
    flags: number,
    payload: Uint8Array | undefined,
    control: boolean,
  ): SendResult {
    const frame: Frame = { muxId, seq: this.#send, deadlineMs: 0, handler: 0, op, flags, payload };
    return this.#sent(host.sendFrame(frame, control));
  }

  #sent(result: SendResult): SendResult {
    // Wraps at 2^32, as the field does.
    if (result === 'sent') this.#send = (this.#send + 1) >>> 0;
    return result;
  }

  /**
   * Sends a data item that has spent one of `credits`. If it does not go out (too large,
   * queue full, no socket), nothing was sent for the credit, so it is given back.
   */
  sendItem(host: MuxHost, muxId: number, op: OpCode, payload: Uint8Array, credits: CreditWindow): SendResult {
    let result: SendResult;
    try {
      result = this.sendOp(host, muxId, op, 0, payload, false);
    } catch (error) {
      credits.grant(1);
      throw error;
    }
    if (result !== 'sent') credits.grant(1);
    return result;
  }

  /** Checks a received frame's seq; throws `IncorrectSequenceError` unless it is the expected one. */
  check(seq: number): void {
    if (seq !== this.#receive) throw new IncorrectSequenceError(this.#receive, seq);
    this.#receive = (this.#receive + 1) >>> 0;
  }
}

/** The error for a data frame that was not sent. */
export function notSentError(result: Exclude<SendResult, 'sent'>, host: MuxHost): Error {
  return result === 'queue-full'
    ? new CapacityExceededError(`send queue to ${host.remote}`, host.limits.maxQueuedBytes)
    : new DisconnectedError(`not connected to ${host.remote}`);
}

/**
 * The error for a data frame that is neither an item (an item carries a payload, if only an
 * empty one) nor the end, or undefined if it is one of them. No Weft node sends such a frame,
 * and dropping it would hide a broken peer. `what` names the frame: "stream 3: a response".
 */
export function neitherItemNorEnd(frame: Frame, what: string): ProtocolError | undefined {
  if (frame.payload !== undefined || (frame.flags & Flag.EOF) !== 0) return undefined;
  return new ProtocolError(`${what} with neither a payload nor EOF`);
}

/**
 * Adds `count` credits the peer returned to `credits`, a window of `window` items. The peer
 * returns one credit per item it took, so holding more than the window means it returned
 * credits for items it never got: it broke the stream's protocol. `what` names the credits in
 * the error: "stream 3: input credit".
 */
export function grantReturned(credits: CreditWindow, count: number, window: number, what: string): void {
  if (credits.available + count > window) throw new ProtocolError(`${what} beyond the window of ${window}`);
  credits.grant(count);
}
