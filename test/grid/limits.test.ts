// The per-connection limits on what is in flight: `maxOutgoingRequests`, `maxIncomingRequests`
// and `maxStreams`, each held against a raw peer that sees every frame the node puts on the
// wire and answers only when the test says so, so requests and streams stay open as long as
// needed. What a limit refuses must not reach the wire, and each refusal is counted once, on
// the side that refused it: `requestsRefusedOut` / `requestsRefusedIn`, `streamsRefusedOut` /
// `streamsRefusedIn`. (security.test.ts holds two live nodes to the same limits, and checks
// the errors the caller sees and that the streams within the limit keep working.)

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Frame } from '../../src/grid/frame.ts';
import type { GridConnection } from '../../src/grid/grid-connection.ts';
import { decodeError, encodeError, encodeStreamOpen } from '../../src/grid/messages.ts';
import { Flag, Op } from '../../src/grid/protocol.ts';
import { CancelledError, CapacityExceededError, DeadlineExceededError } from '../../src/internal/errors.ts';

import {
  BOUNDED,
  bytes,
  ECHO,
  frameIs,
  HOLD,
  nextRequest,
  nodeWithRawCaller,
  nodeWithRawHandlerSide,
  openFromNode,
  ping,
  RAW_STREAM,
  respond,
  text,
} from './raw-node.ts';
import type { RawPeer } from './raw-peer.ts';
import { watch, type Watched } from './reliability-harness.ts';

/** A single handler that answers its payload once the test releases it. */
const WAITING = 67;

/** Every request frame the node sent before answering a ping sent now. */
async function requestsOnTheWire(peer: RawPeer): Promise<Frame[]> {
  return (await ping(peer)).filter((frame) => frame.op === Op.Request);
}

/**
 * Makes one request past the limit, and checks that it failed at once with the retryable
 * capacity error, was not sent, and moved `requestsRefusedOut` by exactly one.
 */
async function assertRefused(
  peer: RawPeer,
  link: GridConnection,
  limit: number,
  what: string,
): Promise<void> {
  const before = link.stats().requestsRefusedOut;
  const call = watch(link.request(ECHO, bytes('over the limit')));
  assert.deepEqual(await requestsOnTheWire(peer), [], `${what}: the refused request was not sent`);
  assert.ok(call.settled, `${what}: the request past the limit failed at once`);
  const { error } = call;
  assert.ok(error instanceof CapacityExceededError, `expected a CapacityExceededError, got ${String(error)}`);
  assert.equal(error.code, 'WEFT_CAPACITY_EXCEEDED');
  assert.equal(error.limit, limit);
  assert.equal(error.retryable, true);
  assert.equal(link.stats().requestsRefusedOut, before + 1, `${what}: the refusal is counted, once`);
}

describe('grid: maxOutgoingRequests', () => {
  test(
    'with 3 requests in flight a fourth is refused with a retryable CapacityExceededError, never sent and counted once in requestsRefusedOut; a response frees a slot for the next one',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t, { maxOutgoingRequests: 3 });
      const held = ['first', 'second', 'third'].map((payload) => watch(link.request(ECHO, bytes(payload))));
      const sent = [await nextRequest(peer), await nextRequest(peer), await nextRequest(peer)];
      assert.deepEqual(
        sent.map((frame) => text(frame.payload)),
        ['first', 'second', 'third'],
      );
      assert.equal(link.stats().requestsOut, 3);
      assert.equal(link.stats().requestsRefusedOut, 0, 'requests within the limit are not counted');

      await assertRefused(peer, link, 3, 'a fourth request');
      assert.equal(link.stats().requestsOut, 3, 'a refused request does not count as in flight');
      assert.ok(
        held.every((call) => !call.settled),
        'the requests in flight are not disturbed',
      );

      // One answer frees one slot: the next request goes out, and the one after is refused.
      respond(peer, sent[1] as Frame);
      assert.equal(text(await held[1]?.promise), 'second');
      assert.equal(link.stats().requestsOut, 2);
      const fifth = watch(link.request(ECHO, bytes('fifth')));
      const fifthSent = await nextRequest(peer);
      assert.equal(text(fifthSent.payload), 'fifth');
      assert.equal(link.stats().requestsRefusedOut, 1, 'the request sent in a freed slot is not counted');
      await assertRefused(peer, link, 3, 'a sixth request');

      for (const frame of [sent[0], sent[2], fifthSent]) respond(peer, frame as Frame);
      assert.deepEqual((await Promise.all([held[0]?.promise, held[2]?.promise, fifth.promise])).map(text), [
        'first',
        'third',
        'fifth',
      ]);
      assert.equal(link.stats().requestsOut, 0);
      assert.equal(link.stats().requestsRefusedOut, 2);
      assert.equal(link.state(), 'connected');
    },
  );

  test(
    'a slot is freed however a request ends: a response, a remote error, the caller’s cancel, its deadline; each refusal before is counted once',
    BOUNDED,
    async (t) => {
      const { clock, peer, link } = await nodeWithRawHandlerSide(t, { maxOutgoingRequests: 1 });
      const endings: readonly {
        readonly how: string;
        readonly end: (request: Frame, controller: AbortController) => void;
        readonly outcome: (call: Watched<unknown>) => boolean;
      }[] = [
        {
          how: 'a response',
          end: (request) => {
            respond(peer, request);
          },
          outcome: (call) => call.error === undefined && text(call.value as Uint8Array) === 'a response',
        },
        {
          how: 'a remote error',
          end: (request) => {
            respond(peer, request, {
              flags: Flag.EOF | Flag.PayloadIsErr,
              payload: encodeError(new Error('handler failed')),
            });
          },
          outcome: (call) => (call.error as Error | undefined)?.message === 'handler failed',
        },
        {
          how: 'a cancel',
          end: (_request, controller) => {
            controller.abort(new Error('caller gave up'));
          },
          outcome: (call) => call.error instanceof CancelledError,
        },
        {
          how: 'a deadline',
          end: () => {
            clock.advance(1_000);
          },
          outcome: (call) => call.error instanceof DeadlineExceededError,
        },
      ];
      for (const { how, end, outcome } of endings) {
        const controller = new AbortController();
        const call = watch(link.request(ECHO, bytes(how), { signal: controller.signal, timeoutMs: 1_000 }));
        const request = await nextRequest(peer);
        assert.equal(text(request.payload), how);
        await assertRefused(peer, link, 1, `before ${how}`);

        end(request, controller);
        await call.promise.catch(() => undefined);
        assert.ok(outcome(call), `ended by ${how}: ${String(call.error)}`);
        assert.equal(link.stats().requestsOut, 0, `${how} frees the slot`);
      }
      // The slot is free after all of them: one more request goes out.
      const last = watch(link.request(ECHO, bytes('last')));
      const request = await nextRequest(peer);
      assert.equal(text(request.payload), 'last');
      respond(peer, request);
      assert.equal(text(await last.promise), 'last');
      assert.equal(link.stats().requestsRefusedOut, endings.length, 'one refusal per ending, no more');
    },
  );
});

describe('grid: maxIncomingRequests', () => {
  test(
    'with 2 requests being served a third from the peer is answered with a retryable WEFT_CAPACITY_EXCEEDED and counted once in requestsRefusedIn; a finished one frees its slot',
    BOUNDED,
    async (t) => {
      // Each request waits for the test to release it; released ones answer their payload.
      const waiting = new Map<string, () => void>();
      const { peer, link } = await nodeWithRawCaller(t, {
        limits: { maxIncomingRequests: 2 },
        serve: (node) => {
          node.registerSingle(WAITING, async (payload) => {
            await new Promise<void>((resolve) => waiting.set(text(payload), resolve));
            return payload;
          });
        },
      });
      const ask = (muxId: number, payload: string): void => {
        peer.sendFrame(Op.Request, { muxId, handler: WAITING, payload: bytes(payload) });
      };
      const responseTo = async (muxId: number): Promise<Frame> =>
        (await peer.readFramesUntil(frameIs(Op.Response, muxId))).at(-1) as Frame;
      const refusedOnce = async (muxId: number, expected: number): Promise<void> => {
        ask(muxId, `request ${muxId}`);
        const response = await responseTo(muxId);
        assert.notEqual(response.flags & Flag.PayloadIsErr, 0, `request ${muxId} was refused`);
        const error = decodeError(response.payload);
        assert.equal(error.code, CapacityExceededError.code);
        assert.equal(error.retryable, true);
        assert.equal(link.stats().requestsRefusedIn, expected, `request ${muxId}: counted, once`);
      };

      ask(1, 'first');
      ask(2, 'second');
      // The pong comes after the node has taken both requests (it reads in order).
      await ping(peer);
      assert.equal(link.stats().requestsIn, 2);
      assert.equal(link.stats().requestsRefusedIn, 0, 'requests within the limit are not counted');

      await refusedOnce(3, 1);
      await refusedOnce(4, 2);
      assert.deepEqual([...waiting.keys()], ['first', 'second'], 'no handler ran for a refused request');
      assert.equal(link.stats().requestsIn, 2);

      // One answer frees one slot: the next request runs, and is not counted.
      waiting.get('first')?.();
      assert.equal(text((await responseTo(1)).payload), 'first');
      ask(5, 'fifth');
      await ping(peer);
      assert.deepEqual([...waiting.keys()], ['first', 'second', 'fifth']);
      waiting.get('second')?.();
      waiting.get('fifth')?.();
      assert.equal(text((await responseTo(2)).payload), 'second');
      assert.equal(text((await responseTo(5)).payload), 'fifth');
      const stats = link.stats();
      assert.equal(stats.requestsIn, 0);
      assert.equal(stats.requestsRefusedIn, 2);
      assert.equal(stats.requestsRefusedOut, 0, 'nothing was refused the other way');
    },
  );
});

describe('grid: maxStreams', () => {
  test(
    'with maxStreams 2, a third stream the peer opens is refused, counted once in streamsRefusedIn and runs no handler; the stream that takes a freed slot is not counted',
    BOUNDED,
    async (t) => {
      const { peer, link, holding } = await nodeWithRawCaller(t, { limits: { maxStreams: 2 } });
      const open = (muxId: number): void => {
        peer.sendFrame(Op.ConnectMux, {
          muxId,
          handler: HOLD,
          payload: encodeStreamOpen({ outWindow: 1, initial: undefined }),
        });
      };
      open(1);
      open(2);
      await peer.readFramesUntil(frameIs(Op.AckMux, 2));
      assert.equal(link.stats().streamsIn, 2);
      assert.equal(link.stats().streamsRefusedIn, 0, 'streams within the limit are not counted');

      open(3);
      await peer.readFramesUntil(frameIs(Op.MuxConnectError, 3));
      assert.equal(link.stats().streamsRefusedIn, 1, 'the refusal is counted, once');
      assert.equal(link.stats().streamsIn, 2);
      assert.equal(holding.length, 2, 'no handler ran for the refused stream');

      // The caller cancels one: its slot takes the next stream, which is not counted.
      peer.sendFrame(Op.DisconnectServerMux, { muxId: 1 });
      open(4);
      await peer.readFramesUntil(frameIs(Op.AckMux, 4));
      const stats = link.stats();
      assert.equal(stats.streamsIn, 2);
      assert.equal(stats.streamsRefusedIn, 1);
      assert.equal(stats.streamsRefusedOut, 0, 'nothing was refused the other way');
      assert.equal(stats.streamProtocolErrors, 0, 'a refusal for capacity is no protocol error');
    },
  );

  test(
    'with maxStreams 2, a third stream or stateless stream opened to the peer is never sent, and counted once in streamsRefusedOut; stateless streams have their own count',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t, { maxStreams: 2 });
      const streams = [await openFromNode(peer, link, 1), await openFromNode(peer, link, 1)];
      assert.equal(link.stats().streamsRefusedOut, 0, 'streams within the limit are not counted');

      const refusedOnce = (open: () => unknown, what: string, expected: number): void => {
        assert.throws(open, CapacityExceededError, what);
        assert.equal(link.stats().streamsRefusedOut, expected, `${what}: counted, once`);
      };
      refusedOnce(() => link.openStream(RAW_STREAM), 'a third stream', 1);
      assert.deepEqual(
        (await ping(peer)).filter((frame) => frame.op === Op.ConnectMux),
        [],
        'the refused stream was not sent',
      );

      // Stateless streams have their own count under the same limit.
      const stateless = [link.openStatelessStream(92), link.openStatelessStream(92)];
      refusedOnce(() => link.openStatelessStream(92), 'a third stateless stream', 2);
      const opened = (await ping(peer)).filter((frame) => frame.op === Op.ConnectMux);
      assert.deepEqual(
        opened.map((frame) => [frame.handler, (frame.flags & Flag.Stateless) !== 0]),
        [
          [92, true],
          [92, true],
        ],
        'only the two stateless streams within the limit were sent',
      );

      // A slot freed takes the next stream, which is not counted.
      streams[0]?.cancel();
      const next = link.openStream(RAW_STREAM);
      await peer.readFramesUntil(frameIs(Op.ConnectMux, next.muxId));
      const stats = link.stats();
      assert.equal(stats.streamsRefusedOut, 2);
      assert.equal(stats.streamsRefusedIn, 0, 'nothing was refused the other way');
      for (const stream of stateless) stream.cancel();
    },
  );
});
