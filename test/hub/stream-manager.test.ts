// The stream manager: per-key ordering, buffering and retry, flow and acks, blue-green handoff,
// and the background tick. Everything runs on a FakeClock; the connector is a FakeTransport.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Connection, StreamOptions } from '../../src/hub/stream-manager.ts';
import {
  FlakyStream,
  makeManager,
  seededRandom,
  settledWithin,
  type Wire,
} from './helpers/stream-manager-harness.ts';

const K = 'ns1/run/step';
const K2 = 'ns2/run/step';
const atLeastOnce: StreamOptions = { delivery: { semantics: 'at_least_once' } };

function settleCounts(settled: Map<number, number>, ids: number[]): number[] {
  return ids.map((id) => settled.get(id) ?? 0);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('StreamManager: the reference cases', () => {
  test('packets buffered while a step has no stream are flushed to it in order when it connects', async () => {
    const h = makeManager();
    for (const id of range(1, 5)) assert.equal(await h.manager.sendOrBuffer(K, h.packet(id)), true);
    assert.equal(h.manager.stats().buffered, 5);
    assert.equal(h.manager.stats().bufferedBy.stream_not_found, 5);

    const stream = h.stream();
    const result = await h.manager.addStream(K, stream, 1);
    assert.equal(result.added, true);
    assert.deepEqual(stream.transport.ids, [1, 2, 3, 4, 5]);
    assert.deepEqual(
      settleCounts(h.settled, range(1, 5)),
      [1, 1, 1, 1, 1],
      'best effort settles when written',
    );
    const stats = h.manager.stats();
    assert.equal(stats.buffered, 0);
    assert.equal(stats.buffers, 0);
    assert.equal(stats.sent, 5);
    assert.equal(h.manager.phase(K), 'ready');
  });

  test('a send that fails is buffered and retried on tick once the retry delay has passed', async () => {
    const h = makeManager();
    const options: StreamOptions = {
      buffer: { retry: { maxRetries: 5, delayMs: 1_000, backoff: 'constant' } },
    };
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, options);
    stream.failures = 2;

    assert.equal(await h.manager.sendOrBuffer(K, h.packet(1)), true, 'buffered, not dropped');
    assert.equal(h.manager.stats().bufferedBy.send_failed, 1);
    assert.equal(h.manager.stats().sendFailures, 1);
    assert.equal(h.settled.get(1), undefined);

    await h.manager.tick(); // first retry is due at once, and fails: the next waits 1 s
    assert.equal(stream.attempts, 2);
    assert.deepEqual(stream.transport.ids, []);

    await h.clock.advanceAsync(999);
    await h.manager.tick();
    assert.equal(stream.attempts, 2, 'no retry before the delay');

    await h.clock.advanceAsync(1);
    await h.manager.tick();
    assert.deepEqual(stream.transport.ids, [1]);
    assert.equal(h.settled.get(1), 1);
    assert.equal(h.manager.stats().buffers, 0);
  });

  test('a flush that keeps failing gives up after maxRetries and drops the buffer (retry_exhausted)', async () => {
    const h = makeManager();
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, {
      buffer: { retry: { maxRetries: 2, delayMs: 100, backoff: 'constant' } },
    });
    stream.failures = 100;
    await h.manager.sendOrBuffer(K, h.packet(1));
    await h.manager.tick();
    await h.clock.advanceAsync(100);
    await h.manager.tick();
    assert.deepEqual(h.drops, [{ key: K, reason: 'retry_exhausted' }]);
    assert.equal(h.settled.get(1), 1);
    assert.equal(h.manager.stats().buffered, 0);
  });

  test('with retries disabled (maxRetries 0) a packet that cannot be sent is dropped as retry_disabled and settled', async () => {
    const h = makeManager();
    const options: StreamOptions = { buffer: { retry: { maxRetries: 0 } } };
    assert.equal(await h.manager.sendOrBuffer(K, h.packet(1), options), false);
    assert.deepEqual(h.drops, [{ key: K, reason: 'retry_disabled' }]);
    assert.equal(h.settled.get(1), 1);
    assert.equal(h.manager.stats().drops.retry_disabled, 1);
    assert.equal(h.manager.stats().buffered, 0);
    assert.equal(h.manager.stats().buffers, 0, 'no empty buffer is left holding a slot');

    const stream = h.stream();
    await h.manager.addStream(K, stream, 1);
    stream.failures = 1;
    assert.equal(await h.manager.sendOrBuffer(K, h.packet(2)), false, 'a failed send is not buffered either');
    assert.equal(h.settled.get(2), 1);
    assert.equal(h.manager.stats().drops.retry_disabled, 2);
    assert.equal(h.manager.stats().buffers, 0);
  });

  test('a new packet never overtakes buffered ones: the next send flushes them first', async () => {
    const h = makeManager();
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, {
      buffer: { retry: { maxRetries: 10, delayMs: 1_000, backoff: 'constant' } },
    });
    stream.failures = 2;
    await h.manager.sendOrBuffer(K, h.packet(1)); // fails: buffered (send_failed)
    await h.manager.sendOrBuffer(K, h.packet(2)); // flush fails again: buffered behind 1 (buffer_drain)
    assert.equal(h.manager.phase(K), 'draining');
    await h.manager.sendOrBuffer(K, h.packet(3)); // retry not due: buffered (retry_wait)
    assert.deepEqual(stream.transport.ids, []);

    await h.clock.advanceAsync(1_000);
    await h.manager.sendOrBuffer(K, h.packet(4));
    assert.deepEqual(stream.transport.ids, [1, 2, 3, 4]);
    const by = h.manager.stats().bufferedBy;
    assert.deepEqual([by.send_failed, by.buffer_drain, by.retry_wait], [1, 1, 1]);
    assert.equal(h.manager.phase(K), 'ready');
  });

  test('with drainTimeoutMs and no stream, buffered packets are dropped as timeout after the deadline', async () => {
    const h = makeManager();
    const options: StreamOptions = { drainTimeoutMs: 1_000 };
    await h.manager.sendOrBuffer(K, h.packet(1), options);
    await h.manager.sendOrBuffer(K, h.packet(2), options);
    assert.deepEqual(h.signals, [{ key: K, signal: 'pause' }], 'one PAUSE when the drain starts');

    await h.clock.advanceAsync(1_000);
    await h.manager.tick();
    assert.equal(h.manager.stats().buffered, 2, 'not before the deadline');

    await h.clock.advanceAsync(1);
    await h.manager.tick();
    assert.deepEqual(
      h.drops.map((d) => d.reason),
      ['timeout', 'timeout'],
    );
    assert.deepEqual(settleCounts(h.settled, [1, 2]), [1, 1]);
    assert.equal(h.manager.stats().buffers, 0);
    assert.deepEqual(
      h.signals.map((s) => s.signal),
      ['pause', 'resume'],
      'the producer is resumed once the drain is over',
    );
  });

  test('ns1/run/step and ns2/run/step are independent: own stream, buffer and sequence space', async () => {
    const h = makeManager();
    const s1 = h.stream();
    await h.manager.addStream(K, s1, 1, atLeastOnce);
    await h.manager.sendOrBuffer(K, h.packet(1), atLeastOnce);
    await h.manager.sendOrBuffer(K2, h.packet(2), atLeastOnce);
    await h.manager.sendOrBuffer(K, h.packet(3), atLeastOnce);
    assert.deepEqual(s1.transport.ids, [1, 3]);
    assert.deepEqual(
      s1.transport.packets.map((p) => p.sequence),
      [1n, 2n],
    );
    assert.equal(h.manager.stats().buffered, 1);

    const s2 = h.stream();
    await h.manager.addStream(K2, s2, 1, atLeastOnce);
    assert.deepEqual(s2.transport.packets, [{ kind: 'packet', id: 2, sequence: 1n, partition: '' }]);
    assert.equal(h.manager.stats().keys, 2);
    assert.equal(h.manager.stats().activeStreams, 2);
  });

  test('under per_partition ordering each partition has its own sequence space', async () => {
    const h = makeManager();
    const options: StreamOptions = { delivery: { ordering: 'per_partition' } };
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, options);
    const partitions = ['a', 'a', 'b', 'a', 'b', ''];
    for (const [i, partition] of partitions.entries()) {
      await h.manager.sendOrBuffer(K, h.packet(i + 1, { partition }));
    }
    assert.deepEqual(
      stream.transport.packets.map((p) => `${p.partition}:${p.sequence}`),
      ['a:1', 'a:2', 'b:1', 'a:3', 'b:2', ':1'],
    );
  });

  test("a packet copied from another step's output is renumbered in this key's own stream id and sequence", async () => {
    const h = makeManager();
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, atLeastOnce);
    const packet = h.packet(1, { streamId: 'ns1/run/upstream', sequence: 42n });
    await h.manager.sendOrBuffer(K, packet);
    assert.deepEqual(packet.envelope, { streamId: K, sequence: 1n, partition: '' });
    assert.equal(stream.transport.packets[0]?.sequence, 1n);
  });

  test('partition acks release the acknowledged packets and settle each exactly once', async () => {
    const h = makeManager();
    const options: StreamOptions = { delivery: { ordering: 'per_partition', semantics: 'at_least_once' } };
    await h.manager.addStream(K, h.stream(), 1, options);
    await h.manager.sendOrBuffer(K, h.packet(1, { partition: 'a' }));
    await h.manager.sendOrBuffer(K, h.packet(2, { partition: 'a' }));
    await h.manager.sendOrBuffer(K, h.packet(3, { partition: 'b' }));
    assert.deepEqual(settleCounts(h.settled, [1, 2, 3]), [0, 0, 0], 'at least once settles on ack');

    await h.manager.applyFlow(K, { partitionAcks: [{ partition: 'a', ack: 2n }] });
    assert.deepEqual(settleCounts(h.settled, [1, 2, 3]), [1, 1, 0]);
    assert.equal(h.manager.delivery(K)?.stats().unacked, 1);

    await h.manager.applyFlow(K, { partitionAcks: [{ partition: 'a', ack: 2n }] });
    await h.manager.applyFlow(K, { partitionAcks: [{ partition: 'b', ack: 1n }] });
    assert.deepEqual(settleCounts(h.settled, [1, 2, 3]), [1, 1, 1]);
    assert.equal(h.manager.delivery(K)?.stats().unacked, 0);
  });

  test('recording a send of an already acknowledged sequence holds nothing for replay', async () => {
    const h = makeManager();
    await h.manager.addStream(K, h.stream(), 1, atLeastOnce);
    await h.manager.sendOrBuffer(K, h.packet(1));
    await h.manager.applyFlow(K, { ack: 5n });
    const delivery = h.manager.delivery(K);
    assert.ok(delivery);
    assert.equal(delivery.recordSent(3n, '', h.packet(99), 10), true);
    assert.equal(delivery.stats().unacked, 0);
    // The next packet is numbered past the ack, so it is held.
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1);
    await h.manager.sendOrBuffer(K, h.packet(2));
    assert.equal(stream.transport.packets.at(-1)?.sequence, 6n);
    assert.equal(delivery.stats().unacked, 1);
  });

  test('many concurrent sends to a new key create one state and number the packets once each', async () => {
    const h = makeManager();
    const sends = range(1, 50).map((id) => h.manager.sendOrBuffer(K, h.packet(id), atLeastOnce));
    assert.deepEqual(new Set(await Promise.all(sends)), new Set([true]));
    assert.equal(h.manager.stats().keys, 1);
    assert.equal(h.manager.stats().buffers, 1);
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1);
    assert.deepEqual(stream.transport.ids, range(1, 50));
    assert.deepEqual(
      stream.transport.packets.map((p) => Number(p.sequence)),
      range(1, 50),
    );
  });
});

describe('StreamManager: shadow, cutover and remove', () => {
  test('a newer generation takes over at once and the old stream is closed', async () => {
    const h = makeManager();
    const blue = h.stream();
    const green = h.stream();
    await h.manager.addStream(K, blue, 1);
    const result = await h.manager.addStream(K, green, 2);
    assert.equal(result.added, true);
    assert.equal(blue.closed, true);
    assert.equal(blue.transport.ended, true);
    assert.equal(green.closed, false);
    assert.equal(h.manager.stats().activeStreams, 1);
    assert.deepEqual(
      h.handoffs.map((e) => `${e.phase}:${e.generation}`),
      ['ready:1', 'warming:2', 'cutover:2', 'ready:2'],
    );
    assert.equal(h.handoffs[2]?.reason, 'blue_green_cutover');
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.deepEqual(green.transport.ids, [1]);
    assert.deepEqual(blue.transport.ids, []);
  });

  test('the same generation replaces the active stream and closes the old one', async () => {
    const h = makeManager();
    const first = h.stream();
    const second = h.stream();
    await h.manager.addStream(K, first, 3);
    await h.manager.addStream(K, second, 3);
    assert.equal(first.closed, true);
    assert.equal(h.manager.stats().activeStreams, 1);
    assert.deepEqual(
      h.handoffs.map((e) => `${e.phase}:${e.reason}`),
      ['ready:stream_connected', 'cutover:stream_replaced', 'ready:cutover_complete'],
    );
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.deepEqual(second.transport.ids, [1]);
  });

  test('removing a connection that was already replaced changes nothing', async () => {
    const h = makeManager();
    const blue = h.stream();
    const green = h.stream();
    const old = await h.manager.addStream(K, blue, 1);
    await h.manager.addStream(K, green, 2);
    assert.equal(old.added, true);
    const events = h.handoffs.length;
    await h.manager.removeStream(old.connection);
    assert.equal(h.manager.stats().activeStreams, 1);
    assert.equal(h.manager.phase(K), 'ready');
    assert.equal(h.handoffs.length, events);
    assert.equal(green.closed, false);
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.deepEqual(green.transport.ids, [1]);
  });

  test('removing the current stream closes it and leaves the key pending, buffering what comes next', async () => {
    const h = makeManager();
    const stream = h.stream();
    const added = await h.manager.addStream(K, stream, 1);
    assert.equal(added.added, true);
    await h.manager.removeStream(added.connection);
    assert.equal(stream.closed, true);
    assert.equal(h.manager.phase(K), 'pending');
    assert.equal(h.manager.stats().activeStreams, 0);
    assert.deepEqual(h.handoffs.at(-1), {
      key: K,
      phase: 'pending',
      reason: 'stream_removed',
      generation: 1,
    });
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.equal(h.manager.stats().bufferedBy.stream_not_found, 1);
    await h.manager.removeStream(added.connection); // twice is harmless
    assert.equal(h.manager.stats().activeStreams, 0);
  });

  test('an older generation than the active one is refused as superseded', async () => {
    const h = makeManager();
    const current = h.stream();
    const stale = h.stream();
    await h.manager.addStream(K, current, 2);
    const result = await h.manager.addStream(K, stale, 1);
    assert.deepEqual(result, { added: false, reason: 'superseded', activeGeneration: 2 });
    assert.equal(current.closed, false);
    assert.equal(h.manager.stats().refusedStreams.superseded, 1);
    assert.equal(h.manager.stats().activeStreams, 1);
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.deepEqual(current.transport.ids, [1]);
    assert.deepEqual(stale.transport.ids, []);
  });

  test('a connector without a generation (0) replaces the active stream, and is replaced without a shadow', async () => {
    const h = makeManager();
    const g3 = h.stream();
    const g0 = h.stream();
    const g1 = h.stream();
    await h.manager.addStream(K, g3, 3);
    assert.equal((await h.manager.addStream(K, g0, 0)).added, true);
    assert.equal(g3.closed, true);
    assert.equal((await h.manager.addStream(K, g1, 1)).added, true);
    assert.equal(g0.closed, true);
    assert.equal(h.manager.stats().activeStreams, 1);
    assert.equal(h.manager.stats().handoffs.warming, 0, 'no blue-green from or to generation 0');
    assert.deepEqual(
      h.handoffs.filter((e) => e.phase === 'cutover').map((e) => `${e.generation}:${e.reason}`),
      ['0:stream_replaced', '1:stream_replaced'],
    );
  });
});

/** Random interleavings of add/remove (and sends and acks) across three keys, fired concurrently. */
async function interleave(seed: number, withTraffic: boolean): Promise<void> {
  const h = makeManager();
  const keys = ['ns/a/s', 'ns/b/s', 'ns/c/s'];
  const rand = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const registered: Connection<Wire>[] = [];
  const streams: FlakyStream[] = [];
  const sentIds: number[] = [];
  let nextId = 1;

  const checkStreams = (): void => {
    const open = registered.filter((c) => !c.stream.closed);
    assert.equal(h.manager.stats().activeStreams, open.length, 'activeStreams = registered and open');
    for (const key of keys) {
      assert.ok(open.filter((c) => c.key === key).length <= 1, `at most one open stream for ${key}`);
    }
  };

  for (let round = 0; round < 60; round++) {
    const ops: Promise<unknown>[] = [];
    const count = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < count; i++) {
      const key = pick(keys);
      const roll = rand();
      if (roll < 0.3) {
        const stream = h.stream();
        streams.push(stream);
        const generation = Math.floor(round / 10) + Math.floor(rand() * 3);
        ops.push(
          h.manager.addStream(key, stream, generation, atLeastOnce).then((result) => {
            if (result.added) registered.push(result.connection);
            else stream.close();
          }),
        );
      } else if (roll < 0.5 && registered.length > 0) {
        ops.push(h.manager.removeStream(pick(registered)));
      } else if (withTraffic && roll < 0.85) {
        const id = nextId++;
        sentIds.push(id);
        ops.push(
          h.manager.sendOrBuffer(key, h.packet(id), atLeastOnce).then((ok) => {
            assert.equal(ok, true);
          }),
        );
      } else if (withTraffic && roll < 0.95) {
        const held = h.manager.delivery(key)?.unackedInReplayOrder() ?? [];
        if (held.length > 0) ops.push(h.manager.applyFlow(key, { ack: pick(held).sequence }));
      } else {
        ops.push(h.manager.tick());
      }
    }
    await Promise.all(ops);
    checkStreams();
  }

  if (!withTraffic) return;
  for (const key of keys) {
    const final = h.stream();
    streams.push(final);
    const result = await h.manager.addStream(key, final, 1_000);
    assert.equal(result.added, true);
    await h.manager.applyFlow(key, { ack: 1n << 40n });
  }
  for (const id of sentIds) assert.equal(h.settled.get(id), 1, `packet ${id} settled exactly once`);
  const delivered = new Set(streams.flatMap((s) => s.transport.ids));
  for (const id of sentIds) assert.ok(delivered.has(id), `packet ${id} reached a connector`);
  for (const stream of streams) {
    const sequences = stream.transport.packets.map((p) => p.sequence);
    for (let i = 1; i < sequences.length; i++) {
      assert.ok(
        (sequences[i] as bigint) > (sequences[i - 1] as bigint),
        'a stream sees each sequence once, in order',
      );
    }
  }
  assert.equal(h.manager.stats().buffered, 0);
}

describe('StreamManager: concurrency', () => {
  test('concurrent adds and removes keep activeStreams exact', async () => {
    for (const seed of [1, 2, 3, 4, 5]) await interleave(seed, false);
  });

  test('concurrent sends, acks, adds and removes lose and duplicate nothing under at_least_once', async () => {
    for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) await interleave(seed, true);
  });

  test('a send racing a tick on a key the tick forgets is not lost', async () => {
    const h = makeManager();
    const first = await h.manager.addStream(K, h.stream(), 1);
    assert.equal(first.added, true);
    await h.manager.removeStream(first.connection); // the key now holds nothing: the tick forgets it
    const tick = h.manager.tick();
    const sent = h.manager.sendOrBuffer(K, h.packet(1));
    const stream = h.stream();
    const added = h.manager.addStream(K, stream, 2);
    await Promise.all([tick, sent, added]);
    assert.equal(h.manager.stats().activeStreams, 1);
    await h.manager.sendOrBuffer(K, h.packet(2));
    assert.deepEqual(stream.transport.ids, [1, 2]);
  });
});

describe("StreamManager: the reference's bugs, fixed", () => {
  test('a cutover replays every unacked packet to the green stream, then flushes the buffer, in order', async () => {
    const h = makeManager();
    const blue = h.stream();
    await h.manager.addStream(K, blue, 1, {
      ...atLeastOnce,
      buffer: { retry: { maxRetries: 10, delayMs: 1_000 } },
    });
    for (const id of [1, 2, 3]) await h.manager.sendOrBuffer(K, h.packet(id));
    blue.failures = 2;
    await h.manager.sendOrBuffer(K, h.packet(4)); // send fails: buffered
    await h.manager.sendOrBuffer(K, h.packet(5)); // flush fails: buffered behind 4
    assert.deepEqual(blue.transport.ids, [1, 2, 3]);
    assert.equal(h.manager.stats().buffered, 2);

    const green = h.stream();
    await h.manager.addStream(K, green, 2);
    assert.deepEqual(green.transport.ids, [1, 2, 3, 4, 5], 'replay first, then the buffer');
    assert.deepEqual(
      green.transport.packets.map((p) => p.sequence),
      [1n, 2n, 3n, 4n, 5n],
    );
    assert.equal(blue.closed, true);
    assert.equal(h.manager.stats().replayed, 3);
    assert.equal(h.manager.stats().buffered, 0);
    assert.deepEqual(settleCounts(h.settled, range(1, 5)), [0, 0, 0, 0, 0]);
    await h.manager.applyFlow(K, { ack: 5n });
    assert.deepEqual(settleCounts(h.settled, range(1, 5)), [1, 1, 1, 1, 1]);
  });

  test('a cutover replays unacked packets even when they fill maxInFlight', {}, async () => {
    const h = makeManager();
    const options: StreamOptions = { delivery: { semantics: 'at_least_once', maxInFlight: 2 } };
    await h.manager.addStream(K, h.stream(), 1, options);
    for (const id of [1, 2, 3]) await h.manager.sendOrBuffer(K, h.packet(id));
    const green = h.stream();
    await h.manager.addStream(K, green, 2);
    assert.deepEqual(green.transport.ids, [1, 2], 'the two in flight are replayed; 3 waits for an ack');
  });

  test(
    'a newer generation takes over even while the old stream is stuck on a blocked transport',
    {},
    async () => {
      const h = makeManager();
      const blue = new FlakyStream(h.clock);
      blue.transport.room = 1;
      await h.manager.addStream(K, blue, 1);
      await h.manager.sendOrBuffer(K, h.packet(1)); // the transport is now full: the connector stopped reading
      const stuck = h.manager.sendOrBuffer(K, h.packet(2));
      const green = h.stream();
      const takeover = await settledWithin(h.manager.addStream(K, green, 2), 500);
      assert.ok(takeover !== undefined, 'the cutover does not wait behind the stuck send');
      assert.equal(blue.closed, true);
      await stuck;
    },
  );

  test('many replaces and removes close every replaced stream and keep activeStreams exact', async () => {
    const h = makeManager();
    const connections: Connection<Wire>[] = [];
    for (let i = 0; i < 100; i++) {
      const generation = i % 3 === 0 ? i : Math.max(0, i - 1);
      const result = await h.manager.addStream(K, h.stream(), generation);
      if (result.added) connections.push(result.connection);
      if (i % 7 === 0) await h.manager.removeStream(connections[Math.floor(i / 2)] as Connection<Wire>);
      const open = connections.filter((c) => !c.stream.closed);
      assert.ok(open.length <= 1, 'at most the current stream is open');
      assert.equal(h.manager.stats().activeStreams, open.length);
    }
  });

  test('handoff callbacks arrive in phase order per key, even for operations fired together', async () => {
    const h = makeManager();
    const ops: Promise<unknown>[] = [];
    const connections: Promise<Connection<Wire> | undefined>[] = [];
    for (const key of [K, K2]) {
      connections.push(
        h.manager.addStream(key, h.stream(), 1).then((r) => (r.added ? r.connection : undefined)),
      );
      ops.push(h.manager.sendOrBuffer(key, h.packet(1)));
      connections.push(
        h.manager.addStream(key, h.stream(), 2).then((r) => (r.added ? r.connection : undefined)),
      );
    }
    await Promise.all([...ops, ...connections]);
    const current = await connections[1];
    assert.ok(current);
    await Promise.all([h.manager.removeStream(current), h.manager.addStream(K, h.stream(), 3)]);
    const phases = (key: string): string[] =>
      h.handoffs.filter((e) => e.key === key).map((e) => `${e.phase}:${e.generation}`);
    assert.deepEqual(phases(K), ['ready:1', 'warming:2', 'cutover:2', 'ready:2', 'pending:2', 'ready:3']);
    assert.deepEqual(phases(K2), ['ready:1', 'warming:2', 'cutover:2', 'ready:2']);
  });

  test('exactly one PAUSE then one RESUME reach the producer as a buffer fills past pausePct and drains', async () => {
    for (const drainTimeoutMs of [undefined, 60_000]) {
      const h = makeManager();
      const options: StreamOptions = {
        buffer: { maxMessages: 10 },
        delivery: { pausePct: 50 },
        drainTimeoutMs,
      };
      for (const id of range(1, 9)) await h.manager.sendOrBuffer(K, h.packet(id), options);
      assert.deepEqual(h.signals, [{ key: K, signal: 'pause' }]);
      await h.manager.addStream(K, h.stream(), 1);
      assert.deepEqual(
        h.signals.map((s) => s.signal),
        ['pause', 'resume'],
      );
    }
  });

  test('under window flow a packet past lastAck + window is buffered and flows again after an ack', async () => {
    const h = makeManager();
    const options: StreamOptions = {
      delivery: { semantics: 'at_least_once', flowMode: 'window', initialCreditsMessages: 2 },
    };
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1, options);
    for (const id of range(1, 4)) assert.equal(await h.manager.sendOrBuffer(K, h.packet(id)), true);
    assert.deepEqual(stream.transport.ids, [1, 2]);
    assert.equal(h.manager.stats().bufferedBy.flow_control, 1);
    assert.equal(h.manager.phase(K), 'draining');

    await h.manager.applyFlow(K, { ack: 1n });
    assert.deepEqual(stream.transport.ids, [1, 2, 3]);
    assert.deepEqual(settleCounts(h.settled, range(1, 4)), [1, 0, 0, 0]);
    await h.manager.applyFlow(K, { ack: 2n });
    assert.deepEqual(stream.transport.ids, [1, 2, 3, 4]);
    assert.equal(h.manager.stats().buffered, 0);
    assert.equal(h.manager.phase(K), 'ready');
  });

  test('a PAUSE from the connector holds sends in the buffer until its RESUME', async () => {
    const h = makeManager();
    const stream = h.stream();
    await h.manager.addStream(K, stream, 1);
    await h.manager.applyFlow(K, { signal: 'pause' });
    await h.manager.sendOrBuffer(K, h.packet(1));
    assert.deepEqual(stream.transport.ids, []);
    await h.manager.applyFlow(K, { signal: 'resume' });
    assert.deepEqual(stream.transport.ids, [1]);
  });

  test('max buffers, max keys and max active streams are refused and counted', async () => {
    const buffers = makeManager({ maxBuffers: 1 });
    assert.equal(await buffers.manager.sendOrBuffer(K, buffers.packet(1)), true);
    assert.equal(await buffers.manager.sendOrBuffer(K2, buffers.packet(2)), false);
    assert.equal(buffers.manager.stats().drops.max_buffers, 1);
    // The hub's own capacity is not a story's policy: the packet is not settled, so its producer
    // is never told it was delivered and keeps it.
    assert.equal(buffers.settled.get(2) ?? 0, 0);

    const keys = makeManager({ maxKeys: 2 });
    await keys.manager.sendOrBuffer('a/r/s', keys.packet(1));
    await keys.manager.sendOrBuffer('b/r/s', keys.packet(2));
    assert.equal(await keys.manager.sendOrBuffer('c/r/s', keys.packet(3)), false);
    assert.equal(keys.manager.stats().refusedKeys, 1);
    assert.equal(keys.manager.stats().keys, 2);
    assert.equal(keys.settled.get(3) ?? 0, 0);

    const active = makeManager({ maxActiveStreams: 1 });
    assert.equal((await active.manager.addStream(K, active.stream(), 1)).added, true);
    const refused = await active.manager.addStream(K2, active.stream(), 1);
    assert.deepEqual(refused, { added: false, reason: 'max-active-streams' });
    assert.equal(
      (await active.manager.addStream(K, active.stream(), 2)).added,
      true,
      'a takeover needs no new slot',
    );
    assert.equal(active.manager.stats().refusedStreams.maxActive, 1);
    assert.equal(active.manager.stats().activeStreams, 1);
  });

  test(
    'a stream refused for lack of keys is counted as a key refusal, not as max active streams',
    {},
    async () => {
      const h = makeManager({ maxKeys: 1 });
      await h.manager.addStream(K, h.stream(), 1);
      const result = await h.manager.addStream(K2, h.stream(), 1);
      assert.equal(result.added, false);
      assert.equal(h.manager.stats().refusedKeys, 1);
      assert.equal(h.manager.stats().refusedStreams.maxActive, 0);
    },
  );

  test('each tick sends one fresh heartbeat to each active stream and none to others', async () => {
    const h = makeManager();
    const a = h.stream();
    const b = h.stream();
    const replaced = h.stream();
    await h.manager.addStream(K, replaced, 1);
    await h.manager.addStream(K, a, 2);
    await h.manager.addStream(K2, b, 1);
    await h.manager.sendOrBuffer('ns3/run/step', h.packet(1)); // a key without a stream
    await h.manager.tick();
    await h.manager.idle(K);
    assert.equal(a.transport.heartbeats.length, 1);
    assert.equal(b.transport.heartbeats.length, 1);
    assert.equal(replaced.transport.heartbeats.length, 0);
    assert.notEqual(a.transport.heartbeats[0], b.transport.heartbeats[0], 'not one shared message');
    assert.equal(h.manager.stats().heartbeats, 2);
    await h.manager.tick();
    assert.equal(a.transport.heartbeats.length, 2);
  });

  test('a step whose story turns heartbeats off gets none', async () => {
    const h = makeManager();
    const quiet = h.stream();
    const chatty = h.stream();
    await h.manager.addStream(K, quiet, 1, { heartbeat: false });
    await h.manager.addStream(K2, chatty, 1);
    await h.manager.tick();
    assert.equal(quiet.transport.heartbeats.length, 0);
    assert.equal(chatty.transport.heartbeats.length, 1);
  });

  test("a step's heartbeat interval spaces its heartbeats across ticks", async () => {
    const h = makeManager();
    const slow = h.stream();
    const everyTick = h.stream();
    await h.manager.addStream(K, slow, 1, { heartbeatIntervalMs: 30_000 });
    await h.manager.addStream(K2, everyTick, 1);
    const counts: number[] = [];
    for (let tick = 0; tick < 7; tick++) {
      await h.manager.tick();
      counts.push(slow.transport.heartbeats.length);
      await h.clock.advanceAsync(10_000);
    }
    // Ticks at 0, 10, 20, … 60 s: heartbeats at 0, 30 and 60 s.
    assert.deepEqual(counts, [1, 1, 1, 2, 2, 2, 3]);
    assert.equal(everyTick.transport.heartbeats.length, 7);
  });

  test('a buffer idle past its TTL without a stream is dropped whole as evicted', async () => {
    const h = makeManager({ idleBufferTtlMs: 60_000 });
    for (const id of [1, 2, 3]) await h.manager.sendOrBuffer(K, h.packet(id));
    await h.clock.advanceAsync(59_999);
    await h.manager.tick();
    assert.equal(h.manager.stats().buffered, 3);
    await h.clock.advanceAsync(1);
    await h.manager.tick();
    assert.deepEqual(
      h.drops.map((d) => d.reason),
      ['evicted', 'evicted', 'evicted'],
    );
    assert.deepEqual(settleCounts(h.settled, [1, 2, 3]), [1, 1, 1]);
    assert.equal(h.manager.stats().buffers, 0);
    assert.equal(h.manager.phase(K), undefined, 'the key is forgotten');
  });

  test('a packet whose sequence was acknowledged before it was sent still settles once', {}, async () => {
    const h = makeManager();
    const options: StreamOptions = {
      delivery: { semantics: 'at_least_once', flowMode: 'window', initialCreditsMessages: 1 },
    };
    await h.manager.addStream(K, h.stream(), 1, options);
    await h.manager.sendOrBuffer(K, h.packet(1));
    await h.manager.sendOrBuffer(K, h.packet(2)); // past the window: buffered with sequence 2
    await h.manager.applyFlow(K, { ack: 2n }); // the connector acks ahead (e.g. it had it from a checkpoint)
    assert.deepEqual(settleCounts(h.settled, [1, 2]), [1, 1]);
  });
});
