import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  createMessageBuffer,
  InvalidBufferInputError,
  retryDelayMs,
  type BufferEntry,
  type DropReason,
  type Lane,
  type MessageBufferConfigInput,
} from '../../src/hub/buffer/index.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

interface Packet {
  readonly id: string;
}

function entry(id: string, lane: Lane = 'payload', size = 10): BufferEntry<Packet> {
  return { packet: { id }, size, lane };
}

function makeBuffer(config: MessageBufferConfigInput = {}, clock = new FakeClock()) {
  const drops: { id: string; reason: DropReason }[] = [];
  const buffer = createMessageBuffer<Packet>({
    clock,
    config,
    onDrop: (e, reason) => drops.push({ id: e.packet.id, reason }),
  });
  return { buffer, clock, drops };
}

async function drain(buffer: ReturnType<typeof makeBuffer>['buffer']): Promise<string[]> {
  const sent: string[] = [];
  await buffer.flush((p) => {
    sent.push(p.id);
  });
  return sent;
}

describe('MessageBuffer add', () => {
  test('a message is accepted while there is room (Add_Success)', () => {
    const { buffer } = makeBuffer();
    const result = buffer.add(entry('1'));
    assert.equal(result.added, true);
    assert.equal(buffer.size, 1);
    assert.equal(buffer.bytes, 10);
  });

  test('under drop_newest a full buffer refuses the new message and counts it (Add_Overflow)', () => {
    const { buffer, drops } = makeBuffer({ maxMessages: 2 });
    assert.ok(buffer.add(entry('1')).added && buffer.add(entry('2')).added);
    const third = buffer.add(entry('3'));
    assert.deepEqual(third, { added: false, reason: 'buffer_full', evicted: [] });
    assert.equal(buffer.size, 2);
    assert.equal(buffer.stats().dropped, 1);
    assert.deepEqual(drops, [{ id: '3', reason: 'buffer_full' }]);
  });

  test('under drop_oldest a full buffer evicts its head to take the new message (Add_DropOldest)', async () => {
    const { buffer } = makeBuffer({ maxMessages: 2, dropPolicy: 'drop_oldest' });
    buffer.add(entry('1'));
    buffer.add(entry('2'));
    const third = buffer.add(entry('3'));
    assert.equal(third.added, true);
    assert.deepEqual(
      third.evicted.map((d) => [d.entry.packet.id, d.reason]),
      [['1', 'buffer_full']],
    );
    assert.deepEqual(await drain(buffer), ['2', '3']);
    assert.equal(buffer.stats().dropped, 1);
  });

  test('the byte budget is enforced like the count, under both policies', () => {
    const newest = makeBuffer({ maxBytes: 25 }).buffer;
    newest.add(entry('1'));
    newest.add(entry('2'));
    assert.equal(newest.add(entry('3')).added, false);
    const oldest = makeBuffer({ maxBytes: 25, dropPolicy: 'drop_oldest' }).buffer;
    oldest.add(entry('1'));
    oldest.add(entry('2'));
    const result = oldest.add(entry('3', 'payload', 20));
    assert.equal(result.added, true);
    assert.equal(result.evicted.length, 2, 'evicts from the head until the bytes fit');
    assert.equal(oldest.bytes, 20);
  });

  test('a message larger than the whole buffer is dropped as oversize, even under drop_oldest', () => {
    const { buffer } = makeBuffer({ maxBytes: 100, dropPolicy: 'drop_oldest' });
    buffer.add(entry('1'));
    const result = buffer.add(entry('big', 'payload', 101));
    assert.deepEqual(result, { added: false, reason: 'oversize', evicted: [] });
    assert.equal(buffer.size, 1, 'nothing was evicted for a message that can never fit');
  });

  test('a message larger than its lane budget is dropped as lane_oversize before any lane eviction', () => {
    const { buffer } = makeBuffer({ dropPolicy: 'drop_oldest', laneLimits: { video: { maxBytes: 50 } } });
    buffer.add(entry('v1', 'video', 40));
    const result = buffer.add(entry('v2', 'video', 60));
    assert.deepEqual(result, { added: false, reason: 'lane_oversize', evicted: [] });
    assert.equal(buffer.size, 1);
  });

  test('checks run in order: expiry first, so an expired head makes room for the new message', () => {
    const { buffer, clock } = makeBuffer({ maxMessages: 1, maxAgeMs: 1_000 });
    buffer.add(entry('old'));
    clock.advance(1_000);
    const result = buffer.add(entry('new'));
    assert.equal(result.added, true);
    assert.deepEqual(
      result.evicted.map((d) => d.reason),
      ['expired'],
    );
  });

  test('a nullish packet is counted as nil_packet, a bad size or lane is refused with a clear error', () => {
    const { buffer } = makeBuffer();
    const nil = buffer.add({ packet: undefined as unknown as Packet, size: 0, lane: 'payload' });
    assert.deepEqual(nil, { added: false, reason: 'nil_packet', evicted: [] });
    assert.equal(buffer.stats().droppedByReason.nil_packet, 1);
    assert.throws(() => buffer.add(entry('x', 'payload', -1)), InvalidBufferInputError);
    assert.throws(() => buffer.add(entry('x', 'payload', Number.NaN)), InvalidBufferInputError);
    assert.throws(() => buffer.add(entry('x', 'smell' as Lane)), InvalidBufferInputError);
    assert.equal(buffer.size, 0);
  });
});

describe('MessageBuffer lane limits', () => {
  test('under drop_newest a full lane refuses the new message (lane_max_messages_drop_newest)', () => {
    const { buffer } = makeBuffer({ laneLimits: { audio: { maxMessages: 2 } } });
    assert.ok(buffer.add(entry('a1', 'audio')).added);
    assert.ok(buffer.add(entry('a2', 'audio')).added);
    assert.deepEqual(buffer.add(entry('a3', 'audio')), { added: false, reason: 'lane_full', evicted: [] });
    assert.equal(buffer.stats().dropped, 1);
    assert.equal(buffer.size, 2);
  });

  test('under drop_oldest a full lane evicts its own oldest, not the buffer head (lane_max_messages_drop_oldest)', async () => {
    const { buffer } = makeBuffer({ dropPolicy: 'drop_oldest', laneLimits: { video: { maxMessages: 2 } } });
    buffer.add(entry('p1', 'payload'));
    buffer.add(entry('v1', 'video'));
    buffer.add(entry('v2', 'video'));
    const third = buffer.add(entry('v3', 'video'));
    assert.equal(third.added, true);
    assert.deepEqual(
      third.evicted.map((d) => [d.entry.packet.id, d.reason]),
      [['v1', 'lane_full']],
    );
    assert.equal(buffer.stats().dropped, 1);
    assert.deepEqual(await drain(buffer), ['p1', 'v2', 'v3']);
  });

  test('lanes do not interfere with each other (independent_lanes)', () => {
    const { buffer } = makeBuffer({ laneLimits: { audio: { maxMessages: 1 }, video: { maxMessages: 1 } } });
    assert.ok(buffer.add(entry('a', 'audio')).added);
    assert.ok(buffer.add(entry('v', 'video')).added);
    assert.ok(buffer.add(entry('p', 'payload')).added, 'an unlimited lane is unaffected');
    assert.equal(buffer.add(entry('a2', 'audio')).added, false);
    assert.equal(buffer.add(entry('v2', 'video')).added, false);
    assert.equal(buffer.stats().dropped, 2);
    assert.deepEqual(buffer.stats().lanes.audio, { messages: 1, bytes: 10 });
  });

  test('applyLimits trims a lane that is over its new limit from its oldest (apply_limits_trims_lanes)', async () => {
    const { buffer } = makeBuffer();
    for (const id of ['a0', 'a1', 'a2']) buffer.add(entry(id, 'audio'));
    const dropped = buffer.applyLimits({ laneLimits: { audio: { maxMessages: 1 } } });
    assert.deepEqual(
      dropped.map((d) => [d.entry.packet.id, d.reason]),
      [
        ['a0', 'lane_full'],
        ['a1', 'lane_full'],
      ],
    );
    assert.equal(buffer.size, 1);
    assert.equal(buffer.stats().dropped, 2);
    assert.deepEqual(await drain(buffer), ['a2']);
  });
});

describe('MessageBuffer applyLimits', () => {
  test('shrinking limits trims from the head under drop_newest too (ApplyLimitsTrims)', async () => {
    const { buffer } = makeBuffer({ maxMessages: 3 });
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    buffer.applyLimits({ maxMessages: 2 });
    assert.equal(buffer.size, 2);
    assert.equal(buffer.add(entry('4')).added, false, 'the shrunken buffer is at capacity');
    assert.deepEqual(await drain(buffer), ['2', '3']);
  });

  test('applyLimits drops expired entries first and keeps fields it was not given', () => {
    const { buffer, clock } = makeBuffer({ maxMessages: 5, dropPolicy: 'drop_oldest' });
    buffer.add(entry('old'));
    clock.advance(500);
    buffer.add(entry('young'));
    clock.advance(600);
    const dropped = buffer.applyLimits({ maxAgeMs: 1_000 });
    assert.deepEqual(
      dropped.map((d) => [d.entry.packet.id, d.reason]),
      [['old', 'expired']],
    );
    assert.equal(buffer.config.maxMessages, 5);
    assert.equal(buffer.config.dropPolicy, 'drop_oldest');
  });

  test('a bad config is refused naming the field, and nothing changes', () => {
    const { buffer } = makeBuffer({ maxMessages: 3 });
    const cases: [MessageBufferConfigInput, string][] = [
      [{ maxMessages: 0 }, 'buffer.maxMessages'],
      [{ maxBytes: 1.5 }, 'buffer.maxBytes'],
      [{ dropPolicy: 'drop_random' as 'drop_oldest' }, 'buffer.dropPolicy'],
      [{ maxAgeMs: -1 }, 'buffer.maxAgeMs'],
      [{ laneLimits: { vidoe: { maxMessages: 1 } } as never }, 'buffer.laneLimits.vidoe'],
      [{ laneLimits: { audio: { maxBytes: 0 } } }, 'buffer.laneLimits.audio.maxBytes'],
      [{ retry: { maxRetries: -1 } }, 'buffer.retry.maxRetries'],
      [{ retry: { backoff: 'fibonacci' as 'linear' } }, 'buffer.retry.backoff'],
      [{ retry: { delayMs: 5_000, maxDelayMs: 1_000 } }, 'buffer.retry.maxDelayMs'],
    ];
    for (const [input, field] of cases) {
      assert.throws(
        () => buffer.applyLimits(input),
        (error: unknown) => error instanceof ConfigError && error.field === field,
        field,
      );
      assert.throws(() => createMessageBuffer({ clock: new FakeClock(), config: input }), ConfigError);
    }
    assert.equal(buffer.config.maxMessages, 3);
  });
});

describe('MessageBuffer flush', () => {
  test('a flush sends everything in order and empties the buffer (FlushWithSender_Success)', async () => {
    const { buffer, clock } = makeBuffer();
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    clock.advance(5_000);
    const sent: string[] = [];
    const flushed = await buffer.flush(async (p) => {
      await Promise.resolve();
      sent.push(p.id);
    });
    assert.equal(flushed, 3);
    assert.deepEqual(sent, ['1', '2', '3']);
    assert.equal(buffer.size, 0);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.lastActiveAt, 5_000, 'a flush that delivered counts as activity');
  });

  test('an aborted signal keeps every message and rejects with its reason (FlushWithSender_ContextCanceled)', async () => {
    const { buffer } = makeBuffer();
    for (let i = 0; i < 5; i++) buffer.add(entry(String(i)));
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    controller.abort(reason);
    let sends = 0;
    await assert.rejects(
      buffer.flush(() => void (sends += 1), { signal: controller.signal }),
      (error) => error === reason,
    );
    assert.equal(sends, 0);
    assert.equal(buffer.size, 5);
  });

  test('allow() returning false stops the flush cleanly and keeps the rest in order', async () => {
    const { buffer } = makeBuffer();
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    const sent: string[] = [];
    const flushed = await buffer.flush((p) => void sent.push(p.id), { allow: (p) => p.id !== '2' });
    assert.equal(flushed, 1);
    assert.deepEqual(sent, ['1']);
    assert.deepEqual(await drain(buffer), ['2', '3']);
  });

  test('a send error keeps the failed message and the rest, and rethrows', async () => {
    const { buffer } = makeBuffer();
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    const failure = new Error('stream broke');
    await assert.rejects(
      buffer.flush((p) => {
        if (p.id === '2') throw failure;
      }),
      (error) => error === failure,
    );
    assert.equal(buffer.size, 2);
    assert.equal(buffer.bytes, 20);
    assert.equal(buffer.stats().flushed, 1);
    assert.deepEqual(await drain(buffer), ['2', '3']);
  });

  test('a flush drops expired entries before sending', async () => {
    const { buffer, clock, drops } = makeBuffer({ maxAgeMs: 1_000 });
    buffer.add(entry('old'));
    clock.advance(600);
    buffer.add(entry('new'));
    clock.advance(400);
    assert.deepEqual(await drain(buffer), ['new']);
    assert.deepEqual(drops, [{ id: 'old', reason: 'expired' }]);
  });

  test('interleaved adds and drop_oldest evictions during flushes lose nothing (ConcurrentEnqueueAndFlush)', async () => {
    const { buffer } = makeBuffer({ maxMessages: 50, dropPolicy: 'drop_oldest' });
    const enqueuers = 10;
    const perEnqueuer = 100;
    let flushed = 0;
    const sent = new Set<string>();
    const production = { done: false };
    const send = async (p: Packet): Promise<void> => {
      await Promise.resolve();
      assert.ok(!sent.has(p.id), `sent twice: ${p.id}`);
      sent.add(p.id);
    };
    const producers = Array.from({ length: enqueuers }, async (_, e) => {
      for (let i = 0; i < perEnqueuer; i++) {
        buffer.add(entry(`${e}-${i}`));
        if (i % 3 === 0) await Promise.resolve();
      }
    });
    const flusher = (async () => {
      while (!production.done || buffer.size > 0) {
        flushed += await buffer.flush(send);
        await Promise.resolve();
      }
    })();
    await Promise.all(producers);
    production.done = true;
    await flusher;
    const refusedOrEvicted = buffer.stats().dropped;
    assert.equal(flushed + buffer.size + refusedOrEvicted, enqueuers * perEnqueuer);
    assert.equal(flushed, sent.size);
    assert.ok(refusedOrEvicted > 0, 'the test must exercise evictions');
    assert.ok(flushed > 0);
  });

  test('two flushes called together run one after the other, never sending concurrently', async () => {
    const { buffer } = makeBuffer();
    for (const id of ['1', '2', '3', '4']) buffer.add(entry(id));
    let sending = 0;
    const sent: string[] = [];
    const send = async (p: Packet): Promise<void> => {
      sending += 1;
      assert.equal(sending, 1, 'a second send started before the first finished');
      await Promise.resolve();
      sent.push(p.id);
      sending -= 1;
    };
    const [first, second] = await Promise.all([buffer.flush(send), buffer.flush(send)]);
    assert.equal(first + second, 4);
    assert.deepEqual(sent, ['1', '2', '3', '4']);
  });

  test('dropAll during a send neither delivers nor keeps a message twice', async () => {
    const { buffer } = makeBuffer();
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    let release: (error?: Error) => void = () => undefined;
    const flushing = buffer.flush(
      () =>
        new Promise<void>((resolve, reject) => {
          release = (error) => {
            if (error === undefined) resolve();
            else reject(error);
          };
        }),
    );
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(buffer.dropAll('evicted'), 2, 'the in-flight message is not counted yet');
    assert.equal(buffer.size, 1);
    release(new Error('send failed'));
    await assert.rejects(flushing);
    assert.equal(buffer.size, 0);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.stats().droppedByReason.evicted, 3);
  });
});

describe('MessageBuffer retry', () => {
  test('each backoff climbs its ladder, capped at maxDelayMs', () => {
    const ladder = (backoff: 'exponential' | 'linear' | 'constant') => {
      const { buffer, clock } = makeBuffer({
        retry: { maxRetries: 10, delayMs: 1_000, backoff, maxDelayMs: 5_000 },
      });
      buffer.add(entry('1'));
      const delays: number[] = [];
      for (let n = 0; n < 5; n++) {
        buffer.recordFlushResult(new Error('down'));
        delays.push((buffer.stats().nextRetryAt ?? Number.NaN) - clock.now());
      }
      return delays;
    };
    assert.deepEqual(ladder('exponential'), [1_000, 2_000, 4_000, 5_000, 5_000]);
    assert.deepEqual(ladder('linear'), [1_000, 2_000, 3_000, 4_000, 5_000]);
    assert.deepEqual(ladder('constant'), [1_000, 1_000, 1_000, 1_000, 1_000]);
  });

  test('without a policy the delay is 500 ms doubling, capped at 30 s, and the buffer never gives up', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => retryDelayMs(undefined, n)),
      [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
    );
    const { buffer } = makeBuffer();
    buffer.add(entry('1'));
    for (let n = 0; n < 20; n++) buffer.recordFlushResult(new Error('down'));
    assert.equal(buffer.size, 1);
  });

  test('shouldRetry waits for nextRetry, and a success that empties the buffer resets the counters', async () => {
    const { buffer, clock } = makeBuffer({ retry: {} });
    assert.equal(buffer.shouldRetry(), false, 'nothing to retry when empty');
    buffer.add(entry('1'));
    assert.equal(buffer.shouldRetry(), true);
    buffer.recordFlushResult(new Error('down'));
    assert.equal(buffer.shouldRetry(), false);
    clock.advance(999);
    assert.equal(buffer.shouldRetry(), false);
    clock.advance(1);
    assert.equal(buffer.shouldRetry(), true);
    await drain(buffer);
    buffer.recordFlushResult();
    assert.equal(buffer.stats().retryCount, 0);
    assert.equal(buffer.stats().nextRetryAt, undefined);
  });

  test('at maxRetries failures in a row everything is dropped as retry_exhausted', () => {
    const { buffer } = makeBuffer({ retry: { maxRetries: 3 } });
    buffer.add(entry('1'));
    buffer.add(entry('2'));
    buffer.recordFlushResult(new Error('down'));
    buffer.recordFlushResult(new Error('down'));
    assert.equal(buffer.size, 2);
    buffer.recordFlushResult(new Error('down'));
    assert.equal(buffer.size, 0);
    assert.equal(buffer.stats().droppedByReason.retry_exhausted, 2);
    assert.equal(buffer.stats().retryCount, 0);
  });

  test('maxRetries 0 disables retries: shouldRetry is always false', () => {
    const { buffer } = makeBuffer({ retry: { maxRetries: 0 } });
    assert.equal(buffer.retryEnabled, false);
    buffer.add(entry('1'));
    assert.equal(buffer.shouldRetry(), false);
    buffer.refuse(entry('2'), 'retry_disabled');
    assert.equal(buffer.stats().droppedByReason.retry_disabled, 1);
  });

  test('the earliest deadline wins; past it shouldRetry drops everything as timeout', () => {
    const { buffer, clock, drops } = makeBuffer();
    buffer.add(entry('1'));
    buffer.add(entry('2'));
    buffer.setDeadline(5_000);
    buffer.setDeadline(3_000);
    buffer.setDeadline(9_000);
    assert.equal(buffer.stats().deadlineAt, 3_000);
    clock.advance(3_000);
    assert.equal(buffer.shouldRetry(), true, 'at the deadline it is not yet past');
    clock.advance(1);
    assert.equal(buffer.shouldRetry(), false);
    assert.equal(buffer.size, 0);
    assert.deepEqual(
      drops.map((d) => d.reason),
      ['timeout', 'timeout'],
    );
    assert.equal(buffer.stats().deadlineAt, undefined);
    assert.throws(() => {
      buffer.setDeadline(Number.NaN);
    }, InvalidBufferInputError);
  });
});

describe('MessageBuffer bookkeeping', () => {
  test('utilization is the larger of count and byte fill', () => {
    const { buffer } = makeBuffer({ maxMessages: 10, maxBytes: 100 });
    buffer.add(entry('1', 'payload', 50));
    assert.equal(buffer.utilization(), 0.5);
    buffer.add(entry('2', 'payload', 1));
    buffer.add(entry('3', 'payload', 1));
    assert.equal(buffer.utilization(), 0.52);
  });

  test('lastActive moves only on accepted adds and delivering flushes, on the monotonic clock', async () => {
    const { buffer, clock } = makeBuffer({ maxMessages: 1 });
    clock.advance(100);
    buffer.add(entry('1'));
    clock.advance(100);
    buffer.add(entry('refused'));
    assert.equal(buffer.lastActiveAt, 100);
    assert.equal(buffer.idleMs(), 100);
    await buffer.flush(() => undefined, { allow: () => false });
    assert.equal(buffer.lastActiveAt, 100, 'a flush that delivered nothing is not activity');
  });

  test('dropAll counts one drop per message and a throwing onDrop does not break the buffer', () => {
    const buffer = createMessageBuffer<Packet>({
      clock: new FakeClock(),
      onDrop: () => {
        throw new Error('observer bug');
      },
    });
    for (const id of ['1', '2', '3']) buffer.add(entry(id));
    assert.equal(buffer.dropAll('evicted'), 3);
    const stats = buffer.stats();
    assert.equal(stats.dropped, 3);
    assert.equal(stats.droppedByReason.evicted, 3);
    assert.equal(stats.onDropErrors, 3);
    assert.equal(stats.messages, 0);
  });
});
