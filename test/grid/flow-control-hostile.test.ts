// Stream flow control against a peer that ignores it. A well-behaved peer never sends past
// the window its receiver granted, returns a credit for an item it never took, sends out of
// sequence, or sends an item without a payload, so the refusals that guard each stream run
// only for a hostile or broken one: here a raw peer plays that part on each side of a stream.
// The stream it broke must end with a `ProtocolError` on both sides, counted once in
// `streamProtocolErrors`, and nothing else on the connection may notice: its other stream
// and single requests work before and after, and the socket stays up. A stateless stream has
// no window and no sequence to break, but an item without a payload breaks it all the same.
//
// Every wait ends on a frame the node sends: a probe's answer, which the node queues after
// whatever it said about the frames the raw peer sent before the probe.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { IncorrectSequenceError, ProtocolError } from '../../src/grid/errors.ts';
import type { Frame } from '../../src/grid/frame.ts';
import type { GridConnection } from '../../src/grid/grid-connection.ts';
import type { StatelessGridStream } from '../../src/grid/stateless-stream.ts';
import type { GridStream } from '../../src/grid/client-stream.ts';
import {
  decodeError,
  decodeStreamOpen,
  decodeWindow,
  encodeCredits,
  encodeStreamOpen,
  encodeWindow,
} from '../../src/grid/messages.ts';
import { Flag, Op } from '../../src/grid/protocol.ts';

import {
  answerRequest,
  BOUNDED,
  bytes,
  ECHO,
  ECHO_STREAM,
  frameIs,
  HOLD,
  HOLD_WINDOW,
  nodeWithRawCaller,
  nodeWithRawHandlerSide,
  openFromNode,
  ping,
  RAW_STREAM,
  text,
} from './raw-node.ts';
import type { RawPeer } from './raw-peer.ts';

/** The next item of a stream, as text; fails if the stream ended instead. */
async function nextItem(responses: AsyncIterator<Uint8Array>): Promise<string> {
  const result = await responses.next();
  assert.notEqual(result.done, true, 'the stream ended');
  return text(result.value as Uint8Array);
}

/** A stream's protocol errors on `link`, as counted so far. */
const streamProtocolErrors = (link: GridConnection): number => link.stats().streamProtocolErrors;

/** A request from the raw caller; returns every frame the node sent up to its response. */
async function request(peer: RawPeer, muxId: number, payload: string): Promise<Frame[]> {
  peer.sendFrame(Op.Request, { muxId, handler: ECHO, payload: bytes(payload) });
  const frames = await peer.readFramesUntil(frameIs(Op.Response, muxId));
  assert.equal(text(frames.at(-1)?.payload), payload, `request ${muxId} echoed`);
  return frames;
}

/** Opens ECHO_STREAM as mux `muxId` from the raw caller and waits for its ack. */
async function openEcho(peer: RawPeer, muxId: number, outWindow = 4): Promise<void> {
  peer.sendFrame(Op.ConnectMux, {
    muxId,
    handler: ECHO_STREAM,
    payload: encodeStreamOpen({ outWindow, initial: undefined }),
  });
  await peer.readFramesUntil(frameIs(Op.AckMux, muxId));
}

/** The error the node ended raw caller's stream `muxId` with, among `frames`. */
function refusalOf(frames: readonly Frame[], muxId: number): ReturnType<typeof decodeError> {
  const gone = frames.find(frameIs(Op.DisconnectClientMux, muxId));
  assert.ok(gone !== undefined, `the node ended stream ${muxId}`);
  assert.notEqual(gone.flags & Flag.PayloadIsErr, 0, 'with an error');
  return decodeError(gone.payload);
}

/** Reads `stream` to its end; resolves with the items and the error it ended with. */
async function drain(stream: AsyncIterable<Uint8Array>): Promise<{ items: Uint8Array[]; error: unknown }> {
  const items: Uint8Array[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (error) {
    return { items, error };
  }
  return { items, error: undefined };
}

/**
 * On a raw caller's connection, the bystanders of a hostile stream: a well-behaved echo stream
 * (mux 1) and single requests, which work before the hostile stream breaks the protocol and,
 * untouched, after it.
 */
class CallerSideBystanders {
  readonly #peer: RawPeer;
  readonly #link: GridConnection;
  #seq = 0;

  private constructor(peer: RawPeer, link: GridConnection) {
    this.#peer = peer;
    this.#link = link;
  }

  static async open(peer: RawPeer, link: GridConnection, requestMux: number): Promise<CallerSideBystanders> {
    const bystanders = new CallerSideBystanders(peer, link);
    await openEcho(peer, 1);
    await bystanders.#echo('before');
    await request(peer, requestMux, 'request before');
    return bystanders;
  }

  async #echo(word: string): Promise<Frame[]> {
    this.#seq += 1;
    this.#peer.sendFrame(Op.MuxClientMsg, { muxId: 1, seq: this.#seq, payload: bytes(word) });
    const frames = await this.#peer.readFramesUntil(frameIs(Op.MuxServerMsg, 1));
    assert.equal(text(frames.at(-1)?.payload), word, 'the bystander stream echoes');
    return frames;
  }

  /** The echo stream and a request still work, nothing else was refused, the socket is up. */
  async assertUntouched(requestMux: number): Promise<void> {
    const after = await this.#echo('after');
    const later = await request(this.#peer, requestMux, 'request after');
    assert.deepEqual(
      [...after, ...later].filter((frame) => frame.op === Op.DisconnectClientMux),
      [],
      'no other stream was refused',
    );
    assertOnlyTheStreamBroke(this.#peer, this.#link);
  }
}

/**
 * On a raw handler side's connection, the bystanders of a hostile stream: a well-behaved
 * stream the node opened, carrying items both ways, and single requests.
 */
class HandlerSideBystanders {
  readonly #peer: RawPeer;
  readonly #link: GridConnection;
  readonly #stream: GridStream;
  readonly #responses: AsyncIterator<Uint8Array>;
  #seq = 0;

  private constructor(peer: RawPeer, link: GridConnection, stream: GridStream) {
    this.#peer = peer;
    this.#link = link;
    this.#stream = stream;
    this.#responses = stream[Symbol.asyncIterator]();
  }

  static async open(peer: RawPeer, link: GridConnection): Promise<HandlerSideBystanders> {
    const stream = link.openStream(RAW_STREAM, { outCapacity: 4 });
    const open = (await peer.readFramesUntil(frameIs(Op.ConnectMux, stream.muxId))).at(-1);
    assert.equal(decodeStreamOpen(open?.payload).outWindow, 4);
    peer.sendFrame(Op.AckMux, { muxId: stream.muxId, seq: 0, payload: encodeWindow(2) });
    const bystanders = new HandlerSideBystanders(peer, link, stream);
    await bystanders.#bothWays('before');
    await answerRequest(peer, link, 'request before');
    return bystanders;
  }

  async #bothWays(word: string): Promise<Frame[]> {
    this.#seq += 1;
    const muxId = this.#stream.muxId;
    this.#peer.sendFrame(Op.MuxServerMsg, { muxId, seq: this.#seq, payload: bytes(`down ${word}`) });
    assert.equal(await nextItem(this.#responses), `down ${word}`);
    await this.#stream.send(bytes(`up ${word}`));
    const up = await this.#peer.readFramesUntil(frameIs(Op.MuxClientMsg, muxId));
    assert.equal(text(up.at(-1)?.payload), `up ${word}`);
    return up;
  }

  /** The stream still carries items both ways, a request works, nothing else was cancelled. */
  async assertUntouched(): Promise<void> {
    const up = await this.#bothWays('after');
    await answerRequest(this.#peer, this.#link, 'request after');
    assert.deepEqual(
      [...up, ...(await ping(this.#peer))].filter((frame) => frame.op === Op.DisconnectServerMux),
      [],
      'no other stream was cancelled',
    );
    assertOnlyTheStreamBroke(this.#peer, this.#link);
  }
}

/** The socket is up, never replaced, and the one breach was counted as a stream's. */
function assertOnlyTheStreamBroke(peer: RawPeer, link: GridConnection): void {
  assert.ok(peer.isOpen, 'the socket is still open');
  assert.equal(link.state(), 'connected');
  const stats = link.stats();
  assert.equal(stats.reconnects, 0);
  assert.equal(stats.streamProtocolErrors, 1, 'the breach is counted, once');
  assert.equal(stats.protocolErrors, 0, 'a stream’s breach is not the connection’s');
}

describe('grid: a caller that sends past the handler’s window', () => {
  test(
    'one item past the window of a handler that does not read ends that stream with a ProtocolError on both sides, counted once, and the connection’s other stream and requests carry on',
    BOUNDED,
    async (t) => {
      const { peer, link, holding } = await nodeWithRawCaller(t);

      const bystanders = await CallerSideBystanders.open(peer, link, 2);

      // The hostile stream (mux 3): its handler grants HOLD_WINDOW credits and reads nothing.
      peer.sendFrame(Op.ConnectMux, {
        muxId: 3,
        handler: HOLD,
        payload: encodeStreamOpen({ outWindow: 1, initial: undefined }),
      });
      const ack = (await peer.readFramesUntil(frameIs(Op.AckMux, 3))).at(-1);
      assert.equal(decodeWindow(ack?.payload), HOLD_WINDOW, 'the handler side granted its window');

      // Spending every credit is allowed: the stream stays up.
      for (let seq = 1; seq <= HOLD_WINDOW; seq++)
        peer.sendFrame(Op.MuxClientMsg, { muxId: 3, seq, payload: bytes(`item ${seq}`) });
      const within = await request(peer, 4, 'probe within the window');
      assert.deepEqual(
        within.filter(frameIs(Op.DisconnectClientMux, 3)),
        [],
        'items within the credits are not refused',
      );
      assert.equal(link.stats().streamsIn, 2);
      assert.equal(holding[0]?.aborted, false, 'the handler runs on');
      assert.equal(streamProtocolErrors(link), 0, 'items within the credits are not counted');

      // One more, with no credit for it.
      peer.sendFrame(Op.MuxClientMsg, { muxId: 3, seq: HOLD_WINDOW + 1, payload: bytes('one too many') });
      const past = await request(peer, 5, 'probe past the window');
      const refusal = refusalOf(past, 3);
      assert.equal(refusal.code, ProtocolError.code);
      assert.match(refusal.message, /input beyond the handler's window/);
      assert.equal(streamProtocolErrors(link), 1, 'the overrun is counted, once');
      assert.equal(holding.length, 1, 'one HOLD handler ran');
      const [handlerSignal] = holding;
      assert.ok(handlerSignal);
      assert.equal(handlerSignal.aborted, true, 'the handler was stopped');
      assert.ok(handlerSignal.reason instanceof ProtocolError, String(handlerSignal.reason));
      assert.equal(link.stats().streamsIn, 1, 'the overrun stream is forgotten, the other one kept');

      await bystanders.assertUntouched(6);
    },
  );

  test(
    'a credit returned past the handler’s output window ends that stream with a ProtocolError on both sides, counted once, and the connection’s other stream and requests carry on',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawCaller(t);

      const bystanders = await CallerSideBystanders.open(peer, link, 2);

      // The hostile stream (mux 3) gives its handler an output window of 2; the echo of one
      // item spends one credit, and the caller returns it once it has the item.
      await openEcho(peer, 3, 2);
      peer.sendFrame(Op.MuxClientMsg, { muxId: 3, seq: 1, payload: bytes('echo me') });
      const echoed = (await peer.readFramesUntil(frameIs(Op.MuxServerMsg, 3))).at(-1);
      assert.equal(text(echoed?.payload), 'echo me');
      peer.sendFrame(Op.UnblockSrvMux, { muxId: 3, seq: 2, payload: encodeCredits(1) });
      const within = await request(peer, 4, 'probe within the window');
      assert.deepEqual(
        within.filter(frameIs(Op.DisconnectClientMux, 3)),
        [],
        'a credit for an item taken is not refused',
      );
      assert.equal(streamProtocolErrors(link), 0, 'a credit within the window is not counted');
      assert.equal(link.stats().streamsIn, 2);

      // One more, for an item the caller never got: the handler would hold 3 credits of 2.
      peer.sendFrame(Op.UnblockSrvMux, { muxId: 3, seq: 3, payload: encodeCredits(1) });
      const refusal = refusalOf(await request(peer, 5, 'probe past the window'), 3);
      assert.equal(refusal.code, ProtocolError.code);
      assert.match(refusal.message, /credit beyond the window of 2/);
      assert.equal(streamProtocolErrors(link), 1, 'the overrun is counted, once');
      assert.equal(link.stats().streamsIn, 1, 'the overrun stream is forgotten, the other one kept');

      await bystanders.assertUntouched(6);
    },
  );

  test(
    'an input item with neither a payload nor EOF ends that stream with a ProtocolError, counted once; a 0-byte item is an item, and delivered',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawCaller(t);
      await openEcho(peer, 1);
      await openEcho(peer, 2);

      // An empty payload goes out flagged PayloadIsZero: an item, echoed as one.
      peer.sendFrame(Op.MuxClientMsg, { muxId: 1, seq: 1, payload: new Uint8Array(0) });
      const echoed = (await peer.readFramesUntil(frameIs(Op.MuxServerMsg, 1))).at(-1);
      assert.ok(echoed?.payload instanceof Uint8Array, 'the handler got the 0-byte item and sent it back');
      assert.equal(echoed.payload.length, 0);
      assert.equal(streamProtocolErrors(link), 0);

      // No payload and no EOF: neither an item nor the end of input.
      peer.sendFrame(Op.MuxClientMsg, { muxId: 1, seq: 2, payload: undefined });
      const refusal = refusalOf(await request(peer, 3, 'probe'), 1);
      assert.equal(refusal.code, ProtocolError.code);
      assert.match(refusal.message, /neither a payload nor EOF/);
      assert.equal(streamProtocolErrors(link), 1, 'counted, once');

      // The other stream carries on.
      peer.sendFrame(Op.MuxClientMsg, { muxId: 2, seq: 1, payload: bytes('other') });
      assert.equal(text((await peer.readFramesUntil(frameIs(Op.MuxServerMsg, 2))).at(-1)?.payload), 'other');
      assert.equal(link.stats().streamsIn, 1);
      assert.equal(link.stats().protocolErrors, 0);
      assert.ok(peer.isOpen);
    },
  );

  test(
    'an input item out of sequence ends that stream with an IncorrectSequenceError, counted once',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawCaller(t);
      await openEcho(peer, 1);
      await openEcho(peer, 2);
      peer.sendFrame(Op.MuxClientMsg, { muxId: 1, seq: 1, payload: bytes('in order') });
      assert.equal(
        text((await peer.readFramesUntil(frameIs(Op.MuxServerMsg, 1))).at(-1)?.payload),
        'in order',
      );

      peer.sendFrame(Op.MuxClientMsg, { muxId: 1, seq: 3, payload: bytes('seq 2 skipped') });
      const refusal = refusalOf(await request(peer, 3, 'probe'), 1);
      assert.equal(refusal.code, IncorrectSequenceError.code);
      assert.equal(streamProtocolErrors(link), 1);

      peer.sendFrame(Op.MuxClientMsg, { muxId: 2, seq: 1, payload: bytes('other') });
      assert.equal(text((await peer.readFramesUntil(frameIs(Op.MuxServerMsg, 2))).at(-1)?.payload), 'other');
      assert.equal(streamProtocolErrors(link), 1, 'the other stream is not counted');
      assert.equal(link.stats().protocolErrors, 0);
    },
  );
});

describe('grid: a caller that opens a stream badly', () => {
  test(
    'an open whose payload does not decode, or whose output window is 0, is refused with a ProtocolError and counted once each; the link carries on',
    BOUNDED,
    async (t) => {
      const { peer, link, holding } = await nodeWithRawCaller(t);
      const refusedOpen = async (muxId: number, payload: Uint8Array, expected: number): Promise<void> => {
        peer.sendFrame(Op.ConnectMux, { muxId, handler: HOLD, payload });
        const refused = (await peer.readFramesUntil(frameIs(Op.MuxConnectError, muxId))).at(-1);
        assert.equal(decodeError(refused?.payload).code, ProtocolError.code);
        assert.equal(streamProtocolErrors(link), expected, `stream ${muxId}: counted, once`);
      };
      await refusedOpen(1, bytes('not an open'), 1);
      await refusedOpen(2, encodeStreamOpen({ outWindow: 0, initial: undefined }), 2);
      assert.equal(holding.length, 0, 'no handler ran');
      assert.equal(link.stats().streamsIn, 0);
      await openEcho(peer, 3);
      await request(peer, 4, 'the link carries on');
      assert.equal(streamProtocolErrors(link), 2);
      assert.equal(link.stats().protocolErrors, 0);
    },
  );
});

describe('grid: a handler side that sends past the caller’s window', () => {
  test(
    'one response past the window of a caller that does not read fails that stream with a ProtocolError after the items it had room for, counted once, and cancels it; the connection’s other stream and requests carry on',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t);

      const bystanders = await HandlerSideBystanders.open(peer, link);

      // The hostile stream: the caller grants two credits and reads nothing.
      const hostile = link.openStream(RAW_STREAM, { outCapacity: 2 });
      const hostileOpen = (await peer.readFramesUntil(frameIs(Op.ConnectMux, hostile.muxId))).at(-1);
      const window = decodeStreamOpen(hostileOpen?.payload).outWindow;
      assert.equal(window, 2, 'the caller granted its window');
      peer.sendFrame(Op.AckMux, { muxId: hostile.muxId, seq: 0, payload: encodeWindow(0) });

      // Spending every credit is allowed: the stream stays up.
      for (let seq = 1; seq <= window; seq++)
        peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq, payload: bytes(`item ${seq}`) });
      const within = await ping(peer);
      assert.deepEqual(
        within.filter(frameIs(Op.DisconnectServerMux, hostile.muxId)),
        [],
        'items within the credits are not refused',
      );
      assert.equal(hostile.buffered, window);
      assert.equal(link.stats().streamsOut, 2);
      assert.equal(streamProtocolErrors(link), 0, 'items within the credits are not counted');

      // One more, with no credit for it.
      peer.sendFrame(Op.MuxServerMsg, {
        muxId: hostile.muxId,
        seq: window + 1,
        payload: bytes('one too many'),
      });
      const past = await ping(peer);
      assert.ok(
        past.some(frameIs(Op.DisconnectServerMux, hostile.muxId)),
        'the node cancelled the stream whose handler side overran its window',
      );
      assert.equal(link.stats().streamsOut, 1, 'the overrun stream is forgotten, the other one kept');
      assert.equal(streamProtocolErrors(link), 1, 'the overrun is counted, once');
      const { items, error } = await drain(hostile);
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /response beyond the window of 2/);
      assert.deepEqual(
        items.map(text),
        ['item 1', 'item 2'],
        'the items within the window are delivered first',
      );

      await bystanders.assertUntouched();
    },
  );

  test(
    'a credit returned past the caller’s input window fails that stream with a ProtocolError, counted once, and cancels it; the connection’s other stream and requests carry on',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t);

      const bystanders = await HandlerSideBystanders.open(peer, link);

      // The hostile stream: the handler side grants an input window of 2, the caller spends
      // both credits, and the handler side returns them.
      const hostile = link.openStream(RAW_STREAM, { outCapacity: 1 });
      await peer.readFramesUntil(frameIs(Op.ConnectMux, hostile.muxId));
      peer.sendFrame(Op.AckMux, { muxId: hostile.muxId, seq: 0, payload: encodeWindow(2) });
      await hostile.send(bytes('one'));
      await hostile.send(bytes('two'));
      const isItem = frameIs(Op.MuxClientMsg, hostile.muxId);
      const sent = await peer.readFramesUntil((frame) => isItem(frame) && text(frame.payload) === 'two');
      assert.deepEqual(
        sent.filter(isItem).map((frame) => text(frame.payload)),
        ['one', 'two'],
      );
      peer.sendFrame(Op.UnblockClMux, { muxId: hostile.muxId, seq: 1, payload: encodeCredits(2) });
      const within = await ping(peer);
      assert.deepEqual(
        within.filter(frameIs(Op.DisconnectServerMux, hostile.muxId)),
        [],
        'credits for items taken are not refused',
      );
      assert.equal(streamProtocolErrors(link), 0, 'credits within the window are not counted');
      assert.equal(link.stats().streamsOut, 2);

      // One more, for an item the handler side never got: the caller would hold 3 credits of 2.
      peer.sendFrame(Op.UnblockClMux, { muxId: hostile.muxId, seq: 2, payload: encodeCredits(1) });
      const past = await ping(peer);
      assert.ok(
        past.some(frameIs(Op.DisconnectServerMux, hostile.muxId)),
        'the node cancelled the stream whose handler side overran its window',
      );
      assert.equal(streamProtocolErrors(link), 1, 'the overrun is counted, once');
      assert.equal(link.stats().streamsOut, 1, 'the overrun stream is forgotten, the other one kept');
      const { items, error } = await drain(hostile);
      assert.deepEqual(items, []);
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /input credit beyond the window of 2/);
      await assert.rejects(
        hostile.send(bytes('three')),
        ProtocolError,
        'the caller’s sends fail the same way',
      );

      await bystanders.assertUntouched();
    },
  );

  test(
    'a response with neither a payload nor EOF fails that stream with a ProtocolError, counted once, and cancels it; a 0-byte response is an item, and delivered',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t);
      const hostile = await openFromNode(peer, link, 4);
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 1, payload: new Uint8Array(0) });
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 2, payload: undefined });
      const past = await ping(peer);
      assert.ok(past.some(frameIs(Op.DisconnectServerMux, hostile.muxId)), 'the node cancelled the stream');
      assert.equal(streamProtocolErrors(link), 1, 'counted, once');
      const { items, error } = await drain(hostile);
      assert.deepEqual(
        items.map((item) => item.length),
        [0],
        'the 0-byte item before it was delivered',
      );
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /neither a payload nor EOF/);
      assert.equal(link.stats().streamsOut, 0);
      assert.equal(link.stats().protocolErrors, 0);
      await answerRequest(peer, link, 'the link carries on');
    },
  );

  test(
    'a response out of sequence fails that stream with an IncorrectSequenceError, counted once, and cancels it',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t);
      const hostile = await openFromNode(peer, link, 4);
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 1, payload: bytes('in order') });
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 3, payload: bytes('seq 2 skipped') });
      const past = await ping(peer);
      assert.ok(past.some(frameIs(Op.DisconnectServerMux, hostile.muxId)), 'the node cancelled the stream');
      assert.equal(streamProtocolErrors(link), 1);
      const { items, error } = await drain(hostile);
      assert.deepEqual(items.map(text), ['in order']);
      assert.ok(error instanceof IncorrectSequenceError, String(error));
      assert.equal(link.stats().protocolErrors, 0);
      await answerRequest(peer, link, 'the link carries on');
    },
  );
});

describe('grid: a stateless stream’s handler side that sends an item without a payload', () => {
  test(
    'a response with neither a payload nor EOF ends the stateless stream for good with a ProtocolError, counted once, and cancels it; a 0-byte response is an item, an EOF without a payload a clean end',
    BOUNDED,
    async (t) => {
      const { peer, link } = await nodeWithRawHandlerSide(t);
      const openStateless = async (): Promise<{ stream: StatelessGridStream; muxId: number }> => {
        const stream = link.openStatelessStream(92, { capacity: 4 });
        const open = (await peer.readFramesUntil((frame) => frame.op === Op.ConnectMux)).at(-1) as Frame;
        assert.notEqual(open.flags & Flag.Stateless, 0);
        peer.sendFrame(Op.AckMux, { muxId: open.muxId, seq: 0, payload: encodeWindow(0) });
        return { stream, muxId: open.muxId };
      };

      const hostile = await openStateless();
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 1, payload: new Uint8Array(0) });
      peer.sendFrame(Op.MuxServerMsg, { muxId: hostile.muxId, seq: 2, payload: undefined });
      const past = await ping(peer);
      assert.ok(past.some(frameIs(Op.DisconnectServerMux, hostile.muxId)), 'the node cancelled the stream');
      assert.equal(streamProtocolErrors(link), 1, 'counted, once');
      const { items, error } = await drain(hostile.stream);
      assert.deepEqual(
        items.map((item) => item.length),
        [0],
        'the 0-byte item before it was delivered',
      );
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /neither a payload nor EOF/);
      assert.equal(hostile.stream.dropped, 0, 'not taken for an item that did not fit');
      assert.equal(link.stats().statelessStreamsOut, 0, 'over for good: nothing left to reopen');

      // The end of a stateless stream carries no payload, and is no error.
      const ending = await openStateless();
      peer.sendFrame(Op.MuxServerMsg, { muxId: ending.muxId, seq: 1, payload: bytes('last') });
      peer.sendFrame(Op.MuxServerMsg, { muxId: ending.muxId, seq: 2, flags: Flag.EOF, payload: undefined });
      const ended = await drain(ending.stream);
      assert.deepEqual(ended.items.map(text), ['last']);
      assert.equal(ended.error, undefined);
      assert.equal(streamProtocolErrors(link), 1, 'the end is not counted');

      const stats = link.stats();
      assert.equal(stats.statelessStreamsOut, 0);
      assert.equal(stats.protocolErrors, 0, 'a stream’s breach is not the connection’s');
      await answerRequest(peer, link, 'the link carries on');
      assert.ok(peer.isOpen);
    },
  );
});
