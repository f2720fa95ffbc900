// A view whose value is the payload of the latest event: for a topic that publishes a whole
// value each time (the node's stats), where a map of one entry would be noise to every reader.

import type { Event } from '../views/index.ts';
import type { View } from '../views/index.ts';

export class LatestValueView<T> implements View<T, T | null> {
  #value: T | null = null;

  update(events: readonly Event<T>[]): void {
    const last = events.at(-1);
    if (last !== undefined) this.#value = last.payload;
  }

  /** The payload itself: publishers send a new object each time and never change one. */
  result(): T | null {
    return this.#value;
  }

  reset(): void {
    this.#value = null;
  }
}
