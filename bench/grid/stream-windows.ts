// Stream throughput against the credit window: how many 128 B items per second one stream
// carries over loopback for windows of 1 to 256 items, in each direction, with the grid suite's
// two processes (the bench node and the server node of server.ts, compiled grid). It is how
// the default windows in docs/grid.md (Streams) were chosen.
//
//   npm run build && node --expose-gc --import tsx bench/grid/stream-windows.ts [--rounds N]
//
// - out: the server's handler sends `itemsPerStream` items; the caller reads them with
//   `outCapacity` = window (its response window).
// - in: the caller sends `itemsPerStream` items, awaiting each send, to a handler that reads
//   them with `inCapacity` = window (its input window), then answers with the count.
// Each window is timed over several rounds, the windows in a different order each round so
// that drift hits all alike; the table gives the median and the spread (rsd).

import { parseArgs } from 'node:util';

import { seededBytes } from '../seeded-bytes.ts';
import { SharedGridBench, type GridBench } from './fixture.ts';
import { encodeItemsRequest, GridHandler, sinkWindows } from './workload.ts';
import type { GridConnection } from '../../src/grid/index.ts';

const itemBytes = 128;
const itemsPerStream = 5_000;
const item = seededBytes(itemBytes, 0x17e4);
const itemsRequest = encodeItemsRequest(itemsPerStream, item);

/** Items per second of one stream the handler writes and the caller reads. */
async function outward(connection: GridConnection, window: number): Promise<number> {
  const start = performance.now();
  let received = 0;
  for await (const _item of connection.openStream(GridHandler.Items, {
    initial: itemsRequest,
    outCapacity: window,
  })) {
    received += 1;
  }
  const seconds = (performance.now() - start) / 1_000;
  if (received !== itemsPerStream) throw new Error(`out, window ${window}: ${received} items`);
  return received / seconds;
}

/** Items per second of one stream the caller writes and the handler reads. */
async function inward(
  connection: GridConnection,
  sinkSubroutes: Map<number, Uint8Array>,
  window: number,
): Promise<number> {
  const start = performance.now();
  const stream = connection.openStream(GridHandler.Sink, {
    outCapacity: 1,
    subroute: sinkSubroutes.get(window),
  });
  for (let i = 0; i < itemsPerStream; i++) await stream.send(item);
  stream.end();
  let count = -1;
  for await (const reply of stream) count = Buffer.from(reply).readUInt32BE(0);
  const seconds = (performance.now() - start) / 1_000;
  if (count !== itemsPerStream) throw new Error(`in, window ${window}: the handler read ${count} items`);
  return itemsPerStream / seconds;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function rsd(values: readonly number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
  const rounds = Number(values.rounds);
  const { subrouteId } = await import('../../src/grid/subroute.ts');
  const sinkSubroutes = new Map(sinkWindows.map((w) => [w, subrouteId(GridHandler.Sink, `window/${w}`)]));
  const shared = new SharedGridBench();
  const bench: GridBench = await shared.acquire();
  try {
    const connection = bench.grid;
    const out = new Map<number, number[]>(sinkWindows.map((w) => [w, []]));
    const into = new Map<number, number[]>(sinkWindows.map((w) => [w, []]));
    // Warm-up: the JIT sees every path before anything counts.
    for (const window of sinkWindows) {
      await outward(connection, window);
      await inward(connection, sinkSubroutes, window);
    }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [...sinkWindows] : [...sinkWindows].reverse();
      for (const window of order) {
        globalThis.gc?.();
        out.get(window)?.push(await outward(connection, window));
        globalThis.gc?.();
        into.get(window)?.push(await inward(connection, sinkSubroutes, window));
      }
      console.error(`round ${round + 1} of ${rounds} done`);
    }
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;
    const base = { out: median(out.get(1) ?? []), in: median(into.get(1) ?? []) };
    console.log(`${itemBytes} B items, ${itemsPerStream} per stream, ${rounds} rounds, median (rsd)`);
    console.log(
      '| window | out: items/s (handler → caller) | × window 1 | in: items/s (caller → handler) | × window 1 |',
    );
    console.log(
      '| -----: | ------------------------------: | ---------: | -----------------------------: | ---------: |',
    );
    for (const window of sinkWindows) {
      const o = out.get(window) ?? [];
      const i = into.get(window) ?? [];
      console.log(
        `| ${window} | ${fmt(median(o))} (${pct(rsd(o))}) | ${(median(o) / base.out).toFixed(1)}× | ${fmt(median(i))} (${pct(rsd(i))}) | ${(median(i) / base.in).toFixed(1)}× |`,
      );
    }
  } finally {
    shared.release();
  }
}

await main();
