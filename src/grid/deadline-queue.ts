// The deadlines of one connection's requests, on one timer.
//
// A request used to arm a timer of its own and cancel it when its answer came: two calls into
// Node's timer lists, a timer object and a closure per request, for a timer that almost never
// fires. Here the requests in flight sit in a binary min-heap by deadline (ties in the order they
// were added), and one clock timer is armed for the earliest. Adding a request that is not the
// new earliest, and removing one (its answer came), touch only the heap: the timer is re-armed
// only when an earlier deadline arrives, and dropped when the last request leaves. When the timer fires it expires every entry that is due
// and arms itself for the next; if the entry it was armed for has gone, it just arms again.
//
// The entries are the requests themselves (they carry their heap slot), so the queue allocates
// nothing per request. Its size is bounded by the requests in flight (`maxOutgoingRequests`).

import type { Clock, Timer } from '../internal/clock.ts';

export interface DeadlineEntry {
  /** `clock.now()` at or after which the entry expires. */
  deadlineAt: number;
  /** Slot in the heap while queued, -1 otherwise. Owned by the queue. */
  heapIndex: number;
  /** Tie-break: entries with one deadline expire in the order they were added. Owned by the queue. */
  heapOrder: number;
  /** Called once, when the deadline has come; the entry is out of the queue by then. */
  expire(): void;
}

export class DeadlineQueue {
  readonly #clock: Clock;
  readonly #heap: DeadlineEntry[] = [];
  #added = 0;
  #timer: Timer | undefined;
  /** The deadline the timer is armed for. */
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#heap.length;
  }

  add(entry: DeadlineEntry): void {
    entry.heapOrder = this.#added++;
    const heap = this.#heap;
    entry.heapIndex = heap.length;
    heap.push(entry);
    this.#siftUp(entry.heapIndex);
    if (entry.deadlineAt < this.#timerAt) this.#arm(entry.deadlineAt);
  }

  /** Takes `entry` out; nothing happens if it is not queued. The timer stays as it is. */
  remove(entry: DeadlineEntry): void {
    const index = entry.heapIndex;
    const heap = this.#heap;
    if (index < 0 || heap[index] !== entry) return;
    entry.heapIndex = -1;
    const last = heap.pop() as DeadlineEntry;
    // Nothing left to wait for: no timer either, so an idle connection holds none.
    if (heap.length === 0) this.#disarm();
    if (index === heap.length) return;
    heap[index] = last;
    last.heapIndex = index;
    this.#siftDown(index);
    this.#siftUp(last.heapIndex);
  }

  /** Drops every entry without expiring it, and the timer. */
  clear(): void {
    for (const entry of this.#heap) entry.heapIndex = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  #arm(at: number): void {
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#fire();
    }, at - this.#clock.now());
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const heap = this.#heap;
    try {
      // An expiry may add or remove entries (a caller retrying at once): read the head each time.
      while (heap.length > 0 && (heap[0] as DeadlineEntry).deadlineAt <= now) {
        const entry = heap[0] as DeadlineEntry;
        this.remove(entry);
        entry.expire();
      }
    } finally {
      // Even if an expiry threw, the entries left keep a timer.
      const next = heap[0];
      if (next !== undefined && next.deadlineAt < this.#timerAt) this.#arm(next.deadlineAt);
    }
  }

  #before(a: DeadlineEntry, b: DeadlineEntry): boolean {
    return a.deadlineAt < b.deadlineAt || (a.deadlineAt === b.deadlineAt && a.heapOrder < b.heapOrder);
  }

  #siftUp(index: number): void {
    const heap = this.#heap;
    const entry = heap[index] as DeadlineEntry;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex] as DeadlineEntry;
      if (!this.#before(entry, parent)) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }

  #siftDown(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const entry = heap[index] as DeadlineEntry;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && this.#before(heap[right] as DeadlineEntry, heap[left] as DeadlineEntry))
        child = right;
      const childEntry = heap[child] as DeadlineEntry;
      if (!this.#before(childEntry, entry)) break;
      heap[index] = childEntry;
      childEntry.heapIndex = index;
      index = child;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }
}
