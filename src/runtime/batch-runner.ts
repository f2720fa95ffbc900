// One batch of invocations for one address, from its inbox messages to the effects the store
// commits: read the address's state, attach every registered value, call the function, go
// through the incomplete-invocation-context round trip as often as it teaches the registry
// something new, and turn the reply into `BatchEffects`, checked before anything is committed:
// a mutation of a value never registered, or with a typename other than the registered one, a
// delayed message reusing a token still pending, an egress with no route. Any of those fails
// the batch (its messages stay in the inbox) instead of committing something StateFun refuses.

import { InvocationFailedError, InvalidReplyError } from './errors.ts';
import type { FunctionInvoker } from './function-invoker.ts';
import { encodeToFunction, type RequestState } from './protocol/to-function-encoder.ts';
import { decodeFromFunction, type InvocationResult } from './protocol/from-function-decoder.ts';
import type {
  BatchEffects,
  ExpiryRefresh,
  InboxMessage,
  StateEntry,
  StateMutation,
  StateStore,
  StoredAddress,
  TimerOperation,
} from './store/state-store.ts';
import { expiryAfterBatch, type RegistrationConflict, type ValueRegistry } from './value-registry.ts';
import { functionTypeOf } from './address-key.ts';

export interface BatchRunnerOptions {
  readonly store: StateStore;
  readonly registry: ValueRegistry;
  /** Finds the invoker serving a function type. */
  readonly invokerFor: (address: StoredAddress) => FunctionInvoker | undefined;
  /** Whether a function of the address's type is served: a message to any other is refused. */
  readonly serves: (address: StoredAddress) => boolean;
  /** Whether an egress id (`namespace/type`) has a route. */
  readonly hasEgress: (egress: string) => boolean;
  /** Epoch milliseconds, as the store keeps them. */
  readonly now: () => number;
  /** Told of every registration and conflict, for the operator. */
  readonly onRegistration: (event: RegistrationEvent) => void;
}

export interface RegistrationEvent {
  readonly functionType: string;
  readonly added: readonly string[];
  readonly conflicts: readonly RegistrationConflict[];
  readonly refused: readonly string[];
}

/** What a batch did, for stats: how many round trips it took. */
export interface BatchOutcome {
  readonly effects: BatchEffects;
  /** Requests sent: 1, plus one per incomplete-context reply. */
  readonly requests: number;
}

export class BatchRunner {
  readonly #options: BatchRunnerOptions;

  constructor(options: BatchRunnerOptions) {
    this.#options = options;
  }

  async run(
    address: StoredAddress,
    messages: readonly InboxMessage[],
    signal?: AbortSignal,
  ): Promise<BatchOutcome> {
    const { store, registry } = this.#options;
    const functionType = functionTypeOf(address);
    const invoker = this.#options.invokerFor(address);
    if (invoker === undefined) {
      throw new InvocationFailedError(functionType, `no function of type ${functionType} is served`);
    }
    const invocations = messages.map((message) => ({ caller: message.caller, argument: message.argument }));
    const state = await store.readState(address, this.#options.now());
    const type = { namespace: address[0], name: address[1] };
    for (let requests = 1; ; requests++) {
      const sent = requestState(registry, functionType, state);
      const request = encodeToFunction(address, sent, invocations);
      const reply = await invoker.invoke(
        type,
        request,
        (bytes) => decodeFromFunction(bytes, functionType),
        signal,
      );
      if (reply.kind === 'result') {
        const effects = await this.#effects(address, functionType, messages, state, reply);
        return { effects, requests };
      }
      const outcome = registry.register(functionType, reply.missing);
      this.#options.onRegistration({ functionType, ...outcome });
      // Resent only if the next request carries more than this one did: values registered by
      // this reply, or meanwhile by another address's batch of the same type. Otherwise asking
      // again would get the same answer, so the batch fails instead of looping.
      if (registry.values(functionType).length <= sent.length) {
        const names = reply.missing.map((value) => value.name).join(', ');
        throw new InvalidReplyError(
          `function ${functionType} still reports values missing after they were sent: ${names}` +
            (outcome.refused.length > 0 ? ` (refused: it has registered the most values a type may)` : ''),
        );
      }
    }
  }

  async #effects(
    address: StoredAddress,
    functionType: string,
    messages: readonly InboxMessage[],
    state: ReadonlyMap<string, StateEntry>,
    reply: InvocationResult,
  ): Promise<BatchEffects> {
    const { registry } = this.#options;
    const now = this.#options.now();
    const written = new Set<string>();
    const mutations: StateMutation[] = [];
    for (const mutation of reply.mutations) {
      const registration = registry.get(functionType, mutation.name);
      if (registration === undefined) {
        throw new InvalidReplyError(
          `function ${functionType} changes value "${mutation.name}", which it never declared`,
        );
      }
      if (mutation.value !== undefined && mutation.value.typename !== registration.typename) {
        throw new InvalidReplyError(
          `function ${functionType} writes value "${mutation.name}" as ${mutation.value.typename}, ` +
            `but it is registered as ${registration.typename}`,
        );
      }
      written.add(mutation.name);
      mutations.push(
        mutation.value === undefined
          ? { name: mutation.name }
          : {
              name: mutation.name,
              value: mutation.value,
              expiresAt: expiryAfterBatch(registration, now, true, undefined),
            },
      );
    }
    // Expire-after-call: every batch of the function refreshes its values, written or not.
    const refreshes: ExpiryRefresh[] = [];
    for (const registration of registry.values(functionType)) {
      if (written.has(registration.name) || !state.has(registration.name)) continue;
      const expiresAt = expiryAfterBatch(registration, now, false, state.get(registration.name)?.expiresAt);
      if (registration.expiration.mode === 'after-call' && expiresAt !== undefined) {
        refreshes.push({ name: registration.name, expiresAt });
      }
    }
    for (const message of reply.messages) this.#checkTarget(functionType, message.target);
    for (const timer of reply.timers) if ('send' in timer) this.#checkTarget(functionType, timer.send.target);
    const timers = await this.#timers(address, functionType, reply, now);
    for (const record of reply.egress) {
      const egress = `${record.egress[0]}/${record.egress[1]}`;
      if (!this.#options.hasEgress(egress)) {
        throw new InvocationFailedError(
          functionType,
          `function ${functionType} sends to egress ${egress}, which has no route`,
        );
      }
    }
    return {
      address,
      consumed: messages.map((message) => message.seq),
      mutations,
      refreshes,
      // Outgoing messages carry caller = the sender.
      messages: reply.messages.map((message) => ({
        target: message.target,
        caller: address,
        argument: message.argument,
      })),
      timers,
      egress: reply.egress,
    };
  }

  /** A message to a type nobody serves would wait in an inbox forever: the batch fails instead. */
  #checkTarget(functionType: string, target: StoredAddress): void {
    if (!this.#options.serves(target)) {
      throw new InvocationFailedError(
        functionType,
        `function ${functionType} sends a message to ${functionTypeOf(target)}, which no function serves`,
      );
    }
  }

  /**
   * The batch's delayed messages and cancellations, in call order, with the token rule StateFun
   * applies: a send whose token is still pending (from an earlier batch, or earlier in this one,
   * and not cancelled since) is refused. The batch fails and is retried later, by when the
   * pending message may have fired.
   */
  async #timers(
    address: StoredAddress,
    functionType: string,
    reply: InvocationResult,
    now: number,
  ): Promise<TimerOperation[]> {
    const timers: TimerOperation[] = [];
    // Tokens this batch has sent (true) or cancelled (false) so far.
    const touched = new Map<string, boolean>();
    for (const timer of reply.timers) {
      if ('cancel' in timer) {
        touched.set(timer.cancel, false);
        timers.push({ cancel: timer.cancel });
        continue;
      }
      const { delayMs, target, argument, token } = timer.send;
      if (token !== undefined) {
        const pending = touched.get(token) ?? (await this.#options.store.hasPendingToken(address, token));
        if (pending) {
          throw new InvocationFailedError(
            functionType,
            `function ${functionType} sends a delayed message with cancellation token "${token}", which is still pending`,
          );
        }
        touched.set(token, true);
      }
      timers.push({
        send: {
          dueAt: Math.min(now + delayMs, Number.MAX_SAFE_INTEGER),
          envelope: { target, caller: address, argument },
          token,
        },
      });
    }
    return timers;
  }
}

/** Every registered value of the type, with its stored bytes when it has some. */
function requestState(
  registry: ValueRegistry,
  functionType: string,
  state: ReadonlyMap<string, StateEntry>,
): RequestState[] {
  return registry.values(functionType).map((registration) => {
    const entry = state.get(registration.name);
    return { name: registration.name, typename: registration.typename, value: entry?.value };
  });
}
