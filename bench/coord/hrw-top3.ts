// `hrw-top3-64-nodes`: the three nodes responsible for a key among 64, as the cascade and the
// directory ask for every blob: `hrwTopK` (a size-3 heap) against the naive way, ranking all 64
// and keeping the first three. Both hash all 64 (node, key) pairs; only the selection differs.

import { createHash } from 'node:crypto';

import { loadHrw, type Hrw } from './load-coord.ts';

const nodeCount = 64;
const k = 3;
// Keys vary from call to call, as blob digests do; 1 024 of them cycle.
const keyCount = 1024;

export class HrwTop3 {
  readonly nodes = Array.from({ length: nodeCount }, (_, i) => `http://127.0.${i >> 4}.${i & 15}:7300`);
  readonly keys = Array.from(
    { length: keyCount },
    (_, i) => `sha256:${createHash('sha256').update(`key-${i}`).digest('hex')}`,
  );
  #hrw: Hrw | undefined;
  #next = 0;

  async start(): Promise<void> {
    this.#hrw = await loadHrw();
  }

  readonly topK = (): string[] => this.#required().hrwTopK(this.nodes, this.#key(), k);

  readonly sortAll = (): string[] => this.#required().hrwRank(this.nodes, this.#key()).slice(0, k);

  /** Throws unless both pick the same three nodes, in the same order, for every key. */
  check(): void {
    const hrw = this.#required();
    for (const key of this.keys) {
      const heap = hrw.hrwTopK(this.nodes, key, k).join();
      const sorted = hrw.hrwRank(this.nodes, key).slice(0, k).join();
      if (heap !== sorted) throw new Error(`for ${key}: top-3 ${heap}, but full rank ${sorted}`);
    }
  }

  #key(): string {
    const key = this.keys[this.#next] as string;
    this.#next = (this.#next + 1) % keyCount;
    return key;
  }

  #required(): Hrw {
    if (this.#hrw === undefined) throw new Error('the hrw case has not started');
    return this.#hrw;
  }
}
