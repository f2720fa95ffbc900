// A RuntimeInput for the ingress tests: appends to a MemoryStateStore (which dedups by
// ingressId, as every store does) and can be switched into backpressure, shutdown or failure,
// or made to hold its appends until released.

import { CapacityExceededError, ClosedError } from '../../src/internal/errors.ts';
import { UnknownFunctionTypeError } from '../../src/runtime/errors.ts';
import type { RuntimeInput } from '../../src/runtime/runtime-input.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { Appended, Envelope, InboxMessage, StoredAddress } from '../../src/runtime/store/state-store.ts';

export class FakeRuntimeInput implements RuntimeInput {
  readonly store = new MemoryStateStore();
  /** Function types (`namespace/name`) servesType answers true for. */
  readonly served: Set<string>;
  /** Rejections `send` answers with while set, checked in this order. */
  closed = false;
  busy = false;
  failure: Error | undefined = undefined;
  /** Every envelope appended, in order, duplicates included. */
  readonly appended: Appended[] = [];
  sendCalls = 0;
  #hold: Promise<void> | undefined;
  #release: (() => void) | undefined;
  #watchers: (() => void)[] = [];

  constructor(served: readonly string[] = ['shop/cart']) {
    this.served = new Set(served);
  }

  servesType(namespace: string, type: string): boolean {
    return this.served.has(`${namespace}/${type}`);
  }

  async send(envelopes: readonly Envelope[]): Promise<Appended[]> {
    this.sendCalls += 1;
    this.#changed();
    if (this.closed) throw new ClosedError('the runtime is closing');
    if (this.busy) throw new CapacityExceededError('the inbox backlog', 10);
    if (this.failure !== undefined) throw this.failure;
    for (const { target } of envelopes) {
      if (!this.served.has(`${target[0]}/${target[1]}`))
        throw new UnknownFunctionTypeError(`${target[0]}/${target[1]}`);
    }
    await this.#hold;
    const appended = await this.store.append(envelopes, Date.now());
    this.appended.push(...appended);
    this.#changed();
    return appended;
  }

  released(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return this.until(() => !this.busy);
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    this.#changed();
  }

  /** Makes appends wait until `release()`. */
  hold(): void {
    this.#hold ??= new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  /** Lets held appends, and the ones to come, through. */
  release(): void {
    this.#hold = undefined;
    this.#release?.();
    this.#release = undefined;
  }

  /** Resolves once `condition` holds, checked now and after every send, append and switch. */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (!condition()) return;
        this.#watchers = this.#watchers.filter((watcher) => watcher !== check);
        resolve();
      };
      this.#watchers.push(check);
    });
  }

  inbox(address: StoredAddress): Promise<InboxMessage[]> {
    return this.store.inbox(address, 100);
  }

  #changed(): void {
    for (const watcher of [...this.#watchers]) watcher();
  }
}
