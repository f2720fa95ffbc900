// Option checks the sinks share: a bad option fails at construction, naming its field, rather
// than at the first delivery.

import { ConfigError } from '../../internal/errors.ts';
import { isPlainHeaderValue } from './header-value.ts';

/** What a record's id (JetStream msg id, HTTP Idempotency-Key) starts with by default. */
export const DEFAULT_MSG_ID_PREFIX = 'weft-outbox-';
/** Longest id prefix; the id is a header value. */
const MAX_MSG_ID_PREFIX_LENGTH = 256;

/** The id prefix given, checked; the default when none was. */
export function checkMsgIdPrefix(field: string, prefix: string | undefined): string {
  const value = prefix ?? DEFAULT_MSG_ID_PREFIX;
  if (typeof value !== 'string' || value.length > MAX_MSG_ID_PREFIX_LENGTH || !isPlainHeaderValue(value)) {
    throw new ConfigError(field, `must be visible ASCII of at most ${MAX_MSG_ID_PREFIX_LENGTH} characters`);
  }
  return value;
}

/** A positive integer option; the fallback when absent. */
export function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) {
    throw new ConfigError(field, `must be a positive integer, got ${String(chosen)}`);
  }
  return chosen;
}

/** Requires an object with the methods the sink calls, so a wrong argument fails here, not later. */
export function checkHasMethods(field: string, value: unknown, methods: readonly string[]): void {
  for (const method of methods) {
    if (
      typeof value !== 'object' ||
      value === null ||
      typeof (value as Record<string, unknown>)[method] !== 'function'
    ) {
      throw new ConfigError(field, `must have a ${method}() method`);
    }
  }
}
