// Plumbing shared by the raw `ws` peers: dialling, and a received message as one Buffer.

import WebSocket from 'ws';

/** Options every raw ws socket of the suite uses, as the grid does: no compression. */
export const wsOptions = { perMessageDeflate: false } as const;

export function connectWebSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, wsOptions);
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      // Failures after the open surface as 'close' in the clients; this keeps them from throwing.
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

/** A binary message as one Buffer (with the default binaryType it already is, unless fragmented). */
export function messageBytes(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
