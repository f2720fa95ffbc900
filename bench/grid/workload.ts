// What the grid suite sends and what it expects back, shared by the bench process and its
// server process so both sides of every peer agree on the bytes.
//
// Every server (grid, grpc-js, ws) serves the same three workloads:
// - echo: the reply is the request's bytes;
// - items: the request is `count` (uint32 BE) followed by a template item, and the reply is a
//   one-way stream of `count` items, each the template with its index written over the first
//   four bytes, so a check can tell a lost, repeated or reordered item from a good one;
// - idle: a stream that sends its request back once, then stays open until the caller cancels.
// The grid also serves `sink` (stream-windows.ts only): a stream that reads its input to the
// end and answers with the count (uint32 BE), on one subroute per input window.

import assert from 'node:assert/strict';

/** Grid handler ids the server process registers (64 is the first id free for applications). */
export const GridHandler = { Echo: 64, Items: 65, Idle: 66, Sink: 67 } as const;

/** Input windows the sink is served with, each on subroute `window/<n>`. */
export const sinkWindows = [1, 8, 16, 32, 64, 128, 256] as const;

/** Cluster secret of the two-node bench grid; both processes are ours, so a constant is fine. */
export const gridSecret = 'weft-bench-grid-cluster-secret';

const countBytes = 4;

export function encodeItemsRequest(count: number, template: Uint8Array): Buffer {
  if (template.length < countBytes) throw new RangeError(`an item is at least ${countBytes} bytes`);
  const request = Buffer.allocUnsafe(countBytes + template.length);
  request.writeUInt32BE(count, 0);
  request.set(template, countBytes);
  return request;
}

export interface ItemsRequest {
  readonly count: number;
  readonly template: Buffer;
}

export function decodeItemsRequest(request: Uint8Array | undefined): ItemsRequest {
  if (request === undefined || request.length < 2 * countBytes) throw new RangeError('bad items request');
  const bytes = Buffer.from(request.buffer, request.byteOffset, request.byteLength);
  return { count: bytes.readUInt32BE(0), template: bytes.subarray(countBytes) };
}

/**
 * Item `index` of a stream: a fresh buffer, as an application producing items would have.
 * (Reusing one buffer would be unsafe with grpc-js, which writes items out later.)
 */
export function makeItem(template: Buffer, index: number): Buffer {
  const item = Buffer.allocUnsafe(template.length);
  template.copy(item);
  item.writeUInt32BE(index, 0);
  return item;
}

/** Throws unless `items` are exactly what `encodeItemsRequest(count, template)` asks for. */
export function assertItems(
  items: readonly Uint8Array[],
  count: number,
  template: Buffer,
  what: string,
): void {
  assert.equal(items.length, count, `${what}: item count`);
  items.forEach((item, index) => {
    assert.equal(Buffer.compare(item, makeItem(template, index)), 0, `${what}: item ${index} differs`);
  });
}

/** Throws unless `reply` holds the same bytes as `request`. */
export function assertEcho(reply: Uint8Array | undefined, request: Uint8Array, what: string): void {
  assert.ok(reply !== undefined, `${what}: no reply`);
  assert.equal(reply.length, request.length, `${what}: reply length`);
  assert.equal(Buffer.compare(reply, request), 0, `${what}: reply bytes differ`);
}
