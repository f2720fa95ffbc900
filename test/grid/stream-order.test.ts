// A handler's stream items reach the caller in the order it sent them, however credits and input
// arrive: driven frame by frame against one ServerStream, so the interleaving is exact.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultGridLimits } from '../../src/grid/config.ts';
import type { Frame } from '../../src/grid/frame.ts';
import { encodeCredits } from '../../src/grid/messages.ts';
import { Op } from '../../src/grid/protocol.ts';
import { ServerStream, type ServerStreamHost } from '../../src/grid/server-stream.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const MUX = 7;

function frame(op: Frame['op'], seq: number, payload: Uint8Array | undefined): Frame {
  return { muxId: MUX, seq, deadlineMs: 0, handler: 0, op, flags: 0, payload };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise(setImmediate);
}

test('an item sent with a credit in hand does not pass an earlier send just granted one', async () => {
  const sent: string[] = [];
  const host: ServerStreamHost = {
    clock: new FakeClock(),
    limits: defaultGridLimits,
    remote: 'http://caller',
    sendFrame: (f) => {
      if (f.op === Op.MuxServerMsg && f.payload !== undefined) sent.push(Buffer.from(f.payload).toString());
      return 'sent';
    },
    release: () => undefined,
    handlerFailed: () => undefined,
    streamProtocolError: () => undefined,
  };
  const done = new AbortController();
  const stream = new ServerStream(
    host,
    frame(Op.ConnectMux, 0, undefined),
    {
      inCapacity: 4,
      handle: async ({ requests, send }) => {
        // The caller's window of 2 is spent, then "b" waits for a credit.
        await send(Buffer.from('a1'));
        await send(Buffer.from('a2'));
        void send(Buffer.from('b'));
        // Input wakes the handler in the same turn as the credits that wake "b".
        for await (const _ of requests) {
          void send(Buffer.from('c'));
          break;
        }
        await new Promise((resolve) => {
          done.signal.addEventListener('abort', resolve, { once: true });
        });
      },
    },
    { outWindow: 2, initial: undefined },
    new AbortController().signal,
  );
  await settle();
  assert.deepEqual(sent, ['a1', 'a2']);
  // One message from the caller, handled in one go: an input item, then two credits back. The
  // first credit wakes "b", the second is in hand when the input wakes the handler to send "c".
  stream.onFrame(frame(Op.MuxClientMsg, 1, Buffer.from('in')));
  stream.onFrame(frame(Op.UnblockSrvMux, 2, encodeCredits(2)));
  await settle();
  assert.deepEqual(sent, ['a1', 'a2', 'b', 'c']);
  done.abort();
  stream.fail(new Error('test over'));
});
