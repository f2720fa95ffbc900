// The plain `ws` peer: one WebSocket message per request, echoed back as is. It has no ids:
// a WebSocket delivers in order, so replies match requests first in, first out.

import type WebSocket from 'ws';

import { connectWebSocket, messageBytes } from './ws-connect.ts';

/** Server side: sends every message back. */
export function serveEcho(ws: WebSocket): void {
  ws.on('message', (data) => {
    ws.send(messageBytes(data));
  });
}

interface Pending {
  resolve(reply: Buffer): void;
  reject(error: unknown): void;
}

export class WsEchoClient {
  readonly #ws: WebSocket;
  readonly #pending: Pending[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      this.#pending.shift()?.resolve(messageBytes(data));
    });
    ws.on('close', () => {
      const error = new Error('ws: socket closed');
      for (const pending of this.#pending.splice(0)) pending.reject(error);
    });
  }

  static async connect(url: string): Promise<WsEchoClient> {
    return new WsEchoClient(await connectWebSocket(url));
  }

  request(payload: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#ws.send(payload);
    });
  }

  close(): void {
    this.#ws.close();
  }
}
