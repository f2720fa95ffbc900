// Nonces seen within a window, to refuse a replayed request. Bounded: past `max` the oldest is
// forgotten (a replay of it would then need to be older than every nonce since, and still fresh).

export class SeenNonces {
  readonly #windowMs: number;
  readonly #max: number;
  /** Nonce → when it was seen, in insertion (so time) order. */
  readonly #seen = new Map<string, number>();

  constructor(windowMs: number, max: number) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  /** Records `nonce` seen at `now`; false when it was seen within the window. */
  remember(nonce: string, now: number): boolean {
    for (const [old, at] of this.#seen) {
      if (now - at <= this.#windowMs && this.#seen.size < this.#max) break;
      this.#seen.delete(old);
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, now);
    return true;
  }
}
