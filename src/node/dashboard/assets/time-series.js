// A bounded window of (time, value) samples for a plot. Samples closer together than the
// window allows for its capacity are dropped, so a node publishing faster than expected
// still gets a full window. NaN marks a gap (the line breaks there).

export const PLOT_WINDOW_MS = 5 * 60 * 1000;
const CAPACITY = 600;

export class TimeSeries {
  #times = new Float64Array(CAPACITY);
  #values = new Float64Array(CAPACITY);
  #start = 0;
  #length = 0;
  #minSpacingMs = PLOT_WINDOW_MS / CAPACITY;

  get length() {
    return this.#length;
  }

  get latestValue() {
    return this.#length === 0 ? NaN : this.#values[(this.#start + this.#length - 1) % CAPACITY];
  }

  get latestTime() {
    return this.#length === 0 ? NaN : this.#times[(this.#start + this.#length - 1) % CAPACITY];
  }

  push(time, value) {
    if (!Number.isFinite(time)) return;
    const last = this.latestTime;
    // A clock step backwards (or a replayed sample) would draw the line backwards: start over.
    if (time < last) this.clear();
    else if (time - last < this.#minSpacingMs) return;
    const index = (this.#start + this.#length) % CAPACITY;
    this.#times[index] = time;
    this.#values[index] = typeof value === 'number' && Number.isFinite(value) ? value : NaN;
    if (this.#length < CAPACITY) this.#length += 1;
    else this.#start = (this.#start + 1) % CAPACITY;
    this.dropBefore(time - PLOT_WINDOW_MS);
  }

  dropBefore(time) {
    while (this.#length > 0 && this.#times[this.#start] < time) {
      this.#start = (this.#start + 1) % CAPACITY;
      this.#length -= 1;
    }
  }

  clear() {
    this.#start = 0;
    this.#length = 0;
  }

  /** Calls `visit(time, value)` for each sample, oldest first. */
  forEach(visit) {
    for (let i = 0; i < this.#length; i += 1) {
      const index = (this.#start + i) % CAPACITY;
      visit(this.#times[index], this.#values[index]);
    }
  }
}
