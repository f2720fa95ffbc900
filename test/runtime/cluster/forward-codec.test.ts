// The grid messages between the nodes of a cluster: forward (handler 28) and wake (handler 29).
// A peer passed the grid's authentication, yet what it sends is checked all the same: anything
// malformed is refused whole with MalformedForwardError, never crashes the receiving node.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Packr } from 'msgpackr';

import { CapacityExceededError, ClosedError } from '../../../src/internal/errors.ts';
import {
  decodeAnswer,
  decodeForward,
  decodeWake,
  encodeAppended,
  encodeForward,
  encodeRefusal,
  encodeWake,
  MalformedForwardError,
  MAX_FORWARD_ENVELOPES,
  MAX_WAKE_ADDRESSES,
} from '../../../src/runtime/cluster/forward-codec.ts';
import { UnknownFunctionTypeError } from '../../../src/runtime/errors.ts';
import type { Appended, Envelope, StoredAddress } from '../../../src/runtime/store/state-store.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });
const pack = (value: unknown): Uint8Array => packr.pack(value);

const cart = (id: string): StoredAddress => ['shop', 'cart', id];
const envelope = (id: string, extra: Partial<Envelope> = {}): Envelope => ({
  target: cart(id),
  argument: { typename: 'io.statefun.types/string', value: new TextEncoder().encode(id) },
  ...extra,
});

/** Decoded values are Buffers (views of the payload): compared as plain bytes. */
function plain(envelopes: readonly Envelope[]): Envelope[] {
  return envelopes.map((e) => ({
    ...e,
    argument: { ...e.argument, value: new Uint8Array(e.argument.value) },
  }));
}

/** A well-formed envelope on the wire, as `[namespace, type, id, caller, typename, value, ingressId]`. */
const wire = (): unknown[] => [
  'shop',
  'cart',
  'ada',
  null,
  'io.statefun.types/string',
  new Uint8Array([1]),
  null,
];
const withField = (index: number, value: unknown): unknown[] => {
  const fields = wire();
  fields[index] = value;
  return fields;
};

describe('forward codec: forward requests', () => {
  test('envelopes round-trip, with and without caller and ingress id, binary values intact', () => {
    const everyByte = new Uint8Array(256).map((_, i) => i);
    const sent: Envelope[] = [
      envelope('ada', { caller: ['shop', 'checkout', 'c-1'], ingressId: 'nats:orders:1234' }),
      { target: ['ns', 'Zoë', 'id/with/slashes'], argument: { typename: 'bin', value: everyByte } },
      { target: cart('empty'), argument: { typename: 'nothing', value: new Uint8Array(0) } },
      envelope('only-caller', { caller: cart('x') }),
      envelope('only-ingress', { ingressId: 'http:key-1' }),
    ];
    const received = decodeForward(encodeForward(sent));
    assert.deepEqual(plain(received), plain(sent));
    assert.ok(!('caller' in (received[1] as Envelope)), 'no caller key when none was sent');
    assert.ok(!('ingressId' in (received[1] as Envelope)), 'no ingressId key when none was sent');
    assert.ok(received.every((e) => e.argument.value instanceof Uint8Array));
  });

  test('the limits themselves are accepted: 512 envelopes, 4096-character parts, 512-character ingress ids', () => {
    const many = Array.from({ length: MAX_FORWARD_ENVELOPES }, (_, i) => envelope(String(i)));
    assert.equal(MAX_FORWARD_ENVELOPES, 512);
    assert.equal(decodeForward(encodeForward(many)).length, 512);
    const long = envelope('i'.repeat(4_096), { ingressId: 'k'.repeat(512) });
    assert.deepEqual(plain(decodeForward(encodeForward([long]))), plain([long]));
  });

  test('an empty payload, or one that is not MessagePack, is refused', () => {
    assert.throws(() => decodeForward(undefined), MalformedForwardError);
    assert.throws(() => decodeForward(new Uint8Array(0)), MalformedForwardError);
    assert.throws(() => decodeForward(new Uint8Array([0x92, 0x01])), /not MessagePack/); // truncated
    assert.throws(() => decodeForward(new Uint8Array([0x90, 0x90])), /not MessagePack/); // trailing bytes
    assert.throws(() => decodeForward(new Uint8Array([0xc1])), MalformedForwardError); // never-used byte
  });

  test('hostile framing is refused, not crashed on: huge declared lengths, deep nesting', () => {
    assert.throws(() => decodeForward(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])), MalformedForwardError);
    assert.throws(() => decodeForward(new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff])), MalformedForwardError);
    const deep = new Uint8Array(200_000).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    assert.throws(() => decodeForward(deep), MalformedForwardError);
  });

  test('a request that is not an array, or holds none or too many envelopes, is refused', () => {
    for (const value of [null, 'x', 7, { a: 1 }, new Uint8Array([1])]) {
      assert.throws(() => decodeForward(pack(value)), /must be an array/);
    }
    assert.throws(() => decodeForward(pack([])), /1 to 512 items, got 0/);
    const tooMany = Array.from({ length: MAX_FORWARD_ENVELOPES + 1 }, (_, i) => envelope(String(i)));
    assert.throws(() => decodeForward(encodeForward(tooMany)), /1 to 512 items, got 513/);
  });

  test('an envelope of the wrong shape or field types is refused whole', () => {
    const cases: [string, unknown][] = [
      ['not an array', 'ada'],
      ['6 fields', wire().slice(0, 6)],
      ['8 fields', [...wire(), null]],
      ['numeric namespace', withField(0, 1)],
      ['null type', withField(1, null)],
      ['boolean id', withField(2, true)],
      ['caller not an address', withField(3, 'shop/cart/x')],
      ['caller of 2 parts', withField(3, ['shop', 'cart'])],
      ['caller with a number', withField(3, ['shop', 'cart', 7])],
      ['caller with an empty part', withField(3, ['shop', '', 'x'])],
      ['numeric typename', withField(4, 5)],
      ['string value', withField(5, 'bytes?')],
      ['null value', withField(5, null)],
      ['array value', withField(5, [1, 2])],
      ['numeric ingress id', withField(6, 1234)],
    ];
    for (const [name, bad] of cases) {
      assert.throws(() => decodeForward(pack([wire(), bad])), MalformedForwardError, name);
    }
    assert.throws(() => decodeForward(pack([wire(), 'ada'])), /envelope 1 must be an array of 7 fields/);
  });

  test('empty or over-long strings and over-long ingress ids are refused', () => {
    const cases: [string, unknown[]][] = [
      ['empty namespace', withField(0, '')],
      ['empty type', withField(1, '')],
      ['empty id', withField(2, '')],
      ['empty typename', withField(4, '')],
      ['4097-character id', withField(2, 'i'.repeat(4_097))],
      ['4097-character typename', withField(4, 't'.repeat(4_097))],
      ['4097-character caller part', withField(3, ['shop', 'cart', 'c'.repeat(4_097)])],
      ['empty ingress id', withField(6, '')],
      ['513-character ingress id', withField(6, 'k'.repeat(513))],
    ];
    for (const [name, bad] of cases) {
      assert.throws(() => decodeForward(pack([bad])), MalformedForwardError, name);
    }
    assert.throws(() => decodeForward(pack([withField(2, '')])), /envelope 0's id must be a string/);
    assert.throws(
      () => decodeForward(pack([withField(6, 'k'.repeat(513))])),
      /ingressId must be a string of 1 to 512/,
    );
  });
});

describe('forward codec: answers', () => {
  const sent = [envelope('ada'), envelope('bob', { ingressId: 'http:1' })];

  test('an ok answer gives each envelope its seq and duplicate flag, in order', () => {
    const appended: Appended[] = [
      { ...(sent[0] as Envelope), seq: 41, duplicate: false },
      { ...(sent[1] as Envelope), seq: 42, duplicate: true },
    ];
    assert.deepEqual(decodeAnswer(encodeAppended(appended), sent), appended);
  });

  test('a full answer becomes a retryable CapacityExceededError with the owner’s limit', () => {
    const answer = encodeRefusal(new CapacityExceededError('the inbox of shop/cart', 250));
    assert.throws(
      () => decodeAnswer(answer, sent),
      (error: unknown) =>
        error instanceof CapacityExceededError &&
        error.limit === 250 &&
        error.retryable &&
        error.message === 'the inbox of shop/cart on the owning node is full (limit 250)',
    );
  });

  test('an error answer with code WEFT_CLOSED becomes a ClosedError; others keep their message', () => {
    assert.throws(
      () => decodeAnswer(encodeRefusal(new ClosedError('the runtime is closing')), sent),
      (error: unknown) => error instanceof ClosedError && /the runtime is closing/.test(error.message),
    );
    assert.throws(
      () => decodeAnswer(encodeRefusal(new UnknownFunctionTypeError('shop/cart')), sent),
      (error: unknown) => error instanceof UnknownFunctionTypeError && error.functionType === 'shop/cart',
    );
    assert.throws(
      () => decodeAnswer(encodeRefusal(new Error('disk on fire')), sent),
      (error: unknown) =>
        error instanceof Error &&
        !(error instanceof MalformedForwardError) &&
        error.message === 'the owning node refused the messages: disk on fire',
    );
    assert.throws(() => decodeAnswer(encodeRefusal('a thrown string'), sent), /a thrown string/);
  });

  test('a refusal of something thrown that is not an object still encodes', () => {
    // Whatever the local runtime throws reaches encodeRefusal, undefined and null included.
    for (const thrown of [undefined, null]) {
      assert.deepEqual(packr.unpack(encodeRefusal(thrown)), { error: String(thrown), code: 'ERROR' });
    }
  });

  test('a malformed answer is refused: empty, not MessagePack, not a map, results that do not match', () => {
    assert.throws(() => decodeAnswer(undefined, sent), /answer is empty/);
    assert.throws(() => decodeAnswer(new Uint8Array(0), sent), /not MessagePack/);
    assert.throws(() => decodeAnswer(new Uint8Array([0x81]), sent), /not MessagePack/);
    assert.throws(() => decodeAnswer(pack('ok'), sent), /must be a map/);
    assert.throws(() => decodeAnswer(pack(null), sent), /must be a map/);
    assert.throws(() => decodeAnswer(pack({}), sent), /must hold 2 results/);
    assert.throws(() => decodeAnswer(pack({ ok: [[1, false]] }), sent), /must hold 2 results/);
    assert.throws(
      () =>
        decodeAnswer(
          pack({
            ok: [
              [1, false],
              [2, false],
              [3, false],
            ],
          }),
          sent,
        ),
      /must hold 2 results/,
    );
    assert.throws(() => decodeAnswer(pack({ full: 'the inbox' }), sent), MalformedForwardError);
    const badResults: [string, unknown][] = [
      ['not an array', 7],
      ['fractional seq', [1.5, false]],
      ['string seq', ['1', false]],
      ['unsafe seq', [2 ** 60, false]],
      ['numeric duplicate', [1, 0]],
      ['missing duplicate', [1]],
    ];
    for (const [name, bad] of badResults) {
      assert.throws(
        () => decodeAnswer(pack({ ok: [[1, false], bad] }), sent),
        /result 1 of a forward answer must be \[seq, duplicate\]/,
        name,
      );
    }
  });
});

describe('forward codec: wakes', () => {
  test('addresses round-trip, up to 4096 in one wake', () => {
    const addresses: StoredAddress[] = [cart('ada'), ['ns', 'Zoë', 'a/b'], cart('x'.repeat(4_096))];
    assert.deepEqual(decodeWake(encodeWake(addresses)), addresses);
    const many = Array.from({ length: MAX_WAKE_ADDRESSES }, (_, i) => cart(String(i)));
    assert.equal(MAX_WAKE_ADDRESSES, 4_096);
    assert.deepEqual(decodeWake(encodeWake(many)), many);
  });

  test('a malformed wake is refused', () => {
    assert.throws(() => decodeWake(undefined), /a wake is empty/);
    assert.throws(() => decodeWake(new Uint8Array([0xdc, 0x00])), /not MessagePack/);
    assert.throws(() => decodeWake(pack({ a: 1 })), /must be an array/);
    assert.throws(() => decodeWake(pack([])), /1 to 4096 items, got 0/);
    const tooMany = Array.from({ length: MAX_WAKE_ADDRESSES + 1 }, (_, i) => cart(String(i)));
    assert.throws(() => decodeWake(encodeWake(tooMany)), /1 to 4096 items, got 4097/);
    const bad: [string, unknown][] = [
      ['a string', 'shop/cart/ada'],
      ['2 parts', ['shop', 'cart']],
      ['4 parts', ['shop', 'cart', 'ada', 'x']],
      ['a number part', ['shop', 'cart', 1]],
      ['an empty part', ['shop', '', 'ada']],
      ['an over-long part', ['shop', 'cart', 'x'.repeat(4_097)]],
    ];
    for (const [name, address] of bad) {
      assert.throws(() => decodeWake(pack([['shop', 'cart', 'ok'], address])), /address 1 must be/, name);
    }
  });
});
