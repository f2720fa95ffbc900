// A small declarative schema for story fields: each field's type and bounds, checked in one place
// so every refusal names its path and the value found, and unknown fields (typos) are refused.

import { describeValue, isPlainObject, type ProblemList } from './problems.ts';

export type Field =
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'number'; readonly min: number; readonly max: number }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'bool' }
  | { readonly kind: 'string'; readonly maxLength: number }
  | { readonly kind: 'object'; readonly fields: Readonly<Record<string, Field>> }
  | { readonly kind: 'map'; readonly keys: readonly string[]; readonly value: Field };

export const int = (min: number, max: number): Field => ({ kind: 'int', min, max });
export const num = (min: number, max: number): Field => ({ kind: 'number', min, max });
export const oneOf = (...values: string[]): Field => ({ kind: 'enum', values });
export const bool: Field = { kind: 'bool' };
export const text = (maxLength: number): Field => ({ kind: 'string', maxLength });
export const object = (fields: Record<string, Field>): Field => ({ kind: 'object', fields });
export const mapOf = (keys: readonly string[], value: Field): Field => ({ kind: 'map', keys, value });

/** Where a value sits, for problems: its document path and the step it belongs to. */
export interface Place {
  readonly path: string;
  readonly stepId?: string | undefined;
}

export function child(place: Place, key: string): Place {
  return { path: place.path === '' ? key : `${place.path}.${key}`, stepId: place.stepId };
}

/**
 * Checks `value` against `field`; returns a fresh copy holding only known fields (null and absent
 * fields left out), or undefined after adding problems. Never descends deeper than the schema, so
 * a deeply nested hostile value costs nothing.
 */
export function readField(value: unknown, field: Field, place: Place, problems: ProblemList): unknown {
  const fail = (message: string): undefined => {
    problems.add(place.path, message, place.stepId);
    return undefined;
  };
  switch (field.kind) {
    case 'int': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < field.min) {
        const what =
          field.min === 1
            ? 'a positive integer'
            : field.min === 0
              ? 'a non-negative integer'
              : `an integer ≥ ${field.min}`;
        fail(`must be ${what}, got ${describeValue(value)}`);
        return;
      }
      if (value > field.max) {
        fail(`must be at most ${field.max}, got ${value}`);
        return;
      }
      return value;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < field.min || value > field.max) {
        fail(`must be a number from ${field.min} to ${field.max}, got ${describeValue(value)}`);
        return;
      }
      return value;
    }
    case 'enum': {
      if (typeof value !== 'string' || !field.values.includes(value)) {
        fail(`must be one of ${field.values.join(', ')}, got ${describeValue(value)}`);
        return;
      }
      return value;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      fail(`must be true or false, got ${describeValue(value)}`);
      return;
    }
    case 'string': {
      if (typeof value !== 'string') {
        fail(`must be a string, got ${describeValue(value)}`);
        return;
      }
      if (value.length > field.maxLength) {
        fail(`must be at most ${field.maxLength} characters, got ${value.length}`);
        return;
      }
      return value;
    }
    case 'object':
      return readObject(value, field.fields, place, problems);
    case 'map': {
      if (!isPlainObject(value)) {
        fail(`must be an object, got ${describeValue(value)}`);
        return;
      }
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const key of Object.keys(value)) {
        if (!field.keys.includes(key)) {
          problems.add(
            child(place, key).path,
            `unknown key (expected one of: ${field.keys.join(', ')})`,
            place.stepId,
          );
          ok = false;
          continue;
        }
        const item = value[key];
        if (item === null || item === undefined) continue;
        const read = readField(item, field.value, child(place, key), problems);
        if (read === undefined) ok = false;
        else out[key] = read;
      }
      return ok ? out : undefined;
    }
  }
}

/** Reads a plain object with the given fields, refusing any other field and naming the closest match. */
export function readObject(
  value: unknown,
  fields: Readonly<Record<string, Field>>,
  place: Place,
  problems: ProblemList,
): Record<string, unknown> | undefined {
  if (!isPlainObject(value)) {
    problems.add(place.path, `must be an object, got ${describeValue(value)}`, place.stepId);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  let ok = unknownFields(value, Object.keys(fields), place, problems);
  for (const [key, field] of Object.entries(fields)) {
    const item = Object.hasOwn(value, key) ? value[key] : undefined;
    if (item === null || item === undefined) continue;
    const read = readField(item, field, child(place, key), problems);
    if (read === undefined) ok = false;
    else out[key] = read;
  }
  return ok ? out : undefined;
}

/** Adds a problem for every key of `value` not in `known`; true when there were none. */
export function unknownFields(
  value: Record<string, unknown>,
  known: readonly string[],
  place: Place,
  problems: ProblemList,
): boolean {
  let ok = true;
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    ok = false;
    const guess = closest(key, known);
    const hint = guess === undefined ? `expected one of: ${known.join(', ')}` : `did you mean ${guess}?`;
    problems.add(child(place, describeKey(key)).path, `unknown field (${hint})`, place.stepId);
  }
  return ok;
}

function describeKey(key: string): string {
  const shown = key.length > 40 ? `${key.slice(0, 37)}…` : key;
  return /^[A-Za-z_$][\w$]*$/.test(shown) ? shown : JSON.stringify(shown);
}

/** The known name nearest to `key` (case-insensitive), if it is near enough to be a typo of it. */
function closest(key: string, known: readonly string[]): string | undefined {
  if (key.length > 64) return undefined;
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = editDistance(lower, name.toLowerCase());
    // Longer names tolerate more edits: `maxRetry` is a typo of `maxRetries`, `foo` of nothing.
    if (d <= Math.max(2, Math.floor(name.length / 3)) && d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(
        Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
