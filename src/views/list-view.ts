// A ready-made View: the values of a keyed topic as a list, in the order `compare` gives (or
// in the order keys first appeared), e.g. the members of a cluster sorted by name.

import type { Event } from './event.ts';
import { applyMapChanges, type MapChange } from './map-view.ts';
import type { View } from './view.ts';

export class ListView<V> implements View<MapChange<V>, readonly V[]> {
  readonly #entries = new Map<string, V>();
  readonly #compare: ((a: V, b: V) => number) | undefined;

  constructor(options: { compare?: ((a: V, b: V) => number) | undefined } = {}) {
    this.#compare = options.compare;
  }

  update(events: readonly Event<MapChange<V>>[]): void {
    applyMapChanges(this.#entries, events);
  }

  /** A frozen array, sorted once per index. */
  result(): readonly V[] {
    const values = [...this.#entries.values()];
    if (this.#compare !== undefined) values.sort(this.#compare);
    return Object.freeze(values);
  }

  reset(): void {
    this.#entries.clear();
  }
}
