// The core NATS ingress: subscribes to each route's subject and appends every message to its
// target's inbox (the address mapping is subject-routes.ts's).
//
// At most once, as core NATS itself: there is no acknowledgement to withhold and no redelivery
// to wait for, so a message the runtime refuses (backpressure, shutdown, a failure) is dropped,
// counted and logged, and so is one that arrives while `maxInFlight` appends are pending. A
// message that can never be mapped (bad id or type, a function type nobody serves) is counted as
// unmappable and logged. Use the JetStream ingress for messages that must not be lost.
//
// A message whose subject matches several routes is taken once, by the first route that matches
// (each subscription lets through only the messages its route is first for). With `queue`, nodes
// subscribing under the same queue group share the messages instead of each getting all of them.

import type { NatsConnectionLike } from '../nats-connection.ts';
import type { Msg, NatsConnection, NatsError, Subscription } from 'nats';

import { ConfigError } from '../../internal/errors.ts';
import type { RuntimeInput } from '../runtime-input.ts';
import { wholeNumberOption } from './ingress-config.ts';
import { logSafely } from '../../internal/log-safely.ts';
import type { IngressLogger } from './ingress-logger.ts';
import { SubjectRouter, type SubjectRoute } from './subject-routes.ts';

export interface NatsCoreIngressOptions {
  /** A nats.js connection (`await connect(…)`); the caller owns it and closes it. */
  readonly connection: NatsConnectionLike;
  readonly routes: readonly SubjectRoute[];
  /** A queue group: nodes in the same group share the messages. Default none (each gets all). */
  readonly queue?: string | undefined;
  /** Most appends pending at once; a message beyond them is dropped. Default 1024. */
  readonly maxInFlight?: number | undefined;
  readonly logger?: IngressLogger | undefined;
}

export interface NatsCoreIngressStats {
  /** Messages taken by a route. */
  readonly received: number;
  readonly accepted: number;
  /** Dropped: refused by the runtime, failed, or beyond `maxInFlight`. */
  readonly dropped: number;
  /** Dropped because they can never be mapped to a served function. */
  readonly unmappable: number;
  /** Appends pending now. */
  readonly inFlight: number;
}

export const defaultNatsCoreIngressConfig = { maxInFlight: 1024 } as const;

type Counters = { -readonly [K in keyof NatsCoreIngressStats]: number };

export class NatsCoreIngress {
  readonly #input: RuntimeInput;
  readonly #connection: NatsConnection;
  readonly #router: SubjectRouter;
  readonly #maxInFlight: number;
  readonly #logger: IngressLogger;
  readonly #counts: Counters = { received: 0, accepted: 0, dropped: 0, unmappable: 0, inFlight: 0 };
  #subscriptions: Subscription[] = [];
  // True from the first drop until an append succeeds again: one log line per run of drops.
  #dropping = false;
  #idle: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;

  private constructor(input: RuntimeInput, options: NatsCoreIngressOptions) {
    this.#input = input;
    this.#connection = options.connection as unknown as NatsConnection;
    this.#router = new SubjectRouter(options.routes);
    this.#maxInFlight = wholeNumberOption(
      'maxInFlight',
      options.maxInFlight ?? defaultNatsCoreIngressConfig.maxInFlight,
      1,
      1_000_000,
    );
    this.#logger = options.logger ?? console;
  }

  /** Subscribes to every route's subject; resolves once the server has the subscriptions. */
  static async start(input: RuntimeInput, options: NatsCoreIngressOptions): Promise<NatsCoreIngress> {
    if (
      options.queue !== undefined &&
      (typeof options.queue !== 'string' || !/^[^\s]+$/.test(options.queue))
    ) {
      throw new ConfigError('queue', 'must be a non-empty string without whitespace');
    }
    const ingress = new NatsCoreIngress(input, options);
    ingress.#subscriptions = ingress.#router.subjects.map((subject, route) =>
      ingress.#connection.subscribe(subject, {
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        callback: (error, message) => {
          try {
            ingress.#receive(route, error, message);
          } catch (failure) {
            // Thrown by the runtime input (servesType): the message is lost, as any refused one.
            ingress.#drop('taking it failed', failure);
          }
        },
      }),
    );
    await ingress.#connection.flush();
    return ingress;
  }

  stats(): NatsCoreIngressStats {
    return { ...this.#counts };
  }

  /** Unsubscribes (taking what the client has received already), then waits for pending appends. */
  async stop(): Promise<void> {
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    await Promise.all(
      subscriptions.map(async (subscription) => {
        try {
          await subscription.drain();
        } catch {
          // The connection is closed already: nothing more can arrive.
        }
      }),
    );
    if (this.#counts.inFlight === 0) return;
    if (this.#idle === undefined) {
      let resolve = (): void => undefined;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.#idle = { promise, resolve };
    }
    await this.#idle.promise;
  }

  #receive(route: number, error: NatsError | null, message: Msg): void {
    if (error !== null) {
      this.#log('error', 'nats ingress subscription failed', { error });
      return;
    }
    // Another route's subscription takes it: the first route that matches wins.
    if (this.#router.routeOf(message.subject) !== route) return;
    this.#counts.received += 1;
    const mapping = this.#router.map(message);
    if (!mapping.ok) {
      this.#unmappable(message, `${mapping.reason}: ${mapping.detail}`);
      return;
    }
    const [namespace, type] = mapping.target;
    if (!this.#input.servesType(namespace, type)) {
      this.#unmappable(message, `unknown-type: no function of type ${namespace}/${type} is served`);
      return;
    }
    if (this.#counts.inFlight >= this.#maxInFlight) {
      this.#drop(`${this.#maxInFlight} appends are pending already`, undefined);
      return;
    }
    this.#counts.inFlight += 1;
    let sent: Promise<unknown>;
    try {
      sent = this.#input.send([{ target: mapping.target, argument: mapping.argument }]);
    } catch (failure) {
      sent = Promise.reject(failure);
    }
    sent.then(
      () => {
        this.#counts.accepted += 1;
        this.#dropping = false;
        this.#settled();
      },
      (failure: unknown) => {
        this.#drop('the runtime refused it', failure);
        this.#settled();
      },
    );
  }

  #settled(): void {
    this.#counts.inFlight -= 1;
    if (this.#counts.inFlight === 0) this.#idle?.resolve();
  }

  #drop(why: string, error: unknown): void {
    this.#counts.dropped += 1;
    if (this.#dropping) return;
    this.#dropping = true;
    this.#log('warn', `nats ingress dropping messages (at most once): ${why}`, { error });
  }

  #unmappable(message: Msg, problem: string): void {
    this.#counts.unmappable += 1;
    this.#log('warn', 'nats ingress dropped a message that can never be delivered', {
      subject: message.subject,
      problem,
    });
  }

  #log(level: 'warn' | 'error', message: string, details: Record<string, unknown>): void {
    logSafely(() => {
      this.#logger[level](message, details);
    });
  }
}
