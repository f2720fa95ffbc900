// The bare grpc-js peer of the at-most-once case: a server that only forwards. One client opens
// the `out` stream of a pair, another writes 1 KiB messages into the pair's `in` stream, and the
// server writes each to the `out` stream as it arrives (pausing `in` while `out` is full, as a
// tuned forwarder does). No protobuf, no routing, no acks: the ceiling of a gRPC path on Node.

import { once } from 'node:events';

import * as grpc from '@grpc/grpc-js';

import { Countdown, indexOf, payloadOf } from './workload.ts';

const passBytes = (bytes: Buffer): Buffer => bytes;

const pipe: grpc.MethodDefinition<Buffer, Buffer> = {
  path: '/weft.bench.Forward/Pipe',
  requestStream: true,
  responseStream: true,
  requestSerialize: passBytes,
  requestDeserialize: passBytes,
  responseSerialize: passBytes,
  responseDeserialize: passBytes,
};

const forwardService = { pipe } satisfies grpc.ServiceDefinition;

type Duplex = grpc.ServerDuplexStream<Buffer, Buffer>;

/** Adds the forwarder to `server`: `in` streams of a pair go to its `out` stream. */
export function addForwardService(server: grpc.Server): void {
  const outs = new Map<string, Duplex>();
  server.addService(forwardService, {
    pipe: (call: Duplex) => {
      const pair = String(call.metadata.get('pair')[0] ?? '');
      const role = call.metadata.get('role')[0];
      call.on('error', () => undefined);
      if (role === 'out') {
        outs.set(pair, call);
        call.once('cancelled', () => outs.delete(pair));
        // Tells the client the pair is ready to carry messages.
        call.sendMetadata(new grpc.Metadata());
        return;
      }
      const out = outs.get(pair);
      if (out === undefined) {
        call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: `no out stream for ${pair}` });
        return;
      }
      call.on('data', (message: Buffer) => {
        if (!out.write(message)) {
          call.pause();
          out.once('drain', () => call.resume());
        }
      });
      call.once('end', () => call.end());
    },
  });
}

const Client = grpc.makeGenericClientConstructor(forwardService, 'Forward');

/** Both clients of one pair: writes into `in`, counts what `out` receives. */
export class ForwardPair {
  readonly #client: grpc.Client;
  readonly #in: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #out: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #received = new Countdown();
  #sent = 0;
  #outOfOrder = 0;
  #failure: Error | undefined;

  private constructor(
    client: grpc.Client,
    input: grpc.ClientDuplexStream<Buffer, Buffer>,
    out: grpc.ClientDuplexStream<Buffer, Buffer>,
  ) {
    this.#client = client;
    this.#in = input;
    this.#out = out;
    for (const call of [input, out]) {
      call.on('error', (error: Error) => {
        this.#failure ??= error;
      });
    }
    out.on('data', (message: Buffer) => {
      if (indexOf(message) !== this.#received.count) this.#outOfOrder++;
      this.#received.add();
    });
  }

  static async open(address: string, pair: string): Promise<ForwardPair> {
    const client = new Client(address, grpc.credentials.createInsecure());
    const call = (role: string): grpc.ClientDuplexStream<Buffer, Buffer> => {
      const metadata = new grpc.Metadata();
      metadata.set('pair', pair);
      metadata.set('role', role);
      return client.makeBidiStreamRequest(pipe.path, passBytes, passBytes, metadata);
    };
    const out = call('out');
    await once(out, 'metadata');
    return new ForwardPair(client, call('in'), out);
  }

  /** Writes `count` messages into `in` and resolves once `out` has received them all. */
  async deliver(count: number): Promise<void> {
    const target = this.#sent + count;
    while (this.#sent < target) {
      if (!this.#in.write(Buffer.from(payloadOf(this.#sent++)))) await once(this.#in, 'drain');
    }
    await this.#received.reach(target, 'grpc-js forward');
  }

  /** Throws if a stream failed or a message came out of order. */
  check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#outOfOrder > 0) throw new Error(`${this.#outOfOrder} forwarded messages out of order`);
  }

  close(): void {
    this.#in.end();
    this.#out.cancel();
    this.#client.close();
  }
}
