// The messages between the grid suite (the bench process) and its server process, over the
// IPC channel `child_process.fork` opens. Both ends check what they receive: a malformed
// message is a bug in this suite and should fail loudly, not be half-understood.

/** Server → bench, once: where each server listens. */
export interface ReadyMessage {
  readonly type: 'ready';
  /** The server node's grid host URL, as it appears in both nodes' host lists. */
  readonly gridHost: string;
  readonly grpcPort: number;
  readonly wsPort: number;
}

/** Bench → server: the bench node is listening for the grid; the server node may connect. */
export interface ConnectMessage {
  readonly type: 'connect';
}

/** Bench → server: report stats, after two full GCs if `gc` (the heap then holds only live objects). */
export interface StatsRequest {
  readonly type: 'stats';
  readonly id: number;
  readonly gc: boolean;
}

/** Server → bench: the answer to a StatsRequest with the same id. */
export interface StatsMessage {
  readonly type: 'stats';
  readonly id: number;
  readonly heapUsedBytes: number;
  /** Idle-stream handlers running now, per server. */
  readonly idleStreams: { readonly grid: number; readonly grpc: number };
}

export type ToServer = ConnectMessage | StatsRequest;
export type FromServer = ReadyMessage | StatsMessage;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function parseToServer(message: unknown): ToServer {
  if (isRecord(message)) {
    if (message['type'] === 'connect') return { type: 'connect' };
    const { id, gc } = message;
    if (message['type'] === 'stats' && isCount(id) && typeof gc === 'boolean')
      return { type: 'stats', id, gc };
  }
  throw new TypeError(`unexpected message to the grid bench server: ${JSON.stringify(message)}`);
}

export function parseFromServer(message: unknown): FromServer {
  if (isRecord(message)) {
    const { gridHost, grpcPort, wsPort } = message;
    if (message['type'] === 'ready' && typeof gridHost === 'string' && isCount(grpcPort) && isCount(wsPort)) {
      return { type: 'ready', gridHost, grpcPort, wsPort };
    }
    const { id, heapUsedBytes, idleStreams } = message;
    if (
      message['type'] === 'stats' &&
      isCount(id) &&
      isCount(heapUsedBytes) &&
      isRecord(idleStreams) &&
      isCount(idleStreams['grid']) &&
      isCount(idleStreams['grpc'])
    ) {
      return {
        type: 'stats',
        id,
        heapUsedBytes,
        idleStreams: { grid: idleStreams['grid'], grpc: idleStreams['grpc'] },
      };
    }
  }
  throw new TypeError(`unexpected message from the grid bench server: ${JSON.stringify(message)}`);
}
