// Egress to an HTTP endpoint: each record is POSTed on its own, in order, over a keep-alive
// connection. The body is the record's value bytes (`Content-Type: application/octet-stream`),
// `Weft-Type` names its typename and `Idempotency-Key` (`<prefix><seq>`, stable across
// redeliveries) lets the receiver drop a record it has seen. A 2xx answer delivers the record;
// anything else, a connection failure or no answer within `timeoutMs` (on the clock) fails the
// delivery, which the drainer retries with backoff.

import http from 'node:http';
import https from 'node:https';

import { onAbort } from '../../internal/abort.ts';
import { systemClock, type Clock } from '../../internal/clock.ts';
import { callScope } from '../../internal/deadline.ts';
import { ClosedError, ConfigError, errorMessage } from '../../internal/errors.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import { EgressDeliveryError } from './egress-errors.ts';
import type { EgressSink } from './egress-sink.ts';
import { headerFields, isPlainHeaderValue, WEFT_TYPE_HEADER } from './header-value.ts';
import { checkMsgIdPrefix, positiveInteger } from './sink-config.ts';

export interface WebhookSinkOptions {
  /** An http: or https: URL. */
  readonly url: string | URL;
  /** How long one record's request may take, answer included; default 30 000 ms, on `clock`. */
  readonly timeoutMs?: number | undefined;
  readonly clock?: Clock | undefined;
  /** Start of each record's `Idempotency-Key`, before its outbox seq; default `weft-outbox-`. */
  readonly idempotencyKeyPrefix?: string | undefined;
  /** Further headers sent with every record, e.g. `Authorization`. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Connections to the endpoint at once; default 4. Ignored when `agent` is given. */
  readonly maxSockets?: number | undefined;
  /** An agent of the caller's (TLS options, a proxy); it stays the caller's on close. */
  readonly agent?: http.Agent | undefined;
}

/** The start of an error answer kept for the error message. */
const MAX_ERROR_BODY_BYTES = 1_024;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const OWN_HEADERS = ['content-type', 'content-length', 'weft-type', 'weft-type-encoding', 'idempotency-key'];

export class WebhookSink implements EgressSink {
  readonly #url: URL;
  readonly #destination: string;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #keyPrefix: string;
  readonly #extraHeaders: Readonly<Record<string, string>>;
  readonly #agent: http.Agent;
  readonly #ownsAgent: boolean;
  #closed = false;
  #delivered = 0;

  constructor(options: WebhookSinkOptions) {
    this.#url = checkUrl(options.url);
    // Credentials in the URL stay out of errors and logs.
    this.#destination = `${this.#url.origin}${this.#url.pathname}`;
    this.#timeoutMs = positiveInteger('webhookSink.timeoutMs', options.timeoutMs, 30_000);
    this.#clock = options.clock ?? systemClock;
    this.#keyPrefix = checkMsgIdPrefix('webhookSink.idempotencyKeyPrefix', options.idempotencyKeyPrefix);
    this.#extraHeaders = checkHeaders(options.headers ?? {});
    if (options.agent === undefined) {
      const maxSockets = positiveInteger('webhookSink.maxSockets', options.maxSockets, 4);
      const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent;
      this.#agent = new Agent({ keepAlive: true, maxSockets });
      this.#ownsAgent = true;
    } else {
      this.#agent = options.agent;
      this.#ownsAgent = false;
    }
  }

  async deliver(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<void> {
    for (const record of records) {
      if (this.#closed) throw new ClosedError('the webhook egress sink is closed');
      if (signal?.aborted === true) throw signal.reason;
      await this.#post(record, signal);
      this.#delivered += 1;
    }
  }

  /** Records the endpoint accepted. */
  stats(): { readonly delivered: number } {
    return { delivered: this.#delivered };
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#ownsAgent) this.#agent.destroy();
    return Promise.resolve();
  }

  async #post(record: OutboxRecord, signal: AbortSignal | undefined): Promise<void> {
    const body = record.value.value;
    const headers: Record<string, string> = {
      ...this.#extraHeaders,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.byteLength),
      'Idempotency-Key': `${this.#keyPrefix}${record.seq}`,
    };
    for (const [name, value] of headerFields(WEFT_TYPE_HEADER, record.value.typename)) headers[name] = value;

    const scope = callScope(this.#clock, { signal, timeoutMs: this.#timeoutMs });
    const send = this.#url.protocol === 'https:' ? https.request : http.request;
    let stopListening = noop;
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (what: string, cause: unknown, status?: number): void => {
          // A caller's abort passes through as it is; anything else is a retryable failure.
          if (signal?.aborted === true) {
            reject(signal.reason as Error);
            return;
          }
          const detail = errorMessage(cause);
          const options = status === undefined ? { cause } : { cause, status };
          reject(
            new EgressDeliveryError(
              this.#destination,
              `${what} of outbox record ${record.seq} failed: ${detail}`,
              options,
            ),
          );
        };
        const request = send(this.#url, { method: 'POST', agent: this.#agent, headers });
        // Until the answer is read whole, an abort or the deadline ends the exchange.
        stopListening = onAbort(scope.signal, (reason) => {
          request.destroy(reason instanceof Error ? reason : new Error(String(reason)));
        });
        request.on('error', (error) => {
          fail('the POST', error);
        });
        request.once('response', (response) => {
          const status = response.statusCode ?? 0;
          const accepted = status >= 200 && status < 300;
          const chunks: Buffer[] = [];
          let kept = 0;
          response.on('data', (chunk: Buffer) => {
            // Read to the end either way, so the connection is reused; keep the start of an error.
            if (accepted || kept >= MAX_ERROR_BODY_BYTES) return;
            chunks.push(chunk.subarray(0, MAX_ERROR_BODY_BYTES - kept));
            kept += chunk.length;
          });
          response.on('error', (error) => {
            fail('reading the answer', error, status);
          });
          response.once('close', () => {
            if (!response.complete)
              fail('reading the answer', new Error('the connection closed mid-answer'), status);
          });
          response.once('end', () => {
            if (accepted) {
              resolve();
              return;
            }
            // The receiver's words go into logs: no control characters.
            const text = Buffer.concat(chunks)
              .toString('utf8')
              .replace(/\p{Cc}/gu, ' ');
            const message = `the webhook answered ${status} to outbox record ${record.seq}${text === '' ? '' : `: ${text}`}`;
            reject(new EgressDeliveryError(this.#destination, message, { status }));
          });
        });
        request.end(body);
      });
    } finally {
      stopListening();
      scope.dispose();
    }
  }
}

function checkUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('webhookSink.url', `${JSON.stringify(String(url))} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError('webhookSink.url', `must be http: or https:, got ${parsed.protocol}`);
  }
  return parsed;
}

function checkHeaders(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name))
      throw new ConfigError('webhookSink.headers', `${JSON.stringify(name)} is not a header name`);
    if (OWN_HEADERS.includes(name.toLowerCase())) {
      throw new ConfigError(`webhookSink.headers.${name}`, 'is set by the sink itself');
    }
    if (typeof value !== 'string' || !isPlainHeaderValue(value)) {
      throw new ConfigError(
        `webhookSink.headers.${name}`,
        'must be visible ASCII without surrounding spaces',
      );
    }
    checked[name] = value;
  }
  return checked;
}

function noop(): void {
  // Nothing to stop listening to.
}
