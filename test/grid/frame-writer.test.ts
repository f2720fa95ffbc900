// The grid's one writer per socket, driven directly: what leaves, in which messages, and when.
//
// The fake `send` keeps a copy of every message as it was handed over, and the message itself.
// Before a test calls a message's `done`, the harness checks that the message still holds the
// bytes it was sent with: the writer may reuse a batch buffer only once the socket is done.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FrameTooLargeError } from '../../src/grid/errors.ts';
import { FrameWriter, type FrameWriterOptions } from '../../src/grid/frame-writer.ts';
import {
  decodeFrame,
  decodeMessage,
  frameSize,
  MERGED_HEADER_BYTES,
  type Frame,
} from '../../src/grid/frame.ts';
import { CRC_BYTES, Flag, MERGE_MAX_BYTES, MERGE_MAX_MESSAGES, Op } from '../../src/grid/protocol.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

interface SentMessage {
  /** The bytes as they were when handed to `send`. */
  readonly copy: Buffer;
  /** The message object itself, which the writer may reuse once `done` ran. */
  readonly message: Buffer;
  /** Completes the write; checks first that the message was left intact until now. */
  readonly done: (error?: Error) => void;
  finished: boolean;
}

interface Harness {
  readonly writer: FrameWriter;
  readonly clock: FakeClock;
  readonly sent: SentMessage[];
  readonly writeErrors: Error[];
  /** Completes every write not yet completed. */
  readonly finishAll: () => void;
}

/** A writer over a fake socket; `autoDone` completes every write inside `send`. */
function harness(
  options: Partial<Omit<FrameWriterOptions, 'send' | 'clock'>> = {},
  autoDone = true,
): Harness {
  const clock = new FakeClock();
  const sent: SentMessage[] = [];
  const writeErrors: Error[] = [];
  const writer = new FrameWriter({
    clock,
    crc: true,
    maxQueuedBytes: 4 * 1024 * 1024,
    writeHighWaterBytes: 4 * 1024 * 1024,
    maxMessageBytes: 4 * 1024 * 1024,
    onWriteError: (error) => {
      writeErrors.push(error);
    },
    ...options,
    send: (message, done) => {
      const entry: SentMessage = {
        copy: Buffer.from(message),
        message,
        finished: false,
        done: (error) => {
          assert.equal(entry.finished, false, 'done is called once per message');
          assert.ok(message.equals(entry.copy), 'a message is left intact until its write completes');
          entry.finished = true;
          done(error);
        },
      };
      sent.push(entry);
      if (autoDone) entry.done();
    },
  });
  return {
    writer,
    clock,
    sent,
    writeErrors,
    finishAll: () => {
      for (const entry of sent) if (!entry.finished) entry.done();
    },
  };
}

/** Lets one turn of the event loop pass: the writer flushes on `setImmediate`. */
async function turn(): Promise<void> {
  await new Promise(setImmediate);
}

/** A stream item whose seq identifies it and whose payload bytes derive from the seq. */
function item(seq: number, payloadBytes = 16): Frame {
  return {
    muxId: 7,
    seq,
    deadlineMs: 0,
    handler: 64,
    op: Op.MuxServerMsg,
    flags: 0,
    payload: Uint8Array.from({ length: payloadBytes }, (_, i) => (seq * 31 + i) & 0xff),
  };
}

function isMerged(message: Buffer): boolean {
  return message[0] === 0x97 && message[1] === 0 && message[5] === Op.Merged;
}

/** Frames of a recorded message, decoded from the copy taken at send time. */
function framesOf(entry: SentMessage): Frame[] {
  return decodeMessage(entry.copy);
}

/** Every frame sent, in order, checked against the `item` it was built from. */
function assertItems(sent: readonly SentMessage[], seqs: readonly number[], payloadBytes = 16): void {
  const frames = sent.flatMap(framesOf);
  assert.deepEqual(
    frames.map((f) => f.seq),
    seqs,
  );
  for (const f of frames) {
    const expected = item(f.seq, payloadBytes);
    assert.equal(f.muxId, expected.muxId);
    assert.equal(f.handler, expected.handler);
    assert.equal(f.op, expected.op);
    assert.deepEqual(Buffer.from(f.payload ?? []), Buffer.from(expected.payload ?? []));
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

test('frames queued in one turn leave as one Merged message, in order, under one batch CRC', async () => {
  const { writer, sent } = harness({ crc: true });
  for (let seq = 0; seq < 5; seq++) assert.equal(writer.enqueue(item(seq)), true);
  assert.equal(sent.length, 0, 'nothing leaves before the next turn');
  await turn();
  assert.equal(sent.length, 1);
  const [entry] = sent as [SentMessage];
  assert.ok(isMerged(entry.copy));
  assert.equal(entry.copy[2], 5, 'the count of frames in the batch');
  assert.equal(entry.copy[6], Flag.CRC, 'the outer flags carry the batch CRC');
  for (const f of framesOf(entry))
    assert.equal(f.flags & Flag.CRC, 0, 'no frame inside has a CRC of its own');
  assertItems(sent, range(0, 5));
  assert.deepEqual(writer.stats, {
    messagesSent: 1,
    bytesSent: entry.copy.length,
    framesRefused: 0,
    framesDropped: 0,
  });
});

test('with crc off, a batch has no batch CRC and its frames none of their own', async () => {
  const { writer, sent } = harness({ crc: false });
  for (let seq = 0; seq < 5; seq++) writer.enqueue(item(seq));
  await turn();
  assert.equal(sent.length, 1);
  const [entry] = sent as [SentMessage];
  assert.equal(entry.copy[6], 0);
  const itemsBytes = range(0, 5).reduce((sum, seq) => sum + 2 + frameSize(item(seq), false), 0);
  assert.equal(entry.copy.length, MERGED_HEADER_BYTES + itemsBytes, 'no CRC trailer anywhere');
  for (const f of framesOf(entry)) assert.equal(f.flags & Flag.CRC, 0);
  assertItems(sent, range(0, 5));
});

test('the payload is copied when queued: the caller may reuse its buffer at once', async () => {
  const { writer, sent } = harness();
  const frame = item(1);
  writer.enqueue(frame);
  (frame.payload as Uint8Array).fill(0xee);
  await turn();
  assertItems(sent, [1]);
});

test(`${MERGE_MAX_MESSAGES + 1} small frames leave as two messages: ${MERGE_MAX_MESSAGES} then 1`, async () => {
  const { writer, sent } = harness();
  for (let seq = 0; seq <= MERGE_MAX_MESSAGES; seq++) writer.enqueue(item(seq));
  await turn();
  assert.deepEqual(
    sent.map((entry) => framesOf(entry).length),
    [MERGE_MAX_MESSAGES, 1],
  );
  assert.ok(sent.every((entry) => isMerged(entry.copy)));
  assertItems(sent, range(0, MERGE_MAX_MESSAGES + 1));
});

test('batches stay within the peer message limit, and every frame arrives once, in order', async () => {
  const limit = 8 * 1024;
  const { writer, sent } = harness({ maxMessageBytes: limit });
  for (let seq = 0; seq < 20; seq++) writer.enqueue(item(seq, 2_000));
  await turn();
  assert.ok(sent.length > 1);
  for (const entry of sent) {
    assert.ok(entry.copy.length <= limit, `a message of ${entry.copy.length} bytes`);
    assert.ok(isMerged(entry.copy));
  }
  // Each batch is as full as the limit lets it be: four items of ~2 KB fit under 8 KiB, five not.
  assert.deepEqual(
    sent.map((entry) => framesOf(entry).length),
    [4, 4, 4, 4, 4],
  );
  assertItems(sent, range(0, 20), 2_000);
});

test('with a large peer limit, no batch reaches MERGE_MAX_BYTES (31 KiB)', async () => {
  const { writer, sent } = harness({ maxMessageBytes: 4 * 1024 * 1024 });
  for (let seq = 0; seq < 40; seq++) writer.enqueue(item(seq, 2_000));
  await turn();
  assert.ok(sent.length > 1);
  for (const entry of sent)
    assert.ok(entry.copy.length < MERGE_MAX_BYTES, `a message of ${entry.copy.length} bytes`);
  assertItems(sent, range(0, 40), 2_000);
});

test('a frame too large for any batch goes alone with its own CRC, between the frames around it', async () => {
  const { writer, sent } = harness({ maxMessageBytes: 1024 * 1024 });
  writer.enqueue(item(0));
  writer.enqueue(item(1));
  writer.enqueue(item(2, 40 * 1024));
  writer.enqueue(item(3));
  writer.enqueue(item(4));
  await turn();
  assert.equal(sent.length, 3);
  const [before, alone, after] = sent as [SentMessage, SentMessage, SentMessage];
  assert.ok(isMerged(before.copy));
  assert.deepEqual(
    framesOf(before).map((f) => f.seq),
    [0, 1],
  );
  const big = decodeFrame(alone.copy); // throws for a Merged message
  assert.equal(big.seq, 2);
  assert.equal(big.flags & Flag.CRC, Flag.CRC, 'a frame alone carries its own CRC');
  assert.equal(alone.copy.length, frameSize(item(2, 40 * 1024), true));
  assert.deepEqual(Buffer.from(big.payload ?? []), Buffer.from(item(2, 40 * 1024).payload ?? []));
  assert.ok(isMerged(after.copy));
  assert.deepEqual(
    framesOf(after).map((f) => f.seq),
    [3, 4],
  );
});

test('a full batch and a frame alone leave at once; the open batch at the end of the turn', () => {
  const { writer, sent } = harness({ maxMessageBytes: 1024 * 1024 });
  for (const seq of range(0, MERGE_MAX_MESSAGES + 1)) writer.enqueue(item(seq));
  assert.equal(sent.length, 1, 'the full batch left without waiting for the turn to end');
  writer.enqueue(item(100, 40 * 1024));
  assert.equal(sent.length, 3, 'a frame alone leaves at once, after the open batch it closes');
});

test('an urgent frame leaves at once with the open batch before it', () => {
  const { writer, sent } = harness();
  writer.enqueue(item(0));
  writer.enqueue(item(1));
  assert.equal(sent.length, 0);
  writer.enqueue(item(2), true, true);
  assert.equal(sent.length, 1);
  assert.deepEqual(
    framesOf(sent[0] as SentMessage).map((f) => f.seq),
    [0, 1, 2],
  );
});

test('large frames sent one after another reuse one buffer once written, each intact', async () => {
  const { writer, sent } = harness({ maxMessageBytes: 2 * 1024 * 1024 }, false);
  const large = (seq: number): Frame => item(seq, 1024 * 1024);
  writer.enqueue(large(0));
  assert.equal(sent.length, 1);
  (sent[0] as SentMessage).done();
  writer.enqueue(large(1));
  assert.equal(sent.length, 2);
  const [first, second] = sent as [SentMessage, SentMessage];
  assert.equal(second.message.buffer, first.message.buffer, 'the memory of the first, free again, is reused');
  // Not before its write completed: a third frame while the second is pending gets other memory.
  writer.enqueue(large(2));
  const third = sent[2] as SentMessage;
  assert.notEqual(third.message.buffer, second.message.buffer);
  second.done();
  third.done();
  assert.deepEqual(
    sent.map((entry) => decodeFrame(entry.copy).seq),
    [0, 1, 2],
  );
  for (const entry of sent) {
    const frame = decodeFrame(entry.copy);
    assert.deepEqual(Buffer.from(frame.payload ?? []), Buffer.from(large(frame.seq).payload ?? []));
  }
  await turn();
});

test('while writes above the high-water mark are pending, later frames wait and then leave merged', async () => {
  const { writer, sent, clock } = harness({ writeHighWaterBytes: 64 }, false);
  writer.enqueue(item(0, 100));
  await turn();
  assert.equal(sent.length, 1);
  // Six turns of ten frames each, all held back behind the pending write.
  for (let t = 0; t < 6; t++) {
    for (let i = 0; i < 10; i++) writer.enqueue(item(1 + t * 10 + i));
    await turn();
  }
  assert.equal(sent.length, 1, 'nothing more is handed over while the write is pending');
  clock.advance(500);
  assert.equal(writer.stalledForMs(), 500);
  // Each completed write lets the next message go; the held frames fill as few as the limits allow.
  for (let i = 0; i < 5 && sent.some((entry) => !entry.finished); i++) {
    for (const entry of sent) if (!entry.finished) entry.done();
    await turn();
  }
  assert.deepEqual(
    sent.map((entry) => framesOf(entry).length),
    [1, MERGE_MAX_MESSAGES, 60 - MERGE_MAX_MESSAGES],
  );
  assertItems(sent.slice(1), range(1, 61));
  assert.equal(writer.stalledForMs(), 0);
});

test('a sent message keeps its bytes until its write completes, and no later batch corrupts one', async () => {
  const { writer, sent, finishAll } = harness({}, false);
  let seq = 0;
  // Each turn sends a batch while the previous one is still pending, then completes the
  // previous one, so its buffer can serve a later batch.
  for (let t = 0; t < 12; t++) {
    for (let i = 0; i < 8; i++) writer.enqueue(item(seq++, 100 + t));
    await turn();
    assert.equal(sent.length, t + 1);
    for (const entry of sent) {
      if (!entry.finished) assert.ok(entry.message.equals(entry.copy), 'a pending message is intact');
    }
    const previous = sent[t - 1];
    if (previous !== undefined) previous.done();
  }
  finishAll();
  // Writes that complete inside `send`, so the same buffer may serve the very next batch.
  const synchronous = harness();
  for (let t = 0; t < 12; t++) {
    for (let i = 0; i < 8; i++) synchronous.writer.enqueue(item(t * 8 + i, 100 + t));
    await turn();
  }
  for (const [index, entry] of [...sent, ...synchronous.sent].entries()) {
    const t = index % 12;
    const frames = framesOf(entry);
    assert.deepEqual(
      frames.map((f) => f.seq),
      range(t * 8, t * 8 + 8),
    );
    for (const f of frames) {
      assert.deepEqual(Buffer.from(f.payload ?? []), Buffer.from(item(f.seq, 100 + t).payload ?? []));
    }
  }
});

test('past maxQueuedBytes, ordinary frames are refused and control frames accepted up to twice the bound', async () => {
  const size = frameSize(item(0), true);
  const { writer, sent } = harness({ maxQueuedBytes: 10 * size });
  for (let seq = 0; seq < 10; seq++) assert.equal(writer.enqueue(item(seq)), true);
  assert.equal(writer.enqueue(item(10)), false);
  assert.equal(writer.stats.framesRefused, 1);
  for (let seq = 11; seq < 21; seq++)
    assert.equal(writer.enqueue(item(seq), true), true, `control frame ${seq}`);
  assert.equal(writer.enqueue(item(21), true), false, 'control frames too are bounded, at twice the limit');
  assert.equal(writer.stats.framesRefused, 2);
  await turn();
  assertItems(sent, [...range(0, 10), ...range(11, 21)]);
  // Sent frames leave the queue: there is room again.
  assert.equal(writer.enqueue(item(22)), true);
  await turn();
  assert.equal(writer.stats.framesRefused, 2);
});

test('close() drops what is queued, refuses later frames and sends nothing more', async () => {
  const { writer, sent } = harness();
  for (let seq = 0; seq < 5; seq++) writer.enqueue(item(seq));
  writer.close();
  assert.equal(writer.stats.framesDropped, 5);
  assert.equal(writer.enqueue(item(5)), false);
  assert.equal(writer.enqueue(item(6), true), false);
  assert.equal(writer.stats.framesRefused, 2);
  await turn();
  await turn();
  assert.equal(sent.length, 0);
  assert.equal(writer.stats.messagesSent, 0);
});

test('close() while a write is pending drops the frames held back, and its completion sends nothing', async () => {
  const { writer, sent } = harness({ writeHighWaterBytes: 1 }, false);
  writer.enqueue(item(0));
  await turn();
  assert.equal(sent.length, 1);
  for (let seq = 1; seq <= 60; seq++) writer.enqueue(item(seq));
  await turn();
  writer.close();
  assert.equal(writer.stats.framesDropped, 60);
  sent[0]?.done();
  await turn();
  assert.equal(sent.length, 1);
  assert.equal(writer.enqueue(item(61)), false);
  assert.equal(writer.stats.framesRefused, 1);
});

test('a frame over maxMessageBytes throws FrameTooLargeError; one of exactly that size goes alone', async () => {
  const limit = 8 * 1024;
  const { writer, sent } = harness({ maxMessageBytes: limit });
  // The payload that makes a frame of exactly `limit` bytes (its bin header is 3 bytes long).
  const fits = limit - (frameSize(item(1, 0), true) - 2 + 3);
  assert.equal(frameSize(item(1, fits), true), limit);
  writer.enqueue(item(0));
  assert.throws(() => writer.enqueue(item(9, fits + 1)), FrameTooLargeError);
  assert.equal(writer.enqueue(item(1, fits)), true);
  await turn();
  assert.equal(sent.length, 2);
  assert.deepEqual(
    framesOf(sent[0] as SentMessage).map((f) => f.seq),
    [0],
  );
  const alone = sent[1] as SentMessage;
  assert.equal(alone.copy.length, limit);
  assert.equal(decodeFrame(alone.copy).seq, 1);
  assert.equal(writer.stats.framesRefused, 0, 'a thrown frame is the caller’s mistake, not a refusal');
});

test('an invalid frame throws RangeError and leaves the frames queued before it intact and alone', async () => {
  const invalid: Frame[] = [
    { ...item(90), handler: 256 },
    { ...item(91), op: Op.Merged },
    { ...item(92), flags: 0x40 },
    { ...item(93), muxId: -1 },
    { ...item(94), subroute: new Uint8Array(31) },
  ];
  const { writer, sent } = harness();
  for (let seq = 0; seq < 3; seq++) writer.enqueue(item(seq));
  for (const frame of invalid) assert.throws(() => writer.enqueue(frame), RangeError, `seq ${frame.seq}`);
  await turn();
  assert.equal(sent.length, 1);
  assert.equal(framesOf(sent[0] as SentMessage).length, 3);
  assertItems(sent, [0, 1, 2]);
  assert.deepEqual(writer.stats, {
    messagesSent: 1,
    bytesSent: (sent[0] as SentMessage).copy.length,
    framesRefused: 0,
    framesDropped: 0,
  });
});

test('a write error calls onWriteError once', async () => {
  const { writer, sent, writeErrors } = harness({}, false);
  writer.enqueue(item(0));
  await turn();
  const failure = new Error('socket reset');
  sent[0]?.done(failure);
  assert.deepEqual(writeErrors, [failure]);
  await turn();
  assert.deepEqual(writeErrors, [failure]);
});

test('several pending writes failing together call onWriteError once', async () => {
  const { writer, sent, writeErrors } = harness({}, false);
  writer.enqueue(item(0));
  await turn();
  writer.enqueue(item(1));
  await turn();
  assert.equal(sent.length, 2);
  // A socket that fails fails every pending write.
  sent[0]?.done(new Error('socket reset'));
  sent[1]?.done(new Error('socket reset'));
  assert.equal(writeErrors.length, 1);
});

test('the batch CRC covers every byte before it', async () => {
  const { writer, sent } = harness();
  for (let seq = 0; seq < 3; seq++) writer.enqueue(item(seq));
  await turn();
  const corrupted = Buffer.from((sent[0] as SentMessage).copy);
  const at = corrupted.length - CRC_BYTES - 1;
  corrupted[at] = (corrupted[at] as number) ^ 0x01;
  assert.throws(() => decodeMessage(corrupted), /crc mismatch on Merged/);
});

test('a send that throws fails like a write: onWriteError once, nothing left in flight', async () => {
  const clock = new FakeClock();
  const writeErrors: Error[] = [];
  const writer = new FrameWriter({
    clock,
    crc: true,
    maxQueuedBytes: 1024 * 1024,
    writeHighWaterBytes: 1024 * 1024,
    maxMessageBytes: 1024 * 1024,
    onWriteError: (error) => {
      writeErrors.push(error);
    },
    send: () => {
      throw new Error('WebSocket is not open');
    },
  });
  writer.enqueue(item(0));
  await turn();
  assert.equal(writeErrors.length, 1);
  assert.match(writeErrors[0]?.message ?? '', /not open/);
  clock.advance(60_000);
  assert.equal(writer.stalledForMs(), 0, 'no write is counted as pending');
  // A frame alone goes straight to send from enqueue: the throw still reaches onWriteError only.
  assert.equal(writer.enqueue(item(1, 40 * 1024)), true);
  assert.equal(writeErrors.length, 1, 'reported once');
});
