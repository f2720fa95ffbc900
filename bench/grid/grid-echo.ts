// Ours: the workloads served and called over a weft grid connection, the way an application
// would use the grid (no shortcuts past its public API).

import type { GridConnection, GridStream, Manager } from '../../src/grid/index.ts';
import { decodeItemsRequest, GridHandler, makeItem, sinkWindows } from './workload.ts';

/** Responses buffered per stream on the caller's side: the handler may run this far ahead. */
export const streamOutCapacity = 64;

/** Registers the echo, items and idle handlers; returns how many idle streams are being served. */
export function registerGridServers(manager: Manager): { idleStreams(): number } {
  let idle = 0;
  manager.registerSingle(GridHandler.Echo, (payload) => payload);
  manager.registerStream(GridHandler.Items, {
    inCapacity: 0,
    handle: async ({ initial, send }) => {
      const { count, template } = decodeItemsRequest(initial);
      for (let i = 0; i < count; i++) await send(makeItem(template, i));
    },
  });
  manager.registerStream(GridHandler.Idle, {
    inCapacity: 0,
    handle: async ({ initial, send, signal }) => {
      idle += 1;
      try {
        await send(initial ?? new Uint8Array(0));
        // Open until the caller cancels (or the connection drops).
        await new Promise((resolve) => {
          if (signal.aborted) resolve(undefined);
          else signal.addEventListener('abort', resolve, { once: true });
        });
      } finally {
        idle -= 1;
      }
    },
  });
  for (const window of sinkWindows) {
    manager.registerStream(
      GridHandler.Sink,
      {
        inCapacity: window,
        handle: async ({ requests, send }) => {
          let count = 0;
          for await (const _item of requests) count += 1;
          const reply = Buffer.alloc(4);
          reply.writeUInt32BE(count);
          await send(reply);
        },
      },
      { subroute: `window/${window}` },
    );
  }
  return { idleStreams: () => idle };
}

export function gridEcho(connection: GridConnection, payload: Uint8Array): Promise<Uint8Array | undefined> {
  return connection.request(GridHandler.Echo, payload);
}

/** Reads a whole items stream; `onItem` sees each item (the check keeps them, timing does not). */
export async function gridItems(
  connection: GridConnection,
  request: Uint8Array,
  onItem?: (item: Uint8Array) => void,
): Promise<number> {
  const stream = connection.openStream(GridHandler.Items, {
    initial: request,
    outCapacity: streamOutCapacity,
  });
  let received = 0;
  for await (const item of stream) {
    received += 1;
    onItem?.(item);
  }
  return received;
}

/** Opens an idle stream; resolves with it once its first item (the echoed initial) arrived. */
export async function openGridIdle(
  connection: GridConnection,
  initial: Uint8Array,
): Promise<{ readonly stream: GridStream; readonly first: Uint8Array }> {
  const stream = connection.openStream(GridHandler.Idle, { initial, outCapacity: 1 });
  const first = await stream[Symbol.asyncIterator]().next();
  if (first.done === true) throw new Error(`idle stream ${stream.muxId} ended before its first item`);
  return { stream, first: first.value };
}
