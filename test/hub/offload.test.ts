import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { create, type JsonObject } from '@bufbuild/protobuf';

import { DataPacketSchema, type DataPacket } from '../../src/gen/transport/v1/hub_pb.ts';
import { StreamEnvelopeSchema, type StreamEnvelope } from '../../src/gen/transport/v1/transport_pb.ts';
import {
  BLOB_REF_PREFIX,
  OffloadBlobCorruptError,
  OffloadBlobNotFoundError,
  OffloadStoreClosedError,
  OffloadStoreFullError,
  OffloadBlobTooLargeError,
  blobRefOf,
  buildMaterializeRequest,
  FsBlobStore,
  InvalidBlobRefError,
  InvalidMaterializeMessageError,
  InvalidOffloadMarkerError,
  MATERIALIZE_NEXT_STEP_KEY,
  materializePacket,
  materializeStepId,
  MaterializeRunLimitError,
  MaterializeRunNotOwnedError,
  MaterializeRuns,
  MemoryBlobStore,
  OFFLOADED_BYTES_KEY,
  OFFLOADED_FIELD_KEY,
  OFFLOADED_PAYLOAD_BYTES_KEY,
  OFFLOADED_PAYLOAD_REF_KEY,
  OFFLOADED_REF_KEY,
  offloadedRefsOf,
  offloadPacket,
  parseBlobRef,
  parseMaterializeReply,
  stripOffloadMarkers,
  type BlobStore,
  type BlobStoreLimits,
} from '../../src/hub/offload/index.ts';
import { newHeartbeatPacket } from '../../src/hub/wire/heartbeat.ts';
import { ConfigError } from '../../src/internal/errors.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'weft-offload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function bytes(size: number, fill = 7): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

function binaryPacket(
  size: number,
  extra: { payload?: JsonObject; envelope?: StreamEnvelope } = {},
): DataPacket {
  return create(DataPacketSchema, {
    metadata: { 'storyrun-name': 'run-1' },
    frame: { case: 'binary', value: { payload: bytes(size), mimeType: 'image/png' } },
    ...extra,
  });
}

const hostileRefs: unknown[] = [
  undefined,
  42,
  '',
  'weft-blob://sha256/',
  `weft-blob://sha256/${'A'.repeat(64)}`,
  `weft-blob://sha256/${'a'.repeat(63)}`,
  `weft-blob://sha256/${'a'.repeat(65)}`,
  `weft-blob://sha256/../../../../etc/passwd${'a'.repeat(40)}`.slice(0, 83),
  `weft-blob://sha256/${'a'.repeat(62)}/.`,
  `weft-blob://md5/${'a'.repeat(66)}`,
  ` weft-blob://sha256/${'a'.repeat(63)}`,
  `weft-blob://sha256/${'a'.repeat(63)}\n`,
  `file:///${'a'.repeat(78)}`,
  'x'.repeat(1_000_000),
];

const stores: { name: string; open: (t: TestContext, limits?: BlobStoreLimits) => Promise<BlobStore> }[] = [
  { name: 'MemoryBlobStore', open: (_t, limits = {}) => Promise.resolve(new MemoryBlobStore(limits)) },
  {
    name: 'FsBlobStore',
    open: async (t, limits = {}) => FsBlobStore.open({ directory: await tempDir(t), ...limits }),
  },
];

for (const { name, open } of stores) {
  describe(`${name} conformance`, () => {
    test('bytes put come back byte for byte under a sha256 reference', async (t) => {
      const store = await open(t);
      const data = new Uint8Array([1, 2, 3, 250]);
      const ref = await store.put(data, { contentType: 'application/octet-stream' });
      assert.equal(ref, blobRefOf(data));
      assert.match(ref, /^weft-blob:\/\/sha256\/[0-9a-f]{64}$/);
      assert.deepEqual(await store.get(ref), data);
      assert.deepEqual(await store.get(ref), data, 'a get does not consume the blob');
      assert.equal(store.stats().blobs, 1);
      assert.equal(store.stats().bytes, 4);
    });

    test('the same bytes put twice share a blob that outlives the first delete', async (t) => {
      const store = await open(t);
      const ref = await store.put(bytes(10));
      assert.equal(await store.put(bytes(10)), ref);
      assert.equal(store.stats().blobs, 1);
      assert.equal(store.stats().dedupedPuts, 1);
      assert.equal(await store.delete(ref), true);
      assert.deepEqual(await store.get(ref), bytes(10));
      assert.equal(await store.delete(ref), true);
      await assert.rejects(store.get(ref), OffloadBlobNotFoundError);
      assert.equal(await store.delete(ref), false);
      assert.equal(store.stats().bytes, 0);
      assert.equal(store.stats().removed, 1);
    });

    test('hostile references are refused with InvalidBlobRefError and counted', async (t) => {
      const store = await open(t);
      for (const ref of hostileRefs) {
        await assert.rejects(store.get(ref as string), InvalidBlobRefError, String(ref).slice(0, 90));
        await assert.rejects(store.delete(ref as string), InvalidBlobRefError);
      }
      assert.equal(store.stats().invalidRefs, hostileRefs.length * 2);
    });

    test('a well-formed reference to nothing is OffloadBlobNotFoundError', async (t) => {
      const store = await open(t);
      await assert.rejects(store.get(blobRefOf(bytes(3))), OffloadBlobNotFoundError);
      assert.equal(store.stats().notFound, 1);
    });

    test('a full store refuses new blobs instead of evicting held ones', async (t) => {
      const store = await open(t, { maxBytes: 100, maxBlobs: 3 });
      const a = await store.put(bytes(60, 1));
      await assert.rejects(store.put(bytes(41, 2)), OffloadStoreFullError);
      const b = await store.put(bytes(40, 2)); // exactly at the byte limit
      await assert.rejects(store.put(bytes(101, 3)), OffloadBlobTooLargeError);
      assert.deepEqual(await store.get(a), bytes(60, 1));
      await store.delete(b);
      await store.put(bytes(1, 4));
      await store.put(bytes(1, 5));
      await assert.rejects(
        store.put(bytes(1, 6)),
        (e: unknown) => e instanceof OffloadStoreFullError && e.retryable,
      );
      const stats = store.stats();
      assert.equal(stats.refusedFull, 2);
      assert.equal(stats.refusedTooLarge, 1);
      assert.equal(stats.blobs, 3);
    });

    test('a get over its maxBytes is refused before reading', async (t) => {
      const store = await open(t);
      const ref = await store.put(bytes(50));
      await assert.rejects(store.get(ref, { maxBytes: 49 }), OffloadBlobTooLargeError);
      assert.equal((await store.get(ref, { maxBytes: 50 })).length, 50);
    });

    test('concurrent puts of the same bytes write one blob with two references', async (t) => {
      const store = await open(t, { maxBytes: 100 });
      const [r1, r2] = await Promise.all([store.put(bytes(60)), store.put(bytes(60))]);
      assert.equal(r1, r2);
      assert.equal(store.stats().bytes, 60);
      await store.delete(r1);
      assert.equal((await store.get(r1)).length, 60);
    });

    test('a closed store rejects calls', async (t) => {
      const store = await open(t);
      await store.close();
      await assert.rejects(store.put(bytes(1)), OffloadStoreClosedError);
      await assert.rejects(store.get(blobRefOf(bytes(1))), OffloadStoreClosedError);
    });

    test('an aborted signal rejects with its reason', async (t) => {
      const store = await open(t);
      const reason = new Error('stop');
      await assert.rejects(store.put(bytes(1), { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    });

    test('bad limits are a ConfigError naming the field', async (t) => {
      await assert.rejects(async () => open(t, { maxBytes: 0 }), {
        name: 'ConfigError',
        field: 'hub.offload.maxBytes',
      });
      await assert.rejects(async () => open(t, { maxBlobs: 1.5 }), ConfigError);
    });
  });
}

describe('FsBlobStore on disk', () => {
  test('a blob altered on disk is refused as corrupt and removed', async (t) => {
    const directory = await tempDir(t);
    const store = await FsBlobStore.open({ directory });
    const ref = await store.put(bytes(32));
    const digest = parseBlobRef(ref);
    await writeFile(path.join(directory, 'sha256', digest.slice(0, 2), digest), bytes(32, 8));
    await assert.rejects(store.get(ref), OffloadBlobCorruptError);
    assert.equal(store.stats().corrupt, 1);
    assert.equal(store.stats().blobs, 0);
    await assert.rejects(store.get(ref), OffloadBlobNotFoundError);
    assert.equal(await store.put(bytes(32)), ref, 'the same bytes can be stored again');
    assert.deepEqual(await store.get(ref), bytes(32));
  });

  test('a reopened store keeps its blobs, counts them, and clears unfinished writes', async (t) => {
    const directory = await tempDir(t);
    const first = await FsBlobStore.open({ directory });
    const ref = await first.put(bytes(20));
    await first.close();
    await writeFile(path.join(directory, 'tmp', 'half-written'), bytes(5));
    await writeFile(path.join(directory, 'sha256', 'stray-file'), bytes(5));
    const second = await FsBlobStore.open({ directory, maxBytes: 30 });
    assert.equal(second.stats().blobs, 1);
    assert.equal(second.stats().bytes, 20);
    assert.deepEqual(await second.get(ref), bytes(20));
    await assert.rejects(second.put(bytes(11, 1)), OffloadStoreFullError);
    assert.deepEqual(await readdir(path.join(directory, 'tmp')), []);
  });

  test('a hostile reference never reaches the filesystem outside the store', async (t) => {
    const directory = await tempDir(t);
    const store = await FsBlobStore.open({ directory: path.join(directory, 'store') });
    await writeFile(path.join(directory, 'secret'), 'secret');
    await assert.rejects(store.get(`${BLOB_REF_PREFIX}../../secret`), InvalidBlobRefError);
    await assert.rejects(store.delete(`${BLOB_REF_PREFIX}${'.'.repeat(64)}`), InvalidBlobRefError);
    assert.deepEqual((await readdir(directory)).sort(), ['secret', 'store']);
  });
});

describe('offloadPacket and materializePacket', () => {
  test('frame bytes over the threshold travel as a reference and come back intact', async () => {
    const store = new MemoryBlobStore();
    const packet = binaryPacket(1000, { payload: { small: true } });
    const { packet: offloaded, offloaded: parts } = await offloadPacket(packet, {
      store,
      thresholdBytes: 999,
    });
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0], { field: 'binary.payload', ref: blobRefOf(bytes(1000)), bytes: 1000 });
    assert.equal(offloaded.frame.case, 'binary');
    assert.equal(offloaded.frame.value.payload.length, 0);
    assert.equal(offloaded.metadata[OFFLOADED_REF_KEY], parts[0].ref);
    assert.equal(offloaded.metadata[OFFLOADED_BYTES_KEY], '1000');
    assert.equal(offloaded.metadata[OFFLOADED_FIELD_KEY], 'binary.payload');
    assert.deepEqual(offloaded.payload, { small: true }, 'a payload under the threshold stays');
    assert.deepEqual(packet.frame, binaryPacket(1000).frame, 'the input packet is unchanged');
    assert.equal(packet.metadata[OFFLOADED_REF_KEY], undefined);

    const { packet: restored, materialized } = await materializePacket(offloaded, { store, maxBytes: 1000 });
    assert.deepEqual(materialized, parts);
    assert.deepEqual(restored.metadata, packet.metadata);
    assert.equal(restored.frame.case, 'binary');
    assert.equal(restored.frame.value.mimeType, 'image/png');
    assert.deepEqual(restored.frame.value.payload, bytes(1000));
  });

  test('at exactly the threshold nothing is offloaded; one byte more is', async () => {
    const store = new MemoryBlobStore();
    const atThreshold = binaryPacket(100);
    const kept = await offloadPacket(atThreshold, { store, thresholdBytes: 100 });
    assert.equal(kept.packet, atThreshold);
    assert.deepEqual(kept.offloaded, []);
    const over = await offloadPacket(binaryPacket(101), { store, thresholdBytes: 100 });
    assert.equal(over.offloaded.length, 1);

    const payload = { text: 'x'.repeat(20) }; // {"text":"xxxx…"} = 31 bytes
    const json = Buffer.byteLength(JSON.stringify(payload));
    const packet = create(DataPacketSchema, { payload });
    assert.equal((await offloadPacket(packet, { store, thresholdBytes: json })).offloaded.length, 0);
    assert.equal((await offloadPacket(packet, { store, thresholdBytes: json - 1 })).offloaded.length, 1);
  });

  test('threshold 0 never offloads', async () => {
    const store = new MemoryBlobStore();
    const packet = binaryPacket(10_000, { payload: { big: 'y'.repeat(5000) } });
    const result = await offloadPacket(packet, { store, thresholdBytes: 0 });
    assert.equal(result.packet, packet);
    assert.equal(store.stats().puts, 0);
  });

  test('audio, video and payload offload and materialize in one round trip', async () => {
    const store = new MemoryBlobStore();
    for (const frame of [
      {
        case: 'audio' as const,
        value: { pcm: bytes(300, 3), sampleRateHz: 16_000, channels: 1, codec: 'pcm16' },
      },
      { case: 'video' as const, value: { payload: bytes(300, 4), codec: 'h264', width: 2, height: 2 } },
    ]) {
      const payload = { nested: { list: [1, 'two', null, true], deep: { n: 1.5 } }, s: 'z'.repeat(300) };
      const packet = create(DataPacketSchema, {
        metadata: { a: 'b' },
        payload,
        inputs: { from: 'hub' },
        frame,
        envelope: create(StreamEnvelopeSchema, { sequence: 9n, partition: 'p' }),
      });
      const { packet: out, offloaded } = await offloadPacket(packet, { store, thresholdBytes: 200 });
      assert.deepEqual(
        offloaded.map((p) => p.field),
        [frame.case === 'audio' ? 'audio.pcm' : 'video.payload', 'payload'],
      );
      assert.equal(out.payload, undefined);
      assert.ok(out.metadata[OFFLOADED_PAYLOAD_REF_KEY]?.startsWith(BLOB_REF_PREFIX));
      assert.deepEqual(
        offloadedRefsOf(out),
        offloaded.map((p) => p.ref),
      );
      const back = (await materializePacket(out, { store, maxBytes: 10_000 })).packet;
      assert.deepEqual(back.payload, payload);
      assert.deepEqual(back.inputs, { from: 'hub' });
      assert.deepEqual(back.metadata, { a: 'b' });
      assert.equal(back.envelope?.sequence, 9n);
      assert.deepEqual(back.frame, packet.frame);
    }
  });

  test('a packet without markers materializes to itself', async () => {
    const packet = binaryPacket(5);
    const result = await materializePacket(packet, { store: new MemoryBlobStore(), maxBytes: 0 });
    assert.equal(result.packet, packet);
  });

  test('bytes that do not match their reference are refused', async () => {
    const real = new MemoryBlobStore();
    const { packet } = await offloadPacket(binaryPacket(64), { store: real, thresholdBytes: 10 });
    // A store that answers with other bytes, as a damaged or foreign implementation might.
    const lying: BlobStore = {
      put: (b) => real.put(b),
      get: () => Promise.resolve(bytes(64, 9)),
      delete: (r) => real.delete(r),
      stats: () => real.stats(),
      close: () => real.close(),
    };
    await assert.rejects(
      materializePacket(packet, { store: lying, maxBytes: 1000 }),
      OffloadBlobCorruptError,
    );
    const short: BlobStore = { ...lying, get: () => Promise.resolve(bytes(63)) };
    await assert.rejects(
      materializePacket(packet, { store: short, maxBytes: 1000 }),
      OffloadBlobCorruptError,
    );
  });

  test('a declared size that disagrees with the blob is refused', async () => {
    const store = new MemoryBlobStore();
    const { packet } = await offloadPacket(binaryPacket(64), { store, thresholdBytes: 10 });
    const understated = { ...packet, metadata: { ...packet.metadata, [OFFLOADED_BYTES_KEY]: '63' } };
    await assert.rejects(materializePacket(understated, { store, maxBytes: 1000 }), OffloadBlobTooLargeError);
    const overstated = { ...packet, metadata: { ...packet.metadata, [OFFLOADED_BYTES_KEY]: '65' } };
    await assert.rejects(materializePacket(overstated, { store, maxBytes: 1000 }), OffloadBlobCorruptError);
  });

  test('materializing more than maxBytes is refused before any fetch', async () => {
    const store = new MemoryBlobStore();
    const { packet } = await offloadPacket(binaryPacket(64, { payload: { s: 'q'.repeat(64) } }), {
      store,
      thresholdBytes: 10,
    });
    const gets = store.stats().gets;
    await assert.rejects(materializePacket(packet, { store, maxBytes: 100 }), OffloadBlobTooLargeError);
    assert.equal(store.stats().gets, gets);
  });

  test('hostile or malformed markers are clear errors, never crashes', async () => {
    const store = new MemoryBlobStore();
    const { packet } = await offloadPacket(binaryPacket(64), { store, thresholdBytes: 10 });
    const ref = packet.metadata[OFFLOADED_REF_KEY] ?? '';
    const cases: [Record<string, string>, new (...args: never[]) => Error][] = [
      [{ [OFFLOADED_REF_KEY]: `${BLOB_REF_PREFIX}../../etc/passwd` }, InvalidBlobRefError],
      [{ [OFFLOADED_BYTES_KEY]: '-1' }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_BYTES_KEY]: '1e3' }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_BYTES_KEY]: '0x40' }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_BYTES_KEY]: '9'.repeat(40) }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_FIELD_KEY]: 'audio.pcm' }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_FIELD_KEY]: '__proto__' }, InvalidOffloadMarkerError],
      [{ [OFFLOADED_PAYLOAD_REF_KEY]: ref }, InvalidOffloadMarkerError], // bytes missing
    ];
    for (const [override, error] of cases) {
      const hostile = { ...packet, metadata: { ...packet.metadata, ...override } };
      await assert.rejects(
        materializePacket(hostile, { store, maxBytes: 1000 }),
        error,
        JSON.stringify(override),
      );
    }
    const missingField = Object.fromEntries(
      Object.entries(packet.metadata).filter(([key]) => key !== OFFLOADED_FIELD_KEY),
    );
    await assert.rejects(
      materializePacket({ ...packet, metadata: missingField }, { store, maxBytes: 1000 }),
      InvalidOffloadMarkerError,
    );
    // Marker present but the frame still carries bytes.
    const withBytes = { ...binaryPacket(64), metadata: packet.metadata };
    await assert.rejects(materializePacket(withBytes, { store, maxBytes: 1000 }), InvalidOffloadMarkerError);
    // A payload marker naming a blob that is not a JSON object (here: the frame bytes).
    const notJson = create(DataPacketSchema, {
      metadata: { [OFFLOADED_PAYLOAD_REF_KEY]: ref, [OFFLOADED_PAYLOAD_BYTES_KEY]: '64' },
    });
    await assert.rejects(materializePacket(notJson, { store, maxBytes: 1000 }), InvalidOffloadMarkerError);
    const arrayRef = await store.put(new TextEncoder().encode('[1,2]'));
    const array = create(DataPacketSchema, {
      metadata: { [OFFLOADED_PAYLOAD_REF_KEY]: arrayRef, [OFFLOADED_PAYLOAD_BYTES_KEY]: '5' },
    });
    await assert.rejects(materializePacket(array, { store, maxBytes: 1000 }), InvalidOffloadMarkerError);
  });

  test('a reference whose blob was deleted is OffloadBlobNotFoundError', async () => {
    const store = new MemoryBlobStore();
    const { packet, offloaded } = await offloadPacket(binaryPacket(64), { store, thresholdBytes: 10 });
    await store.delete(offloaded[0]?.ref ?? '');
    await assert.rejects(materializePacket(packet, { store, maxBytes: 1000 }), OffloadBlobNotFoundError);
  });

  test('when the payload cannot be stored, the frame blob already written is deleted', async () => {
    const store = new MemoryBlobStore({ maxBytes: 100 });
    const packet = binaryPacket(60, { payload: { s: 'w'.repeat(60) } });
    await assert.rejects(offloadPacket(packet, { store, thresholdBytes: 10 }), OffloadStoreFullError);
    assert.equal(store.stats().blobs, 0);
    assert.equal(store.stats().bytes, 0);
  });

  test('stripOffloadMarkers removes every marker and keeps other metadata', async () => {
    const store = new MemoryBlobStore();
    const { packet } = await offloadPacket(binaryPacket(64, { payload: { s: 'v'.repeat(64) } }), {
      store,
      thresholdBytes: 10,
    });
    assert.deepEqual(stripOffloadMarkers(packet).metadata, { 'storyrun-name': 'run-1' });
    const plain = binaryPacket(1);
    assert.equal(stripOffloadMarkers(plain), plain);
  });

  test('a bad threshold or maxBytes is a ConfigError', async () => {
    const store = new MemoryBlobStore();
    await assert.rejects(offloadPacket(binaryPacket(1), { store, thresholdBytes: -1 }), ConfigError);
    await assert.rejects(materializePacket(binaryPacket(1), { store, maxBytes: Number.NaN }), ConfigError);
  });
});

describe('materializer connector', () => {
  test('a request carries the template and vars, the original data and the target marker', () => {
    const original = binaryPacket(4, {
      payload: { p: 1 },
      envelope: create(StreamEnvelopeSchema, { sequence: 4n }),
    });
    const request = buildMaterializeRequest({
      original,
      targetStepId: 'summarize',
      template: { text: '{{ steps.fetch.output.body }}' },
      vars: { steps: { fetch: { output: { $ref: 'x' } } } },
    });
    assert.deepEqual(request.inputs, {
      mode: 'object',
      template: { text: '{{ steps.fetch.output.body }}' },
      vars: { steps: { fetch: { output: { $ref: 'x' } } } },
    });
    assert.equal(request.metadata[MATERIALIZE_NEXT_STEP_KEY], 'summarize');
    assert.equal(request.metadata['storyrun-name'], 'run-1');
    assert.deepEqual(request.payload, { p: 1 });
    assert.deepEqual(request.frame, original.frame);
    assert.equal(request.envelope, undefined);
    assert.equal(original.metadata[MATERIALIZE_NEXT_STEP_KEY], undefined, 'the original is unchanged');
  });

  test('a request with a bad target, non-object template or oversized inputs is refused', () => {
    const original = binaryPacket(1);
    const base = { original, targetStepId: 'ok', template: {}, vars: {} };
    for (const targetStepId of ['', '-x', 'a/b', 'x'.repeat(64)]) {
      assert.throws(() => buildMaterializeRequest({ ...base, targetStepId }), InvalidMaterializeMessageError);
    }
    assert.throws(
      () => buildMaterializeRequest({ ...base, template: [] as never }),
      InvalidMaterializeMessageError,
    );
    assert.throws(
      () => buildMaterializeRequest({ ...base, vars: { big: 'x'.repeat(200) }, maxInputBytes: 100 }),
      InvalidMaterializeMessageError,
    );
  });

  test('a reply routes inputs.result to the target with the marker removed', () => {
    const reply = create(DataPacketSchema, {
      metadata: { [MATERIALIZE_NEXT_STEP_KEY]: ' summarize ', keep: 'yes' },
      inputs: { result: { text: 'hello' } },
      payload: { p: 1 },
    });
    const parsed = parseMaterializeReply(reply);
    assert.equal(parsed.kind, 'result');
    assert.equal(parsed.targetStepId, 'summarize');
    assert.deepEqual(parsed.inputs, { text: 'hello' });
    assert.deepEqual(parsed.packet.inputs, { text: 'hello' });
    assert.deepEqual(parsed.packet.metadata, { keep: 'yes' });
    assert.deepEqual(parsed.packet.payload, { p: 1 });
  });

  test('heartbeats are ignored and packets without a target are unaddressed', () => {
    assert.deepEqual(parseMaterializeReply(newHeartbeatPacket()), { kind: 'heartbeat' });
    assert.deepEqual(parseMaterializeReply(create(DataPacketSchema, { inputs: { result: {} } })), {
      kind: 'unaddressed',
    });
  });

  test('a reply whose inputs.result is missing or not an object is refused', () => {
    const meta = { [MATERIALIZE_NEXT_STEP_KEY]: 'summarize' };
    for (const inputs of [
      undefined,
      {},
      { result: 'text' },
      { result: [1] },
      { result: null },
      { other: {} },
    ]) {
      const reply = create(DataPacketSchema, { metadata: meta, ...(inputs === undefined ? {} : { inputs }) });
      assert.throws(
        () => parseMaterializeReply(reply),
        InvalidMaterializeMessageError,
        JSON.stringify(inputs),
      );
    }
    const badTarget = create(DataPacketSchema, {
      metadata: { [MATERIALIZE_NEXT_STEP_KEY]: '../x' },
      inputs: { result: {} },
    });
    assert.throws(() => parseMaterializeReply(badTarget), InvalidMaterializeMessageError);
  });

  test('materialize step ids stay within 63 characters and distinct', () => {
    assert.equal(materializeStepId('summarize'), 'materialize-summarize');
    const long1 = materializeStepId(`${'a'.repeat(60)}-1`);
    const long2 = materializeStepId(`${'a'.repeat(60)}-2`);
    assert.ok(long1.length <= 63 && long2.length <= 63);
    assert.notEqual(long1, long2);
    assert.match(long1, /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/);
  });
});

describe('MaterializeRuns', () => {
  const owner = { namespace: 'ns', storyRun: 'run-1', targetStepId: 'summarize' };

  test('the same story run and target reuse their materialize run', () => {
    const runs = new MaterializeRuns();
    const first = runs.ensure(owner);
    assert.equal(first.created, true);
    assert.equal(first.run.name, 'run-1-materialize-summarize');
    assert.equal(first.run.stepId, 'materialize-summarize');
    const again = runs.ensure(owner);
    assert.equal(again.created, false);
    assert.equal(again.run, first.run);
    assert.deepEqual(
      { created: runs.stats().created, reused: runs.stats().reused, runs: runs.stats().runs },
      { created: 1, reused: 1, runs: 1 },
    );
  });

  test('another story run whose name collides is refused the run', () => {
    const runs = new MaterializeRuns();
    runs.ensure({ namespace: 'ns', storyRun: 'x', targetStepId: 'y-materialize-z' });
    assert.throws(
      () => runs.ensure({ namespace: 'ns', storyRun: 'x-materialize-y', targetStepId: 'z' }),
      MaterializeRunNotOwnedError,
    );
    assert.equal(runs.stats().refusedMismatch, 1);
    // Other namespaces are separate.
    assert.equal(
      runs.ensure({ namespace: 'other', storyRun: 'x-materialize-y', targetStepId: 'z' }).created,
      true,
    );
  });

  test('a run observed without an owner, or for another target, is never reused', () => {
    const runs = new MaterializeRuns();
    runs.observe({ namespace: 'ns', name: 'run-1-materialize-summarize' });
    assert.throws(() => runs.ensure(owner), MaterializeRunNotOwnedError);
    assert.equal(runs.stats().refusedUnowned, 1);
    runs.observe({
      namespace: 'ns',
      name: 'run-1-materialize-summarize',
      storyRun: 'run-1',
      targetStepId: 'other',
    });
    assert.throws(() => runs.ensure(owner), MaterializeRunNotOwnedError);
    assert.equal(runs.stats().refusedMismatch, 1);
  });

  test('the registry is bounded and frees a story run’s entries when it ends', () => {
    const runs = new MaterializeRuns({ maxRuns: 2 });
    runs.ensure(owner);
    runs.ensure({ ...owner, targetStepId: 'other' });
    assert.throws(
      () => runs.ensure({ ...owner, storyRun: 'run-2' }),
      (e: unknown) => e instanceof MaterializeRunLimitError && e.retryable,
    );
    assert.equal(runs.stats().refusedFull, 1);
    assert.equal(runs.release('ns', 'run-1'), 2);
    assert.equal(runs.ensure({ ...owner, storyRun: 'run-2' }).created, true);
    assert.equal(runs.remove('ns', 'run-2-materialize-summarize'), true);
    assert.equal(runs.stats().runs, 0);
    assert.throws(() => new MaterializeRuns({ maxRuns: 0 }), ConfigError);
  });

  test('invalid owners are refused', () => {
    const runs = new MaterializeRuns();
    assert.throws(() => runs.ensure({ ...owner, namespace: 'a/b' }), InvalidMaterializeMessageError);
    assert.throws(() => runs.ensure({ ...owner, storyRun: '' }), InvalidMaterializeMessageError);
    assert.throws(() => runs.ensure({ ...owner, targetStepId: 'x/../y' }), InvalidMaterializeMessageError);
  });
});
