// A ready-made View: a map from subject to value, for topics whose events put and delete keys.

import type { Event } from './event.ts';
import type { View } from './view.ts';

/** The payload of a keyed topic's events: the subject is the key. */
export type MapChange<V> = { readonly op: 'put'; readonly value: V } | { readonly op: 'delete' };

/** An event that sets `key` to `value`. */
export function putEvent<V>(key: string, value: V): Event<MapChange<V>> {
  return { subject: key, payload: { op: 'put', value } };
}

/** An event that removes `key`. */
export function deleteEvent(key: string): Event<MapChange<never>> {
  return { subject: key, payload: { op: 'delete' } };
}

export class MapView<V> implements View<MapChange<V>, ReadonlyMap<string, V>> {
  readonly #entries = new Map<string, V>();

  /** Entries held now (for tests and stats; readers use `result`). */
  get size(): number {
    return this.#entries.size;
  }

  update(events: readonly Event<MapChange<V>>[]): void {
    applyMapChanges(this.#entries, events);
  }

  /** A copy: later batches do not change what a caller was given. */
  result(): ReadonlyMap<string, V> {
    return new Map(this.#entries);
  }

  reset(): void {
    this.#entries.clear();
  }
}

/** Applies put and delete events to `entries` (MapView's update, and ListView's). */
export function applyMapChanges<V>(entries: Map<string, V>, events: readonly Event<MapChange<V>>[]): void {
  for (const event of events) {
    const change = event.payload;
    switch (change.op) {
      case 'put':
        entries.set(event.subject, change.value);
        break;
      case 'delete':
        entries.delete(event.subject);
        break;
      default:
        // Payloads come from other processes too: the type is a hope, not a guarantee.
        throw new TypeError(`unknown map change ${JSON.stringify((change as { op: unknown }).op)}`);
    }
  }
}
