// What a function sees of the world during one invocation, and the effects it asks for.
// Effects are not carried out here: they are recorded in the order the function called,
// and returned to the runtime in the batch's response, which applies them exactly once.

import { linkSignals, type LinkedSignal } from '../internal/abort.ts';
import { appended } from './appended.ts';
import { ValueTypeError } from './errors.ts';
import type { Address } from './address.ts';
import type { EgressMessage } from './egress.ts';
import type { Message } from './message.ts';
import type { AddressScopedStorage } from './storage.ts';
import type { DelayedInvocation, OutgoingEgress, OutgoingMessage } from './wire/from-function-encoder.ts';

export interface Context {
  /** The address this invocation runs as. */
  readonly self: Address;
  /** The function that sent the message, or null for a message from an ingress. */
  readonly caller: Address | null;
  readonly storage: AddressScopedStorage;
  /** Aborted when the invocation is over (or the request that carried it is abandoned). */
  readonly signal: AbortSignal;
  /** Sends a message to another function (or to this one). */
  send(message: Message): void;
  /** Sends a message after `delayMs`; with a token, it can be cancelled until it is delivered. */
  sendAfter(delayMs: number, message: Message, cancellationToken?: string): void;
  /** Cancels a delayed message by its token; nothing happens if it was delivered already. */
  cancelDelayedMessage(cancellationToken: string): void;
  sendEgress(egress: EgressMessage): void;
}

/** The effects of a batch, in the order the functions asked for them; encoded once, at the end. */
export class Effects {
  outgoingMessages: OutgoingMessage[] = [];
  delayedInvocations: DelayedInvocation[] = [];
  outgoingEgresses: OutgoingEgress[] = [];
}

export class InvocationContext implements Context {
  readonly self: Address;
  readonly caller: Address | null;
  readonly storage: AddressScopedStorage;
  readonly #effects: Effects;
  readonly #parentSignal: () => AbortSignal | undefined;
  // Made only if the function reads `signal`: most never do, and an AbortController per
  // invocation is a measurable share of a batch's cost.
  #linked: LinkedSignal | undefined;
  #over = false;

  constructor(options: {
    self: Address;
    caller: Address | null;
    storage: AddressScopedStorage;
    /** Asked for only when the function reads `signal`. */
    parentSignal: () => AbortSignal | undefined;
    effects: Effects;
  }) {
    this.self = options.self;
    this.caller = options.caller;
    this.storage = options.storage;
    this.#parentSignal = options.parentSignal;
    this.#effects = options.effects;
  }

  get signal(): AbortSignal {
    if (this.#linked === undefined) {
      this.#linked = linkSignals(this.#parentSignal());
      if (this.#over) this.#linked.abort(new Error('invocation over'));
    }
    return this.#linked.signal;
  }

  /** The invocation is over: its signal (if anyone took it) aborts. */
  end(): void {
    this.#over = true;
    this.#linked?.abort(new Error('invocation over'));
  }

  send(message: Message): void {
    const effects = this.#effects;
    effects.outgoingMessages = appended(effects.outgoingMessages, {
      target: message.targetAddress,
      argument: message.typedValue,
    });
  }

  sendAfter(delayMs: number, message: Message, cancellationToken = ''): void {
    // The runtime rejects negative delays; whole milliseconds is what the wire carries.
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
      throw new ValueTypeError(`a delay is a whole number of ms >= 0, got ${delayMs}`);
    }
    if (typeof cancellationToken !== 'string') {
      throw new ValueTypeError('a cancellation token is a string');
    }
    const effects = this.#effects;
    effects.delayedInvocations = appended(effects.delayedInvocations, {
      isCancellationRequest: false,
      cancellationToken,
      delayMs,
      target: message.targetAddress,
      argument: message.typedValue,
    });
  }

  cancelDelayedMessage(cancellationToken: string): void {
    // An empty token would fail the runtime's job, so it is refused here.
    if (typeof cancellationToken !== 'string' || cancellationToken === '') {
      throw new ValueTypeError('a cancellation token is a non-empty string');
    }
    const effects = this.#effects;
    effects.delayedInvocations = appended(effects.delayedInvocations, {
      isCancellationRequest: true,
      cancellationToken,
      delayMs: 0,
      target: undefined,
      argument: undefined,
    });
  }

  sendEgress(egress: EgressMessage): void {
    const effects = this.#effects;
    effects.outgoingEgresses = appended(effects.outgoingEgresses, {
      typeName: egress.typeName,
      argument: egress.typedValue,
    });
  }
}
