// Checks of the numbers an ingress is configured with, naming the field that is wrong.

import { ConfigError } from '../../internal/errors.ts';

/** `value` when it is an integer from `min` to `max`, else a ConfigError naming `field`. */
export function wholeNumberOption(field: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
