// The load client of our durable-counter side: POSTs to the runtime's HTTP ingress
// (src/runtime/ingress/http-ingress.ts) on node:http keep-alive connections, one per request in
// flight, as Restate's driver calls Restate's ingress. A request adds 1 to a key's counter:
//
//   POST /ingress/bench/counter/key-<i>
//   Weft-Message-Type: io.statefun.types/int
//   <the int 1, as intType encodes it>
//
// The runtime answers 202 once the message is durable in the key's inbox; the function runs after.
// Every answer is checked: status 202 and a body `{"seq":n,"duplicate":false}`; whether each
// message then counted once is what the suite's check reads back from the store.

import http from 'node:http';

import { loopback } from '../forked-server.ts';
import { weftCounter } from './weft-counter-messages.ts';
import { counterKey } from './workload.ts';

const requestTimeoutMs = 30_000;
/** A 202's body is tens of bytes; anything near this is not one. */
const maxReplyBytes = 4 * 1024;

export class IngressClient {
  readonly #agent: http.Agent;
  readonly #port: number;
  readonly #body: Uint8Array;
  readonly #headers: http.OutgoingHttpHeaders;

  /** `addOne` is the int 1 as the SDK's intType encodes it. */
  constructor(port: number, concurrency: number, addOne: Uint8Array) {
    this.#port = port;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    this.#body = addOne;
    this.#headers = {
      'Weft-Message-Type': weftCounter.messageType,
      'Content-Length': addOne.byteLength,
    };
  }

  /** Adds 1 to `key`'s counter; resolves once the runtime has answered 202 (the message is durable). */
  async add(key: number): Promise<void> {
    const target = `/ingress/${weftCounter.namespace}/${weftCounter.name}/${counterKey(key)}`;
    const { status, body } = await this.#post(target);
    if (status !== 202) throw new Error(`POST ${target}: status ${status}: ${body.slice(0, 500)}`);
    if (acceptedSeq(body) === undefined) {
      throw new Error(`POST ${target}: unexpected 202 body ${body.slice(0, 200)}`);
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  #post(target: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          agent: this.#agent,
          host: loopback,
          port: this.#port,
          method: 'POST',
          path: target,
          headers: this.#headers,
          timeout: requestTimeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          response.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > maxReplyBytes)
              response.destroy(new Error(`POST ${target}: reply over ${maxReplyBytes} bytes`));
            else chunks.push(chunk);
          });
          response.once('error', reject);
          response.once('end', () => {
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
          });
        },
      );
      request.once('timeout', () => {
        request.destroy(new Error(`POST ${target}: no reply within ${requestTimeoutMs} ms`));
      });
      request.once('error', reject);
      request.end(this.#body);
    });
  }
}

/** The seq of a `{"seq":n,"duplicate":false}` body, or undefined for anything else. */
function acceptedSeq(body: string): number | undefined {
  let reply: unknown;
  try {
    reply = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof reply !== 'object' || reply === null) return undefined;
  const { seq, duplicate } = reply as Record<string, unknown>;
  return duplicate === false && typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0
    ? seq
    : undefined;
}
