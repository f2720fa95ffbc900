import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CreditReturn } from '../../src/grid/credit-return.ts';
import { ProtocolError } from '../../src/grid/errors.ts';
import { decodeCredits, encodeCredits } from '../../src/grid/messages.ts';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('credits taken in one turn go back in one frame', async () => {
  const sent: number[] = [];
  const credits = new CreditReturn(64, (count) => sent.push(count));
  for (let i = 0; i < 10; i++) credits.add();
  assert.deepEqual(sent, [], 'nothing before the turn ends');
  await nextTurn();
  assert.deepEqual(sent, [10]);
});

test('half a window owed goes back at once, so the sender never idles', () => {
  const sent: number[] = [];
  const credits = new CreditReturn(8, (count) => sent.push(count));
  for (let i = 0; i < 9; i++) credits.add();
  assert.deepEqual(sent, [4, 4]);
});

test('a window of one returns every credit immediately', () => {
  const sent: number[] = [];
  const credits = new CreditReturn(1, (count) => sent.push(count));
  credits.add();
  credits.add();
  assert.deepEqual(sent, [1, 1]);
});

test('nothing is sent once the stream is over', async () => {
  const sent: number[] = [];
  const credits = new CreditReturn(64, (count) => sent.push(count));
  credits.add();
  credits.close();
  credits.add();
  await nextTurn();
  assert.deepEqual(sent, []);
});

test('one credit travels as an absent payload, more as a count, and zero or junk is refused', () => {
  assert.equal(encodeCredits(1), undefined);
  assert.equal(decodeCredits(undefined), 1);
  assert.equal(decodeCredits(encodeCredits(37)), 37);
  assert.throws(() => decodeCredits(Buffer.from([0x00])), ProtocolError);
  assert.throws(() => decodeCredits(Buffer.from([0xa1, 0x61])), ProtocolError);
});
