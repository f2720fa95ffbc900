// Something costly that consecutive cases share, such as a forked server process and its
// clients: started by the first case that acquires it and stopped a moment after the last one
// releases it, so the cases of a suite reuse one process instead of starting one each.

/** Long enough for the harness to go from one case's teardown to the next one's setup. */
const releaseGraceMs = 200;

export class SharedResource<T extends { close(): Promise<void> }> {
  readonly #name: string;
  readonly #start: () => Promise<T>;
  #running: Promise<T> | undefined;
  #users = 0;
  #closeTimer: NodeJS.Timeout | undefined;

  /** `name` appears in the error printed if stopping fails. */
  constructor(name: string, start: () => Promise<T>) {
    this.#name = name;
    this.#start = start;
  }

  async acquire(): Promise<T> {
    clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#running ??= this.#start().catch((error: unknown) => {
      this.#running = undefined;
      throw error;
    });
    const resource = await this.#running;
    this.#users += 1;
    return resource;
  }

  release(): void {
    this.#users -= 1;
    if (this.#users > 0) return;
    const running = this.#running;
    if (running === undefined) return;
    this.#closeTimer = setTimeout(() => {
      this.#running = undefined;
      running
        .then((resource) => resource.close())
        .catch((error: unknown) => {
          console.error(`${this.#name}: stopping failed:`, error);
          process.exitCode = 1;
        });
    }, releaseGraceMs);
  }
}
