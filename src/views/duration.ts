// Go's duration syntax, as Consul reads `?wait=`: "30s", "1m30s", "1.5h", "100ms", "0".
//
// It follows Go's time.ParseDuration: an optional sign, then one or more decimal numbers
// (a fraction allowed) each with a unit of ns, us, µs, ms, s, m or h; a bare "0" is the
// only number without a unit. Sums are kept in whole nanoseconds, as Go keeps them, so
// "1.5h" and "1h30m" are the same value, and anything beyond Go's range (about 292 years)
// is refused rather than rounded.

const NANOS_PER_UNIT: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // µ, the micro sign
  ['\u03bcs', 1_000n], // μ, the Greek letter mu
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

/** Go's Duration is an int64 of nanoseconds. */
const MAX_NANOS = 2n ** 63n - 1n;

/** Digits of a fraction that can still change the result: a nanosecond of an hour needs 13. */
const FRACTION_DIGITS = 18;

/**
 * Parses a Go duration and returns it in milliseconds (fractional below a millisecond,
 * negative for a leading "-"). Throws a TypeError saying what is wrong, in Go's words.
 */
export function parseDuration(text: string): number {
  if (typeof text !== 'string') throw new TypeError('a duration is a string');
  const quoted = JSON.stringify(text);
  const invalid = (): TypeError => new TypeError(`invalid duration ${quoted}`);
  let rest = text;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0n;
  while (rest !== '') {
    const number = /^([0-9]*)(?:\.([0-9]*))?/.exec(rest);
    const whole = number?.[1] ?? '';
    const fraction = number?.[2];
    if (whole === '' && (fraction === undefined || fraction === '')) throw invalid();
    rest = rest.slice(number?.[0].length ?? 0);
    // The unit is everything up to the next digit or point, as in Go.
    const unitLength = /^[^0-9.]*/.exec(rest)?.[0].length ?? 0;
    if (unitLength === 0) throw new TypeError(`missing unit in duration ${quoted}`);
    const unitName = rest.slice(0, unitLength);
    rest = rest.slice(unitLength);
    const unit = NANOS_PER_UNIT.get(unitName);
    if (unit === undefined)
      throw new TypeError(`unknown unit ${JSON.stringify(unitName)} in duration ${quoted}`);
    let nanos = whole === '' ? 0n : BigInt(whole) * unit;
    if (fraction !== undefined && fraction !== '') {
      const digits = fraction.slice(0, FRACTION_DIGITS);
      // Truncated to whole nanoseconds, as Go does.
      nanos += (BigInt(digits) * unit) / 10n ** BigInt(digits.length);
    }
    total += nanos;
    // Go allows one more nanosecond below zero than above it.
    if (total > MAX_NANOS + (negative ? 1n : 0n)) throw invalid();
  }
  const millis = Number(total) / 1e6;
  return negative && millis !== 0 ? -millis : millis;
}
