import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError } from '../../src/internal/errors.ts';
import {
  DeliveryState,
  InvalidFlowInputError,
  normalizeDeliveryConfig,
  PartitionLimitError,
  PauseController,
  type DeliveryConfigInput,
  type FlowEnvelope,
} from '../../src/hub/flow/index.ts';

const KEY = 'tenant-a/run-1/step';
const LIMITS = { maxMessages: 50, maxBytes: 5_000 };

function env(partition = '', sequence = 0n, streamId = ''): FlowEnvelope {
  return { streamId, sequence, partition };
}

/** Assigns, checks canSend and records, as the stream manager does; returns the sequence or undefined if blocked. */
function send(state: DeliveryState<string>, packet: string, partition = '', size = 10): bigint | undefined {
  const envelope = state.assignEnvelope(env(partition));
  assert.ok(envelope);
  if (!state.canSend(size, envelope.partition, envelope.sequence)) return undefined;
  state.recordSent(envelope.sequence, envelope.partition, packet, size);
  return envelope.sequence;
}

describe('delivery config normalisation', () => {
  const cases: { name: string; input: DeliveryConfigInput; expect: Record<string, unknown> }[] = [
    {
      name: 'nothing set: best effort, unordered, no flow control',
      input: {},
      expect: { ordering: 'none', semantics: 'best_effort', replay: 'none', flowMode: 'none' },
    },
    {
      name: 'replay forces at-least-once, which forces per-stream ordering',
      input: { replay: 'durable' },
      expect: { ordering: 'per_stream', semantics: 'at_least_once', replay: 'durable' },
    },
    {
      name: 'replay memory with best_effort still becomes at-least-once',
      input: { replay: 'memory', semantics: 'best_effort' },
      expect: { semantics: 'at_least_once', ordering: 'per_stream' },
    },
    {
      name: 'at-least-once keeps per_partition ordering',
      input: { semantics: 'at_least_once', ordering: 'per_partition' },
      expect: { ordering: 'per_partition', semantics: 'at_least_once' },
    },
    {
      name: 'modes match loosely (case and spaces)',
      input: { ordering: ' PER_PARTITION ', flowMode: 'Credits' },
      expect: { ordering: 'per_partition', flowMode: 'credits' },
    },
    {
      name: 'unknown modes fall back to none and are reported',
      input: { ordering: 'fifo', semantics: 'exactly_once', replay: 'disk', flowMode: 'tokens' },
      expect: {
        ordering: 'none',
        semantics: 'best_effort',
        replay: 'none',
        flowMode: 'none',
        fallbacks: ['ordering=fifo', 'semantics=exactly_once', 'replay=disk', 'flowMode=tokens'],
      },
    },
    {
      name: 'credits default to the buffer limits',
      input: { flowMode: 'credits' },
      expect: { initialCreditsMessages: 50, initialCreditsBytes: 5_000, windowMessages: 0 },
    },
    {
      name: 'explicit credits win over the buffer limits',
      input: { flowMode: 'credits', initialCreditsMessages: 3, initialCreditsBytes: 999 },
      expect: { initialCreditsMessages: 3, initialCreditsBytes: 999 },
    },
    {
      name: 'the window defaults to the initial message credits',
      input: { flowMode: 'window', initialCreditsMessages: 7 },
      expect: { windowMessages: 7, initialCreditsMessages: 0 },
    },
    {
      name: 'else the window is the buffer message limit',
      input: { flowMode: 'window' },
      expect: { windowMessages: 50 },
    },
    {
      name: 'resume defaults to half the pause threshold',
      input: { pausePct: 80 },
      expect: { pausePct: 80, resumePct: 40 },
    },
    {
      name: 'a resume threshold at or above pause is clamped to half of it',
      input: { pausePct: 60, resumePct: 90 },
      expect: { pausePct: 60, resumePct: 30 },
    },
    {
      name: 'a resume threshold below pause is kept',
      input: { pausePct: 60, resumePct: 20 },
      expect: { resumePct: 20 },
    },
    {
      name: 'without a pause threshold there is no resume threshold',
      input: { resumePct: 20 },
      expect: { pausePct: 0, resumePct: 0 },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const config = normalizeDeliveryConfig(c.input, LIMITS);
      for (const [field, value] of Object.entries(c.expect)) {
        assert.deepEqual((config as unknown as Record<string, unknown>)[field], value, field);
      }
    });
  }

  test('the window falls back to 1 when the buffer has no message limit', () => {
    const config = normalizeDeliveryConfig({ flowMode: 'window' }, { maxMessages: 0, maxBytes: 1 });
    assert.equal(config.windowMessages, 1);
  });

  test('bad numbers are a config error naming the field', () => {
    assert.throws(
      () => normalizeDeliveryConfig({ maxInFlight: -1 }),
      (e: unknown) => {
        return e instanceof ConfigError && e.field === 'hub.delivery.maxInFlight';
      },
    );
    assert.throws(() => normalizeDeliveryConfig({ pausePct: 120 }), ConfigError);
    assert.throws(() => normalizeDeliveryConfig({ initialCreditsBytes: 1.5 }), ConfigError);
    assert.throws(() => normalizeDeliveryConfig({ maxUnacked: 0 }), ConfigError);
  });
});

describe('envelope assignment', () => {
  test('per-partition sequences count independently from 1', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', ordering: 'per_partition' });
    const a1 = state.assignEnvelope(env('p1'));
    const b1 = state.assignEnvelope(env('p2'));
    const a2 = state.assignEnvelope(env('p1'));
    assert.deepEqual([a1?.sequence, b1?.sequence, a2?.sequence], [1n, 1n, 2n]);
    assert.equal(a1?.streamId, KEY);
    assert.equal(b1?.partition, 'p2');
  });

  test('per-stream ordering shares one sequence space whatever the partition', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_stream' });
    assert.equal(state.assignEnvelope(env('p1'))?.sequence, 1n);
    assert.equal(state.assignEnvelope(env('p2'))?.sequence, 2n);
  });

  test('downstream copies are rebased onto this key: its stream id and its own sequences', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_stream', semantics: 'at_least_once' });
    const a = state.assignEnvelope(env('p0', 9n, 'upstream-a'), { downstream: true });
    const b = state.assignEnvelope(env('p0', 9n, 'upstream-b'), { downstream: true });
    assert.deepEqual(a, { streamId: KEY, sequence: 1n, partition: 'p0' });
    assert.deepEqual(b, { streamId: KEY, sequence: 2n, partition: 'p0' });
  });

  test('an explicit sequence is kept and moves the counter past it; a given stream id is kept', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_stream' });
    assert.deepEqual(state.assignEnvelope(env('', 41n, 'mine')), {
      streamId: 'mine',
      sequence: 41n,
      partition: '',
    });
    assert.equal(state.assignEnvelope(env())?.sequence, 42n);
    // A lower explicit sequence does not move the counter back.
    state.assignEnvelope(env('', 5n));
    assert.equal(state.assignEnvelope(env())?.sequence, 43n);
  });

  test('unordered best effort leaves sequences at 0 and a missing envelope missing', () => {
    const state = new DeliveryState<string>(KEY);
    assert.equal(state.assignEnvelope(undefined), undefined);
    assert.deepEqual(state.assignEnvelope(env('p')), { streamId: KEY, sequence: 0n, partition: 'p' });
  });

  test('an ordered key creates the envelope a packet lacks', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_stream' });
    assert.deepEqual(state.assignEnvelope(undefined), { streamId: KEY, sequence: 1n, partition: '' });
  });

  test('a new partition past the limit is refused with a clear error and counted', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_partition', maxPartitions: 2 });
    state.assignEnvelope(env('a'));
    state.assignEnvelope(env('b'));
    assert.throws(() => state.assignEnvelope(env('c')), PartitionLimitError);
    assert.equal(state.assignEnvelope(env('a'))?.sequence, 2n);
    assert.equal(state.stats().partitionsRefused, 1);
  });
});

describe('acks and unacked packets', () => {
  test('partition acks release only their partition, cumulatively', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', ordering: 'per_partition' });
    for (const p of ['p1', 'p1', 'p1', 'p2', 'p2']) send(state, p, p);
    assert.equal(state.stats().unacked, 5);
    const result = state.applyFlow({
      partitionAcks: [
        { partition: 'p1', ack: 2n },
        { partition: 'p2', ack: 1n },
      ],
    });
    assert.equal(result.acked, 3);
    assert.equal(result.acksAdvanced, 2);
    assert.ok(result.mayUnblock);
    assert.deepEqual(
      state.unackedInReplayOrder().map((u) => [u.partition, u.sequence]),
      [
        ['p1', 3n],
        ['p2', 2n],
      ],
    );
    assert.deepEqual(state.stats().lastAck, { p1: 2n, p2: 1n });
  });

  test('an ack at or below the last one is ignored; ack 0 is skipped', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once' });
    for (let i = 0; i < 4; i++) send(state, `m${i}`);
    assert.equal(state.applyFlow({ ack: 3n }).acked, 3);
    assert.equal(state.applyFlow({ ack: 2n }).acksAdvanced, 0);
    assert.equal(state.applyFlow({ ack: 0n }).acksAdvanced, 0);
    const stats = state.stats();
    assert.equal(stats.unacked, 1);
    assert.equal(stats.acksApplied, 1);
    assert.equal(stats.acksIgnored, 1);
    assert.deepEqual(stats.lastAck, { '': 3n });
  });

  test('under per_partition a bare ack means partition ""', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', ordering: 'per_partition' });
    send(state, 'x', '');
    send(state, 'y', 'p');
    assert.equal(state.applyFlow({ ack: 1n }).acked, 1);
    assert.deepEqual(
      state.unackedInReplayOrder().map((u) => u.packet),
      ['y'],
    );
  });

  test('an ack past everything sent moves the next sequence past it', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once' });
    send(state, 'a');
    state.applyFlow({ ack: 10n });
    assert.equal(state.assignEnvelope(env())?.sequence, 11n);
  });

  test('a packet sent after its sequence was acked is not held', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', ordering: 'per_partition' });
    state.applyFlow({ partitionAcks: [{ partition: 'p1', ack: 5n }] });
    assert.equal(state.recordSent(3n, 'p1', 'old', 10), true);
    assert.equal(state.recordSent(6n, 'p1', 'new', 10), true);
    assert.deepEqual(
      state.unackedInReplayOrder().map((u) => u.sequence),
      [6n],
    );
  });

  test('best effort holds nothing', () => {
    const state = new DeliveryState<string>(KEY, { ordering: 'per_stream' });
    send(state, 'a');
    assert.equal(state.stats().unacked, 0);
    assert.deepEqual(state.unackedInReplayOrder(), []);
  });

  test('replay order is by partition, then sequence, whatever the send order', () => {
    const state = new DeliveryState<string>(KEY, { replay: 'memory', ordering: 'per_partition' });
    state.recordSent(2n, 'b', 'b2', 1);
    state.recordSent(1n, 'b', 'b1', 1);
    state.recordSent(10n, 'a', 'a10', 1);
    state.recordSent(9n, 'a', 'a9', 1);
    state.recordSent(3n, '', 'x3', 1);
    assert.deepEqual(
      state.unackedInReplayOrder().map((u) => u.packet),
      ['x3', 'a9', 'a10', 'b1', 'b2'],
    );
  });

  test('re-sending a held packet (a replay) does not hold it twice', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', maxInFlight: 2 });
    send(state, 'a');
    send(state, 'b');
    for (const held of state.unackedInReplayOrder()) {
      state.recordSent(held.sequence, held.partition, held.packet, held.size);
    }
    assert.equal(state.stats().unacked, 2);
  });

  test('the unacked store is bounded; refusals are counted and reported', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', maxUnacked: 2 });
    assert.equal(state.recordSent(1n, '', 'a', 1), true);
    assert.equal(state.recordSent(2n, '', 'b', 1), true);
    assert.equal(state.canSend(1, '', 3n), false);
    assert.equal(state.recordSent(3n, '', 'c', 1), false);
    assert.equal(state.stats().unackedRefused, 1);
    assert.equal(state.stats().unacked, 2);
    state.applyFlow({ ack: 1n });
    assert.equal(state.canSend(1, '', 3n), true);
  });

  test('a checkpoint round-trips; acked and invalid records are skipped on restore', () => {
    const source = new DeliveryState<string>(KEY, { replay: 'durable', ordering: 'per_partition' });
    for (const p of ['p1', 'p1', 'p2']) send(source, p, p);
    source.applyFlow({ partitionAcks: [{ partition: 'p1', ack: 1n }] });
    const saved = source.checkpoint();
    assert.deepEqual(saved.partitionAcks, { p1: 1n });

    const target = new DeliveryState<string>(KEY, { replay: 'durable', ordering: 'per_partition' });
    const result = target.restore({
      ...saved,
      pending: [
        ...saved.pending,
        { partition: 'p1', sequence: 1n, packet: 'acked', size: 1 },
        { partition: 'p1', sequence: 0n, packet: 'bad', size: 1 },
      ],
    });
    assert.deepEqual(result, { restored: 2, skipped: 2 });
    assert.deepEqual(target.unackedInReplayOrder(), source.unackedInReplayOrder());
    assert.equal(target.assignEnvelope(env('p1'))?.sequence, 3n);
    assert.equal(target.assignEnvelope(env('p2'))?.sequence, 2n);
  });
});

describe('send gates', () => {
  test('max in flight holds each partition separately under per_partition', () => {
    const state = new DeliveryState<string>(KEY, {
      semantics: 'at_least_once',
      ordering: 'per_partition',
      maxInFlight: 2,
    });
    assert.equal(send(state, 'a1', 'a'), 1n);
    assert.equal(send(state, 'a2', 'a'), 2n);
    assert.equal(send(state, 'a3', 'a'), undefined);
    assert.equal(send(state, 'b1', 'b'), 1n, 'partition b is not held by a');
    state.applyFlow({ partitionAcks: [{ partition: 'a', ack: 1n }] });
    assert.equal(state.canSend(10, 'a', 3n), true);
    assert.equal(state.stats().blocked.max_in_flight, 1);
  });

  test('max in flight counts the whole stream under per_stream', () => {
    const state = new DeliveryState<string>(KEY, { semantics: 'at_least_once', maxInFlight: 2 });
    send(state, 'a', 'x');
    send(state, 'b', 'y');
    assert.equal(state.blockedBy(10, 'z', 3n), 'max_in_flight');
  });

  test('credits run out by messages, and replenish from the downstream', () => {
    const state = new DeliveryState<string>(KEY, { flowMode: 'credits', initialCreditsMessages: 2 }, LIMITS);
    assert.notEqual(send(state, 'a'), undefined);
    assert.notEqual(send(state, 'b'), undefined);
    assert.equal(state.blockedBy(10, '', 0n), 'credits');
    const result = state.applyFlow({ creditsMessages: 1 });
    assert.ok(result.creditsAdded && result.mayUnblock);
    assert.equal(state.canSend(10, '', 0n), true);
  });

  test('a packet larger than the byte credits waits; bytes never go below 0', () => {
    const state = new DeliveryState<string>(KEY, {
      flowMode: 'credits',
      initialCreditsMessages: 10,
      initialCreditsBytes: 100,
    });
    assert.equal(state.canSend(101, '', 0n), false);
    assert.equal(state.canSend(100, '', 0n), true);
    state.recordSent(0n, '', 'big', 100);
    state.recordSent(0n, '', 'over', 50); // the caller ignored canSend: credits floor at 0
    assert.equal(state.stats().creditsBytes, 0);
    state.applyFlow({ creditsBytes: 60 });
    assert.equal(state.canSend(60, '', 0n), true);
    assert.equal(state.canSend(61, '', 0n), false);
  });

  test('invalid credit grants are ignored and counted', () => {
    const state = new DeliveryState<string>(KEY, { flowMode: 'credits', initialCreditsMessages: 1 });
    const result = state.applyFlow({ creditsMessages: -5, creditsBytes: Number.NaN });
    assert.equal(result.creditsAdded, false);
    assert.equal(state.stats().creditsMessages, 1);
    assert.equal(state.stats().invalidCredits, 2);
  });

  test('the window blocks sequences past lastAck + window until an ack slides it', () => {
    const state = new DeliveryState<string>(KEY, {
      semantics: 'at_least_once',
      flowMode: 'window',
      initialCreditsMessages: 3,
    });
    assert.deepEqual([send(state, 'a'), send(state, 'b'), send(state, 'c')], [1n, 2n, 3n]);
    const fourth = state.assignEnvelope(env());
    assert.equal(fourth?.sequence, 4n);
    assert.equal(state.blockedBy(10, '', 4n), 'window');
    state.applyFlow({ ack: 1n });
    assert.equal(state.canSend(10, '', 4n), true);
    assert.equal(state.canSend(10, '', 5n), false);
  });

  test('a PAUSE from the downstream blocks every send until its RESUME', () => {
    const state = new DeliveryState<string>(KEY);
    const paused = state.applyFlow({ signal: 'pause' });
    assert.equal(paused.paused, true);
    assert.equal(state.blockedBy(1, '', 0n), 'paused');
    assert.equal(state.applyFlow({ signal: 'pause' }).paused, false, 'already paused');
    const resumed = state.applyFlow({ signal: 'resume' });
    assert.ok(resumed.resumed && resumed.mayUnblock);
    assert.equal(state.canSend(1, '', 0n), true);
    assert.equal(state.stats().pauseSignalsReceived, 2);
  });

  test('a bad size is a clear error, not a silent pass', () => {
    const state = new DeliveryState<string>(KEY);
    assert.throws(() => state.canSend(-1, '', 0n), InvalidFlowInputError);
    assert.throws(() => state.recordSent(1n, '', 'x', Number.NaN), InvalidFlowInputError);
  });
});

describe('upstream pause and resume', () => {
  test('one PAUSE at the threshold, one RESUME only below the resume threshold', () => {
    const pause = new PauseController({ pausePct: 80, resumePct: 40 });
    const signals = [0.5, 0.8, 0.9, 1, 0.7, 0.5, 0.41, 0.4, 0.3, 0.79, 0.2].map((u) => pause.observe(u));
    assert.deepEqual(signals, [
      undefined,
      'pause',
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'resume',
      undefined,
      undefined,
      undefined,
    ]);
    assert.deepEqual(pause.stats(), {
      upstreamPaused: false,
      thresholdPaused: false,
      drainPaused: false,
      pausesEmitted: 1,
      resumesEmitted: 1,
      invalidObservations: 0,
    });
  });

  test('a drain while threshold-paused sends no second PAUSE, and its end no RESUME', () => {
    const pause = new PauseController({ pausePct: 80, resumePct: 40 });
    assert.equal(pause.observe(0.85), 'pause');
    assert.equal(pause.drainStarted(), undefined);
    assert.equal(pause.drainFinished(), undefined, 'still over the threshold');
    assert.equal(pause.observe(0.1), 'resume');
  });

  test('no RESUME while drain-paused, even when the buffer empties', () => {
    const pause = new PauseController({ pausePct: 80, resumePct: 40 });
    assert.equal(pause.drainStarted(), 'pause');
    assert.equal(pause.observe(0.9), undefined);
    assert.equal(pause.observe(0), undefined);
    assert.ok(pause.upstreamPaused);
    assert.equal(pause.drainFinished(), 'resume');
    assert.equal(pause.stats().pausesEmitted, 1);
  });

  test('threshold pausing is off at pausePct 0 but drains still pause', () => {
    const pause = new PauseController({ pausePct: 0, resumePct: 0 });
    assert.equal(pause.observe(1), undefined);
    assert.equal(pause.drainStarted(), 'pause');
    assert.equal(pause.drainStarted(), undefined);
    assert.equal(pause.drainFinished(), 'resume');
  });

  test('a threshold pause never blocks sending to the downstream (so the buffer can drain)', () => {
    const state = new DeliveryState<string>(KEY, { pausePct: 50 });
    assert.equal(state.upstream.observe(0.9), 'pause');
    assert.equal(state.canSend(1, '', 0n), true);
    assert.equal(state.stats().upstream.pausesEmitted, 1);
  });

  test('invalid utilisation samples are ignored and counted', () => {
    const pause = new PauseController({ pausePct: 50, resumePct: 25 });
    assert.equal(pause.observe(Number.NaN), undefined);
    assert.equal(pause.observe(-1), undefined);
    assert.equal(pause.stats().invalidObservations, 2);
  });
});
