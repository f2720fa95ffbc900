// Idle streams: streams that are open at both ends and carry nothing, as a node holding many
// subscriptions or watches would have. How much heap does each cost the caller's process and
// the handler's process, for the grid and for grpc-js?
//
// One measurement: full GCs in both processes and their heaps read; `count` streams opened on
// the one connection, each waiting for its first item (the echoed request) so that it is open
// at both ends; GCs and heaps again. Only the V8 heap is counted: grpc-js keeps part of each
// stream's state in nghttp2 (C++, outside the heap), which this leaves out in its favour.

import type { GridBench } from './fixture.ts';
import { openGridIdle } from './grid-echo.ts';
import { seededBytes } from '../seeded-bytes.ts';
import { assertEcho } from './workload.ts';

export type IdleKind = 'grid' | 'grpc';

export interface HeapPerStream {
  /** Heap bytes per stream in this (the caller's) process. */
  readonly clientBytes: number;
  /** Heap bytes per stream in the server (the handler's) process. */
  readonly serverBytes: number;
}

export interface OpenIdleStreams {
  readonly heap: HeapPerStream;
  /** Cancels every stream and waits until the server has let go of them all. */
  close(): Promise<void>;
}

/** One open idle stream, as the measurement holds it. */
interface IdleStream {
  readonly first: Uint8Array;
  cancel(): void;
}

const initial = seededBytes(16, 0x1d1e);
const releasePollMs = 20;
const releaseTimeoutMs = 30_000;

function open(bench: GridBench, kind: IdleKind): Promise<IdleStream> {
  if (kind === 'grid') {
    return openGridIdle(bench.grid, initial).then(({ stream, first }) => ({
      first,
      cancel: () => {
        stream.cancel();
      },
    }));
  }
  return bench.grpc.openIdle(initial).then(({ call, first }) => ({
    first,
    cancel: () => {
      call.cancel();
    },
  }));
}

function localHeapAfterGc(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

async function waitForServer(bench: GridBench, kind: IdleKind, expected: number): Promise<void> {
  const deadline = performance.now() + releaseTimeoutMs;
  for (;;) {
    const { idleStreams } = await bench.serverStats({ gc: false });
    if (idleStreams[kind] === expected) return;
    if (performance.now() > deadline) {
      throw new Error(`${kind}: the server serves ${idleStreams[kind]} idle streams, expected ${expected}`);
    }
    await new Promise((resolve) => setTimeout(resolve, releasePollMs));
  }
}

/** Opens `count` idle streams of `kind`, checks each echoed its request, and measures both heaps. */
export async function openIdleStreams(
  bench: GridBench,
  kind: IdleKind,
  count: number,
): Promise<OpenIdleStreams> {
  if (globalThis.gc === undefined) throw new Error('idle-stream memory needs --expose-gc (npm run bench)');
  const serverBefore = (await bench.serverStats({ gc: true })).heapUsedBytes;
  const clientBefore = localHeapAfterGc();
  const opened = await Promise.allSettled(Array.from({ length: count }, () => open(bench, kind)));
  const streams = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const close = async (): Promise<void> => {
    for (const stream of streams) stream.cancel();
    await waitForServer(bench, kind, 0);
  };
  try {
    const failed = opened.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    streams.forEach((stream, i) => {
      assertEcho(stream.first, initial, `${kind} idle stream ${i}`);
    });
    const serverAfter = await bench.serverStats({ gc: true });
    if (serverAfter.idleStreams[kind] !== count) {
      throw new Error(
        `${kind}: the server serves ${serverAfter.idleStreams[kind]} idle streams, not ${count}`,
      );
    }
    const clientAfter = localHeapAfterGc();
    const heap = {
      clientBytes: (clientAfter - clientBefore) / count,
      serverBytes: (serverAfter.heapUsedBytes - serverBefore) / count,
    };
    return { heap, close };
  } catch (error) {
    await close();
    throw error;
  }
}
