// Keys this node has stopped probing for a while, because a peer reported a transient failure.
// While a key's window is open the cascade answers a cooldown at once, without asking anyone:
// a burst of requests for a key the origin is refusing costs one round of probes, not one each.
// Windows are short (at most 30 s) and the table is bounded; the oldest is dropped when full.

export class HonorWindows {
  readonly #maxEntries: number;
  /** key → `clock.now()` at which the window closes; insertion order is roughly expiry order. */
  readonly #until = new Map<string, number>();
  #evicted = 0;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  /** The end of `key`'s open window, or undefined (an expired one is dropped). */
  openUntil(key: string, now: number): number | undefined {
    const until = this.#until.get(key);
    if (until === undefined) return undefined;
    if (until > now) return until;
    this.#until.delete(key);
    return undefined;
  }

  open(key: string, until: number): void {
    this.#until.delete(key);
    if (this.#until.size >= this.#maxEntries) {
      const oldest = this.#until.keys().next().value;
      if (oldest !== undefined) {
        this.#until.delete(oldest);
        this.#evicted++;
      }
    }
    this.#until.set(key, until);
  }

  get size(): number {
    return this.#until.size;
  }

  /** Windows dropped before their end because the table was full. */
  get evicted(): number {
    return this.#evicted;
  }
}
