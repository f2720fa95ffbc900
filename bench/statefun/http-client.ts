// The client every HTTP peer is measured with: POSTs of protobuf bytes over keep-alive
// connections, at most `maxSockets` of them (one per request in flight), the whole reply body
// read. The same code for ours, the official SDK and the floor, so client cost is alike.
//
// It speaks HTTP/1.1 on raw sockets, as load generators such as wrk do, rather than through
// node:http's client: the client shares the machine with the servers, and node:http's
// per-request streams cost the client more than the fastest server costs the server, which
// made the client, not the servers, what the figures measured. A request is written as one
// buffer (headers prepared once per body); a response is read by its status line and
// Content-Length. Anything else (chunked encoding, a closed connection, a status other than
// 200) fails the request loudly, and the suite's checks decode every reply they get.

import net from 'node:net';

import { loopback } from '../forked-server.ts';

const headerEnd = Buffer.from('\r\n\r\n');
const contentLengthPattern = /\r\ncontent-length:[ \t]*(\d+)/i;

interface Pending {
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (error: Error) => void;
}

/** One keep-alive connection with one request in flight at a time. */
class Connection {
  readonly #socket: net.Socket;
  readonly #what: string;
  #pending: Pending | undefined;
  #received: Buffer[] = [];
  #receivedBytes = 0;
  /** Once the headers are read: the status and the whole response's size. */
  #status = 0;
  #responseBytes = -1;
  #bodyStart = 0;
  #failure: Error | undefined;

  constructor(port: number, what: string) {
    this.#what = what;
    this.#socket = net.connect({ host: loopback, port, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    this.#socket.on('error', (error) => {
      this.#fail(error);
    });
    this.#socket.on('close', () => {
      this.#fail(new Error(`${this.#what}: the server closed the connection`));
    });
  }

  post(request: Buffer): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(request);
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#received.push(chunk);
    this.#receivedBytes += chunk.length;
    if (this.#responseBytes < 0 && !this.#readHeaders()) return;
    if (this.#receivedBytes < this.#responseBytes) return;
    const response = this.#received.length === 1 ? chunk : Buffer.concat(this.#received);
    if (this.#receivedBytes > this.#responseBytes) {
      this.#fail(new Error(`${this.#what}: bytes after the response, with one request in flight`));
      return;
    }
    const body = response.subarray(this.#bodyStart);
    const status = this.#status;
    const pending = this.#pending;
    this.#received = [];
    this.#receivedBytes = 0;
    this.#responseBytes = -1;
    this.#pending = undefined;
    if (pending === undefined) return;
    if (status === 200) pending.resolve(body);
    else pending.reject(new Error(`${this.#what}: status ${status}: ${body.toString()}`));
  }

  /** Parses the status line and headers once they are all in; false until then. */
  #readHeaders(): boolean {
    const head = this.#received.length === 1 ? (this.#received[0] as Buffer) : Buffer.concat(this.#received);
    this.#received = [head];
    const end = head.indexOf(headerEnd);
    if (end < 0) return false;
    const headers = head.toString('latin1', 0, end);
    this.#status = Number(headers.slice(9, 12));
    const length = contentLengthPattern.exec(headers);
    if (length === null) {
      this.#fail(new Error(`${this.#what}: a response without Content-Length`));
      return false;
    }
    this.#bodyStart = end + headerEnd.length;
    this.#responseBytes = this.#bodyStart + Number(length[1]);
    return true;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(error);
    this.#socket.destroy();
  }
}

export class PostClient {
  readonly #port: number;
  readonly #maxSockets: number;
  readonly #what: string;
  readonly #idle: Connection[] = [];
  readonly #all: Connection[] = [];
  readonly #waiting: ((connection: Connection) => void)[] = [];
  readonly #requests = new WeakMap<Uint8Array, Buffer>();

  constructor(port: number, maxSockets: number, what: string) {
    this.#port = port;
    this.#maxSockets = maxSockets;
    this.#what = what;
  }

  /** The reply body of a POST of `body`; rejects unless the status is 200. */
  async post(body: Uint8Array): Promise<Buffer> {
    const connection = await this.#connection();
    try {
      return await connection.post(this.#request(body));
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next(connection);
      else this.#idle.push(connection);
    }
  }

  close(): void {
    for (const connection of this.#all) connection.destroy();
  }

  #connection(): Connection | Promise<Connection> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    if (this.#all.length < this.#maxSockets) {
      const connection = new Connection(this.#port, this.#what);
      this.#all.push(connection);
      return connection;
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** The request's bytes, headers and body, made once per body. */
  #request(body: Uint8Array): Buffer {
    let request = this.#requests.get(body);
    if (request === undefined) {
      const head =
        `POST / HTTP/1.1\r\nHost: ${loopback}:${this.#port}\r\nConnection: keep-alive\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
      request = Buffer.concat([Buffer.from(head, 'latin1'), body]);
      this.#requests.set(body, request);
    }
    return request;
  }
}
