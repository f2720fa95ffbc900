// Bad input from one connector ends that connector's call with its own gRPC status and nothing
// else: a healthy producer/consumer pair on the same hub keeps exchanging packets and acks after
// every bad case. Real gRPC over loopback, so waits are bounded on real time.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Client, type ClientDuplexStream, credentials, Metadata, status } from '@grpc/grpc-js';

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
import { Hub, type HubOptions } from '../../src/hub/hub.ts';
import { parseStory } from '../../src/hub/story/index.ts';
import {
  HUB_PROCESS_PATH,
  hubChannelOptions,
  HubServiceClientConstructor,
} from '../../src/hub/wire/service.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const WAIT_MS = 10_000;

const story = parseStory(
  JSON.stringify({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: 'pipeline', namespace: 'media' },
    spec: {
      defaults: { delivery: { mode: 'at_least_once' } },
      steps: [{ id: 'ingest' }, { id: 'transcribe', needs: ['ingest'] }],
    },
  }),
  { format: 'json' },
);

type Stream = ClientDuplexStream<ProcessRequest, ProcessResponse>;
type Fields = Record<string, string | string[]>;

interface Outcome {
  readonly code: number;
  readonly details: string;
}

async function startHub(t: TestContext, options: HubOptions = {}): Promise<{ hub: Hub; address: string }> {
  const hub = new Hub({ stories: [story], clock: new FakeClock(), ...options });
  const port = await hub.listen({ port: 0 });
  t.after(() => hub.close());
  return { hub, address: `127.0.0.1:${port}` };
}

function metadataOf(fields: Fields): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(fields)) {
    for (const one of Array.isArray(value) ? value : [value]) metadata.add(key, one);
  }
  return metadata;
}

function connect(t: TestContext, address: string, fields: Fields): Stream {
  const client = new HubServiceClientConstructor(address, credentials.createInsecure(), hubChannelOptions);
  t.after(() => {
    client.close();
  });
  const call = client.process(metadataOf(fields));
  call.on('error', () => undefined);
  return call;
}

/** Registration fields; bad cases use their own run so they never touch the healthy pair's keys. */
function register(step: string, generation: number | string, run = 'run-bad'): Fields {
  return {
    'storyrun-name': run,
    'storyrun-namespace': 'media',
    'current-step-id': step,
    'story-name': 'pipeline',
    'connector-generation': String(generation),
  };
}

function without(fields: Fields, key: string): Fields {
  return Object.fromEntries(Object.entries(fields).filter(([k]) => k !== key));
}

function binaryPacket(text: string, envelope: MessageInitShape<typeof StreamEnvelopeSchema>): ProcessRequest {
  return create(ProcessRequestSchema, {
    packet: create(DataPacketSchema, {
      frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: Buffer.from(text) }) },
      envelope: create(StreamEnvelopeSchema, envelope),
    }),
  });
}

function ackOf(ack: bigint): ProcessRequest {
  return create(ProcessRequestSchema, { flow: create(FlowControlSchema, { ack }) });
}

/** The status a call ends with; fails the test if none comes within WAIT_MS. */
async function statusOf(call: Stream | ClientDuplexStream<Buffer, Buffer>): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<Outcome>((resolve) => {
        call.on('status', (outcome: { code: number; details: string }) => {
          resolve({ code: outcome.code, details: outcome.details });
        });
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no status within ${WAIT_MS} ms`));
        }, WAIT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A connected producer/consumer pair on run-1; `exchange()` proves both still work. */
interface HealthyPair {
  exchange(label: string): Promise<void>;
  readonly consumerEnded: () => boolean;
}

async function healthyPair(
  t: TestContext,
  hub: Hub,
  address: string,
  consumerGeneration = 1,
): Promise<HealthyPair> {
  const consumer = connect(t, address, register('transcribe', consumerGeneration, 'run-1'));
  const texts: string[] = [];
  let lastSequence = 0n;
  let consumerEnded = false;
  consumer.on('data', (response: ProcessResponse) => {
    const frame = response.packet?.frame;
    if (frame?.case !== 'binary') return;
    texts.push(Buffer.from(frame.value.payload).toString());
    lastSequence = response.packet?.envelope?.sequence ?? 0n;
  });
  consumer.on('status', () => (consumerEnded = true));
  await until(() => hub.stats().connections === 1, 'the healthy consumer registered');
  const producer = connect(t, address, register('ingest', 1, 'run-1'));
  const acks: bigint[] = [];
  producer.on('data', (response: ProcessResponse) => {
    if (response.flow !== undefined && response.flow.ack > 0n) acks.push(response.flow.ack);
  });
  await until(() => hub.stats().connections === 2, 'the healthy producer registered');
  let sent = 0n;
  return {
    consumerEnded: () => consumerEnded,
    exchange: async (label) => {
      sent++;
      const text = `healthy-${sent}`;
      producer.write(binaryPacket(text, { sequence: sent }));
      await until(() => texts.at(-1) === text, `the healthy consumer got ${text} after ${label}`);
      consumer.write(ackOf(lastSequence));
      await until(() => acks.at(-1) === sent, `the healthy producer was acked ${sent} after ${label}`);
      assert.deepEqual(
        texts,
        Array.from({ length: Number(sent) }, (_, i) => `healthy-${i + 1}`),
        'nothing lost, duplicated or reordered',
      );
    },
  };
}

/** Opens a call with `fields`, writes `requests`, and returns the status it ended with. */
async function outcomeOf(
  t: TestContext,
  address: string,
  fields: Fields,
  requests: ProcessRequest[] = [],
): Promise<Outcome> {
  const call = connect(t, address, fields);
  const ended = statusOf(call);
  for (const request of requests) call.write(request);
  return ended;
}

describe('bad input to the hub', () => {
  test('each bad registration, request or chunk gets its own status, and a healthy pair is never disturbed', async (t) => {
    const { hub, address } = await startHub(t);
    const pair = await healthyPair(t, hub, address, 5);
    await pair.exchange('setup');

    const good = register('ingest', 1);
    const cases: {
      name: string;
      fields: Fields;
      requests?: ProcessRequest[];
      code: status;
      details?: RegExp;
    }[] = [
      {
        name: 'no storyrun-name',
        fields: without(good, 'storyrun-name'),
        code: status.INVALID_ARGUMENT,
        details: /storyrun-name/,
      },
      {
        name: 'no storyrun-namespace',
        fields: without(good, 'storyrun-namespace'),
        code: status.INVALID_ARGUMENT,
        details: /storyrun-namespace/,
      },
      {
        name: 'no current-step-id',
        fields: without(good, 'current-step-id'),
        code: status.INVALID_ARGUMENT,
        details: /current-step-id/,
      },
      { name: 'no metadata at all', fields: {}, code: status.INVALID_ARGUMENT },
      {
        name: 'a namespace with capitals',
        fields: { ...good, 'storyrun-namespace': 'Media' },
        code: status.INVALID_ARGUMENT,
      },
      {
        name: 'a namespace of 64 characters',
        fields: { ...good, 'storyrun-namespace': 'n'.repeat(64) },
        code: status.INVALID_ARGUMENT,
      },
      {
        name: 'a run name with a slash',
        fields: { ...good, 'storyrun-name': 'run/1' },
        code: status.INVALID_ARGUMENT,
      },
      {
        name: 'a step id starting with a dash',
        fields: { ...good, 'current-step-id': '-ingest' },
        code: status.INVALID_ARGUMENT,
      },
      {
        // HTTP/2 joins repeated headers, so the hub sees one value "ingest, transcribe".
        name: 'a step id sent twice',
        fields: { ...good, 'current-step-id': ['ingest', 'transcribe'] },
        code: status.INVALID_ARGUMENT,
        details: /current-step-id/,
      },
      ...['0', '-1', '2147483648', '01', 'abc', '', '+1', '1e3'].map((generation) => ({
        name: `connector-generation ${JSON.stringify(generation)}`,
        fields: { ...good, 'connector-generation': generation },
        code: status.FAILED_PRECONDITION,
        details: /connector-generation/,
      })),
      {
        name: 'an unknown step',
        fields: register('no-such-step', 1),
        code: status.NOT_FOUND,
        details: /no step no-such-step/,
      },
      {
        name: 'an unknown story run with no story named',
        fields: without({ ...good, 'storyrun-name': 'never-started' }, 'story-name'),
        code: status.NOT_FOUND,
      },
      {
        name: 'an unknown story name',
        fields: { ...good, 'storyrun-name': 'other-run', 'story-name': 'no-such-story' },
        code: status.NOT_FOUND,
      },
      {
        name: 'an older generation than the active consumer',
        fields: register('transcribe', 3, 'run-1'),
        code: status.FAILED_PRECONDITION,
        details: /older than the active 5/,
      },
      {
        name: 'a chunk index past its count',
        fields: good,
        requests: [binaryPacket('x', { streamId: 's', chunkId: 'c', chunkIndex: 2, chunkCount: 2 })],
        code: status.INVALID_ARGUMENT,
        details: /chunk_index/,
      },
      {
        name: 'a chunk count over 256',
        fields: good,
        requests: [binaryPacket('x', { streamId: 's', chunkId: 'c', chunkIndex: 0, chunkCount: 257 })],
        code: status.INVALID_ARGUMENT,
        details: /chunk_count/,
      },
      {
        name: 'a chunk without a stream id',
        fields: good,
        requests: [binaryPacket('x', { chunkId: 'c', chunkIndex: 0, chunkCount: 2 })],
        code: status.INVALID_ARGUMENT,
        details: /stream_id/,
      },
      {
        name: 'a chunk sent twice',
        fields: good,
        requests: [
          binaryPacket('x', { streamId: 's-dup', chunkId: 'c', chunkIndex: 0, chunkCount: 3 }),
          binaryPacket('x', { streamId: 's-dup', chunkId: 'c', chunkIndex: 0, chunkCount: 3 }),
        ],
        code: status.INVALID_ARGUMENT,
        details: /arrived twice/,
      },
      {
        name: 'chunks over their announced total',
        fields: good,
        requests: [
          binaryPacket('xxxx', {
            streamId: 's-total',
            chunkId: 'c',
            chunkIndex: 0,
            chunkCount: 2,
            totalBytes: 5,
          }),
          binaryPacket('xxxx', {
            streamId: 's-total',
            chunkId: 'c',
            chunkIndex: 1,
            chunkCount: 2,
            totalBytes: 5,
          }),
        ],
        code: status.INVALID_ARGUMENT,
        details: /total_bytes/,
      },
      {
        name: 'more partial messages on one stream id than the reassembly budget (64)',
        fields: good,
        requests: Array.from({ length: 65 }, (_, i) =>
          binaryPacket('x', { streamId: 's-budget', chunkId: `c${i}`, chunkIndex: 0, chunkCount: 2 }),
        ),
        code: status.RESOURCE_EXHAUSTED,
        details: /partials_per_stream/,
      },
    ];

    for (const bad of cases) {
      await t.test(`${bad.name}: ${status[bad.code]}`, async (t) => {
        const outcome = await outcomeOf(t, address, bad.fields, bad.requests);
        assert.equal(outcome.code, bad.code, `${status[outcome.code]}: ${outcome.details}`);
        if (bad.details !== undefined) assert.match(outcome.details, bad.details);
        await until(() => hub.stats().connections === 2, 'only the healthy pair connected');
        await pair.exchange(bad.name);
      });
    }

    await t.test('bytes that do not decode: INVALID_ARGUMENT', async (t) => {
      const raw = new Client(address, credentials.createInsecure());
      t.after(() => {
        raw.close();
      });
      const call = raw.makeBidiStreamRequest(
        HUB_PROCESS_PATH,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        metadataOf(good),
      );
      call.on('error', () => undefined);
      const ended = statusOf(call);
      // Field 1, length-delimited, announces 5 bytes and carries 1.
      call.write(Buffer.from([0x0a, 0x05, 0x01]));
      const outcome = await ended;
      assert.equal(outcome.code, status.INVALID_ARGUMENT, outcome.details);
      assert.match(outcome.details, /not a valid transport\.v1\.ProcessRequest/);
      await until(() => hub.stats().connections === 2, 'only the healthy pair connected');
      await pair.exchange('undecodable bytes');
    });

    assert.equal(pair.consumerEnded(), false, 'the active consumer (generation 5) was never ended');
    const refused = hub.stats().refused;
    assert.equal(
      Object.values(refused).reduce((a, b) => a + b, 0),
      cases.length + 1,
      `every bad call counted once: ${JSON.stringify(refused)}`,
    );
  });

  test('a connector over maxActiveStreams gets RESOURCE_EXHAUSTED and the connected pair carries on', async (t) => {
    const { hub, address } = await startHub(t, { maxActiveStreams: 2 });
    const pair = await healthyPair(t, hub, address);
    await pair.exchange('setup');

    const outcome = await outcomeOf(t, address, register('ingest', 1, 'run-third'));
    assert.equal(outcome.code, status.RESOURCE_EXHAUSTED, outcome.details);
    assert.equal(hub.stats().streams.refusedStreams.maxActive, 1);
    await pair.exchange('the third connector');

    // A newer generation of a connected step replaces its stream rather than adding one.
    assert.equal(hub.stats().streams.activeStreams, 2);
  });

  test(
    'chunks from one story run are never joined with chunks of another that reuse its ids',
    {},
    async (t) => {
      const { hub, address } = await startHub(t);
      const consumer = connect(t, address, register('transcribe', 1, 'run-b'));
      const texts: string[] = [];
      consumer.on('data', (response: ProcessResponse) => {
        const frame = response.packet?.frame;
        if (frame?.case === 'binary') texts.push(Buffer.from(frame.value.payload).toString());
      });
      await until(() => hub.stats().connections === 1, 'the run-b consumer registered');
      const other = connect(t, address, register('ingest', 1, 'run-a'));
      other.write(
        binaryPacket('run-a-secret|', { streamId: 's', chunkId: 'c', chunkIndex: 0, chunkCount: 2 }),
      );
      await until(() => hub.stats().connections === 2, 'the run-a producer registered');
      const producer = connect(t, address, register('ingest', 1, 'run-b'));
      producer.write(
        binaryPacket('run-b-tail', { streamId: 's', chunkId: 'c', chunkIndex: 1, chunkCount: 2 }),
      );
      producer.write(binaryPacket('run-b-marker', { sequence: 1n }));
      await until(() => texts.includes('run-b-marker'), 'the run-b marker arrived');
      assert.deepEqual(texts, ['run-b-marker'], 'run-b received nothing assembled from run-a’s chunk');
    },
  );
});
