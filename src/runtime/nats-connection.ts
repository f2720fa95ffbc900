// The NATS connection the runtime's ingress and egress take: what nats.js's `connect()` returns.
// Declared here by the methods they call, loosely, so that Weft's published types do not pull in
// nats's own declarations (which do not compile under `exactOptionalPropertyTypes` with
// `skipLibCheck` off); each user casts it back to nats's `NatsConnection` inside.

export interface NatsConnectionLike {
  isClosed(): boolean;
  flush(): Promise<void>;
  publish(subject: string, payload?: Uint8Array, options?: unknown): void;
  subscribe(subject: string, options?: unknown): unknown;
  jetstream(options?: unknown): unknown;
  jetstreamManager(options?: unknown): Promise<unknown>;
}
