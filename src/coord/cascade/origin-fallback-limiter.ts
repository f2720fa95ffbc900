// The direct-origin fallback's rate limit (Gantry's NF5): when the cascade is exhausted this node
// may fetch from the origin itself, but only a few times per window, so a cluster whose peers
// are all failing cannot turn every node into an origin client at once.

export class OriginFallbackLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  /** `clock.now()` of the fallbacks granted within the last window, oldest first; at most `limit`. */
  readonly #granted: number[] = [];

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Takes a slot if one is free at `now`. */
  tryTake(now: number): boolean {
    while (this.#granted.length > 0 && now - (this.#granted[0] as number) >= this.#windowMs) {
      this.#granted.shift();
    }
    if (this.#granted.length >= this.#limit) return false;
    this.#granted.push(now);
    return true;
  }
}
