// A producer and checking consumers for the views integration tests.
//
// The producer applies random puts and deletes to a map, publishes each step as one batch,
// and records a fingerprint of its whole state at every index. Each consumer runs a
// Materializer whose View keeps its own copy of the map and, on every update, compares its
// fingerprint with the producer's at the index being applied, and checks that a live batch
// is exactly the one after the last it applied (no gap, no repeat). Problems are collected,
// not thrown: a throwing View would be reset and hide them.

import type { Clock } from '../../src/internal/clock.ts';
import {
  deleteEvent,
  EventPublisher,
  Materializer,
  putEvent,
  type Event,
  type EventSource,
  type MapChange,
  type View,
} from '../../src/views/index.ts';

export type Op =
  | { readonly kind: 'put'; readonly key: string; readonly value: number }
  | { readonly kind: 'delete'; readonly key: string };

/** FNV-1a of `key=value`: one entry's share of a state fingerprint. */
function entryHash(key: string, value: number): number {
  let hash = 0x811c9dc5;
  const text = `${key}=${value}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A map with an order-independent fingerprint kept up to date as it changes. */
class FingerprintedMap {
  readonly entries = new Map<string, number>();
  fingerprint = 0;

  put(key: string, value: number): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.fingerprint ^= entryHash(key, old);
    this.entries.set(key, value);
    this.fingerprint ^= entryHash(key, value);
  }

  delete(key: string): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.fingerprint ^= entryHash(key, old);
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.fingerprint = 0;
  }
}

export class Producer {
  readonly #state = new FingerprintedMap();
  readonly #history = new Map<number, number>();
  readonly publisher: EventPublisher;
  readonly topic: string;

  constructor(publisher: EventPublisher, topic: string) {
    this.publisher = publisher;
    this.topic = topic;
    publisher.registerTopic<MapChange<number>>(topic, {
      snapshot: () => ({
        index: publisher.index(topic),
        events: [...this.#state.entries].map(([key, value]) => putEvent(key, value)),
      }),
    });
    this.#history.set(publisher.index(topic), 0);
  }

  get latest(): number {
    return this.publisher.index(this.topic);
  }

  /** Applies `ops` and publishes them as one batch; returns its index. */
  apply(ops: readonly Op[]): number {
    const events: Event<MapChange<number>>[] = [];
    for (const op of ops) {
      if (op.kind === 'put') {
        this.#state.put(op.key, op.value);
        events.push(putEvent(op.key, op.value));
      } else {
        this.#state.delete(op.key);
        events.push(deleteEvent(op.key));
      }
    }
    const index = this.publisher.publish(this.topic, events);
    this.#history.set(index, this.#state.fingerprint);
    return index;
  }

  fingerprintAt(index: number): number | undefined {
    return this.#history.get(index);
  }
}

export class CheckingConsumer {
  readonly name: string;
  readonly problems: string[] = [];
  /** Every index applied, in order (a snapshot's index included). */
  readonly appliedIndexes: number[] = [];
  readonly materializer: Materializer<MapChange<number>, number>;
  /** Set to make the consumer's stream fail at the next item: the materializer resubscribes. */
  breakNext = false;
  snapshotsApplied = 0;
  readonly #producer: Producer;
  readonly #state = new FingerprintedMap();
  readonly #controller = new AbortController();
  #applied = 0;
  #itemIndex = 0;
  #itemEndsSnapshot = false;
  readonly #running: Promise<void>;

  constructor(options: {
    name: string;
    producer: Producer;
    source: EventSource<MapChange<number>>;
    clock: Clock;
  }) {
    this.name = options.name;
    this.#producer = options.producer;
    this.materializer = new Materializer({
      source: this.#watch(options.source),
      request: { topic: options.producer.topic },
      view: this.#view(),
      clock: options.clock,
      random: () => 0,
    });
    this.#running = this.materializer.run(this.#controller.signal);
  }

  /** The index of the last update applied (0 after a reset). */
  get applied(): number {
    return this.#applied;
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#running;
  }

  /** Remembers the index of each item as it passes, for the view to check against. */
  #watch(source: EventSource<MapChange<number>>): EventSource<MapChange<number>> {
    return (request, signal) => {
      const inner = source(request, signal);
      return (async function* (consumer: CheckingConsumer) {
        for await (const item of inner) {
          if (consumer.breakNext) {
            consumer.breakNext = false;
            throw new Error('forced resubscription');
          }
          if (item.kind !== 'new-snapshot-to-follow') {
            consumer.#itemIndex = item.index;
            consumer.#itemEndsSnapshot = item.kind === 'end-of-snapshot';
          }
          yield item;
        }
      })(this);
    };
  }

  #view(): View<MapChange<number>, number> {
    return {
      update: (events) => {
        for (const event of events) {
          if (event.payload.op === 'put') this.#state.put(event.subject, event.payload.value);
          else this.#state.delete(event.subject);
        }
        const index = this.#itemIndex;
        if (this.#itemEndsSnapshot) {
          this.snapshotsApplied += 1;
          if (this.#applied !== 0)
            this.problems.push(`${this.name}: snapshot ${index} on a view at ${this.#applied}`);
        } else if (index !== this.#applied + 1) {
          this.problems.push(`${this.name}: live batch ${index} applied after ${this.#applied}`);
        }
        const expected = this.#producer.fingerprintAt(index);
        if (this.#state.fingerprint !== expected) {
          this.problems.push(`${this.name}: state at index ${index} differs from the producer's`);
        }
        this.#applied = index;
        this.appliedIndexes.push(index);
      },
      result: () => this.#state.fingerprint,
      reset: () => {
        this.#state.clear();
        this.#applied = 0;
      },
    };
  }
}
