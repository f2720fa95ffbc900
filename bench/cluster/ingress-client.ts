// The load client of the cluster suite: POSTs to the nodes' HTTP ingress
// (src/runtime/ingress/http-ingress.ts under the node's /v1/ingress) on node:http keep-alive
// connections, as the runtime suite's client (runtime/weft-ingress-client.ts) does for a bare
// runtime; that one is bound to one port and the runtime suite's function, so this one adds the
// node's path, the example's JSON message type and several nodes:
//
//   POST /v1/ingress/example/counter/key-<i>
//   Weft-Message-Type: weft/json
//   1
//
// Key i goes to node i mod n: a load balancer that knows nothing of partitions, so about
// (n − 1)/n of the requests reach a node that does not own the key and are forwarded over the
// grid. Every answer is checked: 202 with `{"seq":n,"duplicate":false}`.

import http from 'node:http';

import { loopback } from '../forked-server.ts';
import { counterKey } from '../runtime/workload.ts';

const requestTimeoutMs = 30_000;
/** A 202's body is tens of bytes; anything near this is not one. */
const maxReplyBytes = 4 * 1024;
const body = Buffer.from('1');

export const exampleCounter = { namespace: 'example', type: 'counter', messageType: 'weft/json' } as const;

export class ClusterIngressClient {
  readonly #agents: http.Agent[];
  readonly #ports: readonly number[];

  /** One keep-alive agent per node, each with up to `concurrency` connections. */
  constructor(ports: readonly number[], concurrency: number) {
    if (ports.length === 0) throw new RangeError('a cluster ingress client needs at least one port');
    this.#ports = ports;
    this.#agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
  }

  /** Adds 1 to `key`'s counter through node key mod n; resolves on its 202 (the message is durable). */
  async add(key: number): Promise<void> {
    const node = key % this.#ports.length;
    const target = `/v1/ingress/${exampleCounter.namespace}/${exampleCounter.type}/${counterKey(key)}`;
    let reply: { status: number; body: string };
    try {
      reply = await this.#post(node, target);
    } catch (error) {
      throw new Error(`POST ${target} (node ${node}): ${(error as Error).message}`, { cause: error });
    }
    if (reply.status !== 202) {
      throw new Error(`POST ${target} (node ${node}): status ${reply.status}: ${reply.body.slice(0, 500)}`);
    }
    if (!accepted(reply.body)) {
      throw new Error(`POST ${target} (node ${node}): unexpected 202 body ${reply.body.slice(0, 200)}`);
    }
  }

  close(): void {
    for (const agent of this.#agents) agent.destroy();
  }

  #post(node: number, target: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          agent: this.#agents[node],
          host: loopback,
          port: this.#ports[node],
          method: 'POST',
          path: target,
          headers: {
            'Weft-Message-Type': exampleCounter.messageType,
            'Content-Type': 'application/json',
            'Content-Length': body.byteLength,
          },
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
      request.end(body);
    });
  }
}

/** Whether `text` is `{"seq":n,"duplicate":false}`. */
function accepted(text: string): boolean {
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof reply !== 'object' || reply === null) return false;
  const { seq, duplicate } = reply as Record<string, unknown>;
  return duplicate === false && typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0;
}
