import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { OutboundStream } from '../../src/hub/outbound-stream.ts';
import { ClosedError, DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { FakeTransport } from './helpers/fake-transport.ts';

async function settled<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown } | undefined> {
  let outcome: { value?: T; error?: unknown } | undefined;
  promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return outcome;
}

describe('OutboundStream', () => {
  test('messages are written in the order they were sent', async () => {
    const transport = new FakeTransport<string>();
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock() });
    await Promise.all(['a', 'b', 'c'].map((m) => stream.send(m)));
    assert.deepEqual(transport.written, ['a', 'b', 'c']);
    assert.equal(stream.stats().sent, 3);
  });

  test('after the transport pushes back, nothing more is written until it drains', async () => {
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock() });
    await stream.send('a');
    const b = stream.send('b');
    assert.equal(await settled(b), undefined, 'b waits for drain');
    assert.deepEqual(transport.written, ['a']);
    transport.drain();
    await b;
    assert.deepEqual(transport.written, ['a', 'b']);
    assert.equal(stream.stats().blocked, 1);
  });

  test('a flow message goes ahead of queued data', async () => {
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock() });
    await stream.send('data-1');
    const queued = [stream.send('data-2'), stream.send('data-3')];
    const flow = stream.sendFlow('PAUSE');
    transport.drain();
    await Promise.all([...queued, flow]);
    assert.deepEqual(transport.written, ['data-1', 'PAUSE', 'data-2', 'data-3']);
  });

  test('a flow send fails within its timeout while a data send is stuck, and the stream goes on', async () => {
    const clock = new FakeClock();
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock, flowTimeoutMs: 200 });
    await stream.send('data-1'); // the transport is now blocked: the connector stopped reading
    const stuck = stream.send('data-2');
    const flow = stream.sendFlow('ACK').then(
      () => 'written',
      (error: unknown) => error,
    );
    await clock.advanceAsync(200);
    assert.ok((await flow) instanceof DeadlineExceededError, 'the flow send failed at 200 ms');
    assert.equal(await settled(stuck), undefined, 'the data send still waits');
    transport.drain();
    await stuck;
    assert.deepEqual(transport.written, ['data-1', 'data-2']);
  });

  test('a full queue makes the next sender wait for room, not grow the queue', async () => {
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock(), maxQueued: 2 });
    await stream.send('a');
    const sends = ['b', 'c', 'd'].map((m) => stream.send(m));
    await settled(sends[2] as Promise<void>);
    assert.equal(stream.stats().queued, 2, 'two queued, the third waits outside');
    transport.drain();
    await Promise.all(sends);
    assert.deepEqual(transport.written, ['a', 'b', 'c', 'd']);
  });

  test('closing fails what is queued with ClosedError and ends the transport; later sends fail at once', async () => {
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock() });
    await stream.send('a');
    const queued = stream.send('b');
    stream.close();
    await assert.rejects(queued, ClosedError);
    await assert.rejects(stream.send('c'), ClosedError);
    assert.equal(transport.ended, true);
    assert.equal(stream.closed, true);
  });

  test('the transport closing closes the stream', async () => {
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock: new FakeClock() });
    await stream.send('a');
    const queued = stream.send('b');
    transport.emit('close');
    await assert.rejects(queued, ClosedError);
  });

  test('a data send not written within sendTimeoutMs fails and is never written', async () => {
    const clock = new FakeClock();
    const transport = new FakeTransport<string>(1);
    const stream = new OutboundStream<string>(transport, { clock, sendTimeoutMs: 1_000 });
    await stream.send('a');
    const late = stream.send('b').then(
      () => 'written',
      (error: unknown) => error,
    );
    await clock.advanceAsync(1_000);
    assert.ok((await late) instanceof DeadlineExceededError);
    transport.drain();
    await stream.send('c');
    assert.deepEqual(transport.written, ['a', 'c']);
    assert.equal(stream.stats().timeouts, 1);
  });
});
