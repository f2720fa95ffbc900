// The hand-batched WebSocket peer: about the least work a Node program can do to get
// request/response over one WebSocket, and so the practical ceiling for the grid, which runs
// over the same `ws` socket. Messages issued in the same turn of the event loop are sent as one
// WebSocket message on `setImmediate` (as the grid's writer does), each entry framed as
//
//   id (uint32 BE) | length (uint32 BE) | payload
//
// The server echoes each entry under its id, batching its replies the same way; the client
// matches replies to requests by id. No deadlines, no flow control, no checksums: the grid
// does all three, so the gap to this peer is what they and the multiplexing cost.

import WebSocket from 'ws';

import { connectWebSocket, messageBytes } from './ws-connect.ts';

const entryHeaderBytes = 8;

/** Collects entries and sends them as one message on the next turn. */
export class BatchWriter {
  readonly #send: (message: Buffer) => void;
  #ids: number[] = [];
  #payloads: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(send: (message: Buffer) => void) {
    this.#send = send;
  }

  push(id: number, payload: Uint8Array): void {
    this.#ids.push(id);
    this.#payloads.push(payload);
    this.#bytes += entryHeaderBytes + payload.length;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#flush();
    });
  }

  #flush(): void {
    const message = Buffer.allocUnsafe(this.#bytes);
    let offset = 0;
    this.#payloads.forEach((payload, i) => {
      message.writeUInt32BE(this.#ids[i] ?? 0, offset);
      message.writeUInt32BE(payload.length, offset + 4);
      message.set(payload, offset + entryHeaderBytes);
      offset += entryHeaderBytes + payload.length;
    });
    this.#ids = [];
    this.#payloads = [];
    this.#bytes = 0;
    this.#scheduled = false;
    this.#send(message);
  }
}

/** Calls `onEntry` for each entry of a batch; the payloads are views into `message`. */
export function forEachEntry(message: Buffer, onEntry: (id: number, payload: Buffer) => void): void {
  let offset = 0;
  while (offset < message.length) {
    if (message.length - offset < entryHeaderBytes) throw new RangeError('truncated batch entry header');
    const id = message.readUInt32BE(offset);
    const length = message.readUInt32BE(offset + 4);
    const end = offset + entryHeaderBytes + length;
    if (end > message.length) throw new RangeError('truncated batch entry payload');
    onEntry(id, message.subarray(offset + entryHeaderBytes, end));
    offset = end;
  }
}

/** Server side: echoes every entry of every batch `ws` receives, batched the same way. */
export function serveBatchedEcho(ws: WebSocket): void {
  const writer = new BatchWriter((message) => {
    ws.send(message);
  });
  ws.on('message', (data) => {
    forEachEntry(messageBytes(data), (id, payload) => {
      writer.push(id, payload);
    });
  });
}

interface Pending {
  resolve(reply: Buffer): void;
  reject(error: unknown): void;
}

export class WsBatchedClient {
  readonly #ws: WebSocket;
  readonly #writer: BatchWriter;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#writer = new BatchWriter((message) => {
      ws.send(message);
    });
    ws.on('message', (data) => {
      forEachEntry(messageBytes(data), (id, payload) => {
        const pending = this.#pending.get(id);
        if (pending === undefined) return;
        this.#pending.delete(id);
        pending.resolve(payload);
      });
    });
    ws.on('close', () => {
      this.#failAll(new Error('ws-batched: socket closed'));
    });
  }

  static async connect(url: string): Promise<WsBatchedClient> {
    return new WsBatchedClient(await connectWebSocket(url));
  }

  request(payload: Uint8Array): Promise<Buffer> {
    const id = this.#nextId;
    this.#nextId = (id + 1) >>> 0;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#writer.push(id, payload);
    });
  }

  close(): void {
    this.#ws.close();
  }

  #failAll(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
