// Collects validation problems with a bound, so a hostile document cannot make an unbounded list.

import type { StoryProblem } from './errors.ts';

/** Problems listed in one StoryValidationError; the rest are only counted. */
export const maxListedProblems = 100;

export class ProblemList {
  readonly #problems: StoryProblem[] = [];
  #omitted = 0;

  add(path: string, message: string, stepId?: string): void {
    if (this.#problems.length >= maxListedProblems) {
      this.#omitted++;
      return;
    }
    this.#problems.push({ path, stepId, message });
  }

  get empty(): boolean {
    return this.#problems.length === 0;
  }

  get problems(): readonly StoryProblem[] {
    return this.#problems;
  }

  get omitted(): number {
    return this.#omitted;
  }
}

/** A short rendering of a found value for a message, never longer than ~60 characters. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    text = String(value);
  else return `a ${typeof value}`;
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** A plain object (from JSON or YAML), not a list, null, Buffer, Map or Set. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
