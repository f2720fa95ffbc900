// Producer and consumers end to end: materializers in-process and across a real grid
// connection each hold exactly the producer's state at every index they apply, through
// random puts, deletes, forced resubscriptions and subscribers left behind the buffer; and
// a consumer whose grid link is killed resumes without missing or repeating an index.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { FakeClock, TestGrid } from '../../src/testing/index.ts';
import {
  EventPublisher,
  remoteEventSource,
  serveEventPublisher,
  type EventSource,
  type MapChange,
} from '../../src/views/index.ts';
import { eventually, ProxiedGrid, turn } from '../grid/reliability-harness.ts';
import { CheckingConsumer, Producer, type Op } from './consumer-harness.ts';

const key = fc.integer({ min: 0, max: 39 }).map((i) => `k${i}`);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key, value: fc.integer({ min: -1000, max: 1000 }) }),
  fc.record({ kind: fc.constant('delete' as const), key }),
);
type Command =
  | { readonly kind: 'publish'; readonly ops: readonly Op[] }
  | { readonly kind: 'resubscribe'; readonly consumer: number }
  | { readonly kind: 'yield'; readonly turns: number };
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.array(op, { minLength: 1, maxLength: 4 }).map((ops) => ({ kind: 'publish' as const, ops })),
  },
  {
    weight: 1,
    arbitrary: fc.nat({ max: 5 }).map((consumer) => ({ kind: 'resubscribe' as const, consumer })),
  },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1, max: 3 }).map((turns) => ({ kind: 'yield' as const, turns })),
  },
);

/** Lets sockets and retry timers run until every consumer has applied `index`. */
async function converge(
  clock: FakeClock,
  consumers: readonly CheckingConsumer[],
  index: number,
): Promise<void> {
  const started = performance.now();
  while (consumers.some((c) => c.applied !== index)) {
    if (performance.now() - started > 30_000) {
      const where = consumers.map((c) => `${c.name}@${c.applied}`).join(', ');
      throw new Error(`consumers did not reach index ${index}: ${where}`);
    }
    // Small steps: the grid's liveness runs on this clock too, and must not outpace real I/O.
    await clock.advanceAsync(100);
    await turn();
  }
}

describe('views: integration', () => {
  test('six consumers, in-process and over the grid, equal the producer at every index through 10 000 random publishes, deletes and resubscriptions', async (t) => {
    const clock = new FakeClock();
    const grid = await TestGrid.start(2, { clock, random: () => 0 });
    t.after(() => grid.close());
    // A small buffer, so consumers that lag are left behind it and must take a new snapshot.
    const publisher = new EventPublisher({ bufferBatches: 32, snapshotChunkEvents: 8 });
    serveEventPublisher(grid.manager(0), publisher);
    await grid.waitAllConnected({});

    let run = 0;
    let published = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 2000, maxLength: 2000 }), async (commands) => {
        run += 1;
        const producer = new Producer(publisher, `kv-${run}`);
        const local: EventSource<MapChange<number>> = (request, signal) =>
          publisher.subscribe(request, { signal });
        const remote = remoteEventSource<MapChange<number>>(() => grid.connection(1, 0));
        const consumers = [0, 1, 2, 3, 4, 5].map(
          (i) =>
            new CheckingConsumer({
              name: `${i < 3 ? 'local' : 'remote'}-${i}`,
              producer,
              source: i < 3 ? local : remote,
              clock,
            }),
        );
        try {
          for (const step of commands) {
            if (step.kind === 'publish') {
              producer.apply(step.ops);
              published += 1;
            } else if (step.kind === 'resubscribe') {
              (consumers[step.consumer] as CheckingConsumer).breakNext = true;
            } else {
              // Due retry timers fire too, so a resubscription can resume from the buffer.
              for (let i = 0; i < step.turns; i++) {
                await clock.advanceAsync(0);
                await turn();
              }
            }
          }
          await converge(clock, consumers, producer.latest);
          for (const consumer of consumers) {
            assert.deepEqual(consumer.problems, [], consumer.name);
            assert.equal(consumer.materializer.index, producer.latest, consumer.name);
            const result = await consumer.materializer.fetch({ minIndex: 0 });
            assert.equal(result.value, producer.fingerprintAt(producer.latest), consumer.name);
          }
        } finally {
          await Promise.all(consumers.map((c) => c.stop()));
          publisher.removeTopic(producer.topic);
        }
      }),
      { numRuns: 7, endOnFailure: true },
    );
    assert.ok(published >= 10_000, `only ${published} publishes were made`);
    // The small buffer did its job: some subscribers fell behind it and recovered.
    assert.ok(publisher.stats().slowSubscribers > 0, 'no subscriber was ever left behind the buffer');
  });

  test('a consumer whose grid link is killed resumes after its index, missing and repeating nothing', async (t) => {
    const clock = new FakeClock();
    const publisher = new EventPublisher();
    const grid = await ProxiedGrid.start(2, {
      clock,
      random: () => 0,
      setup: (manager, i) => {
        if (i === 0) serveEventPublisher(manager, publisher);
      },
    });
    t.after(() => grid.close());
    await grid.waitAllConnected();

    const producer = new Producer(publisher, 'kv');
    const consumer = new CheckingConsumer({
      name: 'remote',
      producer,
      source: remoteEventSource(() => grid.connection(1, 0)),
      clock,
    });
    t.after(() => consumer.stop());
    for (let i = 0; i < 20; i++) producer.apply([{ kind: 'put', key: `k${i % 7}`, value: i }]);
    await converge(clock, [consumer], producer.latest);
    const before = producer.latest;

    grid.linkProxy(0, 1).kill();
    await eventually(() => grid.connection(1, 0).state() !== 'connected', 'the link to drop');
    // Published while the consumer cannot hear: it must get these from the buffer on resume.
    for (let i = 0; i < 10; i++) producer.apply([{ kind: 'delete', key: `k${i % 7}` }]);
    await grid.waitAllConnected();
    await converge(clock, [consumer], producer.latest);

    assert.deepEqual(consumer.problems, []);
    assert.equal(consumer.snapshotsApplied, 1, 'resumed from its index, not from a new snapshot');
    const afterSnapshot = consumer.appliedIndexes.slice(1);
    const first = consumer.appliedIndexes[0] as number;
    assert.deepEqual(
      afterSnapshot,
      Array.from({ length: producer.latest - first }, (_, i) => first + 1 + i),
      'every index after the snapshot exactly once',
    );
    assert.ok(consumer.appliedIndexes.includes(before + 1));
    assert.equal(publisher.stats().snapshots, 1);
  });
});
