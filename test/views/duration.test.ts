// Go duration syntax, checked against what Go's time.ParseDuration answers for the same text.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { parseDuration } from '../../src/views/duration.ts';

describe('views: parseDuration', () => {
  test('reads every form Go accepts, in milliseconds', () => {
    const cases: readonly [string, number][] = [
      ['0', 0],
      ['+0', 0],
      ['-0', 0],
      ['0s', 0],
      ['30s', 30_000],
      ['1m30s', 90_000],
      ['100ms', 100],
      ['1.5h', 5_400_000],
      ['1h30m', 5_400_000],
      ['.5s', 500],
      ['1.s', 1000],
      ['2h45m10.5s', 9_910_500],
      ['1500us', 1.5],
      ['1500\u00b5s', 1.5],
      ['1500\u03bcs', 1.5],
      ['250000ns', 0.25],
      ['-1s', -1000],
      ['+5m', 300_000],
      ['10m', 600_000],
      ['1s1s', 2000],
      ['0.000000001s', 0.000001],
      // Fractions are truncated to whole nanoseconds, as in Go.
      ['0.0000000019s', 0.000001],
      // Go's largest duration, and one nanosecond more below zero.
      ['9223372036854775807ns', 9_223_372_036_854.775],
      ['-9223372036854775808ns', -9_223_372_036_854.775],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  test('refuses what Go refuses, saying why', () => {
    const cases: readonly [string, RegExp][] = [
      ['', /^invalid duration ""$/],
      ['-', /^invalid duration "-"$/],
      ['10', /^missing unit in duration "10"$/],
      ['1s5', /^missing unit in duration "1s5"$/],
      ['5x', /^unknown unit "x" in duration "5x"$/],
      ['5S', /^unknown unit "S" in duration "5S"$/],
      ['1 s', /^unknown unit " s" in duration "1 s"$/],
      ['abc', /^invalid duration "abc"$/],
      ['s', /^invalid duration "s"$/],
      ['.s', /^invalid duration ".s"$/],
      ['1..5s', /^missing unit in duration "1..5s"$/],
      ['--1s', /^invalid duration "--1s"$/],
      [' 1s', /^invalid duration " 1s"$/],
      ['9223372036854775808ns', /^invalid duration/],
      ['-9223372036854775809ns', /^invalid duration/],
      ['3000000h', /^invalid duration/],
      ['99999999999999999999999s', /^invalid duration/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseDuration(text),
        (error) => error instanceof TypeError && message.test(error.message),
        text,
      );
    }
  });

  test('any sum of parts with units reads as the sum of the parts', () => {
    const unitMs = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
    const part = fc.record({
      amount: fc.integer({ min: 0, max: 10_000 }),
      unit: fc.constantFrom('h', 'm', 's', 'ms'),
    });
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts.map((p) => `${p.amount}${p.unit}`).join('');
        const expected = parts.reduce((sum, p) => sum + p.amount * unitMs[p.unit], 0);
        assert.equal(parseDuration(text), expected);
      }),
    );
  });

  test('no text makes it throw anything but a TypeError', () => {
    const alphabet = fc.constantFrom(...'0123456789.+-hmsunµμx '.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet })), (text) => {
        try {
          const ms = parseDuration(text);
          assert.ok(Number.isFinite(ms));
        } catch (error) {
          assert.ok(error instanceof TypeError, String(error));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
