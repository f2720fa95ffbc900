// Subscribing to the core's diagnostics channels from outside, safely: a listener that
// throws inside `publish` would surface as an uncaught exception in the publisher's
// process, so a bad event (or a bug here) is swallowed and the event not counted.

import { diagnosticChannel, subscribeDiagnostics } from '../../internal/diagnostics.ts';

/** An event's fields, not yet trusted: every field is checked before it is counted. */
export type EventFields = Readonly<Record<string, unknown>>;

/** Subscribes to `weft:<module>:<event>`; returns the unsubscriber. */
export function onDiagnostics(
  module: string,
  event: string,
  listener: (fields: EventFields) => void,
): () => void {
  const { name } = diagnosticChannel(module, event);
  return subscribeDiagnostics(name, (message) => {
    if (typeof message !== 'object' || message === null) return;
    try {
      listener(message as EventFields);
    } catch {
      // Metrics must never break the code that reports to them.
    }
  });
}

/** `value` when it is a string, else undefined. */
export function stringField(fields: EventFields, name: string): string | undefined {
  const value = fields[name];
  return typeof value === 'string' ? value : undefined;
}

/** `value` when it is a finite number, else undefined. */
export function numberField(fields: EventFields, name: string): number | undefined {
  const value = fields[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `value` when it is one of `allowed`, else undefined: keeps labels to a known set. */
export function oneOf<T extends string>(
  fields: EventFields,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const value = fields[name];
  return (allowed as readonly unknown[]).includes(value) ? (value as T) : undefined;
}
