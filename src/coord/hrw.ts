// Rendezvous (highest-random-weight, HRW) hashing: which nodes are responsible for a key.
//
// Every node scores every (node, key) pair with the same hash and the highest scores win, so
// any two nodes holding the same membership list agree on the order without talking, and a
// node joining or leaving moves only the keys it wins or held. The score must be byte-exact
// with Gantry's (Go) coord, because nodes of both may rank the same keys:
//
//   score(node, key) = SHA-256(utf8(nodeId) ‖ utf8(key))   no separator, no weights
//
// Scores compare as 32 unsigned bytes, lexicographically; the higher wins. On equal scores the
// node id that is larger in UTF-8 byte order wins (Go's string comparison, which is also code
// point order, and not JavaScript's `<`, which compares UTF-16 code units).

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/** A node id with its score for one key. */
export interface HrwCandidate {
  readonly nodeId: string;
  readonly score: Uint8Array;
}

// A lone surrogate has no UTF-8 encoding: Node would hash U+FFFD in its place, so two
// different ids could hash alike, and Go (which hashes the raw bytes) would disagree.
const loneSurrogate = /\p{Cs}/u;

function checkId(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`HRW ${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  if (loneSurrogate.test(value)) {
    throw new TypeError(`HRW ${what} is not well-formed Unicode (it has a lone surrogate)`);
  }
}

/** SHA-256(utf8(nodeId) ‖ utf8(key)): the 32-byte score of `nodeId` for `key`. */
export function hrwScore(nodeId: string, key: string): Uint8Array {
  checkId(nodeId, 'node id');
  checkId(key, 'key');
  return hashOf(nodeId, key);
}

function hashOf(nodeId: string, key: string): Uint8Array {
  return createHash('sha256').update(nodeId, 'utf8').update(key, 'utf8').digest();
}

/** Byte-lexicographic order of two scores: negative when `a` is lower, 0 when equal. */
export function compareScores(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Order of two well-formed strings by their UTF-8 bytes, without encoding them. UTF-8 byte
 * order is code point order; UTF-16 code unit order differs from it only where a surrogate
 * (part of a code point above U+FFFF) meets a unit in U+E000..U+FFFF, so at the first
 * differing unit surrogates are moved above that range before comparing.
 */
export function compareNodeIds(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrderUnit(x) - codePointOrderUnit(y);
  }
  return a.length - b.length;
}

function codePointOrderUnit(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/**
 * HRW order of two candidates, ascending: negative when `a` ranks below `b`. The higher score
 * ranks above; on equal scores the larger node id (UTF-8 byte order) ranks above.
 */
export function compareCandidates(a: HrwCandidate, b: HrwCandidate): number {
  return compareScores(a.score, b.score) || compareNodeIds(a.nodeId, b.nodeId);
}

/** The distinct, checked node ids, in input order (a node listed twice is one node). */
function distinctNodes(nodes: readonly string[]): string[] {
  if (!Array.isArray(nodes)) throw new TypeError('HRW nodes must be an array of node ids');
  const seen = new Set<string>();
  for (const nodeId of nodes) {
    checkId(nodeId, 'node id');
    seen.add(nodeId);
  }
  return [...seen];
}

/** Every distinct node, best first, for `key`. */
export function hrwRank(nodes: readonly string[], key: string): string[] {
  checkId(key, 'key');
  const candidates = distinctNodes(nodes).map((nodeId) => ({ nodeId, score: hashOf(nodeId, key) }));
  return candidates.sort((a, b) => compareCandidates(b, a)).map((c) => c.nodeId);
}

/**
 * The best `k` distinct nodes for `key`, best first: the same nodes, in the same order, as the
 * first `k` of `hrwRank`, found with a size-k heap in O(n log k). k ≤ 0 gives []; a k above
 * the node count gives every node.
 */
export function hrwTopK(nodes: readonly string[], key: string, k: number): string[] {
  checkId(key, 'key');
  if (typeof k !== 'number' || Number.isNaN(k)) throw new TypeError('HRW k must be a number');
  if (!Number.isInteger(k) && Math.abs(k) !== Infinity)
    throw new RangeError(`HRW k must be an integer, got ${k}`);
  const distinct = distinctNodes(nodes);
  const size = Math.min(Math.max(k, 0), distinct.length);
  if (size === 0) return [];

  // A min-heap of the best `size` seen so far: the root is the weakest, the one to evict.
  const heap: HrwCandidate[] = [];
  for (const nodeId of distinct) {
    const candidate = { nodeId, score: hashOf(nodeId, key) };
    if (heap.length < size) {
      heap.push(candidate);
      siftUp(heap, heap.length - 1);
    } else if (compareCandidates(candidate, heap[0] as HrwCandidate) > 0) {
      heap[0] = candidate;
      siftDown(heap, 0, heap.length);
    }
  }

  // Heap-sort in place: popping the weakest to the back leaves the array best first.
  for (let end = heap.length - 1; end > 0; end--) {
    swap(heap, 0, end);
    siftDown(heap, 0, end);
  }
  return heap.map((c) => c.nodeId);
}

/** The index of `nodeId` in `hrwRank(nodes, key)`, or −1 when it is not one of `nodes`. */
export function rankOf(nodes: readonly string[], key: string, nodeId: string): number {
  checkId(key, 'key');
  checkId(nodeId, 'node id');
  const distinct = distinctNodes(nodes);
  if (!distinct.includes(nodeId)) return -1;
  // Its rank is how many nodes outrank it; no sort needed.
  const ownScore = hashOf(nodeId, key);
  let above = 0;
  for (const other of distinct) {
    if (other === nodeId) continue;
    const order = compareScores(hashOf(other, key), ownScore) || compareNodeIds(other, nodeId);
    if (order > 0) above++;
  }
  return above;
}

function siftUp(heap: HrwCandidate[], index: number): void {
  let child = index;
  while (child > 0) {
    const parent = (child - 1) >> 1;
    if (compareCandidates(heap[child] as HrwCandidate, heap[parent] as HrwCandidate) >= 0) return;
    swap(heap, child, parent);
    child = parent;
  }
}

function siftDown(heap: HrwCandidate[], index: number, end: number): void {
  let parent = index;
  for (;;) {
    const left = 2 * parent + 1;
    if (left >= end) return;
    const right = left + 1;
    let weaker = left;
    if (right < end && compareCandidates(heap[right] as HrwCandidate, heap[left] as HrwCandidate) < 0)
      weaker = right;
    if (compareCandidates(heap[weaker] as HrwCandidate, heap[parent] as HrwCandidate) >= 0) return;
    swap(heap, parent, weaker);
    parent = weaker;
  }
}

function swap(heap: HrwCandidate[], i: number, j: number): void {
  const held = heap[i] as HrwCandidate;
  heap[i] = heap[j] as HrwCandidate;
  heap[j] = held;
}
