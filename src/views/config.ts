// The check the views' constructors share for their count and duration options.

import { ConfigError } from '../internal/errors.ts';

/** `value`, if it is a whole number >= `min`; otherwise a ConfigError naming `field`. */
export function wholeNumberOption(value: number, field: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(field, `must be a whole number >= ${min}, got ${String(value)}`);
  }
  return value;
}
