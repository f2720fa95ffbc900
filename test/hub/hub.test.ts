// The hub end to end over gRPC on loopback: connectors register for their step, a producer's
// packets reach the next steps in order, acks flow back, and bad registrations get their status.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { create } from '@bufbuild/protobuf';
import { type ClientDuplexStream, credentials, Metadata, status } from '@grpc/grpc-js';

import {
  DataPacketSchema,
  type ProcessRequest,
  ProcessRequestSchema,
  type ProcessResponse,
} from '../../src/gen/transport/v1/hub_pb.ts';
import {
  BinaryFrameSchema,
  FlowControlSchema,
  StreamEnvelopeSchema,
} from '../../src/gen/transport/v1/transport_pb.ts';
import { MemoryCheckpointStore } from '../../src/hub/checkpoint/index.ts';
import { Hub } from '../../src/hub/hub.ts';
import { MemoryBlobStore } from '../../src/hub/offload/index.ts';
import { parseStory } from '../../src/hub/story/index.ts';
import { hubChannelOptions, HubServiceClientConstructor } from '../../src/hub/wire/service.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const story = parseStory(
  JSON.stringify({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: 'pipeline', namespace: 'media' },
    spec: {
      defaults: { delivery: { mode: 'at_least_once' } },
      steps: [
        { id: 'ingest' },
        { id: 'transcribe', needs: ['ingest'] },
        { id: 'publish', needs: ['transcribe'] },
      ],
    },
  }),
  { format: 'json' },
);

type Stream = ClientDuplexStream<ProcessRequest, ProcessResponse>;

async function startHub(t: TestContext): Promise<{ hub: Hub; address: string }> {
  const hub = new Hub({ stories: [story], clock: new FakeClock() });
  const port = await hub.listen({ port: 0 });
  t.after(() => hub.close());
  return { hub, address: `127.0.0.1:${port}` };
}

function connect(t: TestContext, address: string, fields: Record<string, string>): Stream {
  const client = new HubServiceClientConstructor(address, credentials.createInsecure(), hubChannelOptions);
  t.after(() => {
    client.close();
  });
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(fields)) metadata.set(key, value);
  const call = client.process(metadata);
  call.on('error', () => undefined);
  return call;
}

function register(step: string, generation?: number): Record<string, string> {
  return {
    'storyrun-name': 'run-1',
    'storyrun-namespace': 'media',
    'current-step-id': step,
    'story-name': 'pipeline',
    ...(generation === undefined ? {} : { 'connector-generation': String(generation) }),
  };
}

function packet(sequence: bigint, text: string): ProcessRequest {
  return create(ProcessRequestSchema, {
    packet: create(DataPacketSchema, {
      frame: {
        case: 'binary',
        value: create(BinaryFrameSchema, { payload: Buffer.from(text), mimeType: 'text/plain' }),
      },
      envelope: create(StreamEnvelopeSchema, { sequence }),
    }),
  });
}

/** Collects what a stream receives: packets (as text) and flow messages. */
function collect(call: Stream): { texts: string[]; sequences: bigint[]; acks: bigint[] } {
  const seen = { texts: [] as string[], sequences: [] as bigint[], acks: [] as bigint[] };
  call.on('data', (response: ProcessResponse) => {
    const frame = response.packet?.frame;
    if (frame?.case === 'binary') {
      seen.texts.push(Buffer.from(frame.value.payload).toString());
      seen.sequences.push(response.packet?.envelope?.sequence ?? 0n);
    }
    if (response.flow !== undefined && response.flow.ack > 0n) seen.acks.push(response.flow.ack);
  });
  return seen;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function statusOf(call: Stream): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    call.on('error', (error: { code: number; details: string }) => {
      resolve({ code: error.code, details: error.details });
    });
  });
}

describe('hub over gRPC', () => {
  test('packets reach the next step in order, each step numbers its own, and acks flow back to the producer', async (t) => {
    const { hub, address } = await startHub(t);
    const transcribe = connect(t, address, register('transcribe', 1));
    const received = collect(transcribe);
    await until(() => hub.stats().connections === 1, 'transcribe registered');
    const ingest = connect(t, address, register('ingest', 1));
    const producer = collect(ingest);

    for (let i = 1; i <= 5; i++) ingest.write(packet(BigInt(100 + i), `p${i}`));
    await until(() => received.texts.length === 5, 'five packets at transcribe');
    assert.deepEqual(received.texts, ['p1', 'p2', 'p3', 'p4', 'p5']);
    assert.deepEqual(received.sequences, [1n, 2n, 3n, 4n, 5n], 'the step has its own sequence space');
    assert.deepEqual(producer.acks, [], 'nothing is acknowledged before the consumer acks');

    transcribe.write(create(ProcessRequestSchema, { flow: create(FlowControlSchema, { ack: 3n }) }));
    await until(() => producer.acks.at(-1) === 103n, 'the producer acked up to its 3rd packet');
    transcribe.write(create(ProcessRequestSchema, { flow: create(FlowControlSchema, { ack: 5n }) }));
    await until(() => producer.acks.at(-1) === 105n, 'the producer acked up to its 5th packet');
  });

  test('packets sent before the next step connects are buffered, then delivered in order', async (t) => {
    const { hub, address } = await startHub(t);
    const ingest = connect(t, address, register('ingest', 1));
    for (let i = 1; i <= 3; i++) ingest.write(packet(BigInt(i), `early-${i}`));
    await until(() => hub.stats().streams.buffered === 3, 'three buffered');
    const transcribe = connect(t, address, register('transcribe', 1));
    const received = collect(transcribe);
    await until(() => received.texts.length === 3, 'the buffer flushed');
    assert.deepEqual(received.texts, ['early-1', 'early-2', 'early-3']);
  });

  test('a newer generation takes over, receives what the old one left unacked, and the old stream ends', async (t) => {
    const { hub, address } = await startHub(t);
    const blue = connect(t, address, register('transcribe', 1));
    const blueSeen = collect(blue);
    await until(() => hub.stats().connections === 1, 'blue registered');
    const ingest = connect(t, address, register('ingest', 1));
    const producer = collect(ingest);
    for (let i = 1; i <= 4; i++) ingest.write(packet(BigInt(i), `m${i}`));
    await until(() => blueSeen.texts.length === 4, 'blue has all four');
    blue.write(create(ProcessRequestSchema, { flow: create(FlowControlSchema, { ack: 2n }) }));
    await until(() => producer.acks.at(-1) === 2n, 'blue’s ack reached the producer');

    const blueEnded = new Promise<void>((resolve) => blue.on('end', resolve));
    const green = connect(t, address, register('transcribe', 2));
    const greenSeen = collect(green);
    await until(() => greenSeen.texts.length === 2, 'green has the replay');
    assert.deepEqual(greenSeen.texts, ['m3', 'm4'], 'only what blue had not acked, in order');
    await blueEnded;
    assert.equal(hub.stats().streams.activeStreams, 2, 'ingest and green: the count is exact');
  });

  test('bad registrations and unknown steps get their status; other connectors are unaffected', async (t) => {
    const { address } = await startHub(t);
    const healthy = connect(t, address, register('transcribe', 1));
    const healthySeen = collect(healthy);

    const cases: [Record<string, string>, number][] = [
      [{ 'storyrun-namespace': 'media', 'current-step-id': 'x' }, status.INVALID_ARGUMENT],
      [register('transcribe', 0), status.FAILED_PRECONDITION],
      [{ ...register('transcribe'), 'connector-generation': '2147483648' }, status.FAILED_PRECONDITION],
      [register('no-such-step', 1), status.NOT_FOUND],
      [{ ...register('ingest', 1), 'story-name': 'unknown', 'storyrun-name': 'other-run' }, status.NOT_FOUND],
    ];
    for (const [fields, code] of cases) {
      const call = connect(t, address, fields);
      const outcome = await statusOf(call);
      assert.equal(outcome.code, code, `${JSON.stringify(fields)}: ${outcome.details}`);
    }
    const ingest = connect(t, address, register('ingest', 1));
    ingest.write(packet(1n, 'still-fine'));
    await until(() => healthySeen.texts.length === 1, 'the healthy connector still gets packets');
  });

  test('a chunk over its budget ends that connector’s stream with its status', async (t) => {
    const { address } = await startHub(t);
    const ingest = connect(t, address, register('ingest', 1));
    const outcome = statusOf(ingest);
    ingest.write(
      create(ProcessRequestSchema, {
        packet: create(DataPacketSchema, {
          frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: Buffer.from('x') }) },
          envelope: create(StreamEnvelopeSchema, {
            streamId: 's',
            chunkId: 'c',
            chunkIndex: 5,
            chunkCount: 2,
          }),
        }),
      }),
    );
    assert.equal((await outcome).code, status.INVALID_ARGUMENT);
  });
});

describe('hub checkpoints', () => {
  test('a restarted hub replays from its checkpoint what the consumer never acknowledged', async (t) => {
    const store = new MemoryCheckpointStore();
    const clock = new FakeClock();
    const first = await Hub.open({ stories: [story], clock, checkpoints: store });
    const firstPort = await first.listen({ port: 0 });
    const consumer = connect(t, `127.0.0.1:${firstPort}`, register('transcribe', 1));
    const firstSeen = collect(consumer);
    await until(() => first.stats().connections === 1, 'consumer registered');
    const producer = connect(t, `127.0.0.1:${firstPort}`, register('ingest', 1));
    for (let i = 1; i <= 4; i++) producer.write(packet(BigInt(i), `kept-${i}`));
    await until(() => firstSeen.texts.length === 4, 'the consumer has all four');
    consumer.write(create(ProcessRequestSchema, { flow: create(FlowControlSchema, { ack: 1n }) }));
    await until(() => first.delivery('media/run-1/transcribe')?.stats().unacked === 3, 'one acknowledged');
    await clock.advanceAsync(1_000); // the checkpoint interval
    await until(() => first.checkpointStats()?.saves === 1, 'the checkpoint written');
    // The hub is gone without a goodbye: no close, its checkpoint is what is left.
    producer.cancel();
    consumer.cancel();
    t.after(() => first.close());

    const second = await Hub.open({ stories: [story], clock: new FakeClock(), checkpoints: store });
    const secondPort = await second.listen({ port: 0 });
    t.after(() => second.close());
    second.startRun('media', 'run-1', 'pipeline');
    const again = connect(t, `127.0.0.1:${secondPort}`, register('transcribe', 2));
    const againSeen = collect(again);
    await until(() => againSeen.texts.length === 3, 'the replay');
    assert.deepEqual(againSeen.texts, ['kept-2', 'kept-3', 'kept-4']);
    assert.deepEqual(againSeen.sequences, [2n, 3n, 4n], 'the same sequences as before the restart');
  });
});

describe('hub offload', () => {
  test('a payload over the threshold travels by reference; an inject step gets it inline; the blob goes once all settle', async (t) => {
    const fanOut = parseStory(
      JSON.stringify({
        apiVersion: 'weft.dev/v1',
        kind: 'Story',
        metadata: { name: 'fan-out', namespace: 'media' },
        spec: {
          steps: [
            { id: 'ingest', policy: { offload: { thresholdBytes: 16 } } },
            { id: 'inline', needs: ['ingest'], policy: { offload: { policy: 'inject' } } },
            { id: 'byref', needs: ['ingest'], policy: { offload: { policy: 'reference' } } },
          ],
        },
      }),
      { format: 'json' },
    );
    const blobs = new MemoryBlobStore();
    const hub = new Hub({ stories: [fanOut], clock: new FakeClock(), blobs });
    const port = await hub.listen({ port: 0 });
    t.after(() => hub.close());
    const address = `127.0.0.1:${port}`;
    const fields = (step: string): Record<string, string> => ({
      ...register(step, 1),
      'story-name': 'fan-out',
      'storyrun-name': 'run-2',
    });
    const inline = collect(connect(t, address, fields('inline')));
    const byref = connect(t, address, fields('byref'));
    const refs: string[] = [];
    byref.on('data', (response: ProcessResponse) => {
      const ref = response.packet?.metadata['weft-offloaded-ref'];
      if (ref !== undefined) refs.push(ref);
    });
    await until(() => hub.stats().connections === 2, 'both consumers registered');
    const producer = connect(t, address, fields('ingest'));
    const big = 'x'.repeat(64);
    producer.write(packet(0n, big));
    await until(() => inline.texts.length === 1 && refs.length === 1, 'both steps got the packet');
    assert.equal(inline.texts[0], big, 'the inject step gets the bytes inline');
    assert.match(
      refs[0] ?? '',
      /^weft-blob:\/\/sha256\/[0-9a-f]{64}$/,
      'the reference step gets a reference',
    );
    assert.equal(hub.stats().offloaded, 1);
    await until(() => blobs.stats().blobs === 0, 'the blob is deleted once both deliveries settled');
  });
});
