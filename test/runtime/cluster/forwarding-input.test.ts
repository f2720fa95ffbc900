// Ingress on a cluster node: messages it owns go to its own runtime, the others go to their
// owner over the grid, one request in flight per peer, bounded queues, pushback passed on.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CapacityExceededError, ClosedError } from '../../../src/internal/errors.ts';
import { FakeClock } from '../../../src/internal/fake-clock.ts';
import {
  decodeForward,
  encodeAppended,
  encodeRefusal,
  FORWARD_HANDLER,
  MalformedForwardError,
} from '../../../src/runtime/cluster/forward-codec.ts';
import {
  ForwardingInput,
  type ForwardingInputOptions,
} from '../../../src/runtime/cluster/forwarding-input.ts';
import { OwnerUnavailableError, UnknownFunctionTypeError } from '../../../src/runtime/errors.ts';
import type { RuntimeInput } from '../../../src/runtime/runtime-input.ts';
import type { Appended, Envelope, StoredAddress } from '../../../src/runtime/store/state-store.ts';

const SELF = 'a';
/** The owner of an address is the prefix of its id: `b:1` belongs to node b. */
const ownerOf = (address: StoredAddress): string => address[2].split(':')[0] as string;
const message = (id: string): Envelope => ({
  target: ['shop', 'cart', id],
  argument: { typename: 'io.statefun.types/string', value: new TextEncoder().encode(id) },
});
const ids = (envelopes: readonly Envelope[]): string[] => envelopes.map((e) => e.target[2]);

/** This node's runtime: appends at once, numbering from 1 000. */
class FakeLocal implements RuntimeInput {
  readonly calls: (readonly Envelope[])[] = [];
  releasedCalls = 0;
  #seq = 1_000;
  servesType(namespace: string, type: string): boolean {
    return namespace === 'shop' && type === 'cart';
  }
  send(envelopes: readonly Envelope[]): Promise<Appended[]> {
    this.calls.push(envelopes);
    return Promise.resolve(envelopes.map((e) => ({ ...e, seq: this.#seq++, duplicate: false })));
  }
  released(): Promise<void> {
    this.releasedCalls += 1;
    return Promise.resolve();
  }
}

interface Request {
  readonly host: string;
  readonly handler: number;
  readonly envelopes: Envelope[];
}

/** The grid: records each request; answers ok (seqs from 1 per host) unless told otherwise. */
class FakeGrid {
  readonly requests: Request[] = [];
  /** While set, requests wait for it. */
  gate: Promise<void> | undefined;
  answer: ((envelopes: Envelope[]) => Promise<Uint8Array | undefined>) | undefined;
  readonly #seqs = new Map<string, number>();

  readonly request = async (
    host: string,
    handler: number,
    payload: Uint8Array,
  ): Promise<Uint8Array | undefined> => {
    const envelopes = decodeForward(payload);
    this.requests.push({ host, handler, envelopes });
    await this.gate;
    if (this.answer !== undefined) return this.answer(envelopes);
    let seq = this.#seqs.get(host) ?? 1;
    const appended = envelopes.map((e) => ({ ...e, seq: seq++, duplicate: false }));
    this.#seqs.set(host, seq);
    return encodeAppended(appended);
  };

  /** Ids sent to `host`, all requests together. */
  sentTo(host: string): string[] {
    return this.requests.filter((r) => r.host === host).flatMap((r) => ids(r.envelopes));
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets queued promise callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(options: Partial<ForwardingInputOptions> = {}): {
  input: ForwardingInput;
  local: FakeLocal;
  grid: FakeGrid;
  clock: FakeClock;
} {
  const local = new FakeLocal();
  const grid = new FakeGrid();
  const clock = new FakeClock();
  // One request in flight per peer unless a test says otherwise: queueing is then easy to see.
  const input = new ForwardingInput({
    local,
    self: SELF,
    ownerOf,
    request: grid.request,
    clock,
    window: 1,
    ...options,
  });
  return { input, local, grid, clock };
}

describe('forwarding input', () => {
  test('messages this node owns go straight to its runtime', async () => {
    const { input, local, grid } = setup();
    const sent = [message('a:1'), message('a:2')];
    const appended = await input.send(sent);
    assert.equal(local.calls.length, 1);
    assert.equal(local.calls[0], sent, 'the same call, untouched');
    assert.deepEqual(
      appended.map((a) => a.seq),
      [1_000, 1_001],
    );
    assert.equal(grid.requests.length, 0);
    assert.deepEqual(input.stats(), { forwarded: 0, requests: 0, refused: 0, failed: 0, pending: 0 });
    assert.equal(input.servesType('shop', 'cart'), true);
    assert.equal(input.servesType('shop', 'other'), false);
  });

  test('a mixed call is split per owner and its results come back in the caller’s order', async () => {
    const { input, local, grid } = setup();
    const sent = ['b:1', 'a:1', 'c:1', 'b:2', 'a:2'].map(message);
    const appended = await input.send(sent);
    assert.deepEqual(ids(appended), ['b:1', 'a:1', 'c:1', 'b:2', 'a:2']);
    assert.deepEqual(
      appended.map((a) => a.seq),
      [1, 1_000, 1, 2, 1_001],
    );
    assert.deepEqual(local.calls.map(ids), [['a:1', 'a:2']]);
    assert.deepEqual(
      grid.requests.map((r) => [r.host, r.handler, ids(r.envelopes)]),
      [
        ['b', FORWARD_HANDLER, ['b:1', 'b:2']],
        ['c', FORWARD_HANDLER, ['c:1']],
      ],
    );
    assert.deepEqual(input.stats(), { forwarded: 3, requests: 2, refused: 0, failed: 0, pending: 0 });
  });

  test('messages for a peer sent while its request is in flight go together in the next one', async () => {
    const { input, grid } = setup();
    const held = gate();
    grid.gate = held.promise;
    const first = input.send([message('b:1')]);
    await settle();
    assert.equal(grid.requests.length, 1);
    const later = [input.send([message('b:2')]), input.send([message('b:3'), message('b:4')])];
    await settle();
    assert.equal(grid.requests.length, 1, 'one request in flight per peer');
    assert.equal(input.stats().pending, 3);
    held.open();
    const results = await Promise.all([first, ...later]);
    assert.deepEqual(results.map(ids), [['b:1'], ['b:2'], ['b:3', 'b:4']]);
    assert.deepEqual(
      grid.requests.map((r) => ids(r.envelopes)),
      [['b:1'], ['b:2', 'b:3', 'b:4']],
    );
    assert.deepEqual(input.stats(), { forwarded: 4, requests: 2, refused: 0, failed: 0, pending: 0 });
  });

  test('up to `window` requests are in flight to a peer; what comes after waits for a credit', async () => {
    const { input, grid } = setup({ window: 2 });
    const held = gate();
    grid.gate = held.promise;
    const first = input.send([message('b:1')]);
    await settle();
    const second = input.send([message('b:2')]);
    await settle();
    assert.equal(grid.requests.length, 2, 'two credits, two requests in flight');
    const third = input.send([message('b:3'), message('b:4')]);
    await settle();
    assert.equal(grid.requests.length, 2, 'no credit left: the third waits');
    assert.equal(input.stats().pending, 2);
    held.open();
    await Promise.all([first, second, third]);
    assert.deepEqual(
      grid.requests.map((r) => ids(r.envelopes)),
      [['b:1'], ['b:2'], ['b:3', 'b:4']],
    );
  });

  test('past maxPendingPerPeer waiting messages, a peer’s messages are refused and counted', async () => {
    const { input, grid, local } = setup({ maxPendingPerPeer: 2 });
    const held = gate();
    grid.gate = held.promise;
    const inFlight = input.send([message('b:1')]);
    await settle();
    const waiting = [input.send([message('b:2')]), input.send([message('b:3')])];
    await assert.rejects(
      input.send([message('b:4')]),
      (error: unknown) => error instanceof CapacityExceededError && error.limit === 2 && error.retryable,
    );
    assert.equal(input.stats().refused, 1);
    // Other owners are not held back by a full queue.
    assert.deepEqual(ids(await input.send([message('a:1')])), ['a:1']);
    assert.equal(local.calls.length, 1);
    held.open();
    await Promise.all([inFlight, ...waiting]);
    assert.deepEqual(grid.sentTo('b'), ['b:1', 'b:2', 'b:3']);
    assert.deepEqual(input.stats(), { forwarded: 3, requests: 2, refused: 1, failed: 0, pending: 0 });
  });

  test('a call refused for a full queue appends none of its messages', async () => {
    // RuntimeInput.send: "nothing of a rejected call was appended", so the ingress may retry it.
    const { input, grid } = setup({ maxPendingPerPeer: 2 });
    const held = gate();
    grid.gate = held.promise;
    const inFlight = input.send([message('b:1')]);
    await settle();
    await assert.rejects(input.send(['b:2', 'b:3', 'b:4'].map(message)), CapacityExceededError);
    held.open();
    await inFlight;
    await settle();
    assert.deepEqual(grid.sentTo('b'), ['b:1'], 'the refused call’s messages are not forwarded');
    assert.equal(input.stats().refused, 3);
  });

  test('an owner answering full rejects with CapacityExceededError, and released() waits pushbackMs', async () => {
    const { input, grid, clock, local } = setup({ pushbackMs: 250 });
    grid.answer = () =>
      Promise.resolve(encodeRefusal(new CapacityExceededError('the inbox of shop/cart', 64)));
    await assert.rejects(
      input.send([message('b:1'), message('b:2')]),
      (error: unknown) =>
        error instanceof CapacityExceededError &&
        error.limit === 64 &&
        /on the owning node/.test(error.message),
    );
    assert.deepEqual(input.stats(), { forwarded: 0, requests: 1, refused: 2, failed: 0, pending: 0 });

    let released = false;
    void input.released().then(() => {
      released = true;
    });
    await clock.advanceAsync(249);
    assert.equal(released, false, 'still pushed back');
    assert.equal(local.releasedCalls, 1, 'the local runtime is asked too');
    await clock.advanceAsync(1);
    assert.equal(released, true);
    // Once the pushback is over, released() resolves at once.
    await input.released();
  });

  test('released() resolves at once when no owner pushed back', async () => {
    const { input, local } = setup();
    await input.released();
    assert.equal(local.releasedCalls, 1);
  });

  test('a failed request rejects its messages as the owner unavailable, counts them failed, sends once', async () => {
    const { input, grid } = setup();
    const reset = new Error('connection reset');
    grid.answer = () => Promise.reject(reset);
    await assert.rejects(
      input.send(['b:1', 'b:2', 'b:3'].map(message)),
      (error: unknown) =>
        error instanceof OwnerUnavailableError &&
        error.owner === 'b' &&
        error.retryable &&
        error.cause === reset,
    );
    assert.equal(grid.requests.length, 1, 'not retried one by one: the owner may have appended them');
    assert.deepEqual(input.stats(), { forwarded: 0, requests: 1, refused: 0, failed: 3, pending: 0 });
    let released = false;
    void input.released().then(() => {
      released = true;
    });
    await settle();
    assert.equal(released, true, 'a failure is not pushback');
  });

  test('an owner’s refusal counts failed: closing and unknown types pass through, the rest is unavailable', async () => {
    const { input, grid } = setup();
    grid.answer = () => Promise.resolve(encodeRefusal(new ClosedError('the runtime is closing')));
    await assert.rejects(input.send([message('b:1')]), ClosedError);
    grid.answer = () => Promise.resolve(encodeRefusal(new UnknownFunctionTypeError('shop/cart')));
    await assert.rejects(input.send([message('b:2')]), UnknownFunctionTypeError);
    grid.answer = () => Promise.resolve(encodeRefusal(new Error('disk full')));
    await assert.rejects(
      input.send([message('c:1')]),
      (error: unknown) =>
        error instanceof OwnerUnavailableError &&
        error.owner === 'c' &&
        error.cause instanceof Error &&
        error.cause.message === 'the owning node refused the messages: disk full',
    );
    grid.answer = () => Promise.resolve(undefined);
    await assert.rejects(
      input.send([message('d:1')]),
      (error: unknown) =>
        error instanceof OwnerUnavailableError && error.cause instanceof MalformedForwardError,
    );
    assert.deepEqual(input.stats(), { forwarded: 0, requests: 4, refused: 0, failed: 4, pending: 0 });
  });

  test('close() forwards what is queued, then refuses new messages for other nodes', async () => {
    const { input, grid } = setup();
    const held = gate();
    grid.gate = held.promise;
    const inFlight = input.send([message('b:1')]);
    await settle();
    const queued = input.send([message('b:2')]);
    const closed = input.close();
    held.open();
    await closed;
    assert.deepEqual((await Promise.all([inFlight, queued])).map(ids), [['b:1'], ['b:2']]);
    await assert.rejects(input.send([message('b:3')]), ClosedError);
  });
});
