// Server process ↔ bench: where the hub, its grid node and the bare forwarder listen, and the
// bench's word that its own grid node is ready to be dialled. Checked on receipt: a malformed
// message is a bug in this suite and fails loudly.

export interface ReadyMessage {
  readonly type: 'ready';
  readonly hubPort: number;
  readonly forwardPort: number;
  /** The hub's grid node (`http://127.0.0.1:port`), where `serveHubOnGrid` runs. */
  readonly gridHost: string;
}

/** Bench → server: the bench's grid node is attached; the hub's node may now connect to it. */
export interface ConnectMessage {
  readonly type: 'connect';
}

export function parseReady(message: unknown): ReadyMessage {
  if (typeof message === 'object' && message !== null) {
    const { type, hubPort, forwardPort, gridHost } = message as Record<string, unknown>;
    if (
      type === 'ready' &&
      Number.isSafeInteger(hubPort) &&
      Number.isSafeInteger(forwardPort) &&
      typeof gridHost === 'string'
    ) {
      return { type, hubPort: hubPort as number, forwardPort: forwardPort as number, gridHost };
    }
  }
  throw new TypeError(`unexpected message from the hub bench server: ${JSON.stringify(message)}`);
}

export function isConnect(message: unknown): message is ConnectMessage {
  return (
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'connect'
  );
}
