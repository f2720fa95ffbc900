// One subscriber's stream over a topic: a snapshot when it needs one, then the live batches
// from the topic's buffer, filtered to its subject and to what it may see.

import { raceSignal } from '../internal/abort.ts';
import { checkIndex, type Event, type StreamItem, type SubscribeRequest } from './event.ts';
import { SubscriberTooSlowError, UnknownTopicError, ViewStaleError } from './errors.ts';
import type { TopicState } from './publisher.ts';

const newSnapshotToFollow: StreamItem<never> = Object.freeze({ kind: 'new-snapshot-to-follow' });

export interface SubscriptionCounters {
  /** Streaming now. */
  subscriptions: number;
  slowSubscribers: number;
  snapshots: number;
}

export async function* subscribeToTopic<P>(
  state: TopicState<P>,
  request: SubscribeRequest,
  options: { signal: AbortSignal | undefined; chunkEvents: number; counters: SubscriptionCounters },
): AsyncGenerator<StreamItem<P>, never, undefined> {
  const { signal, counters } = options;
  counters.subscriptions += 1;
  try {
    const epoch = state.epoch;
    const generation = state.generation;
    const keep = eventFilter(state, request);
    const checkLive = (): void => {
      signal?.throwIfAborted();
      if (state.removed) throw new UnknownTopicError(state.name);
      if (state.epoch !== epoch) throw new ViewStaleError(state.resetReason);
    };

    const resumeIndex = request.index ?? 0;
    // A subscriber that does not know generations is resumed by index alone.
    const sameGeneration = request.generation === undefined || request.generation === generation;
    // An index above the topic's latest is one this topic never reached (another publisher's):
    // resuming from it would skip every batch up to it.
    const reached = resumeIndex <= state.buffer.latestIndex;
    let seq = resumeIndex > 0 && sameGeneration && reached ? state.buffer.seqAfter(resumeIndex) : undefined;
    // Live batches at or below this index are already in the snapshot.
    let coveredThrough = 0;
    if (seq === undefined) {
      if (resumeIndex > 0) yield newSnapshotToFollow;
      counters.snapshots += 1;
      // Raced with the signal: a snapshot that hangs (a store that is down) must not hold the
      // subscriber past its end.
      const snapshot = await raceSignal(Promise.resolve(state.options.snapshot(request.subject)), signal);
      checkLive();
      checkIndex(snapshot.index, `snapshot index of topic ${state.name}`);
      // Index 0 means "nothing materialized yet" to every reader: a snapshot must be at 1 or above.
      if (snapshot.index === 0)
        throw new RangeError(`topic ${state.name}: a snapshot is at index 1 or above`);
      seq = state.buffer.seqAfter(snapshot.index);
      // A snapshot older than the buffer reaches back cannot be joined to the live batches.
      if (seq === undefined) {
        counters.slowSubscribers += 1;
        throw new SubscriberTooSlowError(state.name);
      }
      coveredThrough = snapshot.index;
      const events = keep(snapshot.events);
      for (let start = 0; start < events.length; start += options.chunkEvents) {
        yield {
          kind: 'events',
          index: snapshot.index,
          events: events.slice(start, start + options.chunkEvents),
        };
      }
      yield { kind: 'end-of-snapshot', index: snapshot.index, generation };
    }

    for (;;) {
      checkLive();
      const batch = state.buffer.read(seq);
      if (batch === 'gone') {
        counters.slowSubscribers += 1;
        throw new SubscriberTooSlowError(state.name);
      }
      if (batch === undefined) {
        await state.buffer.changed(signal);
        continue;
      }
      seq += 1;
      if (batch.index <= coveredThrough) continue;
      const events = keep(batch.events);
      // A batch with nothing for this subscriber is not sent: its index is not one it can see.
      if (events.length > 0) yield { kind: 'events', index: batch.index, events };
    }
  } finally {
    counters.subscriptions -= 1;
  }
}

function eventFilter<P>(
  state: TopicState<P>,
  request: SubscribeRequest,
): (events: readonly Event<P>[]) => readonly Event<P>[] {
  const { subject } = request;
  const visible = state.options.visible;
  if (subject === undefined && visible === undefined) return (events) => events;
  return (events) =>
    events.filter(
      (event) =>
        (subject === undefined || event.subject === subject) &&
        (visible === undefined || visible(event, request)),
    );
}
