// The JetStream ingress: a durable pull consumer on a stream that appends each message to its
// target's inbox (the address mapping is subject-routes.ts's) and acknowledges it only once the
// append is durable. At least once from JetStream, stored once: every envelope carries the ingress
// id `nats:<stream>:<stream sequence>`, so a redelivery (an ack lost, a crash before the ack, an
// ack_wait that ran out) within the store's dedup window is answered `duplicate` and not stored
// again. A redelivery after the window (a message nak'd or stuck for more than two minutes by
// default) would be stored twice.
//
// Flow: pulls of at most `batch` messages; what arrives while an append is in flight is sent as
// the next append, so one append is in flight and messages reach the store in the order they
// arrived. Messages held (received, not yet acknowledged) never exceed `batch`.
//
// Per message:
//   appended (or duplicate)        ack
//   runtime pushes back            nak(nakDelayMs), and no pull until `input.released()`
//   runtime shutting down          nak() for prompt redelivery elsewhere; the ingress stops pulling
//   can never be mapped            term(), counted and logged: no route matches its subject, its id
//                                  or type is missing or bad, or nobody serves its function type.
//                                  StateFun would fail the job; redelivering it forever would only
//                                  waste, so it is dropped for this consumer (the stream keeps it)
//   anything else                  nak(nakDelayMs), logged; pulling resumes after retryDelayMs
//
// The consumer is created when it does not exist (explicit ack, ack_wait ackWaitMs) and bound
// when it does (it must be a pull consumer with explicit ack; a given ackWaitMs is applied). It
// sees every subject of the stream: a message no route matches is terminated, as above. The
// stream must exist. `stop()` stops pulling and waits until every held message is settled.
//
// nats is imported for its types only: the caller brings the connection, and this module loads
// without the nats package installed.

import type { NatsConnectionLike } from '../nats-connection.ts';
import type { Consumer, ConsumerConfig, ConsumerInfo, ConsumerMessages, JsMsg, NatsConnection } from 'nats';

import { sleep, systemClock, type Clock } from '../../internal/clock.ts';
import { CapacityExceededError, ClosedError, ConfigError, errorMessage } from '../../internal/errors.ts';
import { UnknownFunctionTypeError } from '../errors.ts';
import type { RuntimeInput } from '../runtime-input.ts';
import type { Envelope } from '../store/state-store.ts';
import { wholeNumberOption } from './ingress-config.ts';
import { logSafely } from '../../internal/log-safely.ts';
import type { IngressLogger } from './ingress-logger.ts';
import { natsNameProblem } from './nats-names.ts';
import { SubjectRouter, type SubjectRoute } from './subject-routes.ts';

export interface JetStreamIngressOptions {
  /** A nats.js connection (`await connect(…)`); the caller owns it and closes it. */
  readonly connection: NatsConnectionLike;
  /** The stream to consume; it must exist. */
  readonly stream: string;
  /** The durable consumer's name; created when missing. Nodes sharing it share the work. */
  readonly durable: string;
  readonly routes: readonly SubjectRoute[];
  /** Most messages held at once (pulled, not yet acknowledged). Default 64. */
  readonly batch?: number | undefined;
  /** The consumer's ack_wait, set when it is created (or differs). Default 30 s on create. */
  readonly ackWaitMs?: number | undefined;
  /** How long a message refused under backpressure or failure waits before redelivery. Default 1 s. */
  readonly nakDelayMs?: number | undefined;
  /** Pause before pulling again after a failed pull or append. Default 1 s. */
  readonly retryDelayMs?: number | undefined;
  /** How long one pull waits for messages (nats.js's minimum is 1 s). Default 30 s. */
  readonly pullExpiresMs?: number | undefined;
  readonly clock?: Clock | undefined;
  readonly logger?: IngressLogger | undefined;
}

export interface JetStreamIngressStats {
  /** Messages delivered to this ingress, redeliveries included. */
  readonly received: number;
  /** Appended and acknowledged. */
  readonly accepted: number;
  /** Redeliveries the store had already (acknowledged, not stored again). */
  readonly duplicates: number;
  /** Nak'd because the runtime pushed back. */
  readonly refusedBusy: number;
  /** Nak'd because the runtime was shutting down. */
  readonly refusedClosed: number;
  /** Terminated: they can never be mapped to a served function. */
  readonly termed: number;
  /** Nak'd after an append failed for another reason. */
  readonly failed: number;
  /** Pulls that failed (the connection, the consumer or the stream went away). */
  readonly pullErrors: number;
  /** Acks, naks and terms that could not be sent (the message comes back after ack_wait). */
  readonly settleErrors: number;
  /** Messages received and not yet acknowledged, nak'd or terminated. */
  readonly held: number;
  /** Not pulling until the runtime takes input again (or a retry delay has passed). */
  readonly paused: boolean;
  /** No longer pulling: stopped, or the runtime or the connection closed. */
  readonly stopped: boolean;
}

export const defaultJetStreamIngressConfig = {
  batch: 64,
  ackWaitMs: 30_000,
  nakDelayMs: 1_000,
  retryDelayMs: 1_000,
  pullExpiresMs: 30_000,
} as const;

// JetStream's API error codes for a missing consumer and a missing stream.
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;

type Counters = {
  -readonly [K in keyof JetStreamIngressStats as JetStreamIngressStats[K] extends number ? K : never]: number;
};

export class JetStreamIngress {
  readonly #input: RuntimeInput;
  readonly #connection: NatsConnection;
  readonly #stream: string;
  readonly #router: SubjectRouter;
  readonly #batch: number;
  readonly #nakDelayMs: number;
  readonly #retryDelayMs: number;
  readonly #pullExpiresMs: number;
  readonly #clock: Clock;
  readonly #logger: IngressLogger;
  readonly #counts: Counters = {
    received: 0,
    accepted: 0,
    duplicates: 0,
    refusedBusy: 0,
    refusedClosed: 0,
    termed: 0,
    failed: 0,
    pullErrors: 0,
    settleErrors: 0,
    held: 0,
  };
  // Received, waiting for the next append, in arrival order.
  #queue: JsMsg[] = [];
  #appending = false;
  #paused = false;
  #stopping = false;
  // Set once the runtime said it is closing: what is held is nak'd, never sent.
  #runtimeClosed = false;
  #fetch: ConsumerMessages | undefined;
  // Wakes the pull loop when it waits: for room, for the end of a pause, or to stop.
  #wake: (() => void) | undefined;
  // Resolved when nothing is held any more; made by the first stop() that has to wait.
  #idle: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;
  #loop: Promise<void> = Promise.resolve();

  private constructor(input: RuntimeInput, options: JetStreamIngressOptions, router: SubjectRouter) {
    this.#input = input;
    this.#connection = options.connection as unknown as NatsConnection;
    this.#stream = options.stream;
    this.#router = router;
    const defaults = defaultJetStreamIngressConfig;
    this.#batch = wholeNumberOption('batch', options.batch ?? defaults.batch, 1, 10_000);
    this.#nakDelayMs = wholeNumberOption(
      'nakDelayMs',
      options.nakDelayMs ?? defaults.nakDelayMs,
      0,
      86_400_000,
    );
    this.#retryDelayMs = wholeNumberOption(
      'retryDelayMs',
      options.retryDelayMs ?? defaults.retryDelayMs,
      0,
      86_400_000,
    );
    this.#pullExpiresMs = wholeNumberOption(
      'pullExpiresMs',
      options.pullExpiresMs ?? defaults.pullExpiresMs,
      1_000,
      3_600_000,
    );
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? console;
  }

  /** Creates or binds the durable consumer and starts pulling. */
  static async start(input: RuntimeInput, options: JetStreamIngressOptions): Promise<JetStreamIngress> {
    for (const field of ['stream', 'durable'] as const) {
      const problem = natsNameProblem(options[field]);
      if (problem !== undefined) throw new ConfigError(field, problem);
    }
    if (options.ackWaitMs !== undefined) wholeNumberOption('ackWaitMs', options.ackWaitMs, 1, 86_400_000);
    const ingress = new JetStreamIngress(input, options, new SubjectRouter(options.routes));
    const consumer = await bindConsumer(options);
    ingress.#loop = ingress.#pull(consumer);
    return ingress;
  }

  stats(): JetStreamIngressStats {
    return {
      ...this.#counts,
      paused: this.#paused,
      stopped: this.#stopping,
    };
  }

  /**
   * Stops pulling, then waits until every held message is settled: those being appended are
   * acknowledged once durable, the rest are appended first. Waits as long as an append does.
   */
  async stop(): Promise<void> {
    this.#beginStop();
    await this.#loop;
    if (this.#counts.held === 0) return;
    if (this.#idle === undefined) {
      let resolve = (): void => undefined;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.#idle = { promise, resolve };
    }
    await this.#idle.promise;
  }

  #beginStop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#closeFetch();
    this.#wakeUp();
  }

  async #pull(consumer: Consumer): Promise<void> {
    while (!this.#stopping) {
      const room = this.#batch - this.#counts.held;
      if (this.#paused || room <= 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      try {
        const startedAt = this.#clock.now();
        const messages = await consumer.fetch({ max_messages: room, expires: this.#pullExpiresMs });
        this.#fetch = messages;
        // A pause or stop that came while the pull was being set up.
        if (this.#pullingHeld()) this.#closeFetch();
        let taken = 0;
        for await (const message of messages) {
          taken += 1;
          this.#take(message);
        }
        // A pull that ends at once with nothing, again and again, must not become a busy loop.
        if (taken === 0 && !this.#pullingHeld() && this.#clock.now() - startedAt < this.#pullExpiresMs / 2) {
          this.#pauseUntil(sleep(this.#clock, this.#retryDelayMs));
        }
      } catch (error) {
        this.#counts.pullErrors += 1;
        if (this.#connection.isClosed()) {
          this.#log('warn', 'jetstream ingress stops: the NATS connection is closed', { error });
          this.#beginStop();
          return;
        }
        this.#log('warn', 'jetstream ingress pull failed; pulling again later', { error });
        this.#pauseUntil(sleep(this.#clock, this.#retryDelayMs));
      } finally {
        this.#fetch = undefined;
      }
    }
  }

  /** Read afresh: the pull loop's own check does not see what happened during an await. */
  #pullingHeld(): boolean {
    return this.#paused || this.#stopping;
  }

  #take(message: JsMsg): void {
    this.#counts.received += 1;
    this.#counts.held += 1;
    this.#queue.push(message);
    void this.#appendQueued();
  }

  /** Appends what is queued, one append at a time; what arrives meanwhile goes in the next one. */
  async #appendQueued(): Promise<void> {
    if (this.#appending) return;
    this.#appending = true;
    try {
      while (this.#queue.length > 0) {
        const messages = this.#queue;
        this.#queue = [];
        if (this.#runtimeClosed) {
          this.#counts.refusedClosed += messages.length;
          for (const message of messages) this.#settle(message, 'nak', 0);
        } else if (this.#paused) {
          this.#counts.refusedBusy += messages.length;
          for (const message of messages) this.#settle(message, 'nak', this.#nakDelayMs);
        } else {
          await this.#append(messages);
        }
      }
    } finally {
      this.#appending = false;
    }
  }

  async #append(messages: readonly JsMsg[]): Promise<void> {
    const envelopes: Envelope[] = [];
    const sent: JsMsg[] = [];
    for (const message of messages) {
      let envelope: Envelope | undefined;
      try {
        envelope = this.#envelopeOf(message);
      } catch (error) {
        // Whatever cannot be turned into an envelope now never can be: redelivering it would
        // only pause the ingress again and again.
        this.#terminate(message, `unmappable: ${errorMessage(error)}`);
        continue;
      }
      if (envelope === undefined) continue;
      envelopes.push(envelope);
      sent.push(message);
    }
    if (envelopes.length === 0) return;
    try {
      const appended = await this.#input.send(envelopes);
      for (const [i, message] of sent.entries()) {
        if (appended[i]?.duplicate === true) this.#counts.duplicates += 1;
        else this.#counts.accepted += 1;
        this.#settle(message, 'ack');
      }
    } catch (error) {
      this.#refused(sent, envelopes, error);
    }
  }

  /** The envelope for `message`, or undefined after terminating it when it has none. */
  #envelopeOf(message: JsMsg): Envelope | undefined {
    const mapping = this.#router.map(message);
    if (!mapping.ok) {
      this.#terminate(message, `${mapping.reason}: ${mapping.detail}`);
      return undefined;
    }
    const [namespace, type] = mapping.target;
    if (!this.#input.servesType(namespace, type)) {
      this.#terminate(message, `unknown-type: no function of type ${namespace}/${type} is served`);
      return undefined;
    }
    return {
      target: mapping.target,
      argument: mapping.argument,
      ingressId: `nats:${this.#stream}:${message.info.streamSequence}`,
    };
  }

  #refused(messages: readonly JsMsg[], envelopes: readonly Envelope[], error: unknown): void {
    if (error instanceof CapacityExceededError) {
      this.#counts.refusedBusy += messages.length;
      for (const message of messages) this.#settle(message, 'nak', this.#nakDelayMs);
      if (!this.#paused) {
        this.#log('warn', 'jetstream ingress paused: the runtime pushes back', { stream: this.#stream });
      }
      this.#pauseUntil(this.#input.released());
    } else if (error instanceof ClosedError) {
      this.#counts.refusedClosed += messages.length;
      for (const message of messages) this.#settle(message, 'nak', 0);
      if (!this.#runtimeClosed) {
        this.#log('warn', 'jetstream ingress stops: the runtime is closing', { stream: this.#stream });
      }
      this.#runtimeClosed = true;
      this.#beginStop();
    } else if (
      error instanceof UnknownFunctionTypeError &&
      envelopes.some((envelope) => typeOf(envelope) === error.functionType)
    ) {
      // Served when mapped, not when sent: those messages are terminated, the others sent again.
      const retry: JsMsg[] = [];
      for (const [i, message] of messages.entries()) {
        const envelope = envelopes[i];
        if (envelope !== undefined && typeOf(envelope) === error.functionType) {
          this.#terminate(message, `unknown-type: ${error.message}`);
        } else {
          retry.push(message);
        }
      }
      this.#queue.unshift(...retry);
    } else {
      this.#counts.failed += messages.length;
      for (const message of messages) this.#settle(message, 'nak', this.#nakDelayMs);
      this.#log('error', 'jetstream ingress append failed; the messages come back later', {
        stream: this.#stream,
        error,
      });
      this.#pauseUntil(sleep(this.#clock, this.#retryDelayMs));
    }
  }

  #terminate(message: JsMsg, problem: string): void {
    this.#counts.termed += 1;
    this.#log('warn', 'jetstream ingress terminated a message that can never be delivered', {
      stream: this.#stream,
      seq: message.info.streamSequence,
      subject: message.subject,
      problem,
    });
    this.#settle(message, 'term');
  }

  /** Acks, naks or terminates `message`; a failure to tell the server is counted, not thrown. */
  #settle(message: JsMsg, how: 'ack' | 'nak' | 'term', delayMs = 0): void {
    try {
      if (how === 'ack') message.ack();
      else if (how === 'term') message.term();
      else if (delayMs > 0) message.nak(delayMs);
      else message.nak();
    } catch {
      // The connection is gone: the server redelivers after ack_wait, and the store dedups.
      this.#counts.settleErrors += 1;
    }
    this.#counts.held -= 1;
    this.#wakeUp();
    if (this.#counts.held === 0) this.#idle?.resolve();
  }

  /** Stops pulling until `until` settles; a pull under way is closed. */
  #pauseUntil(until: Promise<void>): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#closeFetch();
    const resume = (): void => {
      this.#paused = false;
      this.#wakeUp();
    };
    until.then(resume, resume);
  }

  #closeFetch(): void {
    // Messages that arrived before the close are still taken; the server drops the pull request
    // once nobody listens for it.
    this.#fetch?.close().catch(() => undefined);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #log(level: 'warn' | 'error', message: string, details: Record<string, unknown>): void {
    logSafely(() => {
      this.#logger[level](message, details);
    });
  }
}

function typeOf(envelope: Envelope): string {
  return `${envelope.target[0]}/${envelope.target[1]}`;
}

/** The durable pull consumer `options.durable`, created when missing. */
async function bindConsumer(options: JetStreamIngressOptions): Promise<Consumer> {
  const { stream, durable } = options;
  const connection = options.connection as unknown as NatsConnection;
  const manager = await connection.jetstreamManager();
  let info: ConsumerInfo | undefined;
  try {
    info = await manager.consumers.info(stream, durable);
  } catch (error) {
    const code = apiErrorCode(error);
    if (code === STREAM_NOT_FOUND) throw new ConfigError('stream', `no JetStream stream named ${stream}`);
    if (code !== CONSUMER_NOT_FOUND) throw error;
  }
  const ackWaitNs = (options.ackWaitMs ?? defaultJetStreamIngressConfig.ackWaitMs) * 1_000_000;
  if (info === undefined) {
    // 'explicit' is AckPolicy.Explicit's value: nats is imported for its types only.
    const config = { durable_name: durable, ack_policy: 'explicit', ack_wait: ackWaitNs };
    await manager.consumers.add(stream, config as unknown as Partial<ConsumerConfig>);
  } else {
    const existing = info.config as unknown as Readonly<Record<string, unknown>>;
    const deliverSubject = existing['deliver_subject'];
    if (typeof deliverSubject === 'string' && deliverSubject !== '') {
      throw new ConfigError(
        'durable',
        `${durable} on ${stream} is a push consumer; a pull consumer is needed`,
      );
    }
    if (existing['ack_policy'] !== 'explicit') {
      throw new ConfigError(
        'durable',
        `${durable} on ${stream} does not ack explicitly (ack_policy ${String(existing['ack_policy'])})`,
      );
    }
    if (options.ackWaitMs !== undefined && info.config.ack_wait !== ackWaitNs) {
      await manager.consumers.update(stream, durable, { ack_wait: ackWaitNs });
    }
  }
  return connection.jetstream().consumers.get(stream, durable);
}

function apiErrorCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const apiError = (error as { api_error?: { err_code?: unknown } }).api_error;
  return typeof apiError?.err_code === 'number' ? apiError.err_code : undefined;
}
