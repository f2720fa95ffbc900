// The source of events: topics, their snapshots, and a bounded buffer of recent batches.
//
// A publisher owns one index sequence per topic. Each `publish` is one atomic batch with one
// index. Subscribers read the topic's buffer through `subscribe`; a subscriber at index 0,
// or one whose index is no longer covered by the buffer (or belongs to an older generation
// of the topic), gets a snapshot first. The snapshot function is the application's: it
// returns the topic's state and the index that state is at.

import { randomUUID } from 'node:crypto';

import { ConfigError } from '../internal/errors.ts';
import { wholeNumberOption } from './config.ts';
import { checkIndex, type Event, type StreamItem, type SubscribeRequest } from './event.ts';
import { subscribeToTopic } from './subscription.ts';
import { TopicBuffer } from './topic-buffer.ts';
import { UnauthorizedError, UnknownTopicError } from './errors.ts';

/** A topic's state at an index: what a new subscriber starts from. */
export interface Snapshot<P> {
  readonly index: number;
  readonly events: readonly Event<P>[];
}

export interface TopicOptions<P> {
  /**
   * The topic's current state as events (for `subject`, or every subject when undefined),
   * and the index it is at. Called for each subscriber that needs a snapshot.
   */
  readonly snapshot: (subject: string | undefined) => Snapshot<P> | Promise<Snapshot<P>>;
  /** May this subscriber see this event? Events it may not are left out of its stream. */
  readonly visible?: ((event: Event<P>, request: SubscribeRequest) => boolean) | undefined;
}

export interface EventPublisherOptions {
  /** Batches kept per topic for subscribers that are behind or resuming. Default 4096. */
  readonly bufferBatches?: number | undefined;
  /** Events per snapshot chunk (a remote stream sends one chunk per message). Default 1024. */
  readonly snapshotChunkEvents?: number | undefined;
  /** Refuses a subscription by throwing (or returning false); `UnauthorizedError` is terminal. */
  readonly authorize?: ((request: SubscribeRequest) => unknown) | undefined;
}

/** Everything the subscription loop needs of one topic. */
export interface TopicState<P> {
  readonly name: string;
  readonly options: TopicOptions<P>;
  readonly buffer: TopicBuffer<P>;
  /** Changes when the topic is reset: indexes of an older generation are not resumed. */
  generation: string;
  /** Counts resets: a subscription started in an earlier epoch ends with `ViewStaleError`. */
  epoch: number;
  resetReason: string;
  /** Set when the topic is removed: its subscriptions end with `UnknownTopicError`. */
  removed: boolean;
}

export interface PublisherStats {
  readonly topics: number;
  /** Subscriptions streaming now. */
  readonly subscriptions: number;
  /** Subscriptions started over the publisher's life. */
  readonly subscriptionsStarted: number;
  /** Batches dropped from full buffers. */
  readonly droppedBatches: number;
  /** Subscriptions ended because they fell behind the buffer. */
  readonly slowSubscribers: number;
  readonly snapshots: number;
}

export class EventPublisher {
  readonly #topics = new Map<string, TopicState<unknown>>();
  readonly #bufferBatches: number;
  readonly #snapshotChunkEvents: number;
  readonly #authorize: ((request: SubscribeRequest) => unknown) | undefined;
  readonly #counters = {
    subscriptions: 0,
    subscriptionsStarted: 0,
    slowSubscribers: 0,
    snapshots: 0,
    droppedBatches: 0,
  };

  constructor(options: EventPublisherOptions = {}) {
    this.#bufferBatches = wholeNumberOption(options.bufferBatches ?? 4096, 'bufferBatches', 1);
    this.#snapshotChunkEvents = wholeNumberOption(
      options.snapshotChunkEvents ?? 1024,
      'snapshotChunkEvents',
      1,
    );
    this.#authorize = options.authorize;
  }

  /**
   * Adds a topic at `startIndex` (default 1: its empty state), so its first batch is
   * `startIndex + 1`. Index 0 is never a state: readers take it for "nothing yet".
   */
  registerTopic<P>(topic: string, options: TopicOptions<P>, startIndex = 1): void {
    if (typeof topic !== 'string' || topic === '')
      throw new ConfigError('topic', 'must be a non-empty string');
    if (this.#topics.has(topic)) throw new ConfigError('topic', `${topic} is already registered`);
    if (typeof options.snapshot !== 'function')
      throw new ConfigError(`${topic}.snapshot`, 'is not a function');
    checkIndex(startIndex, 'startIndex');
    if (startIndex === 0) throw new ConfigError('startIndex', 'must be 1 or above');
    this.#topics.set(topic, {
      name: topic,
      options: options as TopicOptions<unknown>,
      buffer: new TopicBuffer(this.#bufferBatches, startIndex),
      generation: randomUUID(),
      epoch: 0,
      resetReason: '',
      removed: false,
    });
  }

  /** The index of the topic's latest batch. */
  index(topic: string): number {
    return this.#topic(topic).buffer.latestIndex;
  }

  /**
   * Publishes one atomic batch and returns its index: `index` if given (it must be higher
   * than the topic's latest), else one more than the latest. An empty batch publishes
   * nothing and returns the latest index.
   */
  publish<P>(topic: string, events: readonly Event<P>[], index?: number): number {
    const state = this.#topic(topic);
    const latest = state.buffer.latestIndex;
    // Checked for callers without types; through `unknown` so the check keeps the element type.
    const untyped: unknown = events;
    if (!Array.isArray(untyped)) throw new TypeError('events must be an array');
    if (events.length === 0) return latest;
    const next = index ?? latest + 1;
    checkIndex(next, 'index');
    if (next <= latest) throw new RangeError(`index ${next} is not above the topic's latest (${latest})`);
    for (const event of events) {
      if (typeof event.subject !== 'string') throw new TypeError('every event needs a string subject');
    }
    const before = state.buffer.dropped;
    // Frozen copy: subscribers share the batch, and the caller may reuse its array.
    state.buffer.append({ index: next, events: Object.freeze(events.slice()) });
    this.#counters.droppedBatches += state.buffer.dropped - before;
    return next;
  }

  /**
   * Ends every subscription of the topic with a `ViewStaleError` and starts a new
   * generation: subscribers rebuild from a snapshot (a restore, a change of who may see what).
   */
  resetTopic(topic: string, reason = 'the topic was reset'): void {
    const state = this.#topic(topic);
    state.epoch += 1;
    state.resetReason = reason;
    state.generation = randomUUID();
    state.buffer.clear();
  }

  /** Removes a topic; its subscriptions end with `UnknownTopicError`. */
  removeTopic(topic: string): void {
    const state = this.#topic(topic);
    this.#topics.delete(topic);
    state.removed = true;
    state.buffer.wakeAll();
  }

  /**
   * The topic's stream for one subscriber, ending only with an error (or when `signal`
   * aborts). Throws `UnknownTopicError` / `UnauthorizedError` when the subscription starts.
   */
  subscribe<P>(
    request: SubscribeRequest,
    options: { signal?: AbortSignal | undefined } = {},
  ): AsyncIterable<StreamItem<P>> {
    checkRequest(request);
    const state = this.#topic(request.topic) as TopicState<P>;
    if (this.#authorize !== undefined) {
      let allowed: unknown;
      try {
        allowed = this.#authorize(request);
      } catch (error) {
        if (error instanceof UnauthorizedError) throw error;
        throw new UnauthorizedError(error instanceof Error ? error.message : String(error), { cause: error });
      }
      if (allowed === false) throw new UnauthorizedError();
    }
    this.#counters.subscriptionsStarted += 1;
    return subscribeToTopic(state, request, {
      signal: options.signal,
      chunkEvents: this.#snapshotChunkEvents,
      counters: this.#counters,
    });
  }

  stats(): PublisherStats {
    return { topics: this.#topics.size, ...this.#counters };
  }

  #topic(topic: string): TopicState<unknown> {
    const state = this.#topics.get(topic);
    if (state === undefined) throw new UnknownTopicError(topic);
    return state;
  }
}

function checkRequest(request: SubscribeRequest): void {
  const value: unknown = request;
  if (typeof value !== 'object' || value === null) throw new TypeError('a subscribe request is an object');
  if (typeof request.topic !== 'string') throw new TypeError('a subscribe request needs a topic');
  if (request.subject !== undefined && typeof request.subject !== 'string')
    throw new TypeError('subject must be a string');
  if (request.index !== undefined) checkIndex(request.index, 'index');
  if (request.generation !== undefined && typeof request.generation !== 'string')
    throw new TypeError('generation must be a string');
}
