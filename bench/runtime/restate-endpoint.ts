// The Restate peer's service endpoint: the virtual object `counter`, written with
// @restatedev/restate-sdk as its docs show, served over HTTP/2 (h2c) as the SDK's `serve` does.
// `add` reads `count`, adds one, writes it back and returns it; the shared handler `get` reads it,
// for the check. Restate runs calls to one key one at a time and sends the key's state with the
// call (eager state), so `add` costs no round trip to the server before it answers.
//
// Forked by restate-driver.ts inside the peer's network namespace; reports its port over IPC
// and exits when the driver disconnects.
//
// The SDK (1.17) calls `Promise.withResolvers`, which Node 20 lacks: it is filled in here before
// the SDK is loaded, which is why the SDK is imported dynamically.

import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

// Types only: erased, so they do not load the SDK before the fill-in below.
import type { ObjectContext, ObjectSharedContext } from '@restatedev/restate-sdk';

import { restateCounter, type EndpointReady } from './restate-messages.ts';

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

function withResolvers<T>(): Resolvers<T> {
  let resolve!: Resolvers<T>['resolve'];
  let reject!: Resolvers<T>['reject'];
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const promiseStatics = Promise as unknown as { withResolvers?: typeof withResolvers };
promiseStatics.withResolvers ??= withResolvers;

const restate = await import('@restatedev/restate-sdk');

const counter = restate.object({
  name: restateCounter.service,
  handlers: {
    add: async (context: ObjectContext): Promise<number> => {
      const count = ((await context.get<number>(restateCounter.state)) ?? 0) + 1;
      context.set(restateCounter.state, count);
      return count;
    },
    get: restate.handlers.object.shared(
      async (context: ObjectSharedContext): Promise<number> =>
        (await context.get<number>(restateCounter.state)) ?? 0,
    ),
  },
});

const server = http2.createServer(restate.createEndpointHandler({ services: [counter] }));
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    server.off('error', reject);
    resolve();
  });
});
process.once('disconnect', () => {
  server.close();
  process.exit(0);
});
const ready: EndpointReady = { type: 'ready', port: (server.address() as AddressInfo).port };
process.send?.(ready);
