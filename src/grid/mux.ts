// What a stream (either side) needs from its connection, and the per-mux sequence
// counters both sides keep.

import type { Clock } from '../internal/clock.ts';
import type { GridLimits } from './config.ts';
import { IncorrectSequenceError } from './errors.ts';
import type { Frame } from './frame.ts';

export interface MuxHost {
  readonly clock: Clock;
  readonly limits: Required<GridLimits>;
  /** Host URL of the peer. */
  readonly remote: string;
  /** Encodes and queues a frame on the current socket; false if it could not be queued. */
  sendFrame(frame: Frame): boolean;
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

  /** The seq for the next frame this side sends. Wraps at 2^32, as the field does. */
  next(): number {
    const seq = this.#send;
    this.#send = (this.#send + 1) >>> 0;
    return seq;
  }

  /** Checks a received frame's seq; throws `IncorrectSequenceError` unless it is the expected one. */
  check(seq: number): void {
    if (seq !== this.#receive) throw new IncorrectSequenceError(this.#receive, seq);
    this.#receive = (this.#receive + 1) >>> 0;
  }
}
