// The client every HTTP peer is measured with: POSTs of protobuf bytes over a keep-alive
// http.Agent, at most `maxSockets` connections (one per request in flight), the whole reply
// body read. The same code for ours, the official SDK and the floor, so client cost is alike.

import http from 'node:http';

const loopback = '127.0.0.1';

export class PostClient {
  readonly #agent: http.Agent;
  readonly #port: number;
  readonly #what: string;

  constructor(port: number, maxSockets: number, what: string) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets });
    this.#port = port;
    this.#what = what;
  }

  /** The reply body of a POST of `body`; rejects unless the status is 200. */
  post(body: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          agent: this.#agent,
          host: loopback,
          port: this.#port,
          method: 'POST',
          path: '/',
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.once('error', reject);
          response.once('end', () => {
            const reply = Buffer.concat(chunks);
            if (response.statusCode === 200) resolve(reply);
            else
              reject(new Error(`${this.#what}: status ${String(response.statusCode)}: ${reply.toString()}`));
          });
        },
      );
      request.once('error', reject);
      request.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
