// A min-heap of keys by expiry time, with O(log n) update and removal by key: the store's
// idle entries, so one timer (for the head) serves them all.

interface Node {
  readonly key: string;
  expiresAt: number;
  position: number;
}

export class ExpiryHeap {
  readonly #nodes: Node[] = [];
  readonly #byKey = new Map<string, Node>();

  get size(): number {
    return this.#nodes.length;
  }

  /** The entry that expires first. */
  peek(): { readonly key: string; readonly expiresAt: number } | undefined {
    return this.#nodes[0];
  }

  /** Adds `key`, or moves it to its new expiry time. */
  set(key: string, expiresAt: number): void {
    const existing = this.#byKey.get(key);
    if (existing === undefined) {
      const node: Node = { key, expiresAt, position: this.#nodes.length };
      this.#nodes.push(node);
      this.#byKey.set(key, node);
      this.#up(node.position);
      return;
    }
    existing.expiresAt = expiresAt;
    this.#up(existing.position);
    this.#down(existing.position);
  }

  remove(key: string): void {
    const node = this.#byKey.get(key);
    if (node === undefined) return;
    this.#byKey.delete(key);
    const last = this.#nodes.pop() as Node;
    if (last === node) return;
    this.#nodes[node.position] = last;
    last.position = node.position;
    this.#up(last.position);
    this.#down(last.position);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  #up(position: number): void {
    let at = position;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.#at(parent).expiresAt <= this.#at(at).expiresAt) return;
      this.#swap(at, parent);
      at = parent;
    }
  }

  #down(position: number): void {
    let at = position;
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let smallest = at;
      if (left < this.#nodes.length && this.#at(left).expiresAt < this.#at(smallest).expiresAt)
        smallest = left;
      if (right < this.#nodes.length && this.#at(right).expiresAt < this.#at(smallest).expiresAt)
        smallest = right;
      if (smallest === at) return;
      this.#swap(at, smallest);
      at = smallest;
    }
  }

  #at(position: number): Node {
    return this.#nodes[position] as Node;
  }

  #swap(a: number, b: number): void {
    const nodeA = this.#at(a);
    const nodeB = this.#at(b);
    this.#nodes[a] = nodeB;
    this.#nodes[b] = nodeA;
    nodeA.position = b;
    nodeB.position = a;
  }
}
