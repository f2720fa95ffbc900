// Names that end up in stream keys (`namespace/run/step`) and so must be safe path segments.

import { describeValue } from './problems.ts';

/** Longest namespace, run name, story name or step id. */
export const maxNameLength = 63;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Why `value` is not a DNS label (1–63 of `a-z0-9-`, alphanumeric at both ends); undefined if it is. */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describeValue(value)}`;
  if (value.length === 0) return 'must not be empty';
  if (value.length > maxNameLength) {
    return `must be at most ${maxNameLength} characters, got ${value.length}`;
  }
  if (!dnsLabel.test(value)) {
    return `must be lowercase letters, digits and '-', starting and ending with a letter or digit, got ${describeValue(value)}`;
  }
  return undefined;
}
