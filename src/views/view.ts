// What a materializer keeps up to date. A View folds batches of events into a value; it is
// only ever called from its materializer, one batch at a time, and never sees framing items.

import type { Event } from './event.ts';

export interface View<P, T> {
  /**
   * Applies one atomic batch (or a whole snapshot, after a reset). Throwing resets the view
   * and rebuilds it from a fresh snapshot: a view must not be left half-applied.
   */
  update(events: readonly Event<P>[]): void;
  /**
   * The value at `index`, handed to every caller waiting for it. It must not change when
   * later batches are applied (return a copy or an immutable value).
   */
  result(index: number): T;
  /** Forgets everything: a new snapshot follows. */
  reset(): void;
}

/** A materialized value and the index it is at. */
export interface ViewResult<T> {
  readonly index: number;
  readonly value: T;
  /** True when it was returned at once, without waiting for an update. */
  readonly cached: boolean;
  /**
   * The index space `index` belongs to: the generation of the publisher's topic, which
   * changes when the publisher restarts or resets the topic (its indexes start over). Two
   * results of one generation are ordered by index; results of different generations are
   * not comparable. Undefined from a materializer that does not know it.
   */
  readonly generation?: string | undefined;
}
