// The HTTP load of the crash tests: clients that send the workload's messages (chaos-workload.ts)
// until each is acknowledged, across kills, and remember which key each acknowledged message
// went to. Shared by the single-node crash test and the cluster's. Not a test file itself.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { bumpType, keyName } from './chaos-workload.ts';

const REQUEST_TIMEOUT_MS = 10_000;

export interface TrafficOptions {
  readonly concurrency: number;
  /** Keys k0…k{keys-1}, picked at random. */
  readonly keys: number;
  /** The ingress path before `/chaos/counter/<key>`: `/ingress` on a bare runtime, `/v1/ingress` on a node. */
  readonly ingressPrefix: string;
}

/**
 * The clients (`concurrency` of them). Each takes the next message number while the budget
 * lasts, picks its key, and sends it to one of the nodes serving now until answered 202: a
 * request cut by a kill is sent again, with the same Idempotency-Key, to a node that serves.
 */
export class Traffic {
  readonly #random: () => number;
  readonly #options: TrafficOptions;
  readonly #agent: http.Agent;
  readonly #run = randomBytes(4).toString('hex');
  /** Each acknowledged message's key. */
  readonly acknowledged = new Map<number, string>();
  duplicates = 0;
  connectionFailures = 0;
  busy = 0;
  acknowledgedInLife = 0;
  #issued = 0;
  #budget = 0;
  #ports: readonly number[] = [];
  #stopped = false;
  #failure: Error | undefined;
  #waiters: (() => void)[] = [];

  constructor(random: () => number, options: TrafficOptions) {
    this.#random = random;
    this.#options = options;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  }

  start(): Promise<void> {
    return Promise.all(Array.from({ length: this.#options.concurrency }, () => this.#client())).then(
      () => undefined,
    );
  }

  /** A node's life begins: it alone takes the traffic, with `messages` more to send. */
  beginLife(port: number, messages: number): void {
    this.serveOn([port]);
    this.addBudget(messages);
    this.acknowledgedInLife = 0;
  }

  /** What the life did not send of its budget is dropped: each life's load is its own. */
  endLife(): void {
    this.serveOn([]);
    this.#budget = this.#issued;
  }

  /** The ports of the nodes taking traffic now; each request goes to one of them at random. */
  serveOn(ports: readonly number[]): void {
    this.#ports = [...ports];
    this.#wake();
  }

  addBudget(messages: number): void {
    this.#budget += messages;
    this.#wake();
  }

  /** Resolves when every message of every budget so far is acknowledged. */
  async allAcknowledged(): Promise<void> {
    while (this.acknowledged.size < this.#budget && !this.#stopped) await this.#changed();
    this.throwIfFailed();
  }

  stop(): void {
    this.#stopped = true;
    this.#agent.destroy();
    this.#wake();
  }

  /** Stops the clients; `allAcknowledged` and `throwIfFailed` throw `error`. */
  fail(error: Error): void {
    this.#failure ??= error;
    this.stop();
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #client(): Promise<void> {
    while (!this.#stopped) {
      if (this.#issued >= this.#budget) {
        await this.#changed();
        continue;
      }
      const msg = ++this.#issued;
      const key = keyName(Math.floor(this.#random() * this.#options.keys));
      try {
        await this.#sendUntilAcknowledged(msg, key);
      } catch (error) {
        this.fail(error as Error);
      }
    }
  }

  async #sendUntilAcknowledged(msg: number, key: string): Promise<void> {
    const body = JSON.stringify({ msg });
    while (!this.#stopped) {
      const port = this.#ports[Math.floor(this.#random() * this.#ports.length)];
      if (port === undefined) {
        await this.#changed();
        continue;
      }
      const answer = await post(
        this.#agent,
        port,
        `${this.#options.ingressPrefix}/chaos/counter/${key}`,
        body,
        {
          'Weft-Message-Type': bumpType.typeName.toString(),
          'Idempotency-Key': `${this.#run}-${msg}`,
        },
      );
      if (answer === 'failed') {
        this.connectionFailures += 1;
        await sleep(5);
      } else if (answer.status === 202) {
        if ((JSON.parse(answer.body) as { duplicate: boolean }).duplicate) this.duplicates += 1;
        this.acknowledged.set(msg, key);
        this.acknowledgedInLife += 1;
        this.#wake();
        return;
      } else if (answer.status === 503) {
        this.busy += 1;
        await sleep(20);
      } else {
        throw new Error(`message ${msg} was answered ${answer.status}: ${answer.body}`);
      }
    }
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** POSTs `body`; the answer, or 'failed' when the connection broke (the node was killed). */
function post(
  agent: http.Agent,
  port: number,
  urlPath: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string } | 'failed'> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'POST',
        agent,
        headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        });
        // A kill mid-answer: the answer never completes.
        response.on('close', () => {
          if (!response.complete) resolve('failed');
        });
        response.on('error', () => {
          resolve('failed');
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', () => {
      resolve('failed');
    });
    request.end(body);
  });
}

export async function getJson<T>(port: number, urlPath: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  if (!response.ok) throw new Error(`GET ${urlPath}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
