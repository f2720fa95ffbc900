// The messages between the bench process and a forked mirror node (node-process.ts).

export interface NodeStartMessage {
  readonly type: 'start';
  readonly local: string;
  readonly hosts: readonly string[];
  readonly origin: string;
  readonly storeDirectory: string;
  readonly maxStoreBytes: number;
}

export type ToNode = NodeStartMessage | { readonly type: 'stats'; readonly id: number };

export interface NodeStats {
  readonly serverErrors: number;
  readonly peerFetches: number;
  readonly streamed: number;
  readonly originFetches: number;
}

export type FromNode =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly message: string }
  | ({ readonly type: 'stats'; readonly id: number } & NodeStats);

/** A message from a node, checked only as far as the bench relies on it. */
export function parseFromNode(raw: unknown): FromNode {
  if (typeof raw !== 'object' || raw === null || typeof (raw as { type?: unknown }).type !== 'string') {
    throw new TypeError(`unexpected message from a mirror node: ${JSON.stringify(raw)}`);
  }
  return raw as FromNode;
}

export function parseToNode(raw: unknown): ToNode {
  if (typeof raw !== 'object' || raw === null || typeof (raw as { type?: unknown }).type !== 'string') {
    throw new TypeError(`unexpected message to a mirror node: ${JSON.stringify(raw)}`);
  }
  return raw as ToNode;
}
