// A slow origin for the end-to-end tests: a TCP proxy on 127.0.0.1 that passes requests to a
// real registry untouched and paces every response at a fixed rate per connection. A layer of a
// few MB then takes seconds to fetch, long enough to kill a node in the middle of it.
//
// Pacing works on slices of at most `sliceBytes`, and the pacer holds at most one chunk of the
// registry's output at a time (backpressure does the rest), so memory stays bounded whatever
// the rate.

import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ThrottleProxy {
  /** http://127.0.0.1:<port>, to use in place of the registry's own URL. */
  readonly url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Stops listening and cuts every connection. Safe to call twice. */
  close(): Promise<void>;
}

const sliceBytes = 16 * 1024;

/** Proxies 127.0.0.1:<new port> to `target` (`http://host:port`), `bytesPerSecond` per response stream. */
export async function startThrottleProxy(target: string, bytesPerSecond: number): Promise<ThrottleProxy> {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
    throw new RangeError(`bytesPerSecond must be positive, got ${bytesPerSecond}`);
  }
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(Number(port), hostname);
    const pacer = new Pacer(bytesPerSecond);
    sockets.add(client).add(upstream);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
      pacer.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const stream of [client, upstream, pacer]) stream.once('error', cut).once('close', cut);
    client.pipe(upstream);
    upstream.pipe(pacer).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port: ownPort } = server.address() as net.AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${ownPort}`,
    connections: () => accepted,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const socket of sockets) socket.destroy();
      })),
  };
}

/** Passes bytes through at `bytesPerSecond`, slice by slice. */
class Pacer extends Transform {
  readonly #bytesPerSecond: number;
  /** When the next slice may leave (performance.now() time). */
  #nextAt = 0;

  constructor(bytesPerSecond: number) {
    super({ highWaterMark: sliceBytes });
    this.#bytesPerSecond = bytesPerSecond;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#pace(chunk).then(
      () => {
        done();
      },
      (error: unknown) => {
        done(error as Error);
      },
    );
  }

  async #pace(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length && !this.destroyed; offset += sliceBytes) {
      const slice = chunk.subarray(offset, offset + sliceBytes);
      const now = performance.now();
      this.#nextAt = Math.max(this.#nextAt, now);
      if (this.#nextAt > now) await sleep(this.#nextAt - now);
      this.push(slice);
      this.#nextAt += (slice.length * 1000) / this.#bytesPerSecond;
    }
  }
}
