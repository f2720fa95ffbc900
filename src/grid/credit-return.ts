// A receiver gives credits back in batches. Returning one credit frame per item consumed
// (as MinIO does) doubles the frames of a stream; instead the credits of everything taken
// in one turn of the event loop go back in one frame, and at once when half the window is
// waiting, so a fast consumer never leaves the sender idle. A window of 1 returns each
// credit immediately.

export class CreditReturn {
  readonly #threshold: number;
  readonly #send: (count: number) => void;
  #pending = 0;
  #scheduled = false;
  #closed = false;

  constructor(window: number, send: (count: number) => void) {
    this.#threshold = Math.max(1, Math.floor(window / 2));
    this.#send = send;
  }

  /** One item was consumed: its credit is owed to the sender. */
  add(): void {
    if (this.#closed) return;
    this.#pending += 1;
    if (this.#pending >= this.#threshold) {
      this.flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.flush();
    });
  }

  /** Sends what is owed now. */
  flush(): void {
    if (this.#closed || this.#pending === 0) return;
    const count = this.#pending;
    this.#pending = 0;
    this.#send(count);
  }

  /** The stream is over: nothing more is sent. */
  close(): void {
    this.#closed = true;
  }
}
