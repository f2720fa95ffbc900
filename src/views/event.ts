// What flows from a publisher to a materializer.
//
// A topic's state changes in atomic batches; each batch has an index one higher than any
// before it on that topic (or the publisher's own index, e.g. a log position). A subscriber
// sees either a snapshot (the state at some index, then `end-of-snapshot`) followed by live
// batches, or, when it resumes from an index the publisher still holds, the live batches
// after it. Framing items (`end-of-snapshot`, `new-snapshot-to-follow`) are never handed to
// a View.

/** One change within a topic. `subject` is the key it concerns (a map key, a node id). */
export interface Event<P> {
  readonly subject: string;
  readonly payload: P;
}

/** What a subscriber asks for. */
export interface SubscribeRequest {
  readonly topic: string;
  /** Only events of this subject; absent for every subject of the topic (the wildcard). */
  readonly subject?: string | undefined;
  /** 0 for a snapshot first; otherwise the last index the subscriber holds, to resume after it. */
  readonly index?: number | undefined;
  /** Presented to the publisher's `authorize`. */
  readonly token?: string | undefined;
  /**
   * The publisher generation the subscriber's index belongs to (from `end-of-snapshot`).
   * An index of another generation (a restarted publisher, a reset topic) is not resumed.
   */
  readonly generation?: string | undefined;
}

/** A batch of events at one index: a live batch, or a chunk of a snapshot. */
export interface EventsItem<P> {
  readonly kind: 'events';
  readonly index: number;
  readonly events: readonly Event<P>[];
}

/** The snapshot is complete: the state at `index`. */
export interface EndOfSnapshotItem {
  readonly kind: 'end-of-snapshot';
  readonly index: number;
  readonly generation: string;
}

/** The resume index could not be honoured: drop what you hold, a snapshot follows. */
export interface NewSnapshotToFollowItem {
  readonly kind: 'new-snapshot-to-follow';
}

export type StreamItem<P> = EventsItem<P> | EndOfSnapshotItem | NewSnapshotToFollowItem;

/** Where a materializer gets its items: a local publisher, or one across the grid. */
export type EventSource<P> = (request: SubscribeRequest, signal: AbortSignal) => AsyncIterable<StreamItem<P>>;

/** True when `index` is a whole number >= 0 that a double holds exactly. */
export function isIndex(index: unknown): index is number {
  return typeof index === 'number' && Number.isSafeInteger(index) && index >= 0;
}

/** Throws a TypeError unless `index` is an index (`isIndex`). */
export function checkIndex(index: unknown, what: string): asserts index is number {
  if (!isIndex(index)) {
    throw new TypeError(`${what} must be a whole number >= 0, got ${String(index)}`);
  }
}
