// The hub's gRPC surface: generated messages round-trip, and HubService.Process built by hand
// from them talks to a real grpc-js client over loopback, refusing undecodable bytes cleanly.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';

import {
  DataPacketSchema,
  ProcessRequestSchema,
  ProcessResponseSchema,
  type ProcessResponse,
} from '../../src/gen/transport/v1/hub_pb.ts';
import { FlowControlSignal } from '../../src/gen/transport/v1/transport_pb.ts';
import { grpcStatusOf } from '../../src/hub/wire/errors.ts';
import { isHeartbeat, newHeartbeatPacket } from '../../src/hub/wire/heartbeat.ts';
import {
  HUB_MAX_MESSAGE_BYTES,
  HUB_PROCESS_PATH,
  HubServiceClientConstructor,
  hubChannelOptions,
  hubServiceDefinition,
  UndecodableRequest,
  type IncomingRequest,
} from '../../src/hub/wire/service.ts';
import { checkProcessRequest } from '../../src/hub/wire/validate.ts';

function samplePacketRequest() {
  return create(ProcessRequestSchema, {
    packet: {
      metadata: { 'trace-id': 'abc' },
      payload: { text: 'hello', n: 3, nested: { ok: true, list: [1, 'two', null] } },
      inputs: { mode: 'object' },
      transports: [{ name: 'lk', kind: 'livekit', mode: 'hot', typedConfig: { transportRef: 'tr' } }],
      frame: { case: 'binary', value: { payload: new Uint8Array([1, 2, 3]), mimeType: 'a/b' } },
      envelope: { streamId: 's1', sequence: 18_446_744_073_709_551_615n, partition: 'p' },
    },
    flow: {
      ack: 7n,
      creditsMessages: 10,
      creditsBytes: 4096,
      partitionAcks: [{ partition: 'p', ack: 6n }],
      signal: FlowControlSignal.PAUSE,
    },
  });
}

describe('generated transport.v1 messages', () => {
  test('a request with every field set survives encode and decode unchanged', () => {
    const request = samplePacketRequest();
    const decoded = fromBinary(ProcessRequestSchema, toBinary(ProcessRequestSchema, request));
    assert.deepEqual(decoded, request);
    assert.equal(decoded.packet?.envelope?.sequence, 18_446_744_073_709_551_615n);
    assert.equal(decoded.flow?.signal, FlowControlSignal.PAUSE);
  });

  test('field numbers match the published wire: packet=1, flow=2, envelope.sequence=2', () => {
    const bytes = toBinary(ProcessRequestSchema, create(ProcessRequestSchema, { flow: { ack: 1n } }));
    // tag (2 << 3 | 2) = 0x12, length 2, then ack: tag (1 << 3 | 0) = 0x08, value 1.
    assert.deepEqual([...bytes], [0x12, 0x02, 0x08, 0x01]);
  });

  test('a heartbeat is recognised only with the marker and an empty payload', () => {
    const beat = newHeartbeatPacket();
    assert.equal(isHeartbeat(beat), true);
    assert.notEqual(newHeartbeatPacket(), beat, 'each call makes a new packet');
    const withPayload = create(DataPacketSchema, { ...beat, payload: { x: 1 } });
    assert.equal(isHeartbeat(withPayload), false);
    assert.equal(isHeartbeat(create(DataPacketSchema, { metadata: { 'bubu-heartbeat': 'yes' } })), false);
  });
});

describe('HubService.Process over loopback', () => {
  let server: Server;
  let address: string;
  const received: IncomingRequest[] = [];

  before(async () => {
    server = new Server(hubChannelOptions);
    server.addService(hubServiceDefinition, {
      process: (call: ServerDuplexStream<IncomingRequest, ProcessResponse>) => {
        call.on('data', (request: IncomingRequest) => {
          received.push(request);
          if (request instanceof UndecodableRequest) {
            call.emit('error', grpcStatusOf(request.error));
            return;
          }
          const check = checkProcessRequest(request);
          if (!check.ok) {
            call.emit('error', grpcStatusOf(check.problem));
            return;
          }
          call.write(
            create(ProcessResponseSchema, {
              packet: request.packet,
              flow: { ack: request.packet?.envelope?.sequence ?? 0n },
            }),
          );
        });
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => {
        if (error === null) resolve(bound);
        else reject(error);
      });
    });
    address = `127.0.0.1:${port}`;
  });

  after(() => {
    server.forceShutdown();
  });

  function callEnd(stream: NodeJS.EventEmitter): Promise<ServiceError | undefined> {
    return new Promise((resolve) => {
      stream.on('error', (error: ServiceError) => {
        resolve(error);
      });
      stream.on('status', (s: { code: status }) => {
        if (s.code === status.OK) resolve(undefined);
      });
    });
  }

  test('a client and server exchange a request and its response', async () => {
    const client = new HubServiceClientConstructor(address, credentials.createInsecure(), hubChannelOptions);
    try {
      const metadata = new Metadata();
      metadata.set('storyrun-name', 'run-1');
      const call = client.process(metadata);
      const responses: ProcessResponse[] = [];
      call.on('data', (r: ProcessResponse) => responses.push(r));
      const ended = callEnd(call);
      call.write(samplePacketRequest());
      call.end();
      assert.equal(await ended, undefined);
      assert.equal(responses.length, 1);
      assert.deepEqual(responses[0]?.packet, samplePacketRequest().packet);
      assert.equal(responses[0]?.flow?.ack, 18_446_744_073_709_551_615n);
      assert.equal(HUB_PROCESS_PATH, '/transport.v1.HubService/Process');
    } finally {
      client.close();
    }
  });

  test('bytes that are not a ProcessRequest end the call with INVALID_ARGUMENT', async () => {
    const raw = new Client(address, credentials.createInsecure());
    try {
      const call = raw.makeBidiStreamRequest(
        HUB_PROCESS_PATH,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        new Metadata(),
      );
      const ended = callEnd(call);
      // Field 1, length-delimited, says 5 bytes follow but only 1 does.
      call.write(Buffer.from([0x0a, 0x05, 0x01]));
      const error = await ended;
      assert.equal(error?.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /not a valid transport\.v1\.ProcessRequest/);
      assert.ok(received.some((r) => r instanceof UndecodableRequest));
    } finally {
      raw.close();
    }
  });

  test('a request breaking a wire rule ends the call with INVALID_ARGUMENT naming the field', async () => {
    const client = new HubServiceClientConstructor(address, credentials.createInsecure());
    try {
      const call = client.process();
      const ended = callEnd(call);
      call.write(create(ProcessRequestSchema, { packet: { envelope: { chunkId: 'c' } } }));
      const error = await ended;
      assert.equal(error?.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /packet\.envelope/);
    } finally {
      client.close();
    }
  });

  test('a message over 10 MiB is refused with RESOURCE_EXHAUSTED', async () => {
    const raw = new Client(address, credentials.createInsecure());
    try {
      const call = raw.makeBidiStreamRequest(
        HUB_PROCESS_PATH,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        new Metadata(),
      );
      const ended = callEnd(call);
      const big = create(ProcessRequestSchema, {
        packet: {
          frame: {
            case: 'binary',
            value: { payload: new Uint8Array(HUB_MAX_MESSAGE_BYTES + 1) },
          },
        },
      });
      call.write(Buffer.from(toBinary(ProcessRequestSchema, big)));
      const error = await ended;
      assert.equal(error?.code, status.RESOURCE_EXHAUSTED);
    } finally {
      raw.close();
    }
  });
});
