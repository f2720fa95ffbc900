// Connectors over the grid: a step inside the cluster reaches the hub over a grid stream (reserved
// handler 20) instead of gRPC, and behaves the same: packets in order with acks back to the
// producer, a refused registration ends it with the hub's status, and a newer generation gets
// the replay flagged redelivered. Real grid nodes and a real gRPC port on loopback; the hub runs
// on a fake clock, the grid and the SDK's reconnect backoff on real time (millisecond delays).

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { create, toBinary } from '@bufbuild/protobuf';

import { ProcessRequestSchema } from '../../src/gen/transport/v1/hub_pb.ts';
import { BinaryFrameSchema } from '../../src/gen/transport/v1/transport_pb.ts';
import { RemoteError } from '../../src/grid/index.ts';
import {
  ConnectorRefusedError,
  HubConnector,
  type Delivery,
  type HubConnectorOptions,
  type PacketInit,
} from '../../src/hub/connector/index.ts';
import {
  encodeGridRegistration,
  HUB_GRID_HANDLER,
  MAX_REGISTRATION_BYTES,
  serveHubOnGrid,
  type HubGridServer,
} from '../../src/hub/grid/index.ts';
import { Hub } from '../../src/hub/hub.ts';
import { REDELIVERED_METADATA_KEY } from '../../src/hub/redelivered.ts';
import { parseStory } from '../../src/hub/story/index.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/test-grid.ts';

const story = parseStory(
  JSON.stringify({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: 'pipeline', namespace: 'media' },
    spec: {
      defaults: { delivery: { mode: 'at_least_once', replay: 'unacked' } },
      steps: [{ id: 'ingest' }, { id: 'transcribe', needs: ['ingest'] }],
    },
  }),
  { format: 'json' },
);

interface Cluster {
  readonly grid: TestGrid;
  readonly hub: Hub;
  readonly server: HubGridServer;
  /** The hub's gRPC port. */
  readonly port: number;
}

/** Two grid nodes; the hub runs on node 0, serving gRPC and the grid. */
async function startCluster(t: TestContext): Promise<Cluster> {
  const grid = await TestGrid.start(2);
  t.after(() => grid.close());
  const hub = new Hub({ stories: [story], clock: new FakeClock() });
  t.after(() => hub.close());
  const server = serveHubOnGrid(hub, grid.manager(0));
  const port = await hub.listen({ port: 0 });
  await grid.waitAllConnected();
  return { grid, hub, server, port };
}

const common = {
  namespace: 'media',
  run: 'run-1',
  story: 'pipeline',
  generation: 1,
  reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
  closeGraceMs: 50,
} as const;

async function connect(t: TestContext, options: HubConnectorOptions): Promise<HubConnector> {
  const c = await HubConnector.connect(options);
  t.after(() => c.close());
  return c;
}

/** A connector on node 1 reaching the hub on node 0 over the grid. */
function overGrid(
  cluster: Cluster,
  step: string,
  options: Partial<HubConnectorOptions> = {},
): HubConnectorOptions {
  return {
    ...common,
    grid: { manager: cluster.grid.manager(1), node: cluster.grid.hosts[0] ?? '' },
    step,
    ...options,
  };
}

function overGrpc(cluster: Cluster, step: string): HubConnectorOptions {
  return { ...common, address: `127.0.0.1:${cluster.port}`, step };
}

function text(value: string): PacketInit {
  return {
    frame: { case: 'binary', value: create(BinaryFrameSchema, { payload: Buffer.from(value) }) },
  };
}

function textOf(delivery: Delivery): string {
  const frame = delivery.packet.frame;
  return frame.case === 'binary' ? Buffer.from(frame.value.payload).toString() : '';
}

async function take(c: HubConnector, count: number, ack = false): Promise<Delivery[]> {
  const taken: Delivery[] = [];
  for await (const delivery of c.received()) {
    taken.push(delivery);
    if (ack) delivery.ack();
    if (taken.length === count) break;
  }
  return taken;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Opens a raw grid stream to the hub with `initial` and returns how it ended. */
async function rawStream(cluster: Cluster, initial: Uint8Array, items: Uint8Array[] = []): Promise<unknown> {
  const stream = cluster.grid.connection(1, 0).openStream(HUB_GRID_HANDLER, { initial });
  try {
    for (const item of items) await stream.send(item);
    const responses: Uint8Array[] = [];
    for await (const response of stream) responses.push(response);
    return undefined;
  } catch (error) {
    return error;
  }
}

function assertStatus(error: unknown, name: string, details: RegExp, what = ''): void {
  assert.ok(error instanceof RemoteError, `${what}: a RemoteError, got ${String(error)}`);
  assert.equal(error.code, `WEFT_HUB_STATUS_${name}`, what);
  assert.match(error.message, details, what);
}

describe('hub connectors over the grid', () => {
  test('a gRPC producer’s packets reach a grid consumer on another node in order, and the acks get back', async (t) => {
    const cluster = await startCluster(t);
    const consumer = await connect(t, overGrid(cluster, 'transcribe', { maxUnackedReceived: 16 }));
    await until(() => cluster.hub.stats().connections === 1, 'the grid consumer registered');
    const producer = await connect(t, overGrpc(cluster, 'ingest'));

    // Far more than the grid stream's window of 32, and than the consumer reads ahead.
    const n = 300;
    const sends = Array.from({ length: n }, (_, i) => producer.send(text(`p${i + 1}`)));
    const deliveries = await take(consumer, n, true);
    await Promise.all(sends);
    assert.deepEqual(
      deliveries.map(textOf),
      Array.from({ length: n }, (_, i) => `p${i + 1}`),
    );
    assert.deepEqual(
      deliveries.map((d) => d.sequence),
      Array.from({ length: n }, (_, i) => BigInt(i + 1)),
    );
    assert.ok(deliveries.every((d) => !d.redelivered));

    await producer.drained();
    assert.equal(producer.stats().acked, n, 'every packet was acknowledged once the grid consumer acked it');
    assert.equal(producer.stats().unacked, 0);
    assert.ok(consumer.stats().ackMessagesSent <= n, 'at most one ack message per delivery');
    assert.equal(cluster.server.stats().opened, 1);
    assert.equal(cluster.server.stats().active, 1);
  });

  test('a grid producer reaches a gRPC consumer the same way', async (t) => {
    const cluster = await startCluster(t);
    const producer = await connect(t, overGrid(cluster, 'ingest'));
    for (let i = 1; i <= 40; i++) await producer.send(text(`g${i}`));
    const consumer = await connect(t, overGrpc(cluster, 'transcribe'));
    const deliveries = await take(consumer, 40, true);
    assert.deepEqual(
      deliveries.map(textOf),
      Array.from({ length: 40 }, (_, i) => `g${i + 1}`),
    );
    await producer.drained();
    assert.equal(producer.stats().acked, 40);
  });

  test('a registration the hub refuses ends the grid connector with that status', async (t) => {
    const cluster = await startCluster(t);
    const lost = await connect(t, overGrid(cluster, 'no-such-step'));
    await assert.rejects(lost.closed, (error: unknown) => {
      assert.ok(error instanceof ConnectorRefusedError);
      assert.equal(error.status, 'NOT_FOUND');
      assert.match(error.details, /no step no-such-step/);
      return true;
    });
    await assert.rejects(lost.send(text('x')), ConnectorRefusedError);

    const malformed = await connect(t, overGrid(cluster, 'ingest', { namespace: 'Not_A_Label' }));
    await assert.rejects(malformed.closed, (error: unknown) => {
      assert.ok(error instanceof ConnectorRefusedError);
      assert.equal(error.status, 'INVALID_ARGUMENT');
      assert.match(error.details, /storyrun-namespace/);
      return true;
    });
    assert.equal(cluster.hub.stats().refused['NOT_FOUND'], 1);
    assert.equal(cluster.hub.stats().refused['INVALID_ARGUMENT'], 1);
  });

  test('a registration payload that is not a bounded map of registration keys is refused INVALID_ARGUMENT', async (t) => {
    const cluster = await startCluster(t);
    const valid: [string, string][] = [
      ['storyrun-name', 'run-1'],
      ['storyrun-namespace', 'media'],
      ['current-step-id', 'ingest'],
    ];
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /missing/],
      ['not MessagePack', Uint8Array.of(0xc1, 0xff, 0x00), /not MessagePack|map/],
      ['an array', Uint8Array.of(0x90), /map/],
      [
        'an unknown key',
        encodeGridRegistration([...valid, ['password', 'x']]),
        /"password" is not a registration key/,
      ],
      ['too large', new Uint8Array(MAX_REGISTRATION_BYTES + 1), /more than 4096/],
    ];
    for (const [what, initial, details] of cases) {
      assertStatus(await rawStream(cluster, initial), 'INVALID_ARGUMENT', details, what);
    }
    // A prototype key does not become the map's prototype.
    const proto = Buffer.concat([Uint8Array.of(0x81, 0xa9), Buffer.from('__proto__'), Uint8Array.of(0x80)]);
    assertStatus(await rawStream(cluster, proto), 'INVALID_ARGUMENT', /registration/);
    const numeric = Buffer.concat([
      Uint8Array.of(0x81, 0xad),
      Buffer.from('storyrun-name'),
      Uint8Array.of(0x07),
    ]);
    assertStatus(await rawStream(cluster, numeric), 'INVALID_ARGUMENT', /storyrun-name must be a string/);
    assert.equal(cluster.server.stats().badRegistrations, cases.length + 2);
    assert.equal(cluster.hub.stats().connections, 0, 'none reached the hub');
  });

  test('a request that is not a ProcessRequest ends the stream INVALID_ARGUMENT', async (t) => {
    const cluster = await startCluster(t);
    const registration = encodeGridRegistration([
      ['storyrun-name', 'run-1'],
      ['storyrun-namespace', 'media'],
      ['current-step-id', 'ingest'],
      ['story-name', 'pipeline'],
    ]);
    const empty = toBinary(ProcessRequestSchema, create(ProcessRequestSchema, {}));
    const ended = await rawStream(cluster, registration, [empty, Uint8Array.of(0xff, 0xff, 0xff)]);
    assertStatus(ended, 'INVALID_ARGUMENT', /not a valid transport.v1.ProcessRequest/);
    assert.equal(cluster.server.stats().undecodableRequests, 1);
    await until(() => cluster.server.stats().active === 0, 'the session ended');
  });

  test('a grid consumer that takes over as a newer generation gets what it left unacked, flagged redelivered', async (t) => {
    const cluster = await startCluster(t);
    const consumer = await connect(t, overGrid(cluster, 'transcribe', { generation: 1 }));
    await until(() => cluster.hub.stats().connections === 1, 'consumer registered');
    const producer = await connect(t, overGrpc(cluster, 'ingest'));
    for (let i = 1; i <= 5; i++) await producer.send(text(`m${i}`));

    const first = await take(consumer, 5);
    first[0]?.ack();
    first[1]?.ack();
    await until(() => producer.stats().unacked === 3, 'the first two acknowledged upstream');

    consumer.reconnect({ generation: 2 });
    const again = await take(consumer, 3);
    assert.deepEqual(again.map(textOf), ['m3', 'm4', 'm5']);
    assert.ok(
      again.every((d) => d.redelivered && d.packet.metadata[REDELIVERED_METADATA_KEY] === 'true'),
      'the hub flagged each replayed packet',
    );

    await producer.send(text('m6'));
    const [fresh] = await take(consumer, 1);
    assert.ok(fresh !== undefined);
    assert.equal(textOf(fresh), 'm6');
    assert.equal(fresh.redelivered, false);
    for (const d of [...again, fresh]) d.ack();
    await producer.drained();
    assert.equal(consumer.stats().reconnects, 1);
    assert.equal(consumer.stats().redelivered, 3);
    assert.equal(cluster.server.stats().opened, 2);
  });

  test('an older generation over the grid is refused FAILED_PRECONDITION once a newer one holds the step', async (t) => {
    const cluster = await startCluster(t);
    const newer = await connect(t, overGrid(cluster, 'transcribe', { generation: 2 }));
    await until(() => cluster.hub.stats().connections === 1, 'the newer registered');
    const older = await connect(t, overGrid(cluster, 'transcribe', { generation: 1 }));
    await assert.rejects(older.closed, { status: 'FAILED_PRECONDITION' });
    assert.equal(newer.stats().connected, true);
  });

  test('close over the grid half-closes, and the hub ends the stream cleanly', async (t) => {
    const cluster = await startCluster(t);
    const c = await connect(t, overGrid(cluster, 'transcribe'));
    await until(() => cluster.hub.stats().connections === 1, 'registered');
    const reading = c.received().next();
    await c.close();
    assert.deepEqual(await reading, { done: true, value: undefined });
    await c.closed;
    await until(() => cluster.server.stats().active === 0, 'the session ended on the hub node');
    assert.equal(cluster.server.stats().failed, 0);
  });

  test('a grid target that is not a peer of the manager is refused at connect', async (t) => {
    const cluster = await startCluster(t);
    assert.throws(
      () =>
        HubConnector.connect(
          overGrid(cluster, 'ingest', {
            grid: { manager: cluster.grid.manager(1), node: 'http://10.9.9.9:1' },
          }),
        ),
      { code: 'WEFT_INVALID_CONFIG' },
    );
    assert.throws(
      () => HubConnector.connect({ ...overGrid(cluster, 'ingest'), address: '127.0.0.1:1' }),
      /cannot be given with address/,
    );
  });
});
