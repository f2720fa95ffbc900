// The cap on split batches across the grid: a batch too large for one message comes in
// parts ([3, index, events] … [0, index, events]), which the subscribing side gathers
// before it hands on one atomic batch; it gathers at most 1 000 000 events, so a peer
// cannot make it hold an unbounded batch. These tests play the serving peer on the raw
// subscription handler, writing the parts by hand, and look at the subscribing side:
// a batch of exactly the cap arrives whole, one event more is refused with a
// ProtocolError and the stream is cancelled, and a materializer counts the refusal,
// keeps its view as it was and resumes from its last good index.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { msgpackCodec, ProtocolError } from '../../src/grid/index.ts';
import { FakeClock, TestGrid } from '../../src/testing/index.ts';
import {
  MapView,
  Materializer,
  putEvent,
  remoteEventSource,
  VIEWS_SUBSCRIBE_HANDLER,
  type MapChange,
  type StreamItem,
  type SubscribeRequest,
} from '../../src/views/index.ts';

/** The most events a split batch may gather (MAX_BATCH_EVENTS in src/views/remote.ts). */
const CAP = 1_000_000;

const msgpack = msgpackCodec<unknown>();

/**
 * `[kind, index, pairs]` with `count` events `['', nil]`, written by hand (three bytes an
 * event) rather than made from a million objects.
 */
function partOf(kind: 0 | 3, index: number, count: number): Uint8Array {
  const head = Buffer.concat([
    Uint8Array.of(0x93, kind),
    message(index),
    Uint8Array.of(0xdd), // array 32
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(count);
  const events = Buffer.alloc(count * 3);
  if (count > 0) events.fill(Uint8Array.of(0x92, 0xa0, 0xc0)); // ['', nil]
  return Uint8Array.from(Buffer.concat([head, length, events]));
}

function message(item: unknown): Uint8Array {
  const bytes = msgpack.encode(item);
  assert.ok(bytes !== undefined);
  return bytes;
}

interface FakePeer {
  /** The request of every subscription, in order. */
  readonly requests: SubscribeRequest[];
  /** Subscriptions the subscribing side cancelled. */
  cancelled: number;
}

/** A message to send, or a gate the peer waits for before it sends the rest. */
type ScriptStep = Uint8Array | Promise<void>;

/**
 * Node 0 of a two-node grid plays the serving peer on the subscription handler: the n-th
 * subscription is sent `scripts[n]`, message by message, then kept open until cancelled.
 */
async function fakePeer(t: TestContext, scripts: readonly (readonly ScriptStep[])[]) {
  const clock = new FakeClock();
  const grid = await TestGrid.start(2, { clock, random: () => 0 });
  t.after(() => grid.close());
  const peer: FakePeer = { requests: [], cancelled: 0 };
  grid.manager(0).registerStream(
    VIEWS_SUBSCRIBE_HANDLER,
    {
      inCapacity: 0,
      handle: async ({ initial, send, signal }) => {
        const script = scripts[peer.requests.length] ?? [];
        peer.requests.push(msgpack.decode(initial) as SubscribeRequest);
        for (const step of script) {
          if (step instanceof Promise) await step;
          else await send(step);
        }
        if (!signal.aborted) {
          await new Promise((resolve) => {
            signal.addEventListener('abort', resolve, { once: true });
          });
        }
        peer.cancelled += 1;
      },
    },
    { reserved: true },
  );
  await grid.waitAllConnected();
  /**
   * Lets the grid and the fake clock run, 1 ms at a time, until `done`; gives up when the
   * test times out, so that a regression fails the test rather than spin on.
   */
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      if (t.signal.aborted) throw new Error('gave up waiting', { cause: t.signal.reason });
      await clock.advanceAsync(1);
    }
  };
  /** `promise`, awaited with the grid and the clock running meanwhile. */
  const settled = async <T>(promise: Promise<T>): Promise<T> => {
    const outcome = follow(promise);
    await until(() => outcome() !== undefined);
    const result = outcome() as Outcome<T>;
    if ('value' in result) return result.value;
    throw result.error;
  };
  return { grid, clock, peer, until, settled };
}

type Outcome<T> = { value: T; error?: never } | { error: unknown };

/** Follows `promise`: what it settled with, or undefined while it is pending. */
function follow<T>(promise: Promise<T>): () => Outcome<T> | undefined {
  let outcome: Outcome<T> | undefined;
  void promise.then(
    (value) => {
      outcome = { value };
    },
    (error: unknown) => {
      outcome = { error };
    },
  );
  return () => outcome;
}

// A regression that never refuses would leave a test waiting for the refusal: it fails here.
const timeout = 30_000;

describe('views: the cap on split batches', () => {
  test(
    'a split batch of exactly 1 000 000 events arrives whole; one event more is refused with a ProtocolError, and the stream is cancelled',
    { timeout },
    async (t) => {
      const { grid, peer, until, settled } = await fakePeer(t, [
        [partOf(3, 5, CAP - 1), partOf(0, 5, 1), message([0, 6, [['after', 1]]])],
        // Each part under the cap, together one over; the batch's last part never comes, so
        // the refusal can only be of the part that passed the cap.
        [partOf(3, 7, CAP), partOf(3, 7, 1)],
      ]);
      const source = remoteEventSource<unknown>(grid.connection(1, 0));
      const controller = new AbortController();
      t.after(() => {
        controller.abort();
      });

      const atTheCap = source({ topic: 'big' }, controller.signal)[Symbol.asyncIterator]();
      const batch = (await settled(atTheCap.next())).value as StreamItem<unknown>;
      assert.ok(batch.kind === 'events');
      assert.equal(batch.index, 5);
      assert.equal(batch.events.length, CAP);
      assert.deepEqual((await settled(atTheCap.next())).value, {
        kind: 'events',
        index: 6,
        events: [{ subject: 'after', payload: 1 }],
      });
      await atTheCap.return?.();
      await until(() => peer.cancelled === 1);

      const overTheCap = source({ topic: 'big' }, controller.signal)[Symbol.asyncIterator]();
      await assert.rejects(
        settled(overTheCap.next()),
        (error) =>
          error instanceof ProtocolError &&
          error.message === `a split batch of more than ${CAP} events was refused`,
      );
      // The subscribing side let go of the stream: the serving side sees it cancelled.
      await until(() => peer.cancelled === 2);
      assert.equal((await overTheCap.next()).done, true, 'nothing comes after the refusal');
      assert.equal(peer.requests.length, 2);
    },
  );

  test(
    'a materializer counts a refused split batch as a failed subscription, keeps its view and its waiters, and resumes from its last good index',
    { timeout },
    async (t) => {
      const a = putEvent('a', 1);
      const b = putEvent('b', 2);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const { grid, clock, peer, until, settled } = await fakePeer(t, [
        // A snapshot at index 1, then a batch at index 2 whose first part is over the cap.
        [message([0, 1, [[a.subject, a.payload]]]), message([1, 1, 'gen-1']), partOf(3, 2, CAP + 1)],
        // The resubscription gets a batch of the usual kind, once the test has looked.
        [released, message([0, 2, [[b.subject, b.payload]]])],
      ]);
      const materializer = new Materializer({
        source: remoteEventSource<MapChange<number>>(grid.connection(1, 0)),
        request: { topic: 'kv' },
        view: new MapView<number>(),
        clock,
        random: () => 0,
      });
      const controller = new AbortController();
      t.after(() => {
        controller.abort();
      });
      const running = materializer.run(controller.signal);
      const first = await settled(materializer.fetch());
      assert.deepEqual([first.index, [...first.value]], [1, [['a', 1]]]);
      const next = follow(materializer.fetch({ minIndex: 1 }));

      // Refused, the stream let go of, and subscribed again from the last good update.
      await until(() => peer.requests.length === 2 && peer.cancelled === 1);
      assert.deepEqual(
        peer.requests.map((r) => [r.index, r.generation]),
        [
          [0, undefined],
          [1, 'gen-1'],
        ],
      );
      const stats = materializer.stats();
      assert.deepEqual([stats.failures, stats.subscriptions, stats.updates], [1, 2, 1]);
      assert.equal(stats.index, 1, 'no part of the refused batch was applied');
      assert.equal(materializer.stoppedBy, undefined, 'a refused batch is not terminal');
      const held = await materializer.fetch({ returnIfBehind: true });
      assert.deepEqual([held.index, [...held.value]], [1, [['a', 1]]]);
      // One failure after a good update is kept from waiters: a resubscription usually mends it.
      assert.equal(next(), undefined, 'the waiter still waits');

      release();
      await until(() => next() !== undefined);
      const got = next();
      assert.ok(got !== undefined && 'value' in got, `the waiter got ${String(got?.error)}`);
      assert.deepEqual(
        [got.value.index, [...got.value.value]],
        [
          2,
          [
            ['a', 1],
            ['b', 2],
          ],
        ],
      );
      assert.equal(materializer.stats().failures, 1);
      controller.abort();
      await running;
    },
  );
});
