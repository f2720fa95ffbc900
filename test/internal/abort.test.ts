import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';

import { linkSignals, onAbort, raceSignal } from '../../src/internal/abort.ts';

function listenerCount(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('onAbort', () => {
  test('calls back once with the reason, and the remover detaches it', () => {
    const controller = new AbortController();
    const seen: unknown[] = [];
    const remove = onAbort(controller.signal, (reason) => seen.push(reason));
    assert.equal(listenerCount(controller.signal), 1);
    controller.abort('why');
    assert.deepEqual(seen, ['why']);

    const other = new AbortController();
    const late: unknown[] = [];
    const detach = onAbort(other.signal, (reason) => late.push(reason));
    detach();
    assert.equal(listenerCount(other.signal), 0);
    other.abort('ignored');
    assert.deepEqual(late, []);
    remove();
  });

  test('calls back at once for an already aborted signal', () => {
    const seen: unknown[] = [];
    onAbort(AbortSignal.abort('done'), (reason) => seen.push(reason));
    assert.deepEqual(seen, ['done']);
  });
});

describe('linkSignals', () => {
  test('aborts when any parent aborts, with that parent’s reason', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkSignals(a.signal, undefined, b.signal);
    b.abort(new Error('b went away'));
    assert.equal(linked.signal.aborted, true);
    assert.match(String(linked.signal.reason), /b went away/);
    assert.equal(listenerCount(a.signal), 0, 'aborting removes the listeners on the other parents');
  });

  test('dispose leaves no listener on a long-lived parent, however many calls used it', () => {
    const shutdown = new AbortController();
    for (let i = 0; i < 1_000; i++) linkSignals(shutdown.signal).dispose();
    assert.equal(listenerCount(shutdown.signal), 0);
  });

  test('abort() aborts the linked signal only', () => {
    const parent = new AbortController();
    const linked = linkSignals(parent.signal);
    linked.abort('mine');
    assert.equal(linked.signal.reason, 'mine');
    assert.equal(parent.signal.aborted, false);
    assert.equal(listenerCount(parent.signal), 0);
  });

  test('an already aborted parent yields an aborted signal', () => {
    const linked = linkSignals(AbortSignal.abort('early'));
    assert.equal(linked.signal.reason, 'early');
  });
});

describe('raceSignal', () => {
  test('settles like the promise when the signal stays quiet, then stops listening', async () => {
    const controller = new AbortController();
    assert.equal(await raceSignal(Promise.resolve(7), controller.signal), 7);
    await assert.rejects(raceSignal(Promise.reject(new Error('boom')), controller.signal), /boom/);
    assert.equal(listenerCount(controller.signal), 0);
  });

  test('rejects with the reason as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const never = new Promise<number>(() => undefined);
    const raced = raceSignal(never, controller.signal);
    controller.abort(new Error('cancelled by caller'));
    await assert.rejects(raced, /cancelled by caller/);
  });

  test('a rejection of the raced promise after the abort is not left unhandled', async () => {
    const controller = new AbortController();
    let rejectLater!: (error: Error) => void;
    const pending = new Promise<number>((_, reject) => (rejectLater = reject));
    const raced = raceSignal(pending, controller.signal);
    controller.abort(new Error('first'));
    rejectLater(new Error('second'));
    await assert.rejects(raced, /first/);
    // node:test fails the file on an unhandled rejection; reaching here with a turn to spare proves none.
    await new Promise((resolve) => setImmediate(resolve));
  });

  test('without a signal it is the promise itself', async () => {
    const p = Promise.resolve(1);
    assert.equal(raceSignal(p, undefined), p);
    await p;
  });
});
