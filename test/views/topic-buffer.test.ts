import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { TopicBuffer, type Batch } from '../../src/views/topic-buffer.ts';

function batch(index: number): Batch<string> {
  return { index, events: [{ subject: 's', payload: String(index) }] };
}

describe('TopicBuffer', () => {
  test('the ring wraps around: the newest batches stay readable by sequence number, the oldest are gone', () => {
    const buffer = new TopicBuffer<string>(3, 1);
    for (let index = 2; index <= 8; index++) buffer.append(batch(index));
    assert.equal(buffer.size, 3);
    assert.equal(buffer.nextSeq, 7);
    assert.equal(buffer.latestIndex, 8);
    assert.equal(buffer.dropped, 4);
    for (let seq = 0; seq < 4; seq++) assert.equal(buffer.read(seq), 'gone');
    assert.deepEqual(
      [4, 5, 6].map((seq) => (buffer.read(seq) as Batch<string>).index),
      [6, 7, 8],
    );
    assert.equal(buffer.read(7), undefined, 'not published yet');
  });

  test('a reader whose next batch was dropped is told it is gone, never handed a later batch', () => {
    const buffer = new TopicBuffer<string>(2, 1);
    buffer.append(batch(2));
    const seq = buffer.seqAfter(1);
    assert.equal(seq, 0);
    buffer.append(batch(3));
    buffer.append(batch(4));
    assert.equal(buffer.read(0), 'gone');
  });

  test('seqAfter finds the first batch after an index, and nothing for an index whose successors were dropped', () => {
    const buffer = new TopicBuffer<string>(4, 1);
    for (const index of [3, 5, 9, 10, 14, 20]) buffer.append(batch(index));
    // Held: 9, 10, 14, 20 (seq 2..5); the newest dropped batch is at 5.
    assert.equal(buffer.seqAfter(4), undefined);
    assert.equal(buffer.seqAfter(5), 2);
    assert.equal(buffer.seqAfter(8), 2);
    assert.equal(buffer.seqAfter(9), 3);
    assert.equal(buffer.seqAfter(13), 4);
    assert.equal(buffer.seqAfter(19), 5);
    assert.equal(buffer.seqAfter(20), 6);
    assert.equal(buffer.seqAfter(25), 6);
  });

  test('an empty buffer resumes from its start index and refuses anything before it', () => {
    const buffer = new TopicBuffer<string>(4, 7);
    assert.equal(buffer.seqAfter(7), 0);
    assert.equal(buffer.seqAfter(6), undefined);
    assert.equal(buffer.latestIndex, 7);
  });

  test('after clear every held batch is gone, the index moves on by one, and only that index can be resumed', () => {
    const buffer = new TopicBuffer<string>(4, 1);
    buffer.append(batch(2));
    buffer.append(batch(3));
    buffer.clear();
    assert.equal(buffer.size, 0);
    assert.equal(buffer.latestIndex, 4, 'a snapshot after the clear is above anything read before it');
    assert.equal(buffer.read(0), 'gone');
    assert.equal(buffer.read(1), 'gone');
    assert.equal(buffer.seqAfter(2), undefined);
    assert.equal(buffer.seqAfter(3), undefined);
    assert.equal(buffer.seqAfter(4), 2);
    buffer.append(batch(5));
    assert.equal((buffer.read(2) as Batch<string>).index, 5);
  });

  test('changed() resolves on the next append for every reader waiting, and a reader that gives up leaves nothing behind', async () => {
    const buffer = new TopicBuffer<string>(2, 1);
    const first = buffer.changed();
    const second = buffer.changed();
    const leaving = new AbortController();
    const third = buffer.changed(leaving.signal);
    assert.equal(buffer.waiting, 3);
    leaving.abort(new Error('gone'));
    await assert.rejects(third, /gone/);
    assert.equal(buffer.waiting, 2, 'the reader that gave up is no longer held');
    let woken = 0;
    void first.then(() => (woken += 1));
    void second.then(() => (woken += 1));
    await Promise.resolve();
    assert.equal(woken, 0);
    buffer.append(batch(2));
    await Promise.all([first, second]);
    assert.equal(woken, 2);
    assert.equal(buffer.waiting, 0);
    await assert.rejects(buffer.changed(AbortSignal.abort(new Error('already'))), /already/);
  });

  test('ten thousand readers that give up on an idle topic are all released', async () => {
    const buffer = new TopicBuffer<string>(2, 1);
    const waits = Array.from({ length: 10_000 }, () => {
      const controller = new AbortController();
      const wait = buffer.changed(controller.signal);
      controller.abort(new Error('done'));
      return wait.catch(() => undefined);
    });
    await Promise.all(waits);
    assert.equal(buffer.waiting, 0);
  });

  test('seqAfter and read agree with a linear scan of every batch ever appended (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(0)), { maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 250 }), { minLength: 1, maxLength: 20 }),
        (capacity, startIndex, steps, queries) => {
          // A step of 0 clears the buffer; any other step appends a batch that many indexes on.
          const buffer = new TopicBuffer<string>(capacity, startIndex);
          const appended: { seq: number; index: number }[] = [];
          let latest = startIndex;
          let forgottenThroughSeq = 0;
          let droppedIndex = startIndex;
          for (const step of steps) {
            if (step === 0) {
              buffer.clear();
              latest += 1;
              forgottenThroughSeq = appended.length;
              droppedIndex = latest;
              continue;
            }
            latest += step;
            appended.push({ seq: appended.length, index: latest });
            buffer.append(batch(latest));
            const held = appended.slice(forgottenThroughSeq);
            if (held.length > capacity) {
              droppedIndex = (held[0] as { index: number }).index;
              forgottenThroughSeq += 1;
            }
          }
          for (const { seq, index } of appended) {
            const read = buffer.read(seq);
            if (seq < forgottenThroughSeq) assert.equal(read, 'gone');
            else assert.equal((read as Batch<string>).index, index);
          }
          assert.equal(buffer.read(appended.length), undefined);
          for (const query of queries) {
            const expected =
              query < droppedIndex
                ? undefined
                : (appended.find((b) => b.seq >= forgottenThroughSeq && b.index > query)?.seq ??
                  appended.length);
            assert.equal(buffer.seqAfter(query), expected, `seqAfter(${query})`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
