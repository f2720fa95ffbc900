// A sink that hands each record to a callback in this process: for tests, and for an application
// that consumes its own egress (update a cache, push to a websocket).

import { ClosedError } from '../../internal/errors.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import type { EgressSink } from './egress-sink.ts';

/**
 * Called once per record, in order, and awaited before the next. A throw or a rejection fails
 * the delivery: the drainer delivers the group again later, so the callback may see a record
 * twice (`record.seq` names it). `signal` aborts when the drainer stops waiting for it.
 */
export type EgressCallback = (record: OutboxRecord, signal: AbortSignal) => void | Promise<void>;

export class InProcessSink implements EgressSink {
  readonly #callback: EgressCallback;
  #closed = false;

  constructor(callback: EgressCallback) {
    if (typeof callback !== 'function') throw new TypeError('InProcessSink needs a callback function');
    this.#callback = callback;
  }

  async deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new ClosedError('the in-process egress sink is closed');
    const stop = signal ?? new AbortController().signal;
    for (const record of records) {
      if (stop.aborted) throw stop.reason;
      await this.#callback(record, stop);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
