// Events the core publishes for metrics, tracing and logging to pick up.
//
// Library code never imports prom-client, OpenTelemetry or a logger: it publishes on
// `node:diagnostics_channel` and the node process (or a user) subscribes. Channel
// names are `weft:<module>:<event>`, e.g. `weft:grid:connection-state`. Publishing
// costs one boolean check when nobody listens, and `publishLazy` does not even build
// the message then.

import diagnosticsChannel from 'node:diagnostics_channel';

export interface DiagnosticChannel<T> {
  readonly name: string;
  readonly hasSubscribers: boolean;
  publish(message: T): void;
  /** Builds and publishes the message only if someone listens. */
  publishLazy(build: () => T): void;
}

/** The channel for `event` of `module`. Wrappers for the same name share one underlying channel. */
export function diagnosticChannel<T extends object>(module: string, event: string): DiagnosticChannel<T> {
  const channel = diagnosticsChannel.channel(`weft:${module}:${event}`);
  return {
    name: channel.name as string,
    get hasSubscribers() {
      return channel.hasSubscribers;
    },
    publish(message) {
      if (channel.hasSubscribers) channel.publish(message);
    },
    publishLazy(build) {
      if (channel.hasSubscribers) channel.publish(build());
    },
  };
}

/** Subscribes `listener` to channel `name`; returns the unsubscriber. */
export function subscribeDiagnostics(name: string, listener: (message: unknown) => void): () => void {
  diagnosticsChannel.subscribe(name, listener);
  return () => {
    diagnosticsChannel.unsubscribe(name, listener);
  };
}
