// Every wire limit of A1 is enforced, and the refusal names the field and maps to INVALID_ARGUMENT.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';

import { ProcessRequestSchema } from '../../src/gen/transport/v1/hub_pb.ts';
import { FlowControlSignal } from '../../src/gen/transport/v1/transport_pb.ts';
import { grpcStatusOf, InvalidHubRequestError } from '../../src/hub/wire/errors.ts';
import { checkProcessRequest, wireLimits } from '../../src/hub/wire/validate.ts';

type RequestInit = MessageInitShape<typeof ProcessRequestSchema>;

const MiB = 1024 * 1024;
const binary = (payload: Uint8Array) => ({ case: 'binary' as const, value: { payload } });
const chunk = { streamId: 's', chunkId: 'c', chunkIndex: 0, chunkCount: 2 };

function check(init: RequestInit) {
  return checkProcessRequest(create(ProcessRequestSchema, init));
}

function assertRefused(init: RequestInit, field: string, pattern?: RegExp): void {
  const result = check(init);
  if (result.ok) assert.fail(`expected ${field} to be refused`);
  assert.ok(result.problem instanceof InvalidHubRequestError);
  assert.equal(result.problem.field, field);
  assert.equal(result.problem.code, 'WEFT_HUB_INVALID_REQUEST');
  assert.equal(grpcStatusOf(result.problem).code, status.INVALID_ARGUMENT);
  assert.ok(result.problem.message.includes(field));
  if (pattern !== undefined) assert.match(result.problem.message, pattern);
}

function assertAccepted(init: RequestInit): void {
  const result = check(init);
  assert.equal(result.ok, true, result.ok ? '' : result.problem.message);
}

const manyPairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

describe('checkProcessRequest', () => {
  test('an empty request, a plain packet and a full flow message are accepted', () => {
    assertAccepted({});
    assertAccepted({ packet: { payload: { a: 1 }, metadata: { k: 'v' } } });
    assertAccepted({
      flow: { ack: 3n, partitionAcks: [{ partition: 'p', ack: 1n }], signal: FlowControlSignal.RESUME },
    });
  });

  test('chunk fields must be empty while chunk_count is 0', () => {
    for (const envelope of [{ chunkId: 'c' }, { chunkIndex: 1 }, { chunkBytes: 5 }, { totalBytes: 5 }]) {
      assertRefused({ packet: { envelope } }, 'packet.envelope', /chunk_count is 0/);
    }
    assertAccepted({ packet: { envelope: { streamId: 's', sequence: 4n, partition: 'p' } } });
  });

  test('a chunk needs chunk_id and stream_id, and an index below the count', () => {
    const frame = binary(new Uint8Array(1));
    assertAccepted({ packet: { frame, envelope: chunk } });
    assertRefused({ packet: { frame, envelope: { ...chunk, chunkId: '' } } }, 'packet.envelope.chunk_id');
    assertRefused({ packet: { frame, envelope: { ...chunk, streamId: '' } } }, 'packet.envelope.stream_id');
    assertRefused(
      { packet: { frame, envelope: { ...chunk, chunkIndex: 2 } } },
      'packet.envelope.chunk_index',
    );
    assertRefused({ packet: { envelope: chunk } }, 'packet.envelope', /no binary frame/);
  });

  test('chunk_count ≤ 256, chunk_bytes ≤ 10 MiB, total_bytes ≤ 64 MiB', () => {
    const frame = binary(new Uint8Array(1));
    assertAccepted({
      packet: { frame, envelope: { ...chunk, chunkCount: 256, chunkBytes: 10 * MiB, totalBytes: 64 * MiB } },
    });
    assertRefused(
      { packet: { frame, envelope: { ...chunk, chunkCount: 257 } } },
      'packet.envelope.chunk_count',
    );
    assertRefused(
      { packet: { frame, envelope: { ...chunk, chunkBytes: 10 * MiB + 1 } } },
      'packet.envelope.chunk_bytes',
    );
    assertRefused(
      { packet: { frame, envelope: { ...chunk, totalBytes: 64 * MiB + 1 } } },
      'packet.envelope.total_bytes',
    );
  });

  test('identifiers are at most 128 characters, counted as code points', () => {
    const max = 'x'.repeat(128);
    const over = 'x'.repeat(129);
    // 128 astral characters are 256 UTF-16 units but 128 characters.
    assertAccepted({ packet: { envelope: { streamId: '😀'.repeat(128) } } });
    for (const field of ['streamId', 'partition'] as const) {
      assertAccepted({ packet: { envelope: { [field]: max } } });
    }
    assertRefused({ packet: { envelope: { streamId: over } } }, 'packet.envelope.stream_id');
    assertRefused({ packet: { envelope: { partition: over } } }, 'packet.envelope.partition');
    assertRefused(
      { packet: { frame: binary(new Uint8Array(1)), envelope: { ...chunk, chunkId: over } } },
      'packet.envelope.chunk_id',
    );
    assertRefused({ flow: { partitionAcks: [{ partition: over }] } }, 'flow.partition_acks[0].partition');
    for (const field of ['name', 'kind', 'mode'] as const) {
      assertRefused({ packet: { transports: [{}, { [field]: over }] } }, `packet.transports[1].${field}`);
    }
  });

  test('typed transport config and frame strings have their own bounds', () => {
    assertRefused(
      { packet: { transports: [{ typedConfig: { transportRef: 'r'.repeat(254) } }] } },
      'packet.transports[0].typed_config.transport_ref',
    );
    assertRefused(
      { packet: { transports: [{ typedConfig: { modeReason: 'r'.repeat(513) } }] } },
      'packet.transports[0].typed_config.mode_reason',
    );
    assertRefused(
      { packet: { frame: { case: 'audio', value: { codec: 'c'.repeat(33) } } } },
      'packet.audio.codec',
    );
    assertRefused(
      { packet: { frame: { case: 'video', value: { codec: 'c'.repeat(33) } } } },
      'packet.video.codec',
    );
    assertRefused(
      { packet: { frame: { case: 'binary', value: { mimeType: 'm'.repeat(256) } } } },
      'packet.binary.mime_type',
    );
  });

  test('every frame kind is at most 10 MiB', () => {
    const max = new Uint8Array(wireLimits.maxFrameBytes);
    const over = new Uint8Array(wireLimits.maxFrameBytes + 1);
    assertAccepted({ packet: { frame: binary(max) } });
    assertRefused({ packet: { frame: binary(over) } }, 'packet.binary.payload');
    assertRefused({ packet: { frame: { case: 'audio', value: { pcm: over } } } }, 'packet.audio.pcm');
    assertRefused({ packet: { frame: { case: 'video', value: { payload: over } } } }, 'packet.video.payload');
  });

  test('stated audio and video parameters must be plausible', () => {
    const audio = (value: object) => ({ packet: { frame: { case: 'audio' as const, value } } });
    assertAccepted(audio({ sampleRateHz: 48_000, channels: 2 }));
    assertAccepted(audio({}));
    assertRefused(audio({ sampleRateHz: 100 }), 'packet.audio.sample_rate_hz');
    assertRefused(audio({ channels: 9 }), 'packet.audio.channels');
    const video = (value: object) => ({ packet: { frame: { case: 'video' as const, value } } });
    assertAccepted(video({ width: 16_384, height: 16_384 }));
    assertRefused(video({ width: 16_385 }), 'packet.video.width');
    assertRefused(video({ height: 16_385 }), 'packet.video.height');
  });

  test('at most 256 partition acks and a known signal', () => {
    const acks = (n: number) => Array.from({ length: n }, (_, i) => ({ partition: `p${i}`, ack: 1n }));
    assertAccepted({ flow: { partitionAcks: acks(256) } });
    assertRefused({ flow: { partitionAcks: acks(257) } }, 'flow.partition_acks');
    assertRefused({ flow: { signal: 3 as FlowControlSignal } }, 'flow.signal', /unknown value 3/);
  });

  test('metadata: at most 100 pairs, keys 1..128 characters, values at most 1024', () => {
    assertAccepted({ packet: { metadata: manyPairs(100) } });
    assertRefused({ packet: { metadata: manyPairs(101) } }, 'packet.metadata', /100 pairs/);
    assertRefused({ packet: { metadata: { '': 'v' } } }, 'packet.metadata', /empty key/);
    assertAccepted({ packet: { metadata: { ['k'.repeat(128)]: 'v'.repeat(1024) } } });
    assertRefused({ packet: { metadata: { ['k'.repeat(129)]: 'v' } } }, 'packet.metadata', /key/);
    assertRefused({ packet: { metadata: { big: 'v'.repeat(1025) } } }, 'packet.metadata["big"]');
  });

  test('at most 10 transport descriptors', () => {
    const transports = (n: number) => Array.from({ length: n }, () => ({ name: 't' }));
    assertAccepted({ packet: { transports: transports(10) } });
    assertRefused({ packet: { transports: transports(11) } }, 'packet.transports');
  });

  test('flow is checked before the packet, matching the order the hub applies them', () => {
    assertRefused(
      { flow: { signal: 9 as FlowControlSignal }, packet: { envelope: { chunkId: 'c' } } },
      'flow.signal',
    );
  });
});
