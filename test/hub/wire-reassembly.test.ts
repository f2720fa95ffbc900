// Chunked binary payloads are put back together within bounded memory and time.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';

import { DataPacketSchema, type DataPacket } from '../../src/gen/transport/v1/hub_pb.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { ChunkBudgetExceededError, ChunkInvalidError, grpcStatusOf } from '../../src/hub/wire/errors.ts';
import { ChunkReassembler } from '../../src/hub/wire/reassembly.ts';

interface ChunkSpec {
  index: number;
  count: number;
  bytes: number[];
  streamId?: string;
  chunkId?: string;
  totalBytes?: number;
  chunkBytes?: number;
}

function chunkPacket(spec: ChunkSpec): DataPacket {
  return create(DataPacketSchema, {
    metadata: { index: String(spec.index) },
    frame: {
      case: 'binary',
      value: { payload: new Uint8Array(spec.bytes), mimeType: 'application/x-test' },
    },
    envelope: {
      streamId: spec.streamId ?? 's1',
      sequence: BigInt(spec.index + 10),
      chunkId: spec.chunkId ?? 'c1',
      chunkIndex: spec.index,
      chunkCount: spec.count,
      totalBytes: spec.totalBytes ?? 0,
      chunkBytes: spec.chunkBytes ?? 0,
    },
  });
}

function completed(result: ReturnType<ChunkReassembler['add']>): DataPacket {
  assert.ok(result.complete, 'expected the message to be complete');
  return result.packet;
}

function refused<E extends Error>(kind: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
}

describe('ChunkReassembler', () => {
  test('an unchunked packet passes straight through', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    const packet = create(DataPacketSchema, { payload: { a: 1 } });
    assert.equal(completed(reassembler.add(packet)), packet);
    assert.equal(reassembler.stats().partials, 0);
  });

  test('chunks in order become one packet with chunk 0 as the base and chunk fields cleared', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    assert.equal(
      reassembler.add(chunkPacket({ index: 0, count: 3, bytes: [1, 2], totalBytes: 5 })).complete,
      false,
    );
    assert.equal(
      reassembler.add(chunkPacket({ index: 1, count: 3, bytes: [3], totalBytes: 5 })).complete,
      false,
    );
    assert.deepEqual(reassembler.stats().inFlightBytes, 3);
    const whole = completed(
      reassembler.add(chunkPacket({ index: 2, count: 3, bytes: [4, 5], totalBytes: 5 })),
    );
    assert.equal(whole.frame.case, 'binary');
    assert.deepEqual([...whole.frame.value.payload], [1, 2, 3, 4, 5]);
    assert.equal(whole.frame.value.mimeType, 'application/x-test');
    assert.deepEqual(whole.metadata, { index: '0' });
    assert.ok(whole.envelope !== undefined);
    assert.equal(whole.envelope.sequence, 10n);
    assert.equal(whole.envelope.streamId, 's1');
    assert.equal(whole.envelope.chunkId, '');
    assert.equal(whole.envelope.chunkCount, 0);
    assert.equal(whole.envelope.totalBytes, 0);
    const stats = reassembler.stats();
    assert.equal(stats.completed, 1);
    assert.equal(stats.partials, 0);
    assert.equal(stats.inFlightBytes, 0);
  });

  test('chunks out of order are joined by index', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    reassembler.add(chunkPacket({ index: 2, count: 3, bytes: [3] }));
    reassembler.add(chunkPacket({ index: 0, count: 3, bytes: [1] }));
    const whole = completed(reassembler.add(chunkPacket({ index: 1, count: 3, bytes: [2] })));
    assert.ok(whole.frame.case === 'binary');
    assert.deepEqual([...whole.frame.value.payload], [1, 2, 3]);
    assert.deepEqual(whole.metadata, { index: '0' });
  });

  test('messages with different chunk ids or streams do not mix', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'a' }));
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [9], chunkId: 'a', streamId: 's2' }));
    const a = completed(reassembler.add(chunkPacket({ index: 1, count: 2, bytes: [2], chunkId: 'a' })));
    assert.ok(a.frame.case === 'binary');
    assert.deepEqual([...a.frame.value.payload], [1, 2]);
    assert.equal(reassembler.stats().partials, 1);
  });

  test('a duplicate chunk is refused, and its partial message discarded', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1] }));
    const error = refused(ChunkInvalidError, () =>
      reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1] })),
    );
    assert.equal(error.reason, 'duplicate');
    assert.equal(error.code, 'WEFT_HUB_CHUNK_INVALID');
    assert.equal(grpcStatusOf(error).code, status.INVALID_ARGUMENT);
    assert.match(error.message, /chunk 0 of c1 arrived twice/);
    const stats = reassembler.stats();
    assert.equal(stats.refused.duplicate, 1);
    assert.equal(stats.discarded, 1);
    assert.equal(stats.partials, 0);
    assert.equal(stats.inFlightBytes, 0);
  });

  test('out-of-range, inconsistent and oversized chunks are refused with their reason', () => {
    const reassembler = new ChunkReassembler(new FakeClock(), { maxChunkBytes: 4 });
    const cases: [ChunkSpec | DataPacket, string][] = [
      [{ index: 2, count: 2, bytes: [1] }, 'out_of_range'],
      [{ index: 0, count: 300, bytes: [1] }, 'out_of_range'],
      [{ index: 0, count: 2, bytes: [1, 2, 3, 4, 5] }, 'chunk_too_large'],
      [{ index: 0, count: 2, bytes: [1], chunkBytes: 2 }, 'size_mismatch'],
      [{ index: 0, count: 2, bytes: [1], streamId: '' }, 'missing_id'],
      [create(DataPacketSchema, { envelope: { chunkId: 'c', chunkCount: 2, streamId: 's' } }), 'not_binary'],
      [create(DataPacketSchema, { envelope: { chunkId: 'c' } }), 'not_chunked'],
    ];
    for (const [spec, reason] of cases) {
      const packet = 'index' in spec ? chunkPacket(spec) : spec;
      assert.equal(refused(ChunkInvalidError, () => reassembler.add(packet)).reason, reason);
    }
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1] }));
    assert.equal(
      refused(ChunkInvalidError, () => reassembler.add(chunkPacket({ index: 1, count: 3, bytes: [1] })))
        .reason,
      'header_mismatch',
    );
    assert.equal(reassembler.stats().refused.out_of_range, 2);
  });

  test('chunks that do not add up to total_bytes are refused', () => {
    const reassembler = new ChunkReassembler(new FakeClock());
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], totalBytes: 3 }));
    const short = refused(ChunkInvalidError, () =>
      reassembler.add(chunkPacket({ index: 1, count: 2, bytes: [2], totalBytes: 3 })),
    );
    assert.equal(short.reason, 'size_mismatch');
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1, 2], totalBytes: 3, chunkId: 'b' }));
    const over = refused(ChunkInvalidError, () =>
      reassembler.add(chunkPacket({ index: 1, count: 2, bytes: [3, 4], totalBytes: 3, chunkId: 'b' })),
    );
    assert.equal(over.reason, 'size_mismatch');
    assert.equal(reassembler.stats().partials, 0);
  });

  test('a partial message idle for the TTL expires and frees its bytes', () => {
    const clock = new FakeClock();
    const reassembler = new ChunkReassembler(clock);
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1, 2, 3] }));
    clock.advance(119_999);
    assert.equal(reassembler.sweep(), 0);
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'fresh' }));
    clock.advance(1);
    assert.equal(reassembler.sweep(), 1, 'the first message is 2 min idle');
    assert.deepEqual(
      {
        partials: reassembler.stats().partials,
        bytes: reassembler.stats().inFlightBytes,
        expired: reassembler.stats().expired,
      },
      { partials: 1, bytes: 1, expired: 1 },
    );
    // The late chunk starts a new partial message rather than completing the expired one.
    assert.equal(reassembler.add(chunkPacket({ index: 1, count: 2, bytes: [4] })).complete, false);
  });

  test('adding a chunk keeps its message alive: the TTL counts from the last chunk', () => {
    const clock = new FakeClock();
    const reassembler = new ChunkReassembler(clock, { ttlMs: 1000 });
    reassembler.add(chunkPacket({ index: 0, count: 3, bytes: [1] }));
    clock.advance(900);
    reassembler.add(chunkPacket({ index: 1, count: 3, bytes: [2] }));
    clock.advance(900);
    assert.ok(reassembler.add(chunkPacket({ index: 2, count: 3, bytes: [3] })).complete);
  });

  test('bytes in flight are bounded globally', () => {
    const reassembler = new ChunkReassembler(new FakeClock(), { maxInFlightBytes: 4 });
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1, 2, 3], chunkId: 'a' }));
    const error = refused(ChunkBudgetExceededError, () =>
      reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1, 2], chunkId: 'b' })),
    );
    assert.equal(error.budget, 'in_flight_bytes');
    assert.equal(error.retryable, true);
    assert.equal(grpcStatusOf(error).code, status.RESOURCE_EXHAUSTED);
    assert.equal(reassembler.stats().refused.in_flight_bytes, 1);
    assert.equal(reassembler.stats().partials, 1, 'the refused chunk opened nothing');
    assert.ok(reassembler.add(chunkPacket({ index: 1, count: 2, bytes: [4], chunkId: 'a' })).complete);
  });

  test('partial messages are bounded per stream and in total', () => {
    const reassembler = new ChunkReassembler(new FakeClock(), { maxPartialsPerStream: 2, maxPartials: 3 });
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'a' }));
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'b' }));
    assert.equal(
      refused(ChunkBudgetExceededError, () =>
        reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'c' })),
      ).budget,
      'partials_per_stream',
    );
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'a', streamId: 's2' }));
    assert.equal(
      refused(ChunkBudgetExceededError, () =>
        reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'b', streamId: 's3' })),
      ).budget,
      'partials_global',
    );
    assert.equal(reassembler.discardStream('s1'), 2);
    assert.equal(reassembler.stats().partials, 1);
    assert.equal(reassembler.stats().discarded, 2);
    reassembler.add(chunkPacket({ index: 0, count: 2, bytes: [1], chunkId: 'c' }));
  });

  test('config values must be positive integers', () => {
    assert.throws(() => new ChunkReassembler(new FakeClock(), { ttlMs: 0 }), /hub\.chunks\.ttlMs/);
  });
});
