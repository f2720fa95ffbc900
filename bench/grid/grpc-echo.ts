// The grpc-js peer: the same workloads as a gRPC service, with payloads as raw bytes (the
// serializers pass Buffers through), so neither side pays for protobuf and the comparison is
// transport against transport. The client is a plain `grpc.Client` calling the service's
// paths, which is what a `makeGenericClientConstructor` client does underneath, minus its
// untyped method table.

import { once } from 'node:events';

import * as grpc from '@grpc/grpc-js';

import { decodeItemsRequest, makeItem } from './workload.ts';

const passBytes = (bytes: Buffer): Buffer => bytes;

function method(name: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/weft.bench.Echo/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: passBytes,
    requestDeserialize: passBytes,
    responseSerialize: passBytes,
    responseDeserialize: passBytes,
  };
}

export const echoService = {
  echo: method('Echo', false),
  items: method('Items', true),
  idle: method('Idle', true),
} satisfies grpc.ServiceDefinition;

/** Adds the echo service to `server`; returns how many idle streams are being served. */
export function addEchoService(server: grpc.Server): { idleStreams(): number } {
  let idle = 0;
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      callback(null, call.request);
    },
    items: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      streamItems(call).catch((error: unknown) => {
        call.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    },
    idle: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      idle += 1;
      call.once('cancelled', () => {
        idle -= 1;
      });
      call.write(call.request);
    },
  });
  return { idleStreams: () => idle };
}

async function streamItems(call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
  const { count, template } = decodeItemsRequest(call.request);
  // As a tuned server would: write until the stream's buffer is full, then wait for 'drain'.
  const cancelled = new AbortController();
  call.once('cancelled', () => {
    cancelled.abort();
  });
  for (let i = 0; i < count; i++) {
    if (call.cancelled) return;
    if (!call.write(makeItem(template, i))) {
      try {
        await once(call, 'drain', { signal: cancelled.signal });
      } catch (error) {
        if (cancelled.signal.aborted) return;
        throw error;
      }
    }
  }
  call.end();
}

export class GrpcEchoClient {
  readonly #client: grpc.Client;

  private constructor(client: grpc.Client) {
    this.#client = client;
  }

  /** One channel (one HTTP/2 connection) to `address`, ready for calls. */
  static async connect(address: string): Promise<GrpcEchoClient> {
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => {
      client.waitForReady(Date.now() + 10_000, (error) => {
        if (error === undefined) resolve();
        else reject(error);
      });
    });
    return new GrpcEchoClient(client);
  }

  echo(payload: Buffer): Promise<Buffer> {
    const { path, requestSerialize, responseDeserialize } = echoService.echo;
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(path, requestSerialize, responseDeserialize, payload, (error, reply) => {
        if (error !== null) reject(error);
        else if (reply === undefined) reject(new Error('grpc echo: no reply'));
        else resolve(reply);
      });
    });
  }

  /** Reads a whole items stream; `onItem` sees each item (the check keeps them, timing does not). */
  items(request: Buffer, onItem?: (item: Buffer) => void): Promise<number> {
    const { path, requestSerialize, responseDeserialize } = echoService.items;
    const call = this.#client.makeServerStreamRequest(path, requestSerialize, responseDeserialize, request);
    let received = 0;
    return new Promise((resolve, reject) => {
      call.on('data', (item: Buffer) => {
        received += 1;
        onItem?.(item);
      });
      call.once('end', () => {
        resolve(received);
      });
      call.once('error', reject);
    });
  }

  /** Opens an idle stream; resolves with it once its first item (the echoed request) arrived. */
  openIdle(
    request: Buffer,
  ): Promise<{ readonly call: grpc.ClientReadableStream<Buffer>; readonly first: Buffer }> {
    const { path, requestSerialize, responseDeserialize } = echoService.idle;
    const call = this.#client.makeServerStreamRequest(path, requestSerialize, responseDeserialize, request);
    // A cancelled call ends with a CANCELLED error; without a listener that would be thrown.
    call.on('error', () => undefined);
    return new Promise((resolve, reject) => {
      call.once('data', (first: Buffer) => {
        call.off('error', reject);
        resolve({ call, first });
      });
      call.once('error', reject);
    });
  }

  close(): void {
    this.#client.close();
  }
}
