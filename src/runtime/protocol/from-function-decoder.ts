// The reply a function sends the runtime, decoded and checked before anything of it is applied.
// The reply comes from user code or from a remote endpoint the runtime does not control, so it
// is hostile until checked: anything the runtime could not apply as StateFun would (an address
// that is not one, a value without typename, a negative delay, an empty cancellation token, an
// unknown mutation or expiration mode) refuses the whole reply with an `InvalidReplyError` that
// names the function and what is wrong. Nothing is applied from a refused reply; the batch is
// retried as a whole.
//
// Everything returned is a copy: no byte array is a view into the reply's buffer, which the
// transport may reuse.

import { errorMessage } from '../../internal/errors.ts';
import { fromBinary } from '@bufbuild/protobuf';

import {
  FromFunction_ExpirationSpec_ExpireMode as ExpireMode,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  type Address,
  type FromFunction,
  type FromFunction_DelayedInvocation,
  type FromFunction_ExpirationSpec,
  type FromFunction_IncompleteInvocationContext,
  type FromFunction_InvocationResponse,
  type FromFunction_PersistedValueMutation,
  type FromFunction_PersistedValueSpec,
  type TypedValue,
} from '../../gen/statefun/request-reply_pb.ts';
import { TypeName, type Expiration } from '../../statefun/index.ts';
import { InvalidReplyError } from '../errors.ts';
import type { EgressRecord, StoredAddress, StoredValue } from '../store/state-store.ts';
import type { ValueRegistration } from '../value-registry.ts';

/** A delayed message to send (`token` absent: it cannot be cancelled), or a cancellation by token. */
export type TimerRequest =
  | {
      readonly send: {
        readonly delayMs: number;
        readonly target: StoredAddress;
        readonly argument: StoredValue;
        readonly token?: string | undefined;
      };
    }
  | { readonly cancel: string };

/** What a batch did: its final state changes and its effects, in the order it asked for them. */
export interface InvocationResult {
  readonly kind: 'result';
  /** At most one per name; `value` absent: the value is deleted. */
  readonly mutations: readonly { readonly name: string; readonly value?: StoredValue | undefined }[];
  readonly messages: readonly { readonly target: StoredAddress; readonly argument: StoredValue }[];
  /** Sends and cancellations interleaved, as the function called them. */
  readonly timers: readonly TimerRequest[];
  readonly egress: readonly EgressRecord[];
}

/** The request lacked values the function declares: register them and send the batch again. */
export interface IncompleteContext {
  readonly kind: 'incomplete';
  readonly missing: readonly ValueRegistration[];
}

export type FunctionReply = InvocationResult | IncompleteContext;

/**
 * The most effects (outgoing messages, delayed messages and cancellations, and egress records,
 * together) one reply may carry; also the most state mutations and the most missing values.
 * Everything in a reply is applied in one store transaction, and its delayed messages and egress
 * records stay stored until they fire or are delivered: a reply listing millions (a function
 * sending in a runaway loop, a hostile endpoint) would make one unbounded commit and flood the
 * timer table and the outbox. 100,000 is 100 per message of a full batch (StateFun sends at most
 * 1,000), far past what a real function does.
 */
export const MAX_EFFECTS_PER_REPLY = 100_000;

const MAX_DELAY_MS = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Decodes and checks a FromFunction reply of the function `functionType` (`namespace/name`, for
 * the error message). Throws `InvalidReplyError` when the reply is not one the runtime can apply.
 */
export function decodeFromFunction(bytes: Uint8Array, functionType: string): FunctionReply {
  return new ReplyDecoder(functionType).decode(bytes);
}

class ReplyDecoder {
  readonly #functionType: string;

  constructor(functionType: string) {
    this.#functionType = functionType;
  }

  decode(bytes: Uint8Array): FunctionReply {
    let reply: FromFunction;
    try {
      reply = fromBinary(FromFunctionSchema, bytes, { readUnknownFields: false });
    } catch (error) {
      throw new InvalidReplyError(
        `function ${this.#functionType} sent a reply that is not a FromFunction message: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    const { response } = reply;
    switch (response.case) {
      case 'invocationResult':
        return this.#result(response.value);
      case 'incompleteInvocationContext':
        return this.#incomplete(response.value);
      case undefined:
        // StateFun takes a reply with neither as a result with no effects.
        return { kind: 'result', mutations: [], messages: [], timers: [], egress: [] };
    }
  }

  #result(response: FromFunction_InvocationResponse): InvocationResult {
    const effects =
      response.outgoingMessages.length +
      response.delayedInvocations.length +
      response.outgoingEgresses.length;
    if (effects > MAX_EFFECTS_PER_REPLY) {
      this.#refuse(
        `it carries ${effects} outgoing messages, delayed messages and egress records, ` +
          `more than the ${MAX_EFFECTS_PER_REPLY} one reply may carry`,
      );
    }
    if (response.stateMutations.length > MAX_EFFECTS_PER_REPLY) {
      this.#refuse(
        `it carries ${response.stateMutations.length} state mutations, ` +
          `more than the ${MAX_EFFECTS_PER_REPLY} one reply may carry`,
      );
    }
    // StateFun applies mutations in order, so of a name mutated twice the last one counts.
    const mutations = new Map<string, InvocationResult['mutations'][number]>();
    response.stateMutations.forEach((mutation, i) => {
      const decoded = this.#mutation(mutation, `state mutation ${i}`);
      mutations.set(decoded.name, decoded);
    });
    return {
      kind: 'result',
      mutations: [...mutations.values()],
      messages: response.outgoingMessages.map((message, i) => {
        const what = `outgoing message ${i}`;
        return {
          target: this.#address(message.target, `${what}'s target`),
          argument: this.#value(message.argument, `${what}'s argument`),
        };
      }),
      timers: response.delayedInvocations.map((delayed, i) =>
        this.#timer(delayed, `delayed invocation ${i}`),
      ),
      egress: response.outgoingEgresses.map((egress, i) => {
        const what = `egress message ${i}`;
        try {
          TypeName.of(egress.egressNamespace, egress.egressType);
        } catch (error) {
          this.#refuse(`${what} names no valid egress: ${errorMessage(error)}`, error);
        }
        return {
          egress: [egress.egressNamespace, egress.egressType] as const,
          value: this.#value(egress.argument, `${what}'s argument`),
        };
      }),
    };
  }

  #mutation(
    mutation: FromFunction_PersistedValueMutation,
    what: string,
  ): InvocationResult['mutations'][number] {
    if (mutation.stateName === '') this.#refuse(`${what} names no value`);
    const name = mutation.stateName;
    switch (mutation.mutationType) {
      case MutationType.DELETE:
        return { name };
      case MutationType.MODIFY:
        if (mutation.stateValue === undefined || !mutation.stateValue.hasValue) {
          this.#refuse(`${what} modifies "${name}" but carries no value`);
        }
        return { name, value: this.#value(mutation.stateValue, `${what}'s value of "${name}"`) };
      default:
        return this.#refuse(`${what} of "${name}" has the unknown mutation type ${mutation.mutationType}`);
    }
  }

  #timer(delayed: FromFunction_DelayedInvocation, what: string): TimerRequest {
    const token = delayed.cancellationToken;
    if (delayed.isCancellationRequest) {
      // StateFun throws on an empty token, failing the job.
      if (token === '') this.#refuse(`${what} is a cancellation without a token`);
      return { cancel: token };
    }
    const delay = delayed.delayInMs;
    if (delay < 0n) this.#refuse(`${what} has the negative delay ${delay} ms`);
    if (delay > MAX_DELAY_MS) this.#refuse(`${what} has the delay ${delay} ms, too long to schedule`);
    const send = {
      delayMs: Number(delay),
      target: this.#address(delayed.target, `${what}'s target`),
      argument: this.#value(delayed.argument, `${what}'s argument`),
    };
    // On the wire "" is no token: the message just cannot be cancelled.
    return { send: token === '' ? send : { ...send, token } };
  }

  #incomplete(context: FromFunction_IncompleteInvocationContext): IncompleteContext {
    const specs = context.missingValues;
    // Registering nothing and sending the same batch again would get the same reply, forever.
    if (specs.length === 0)
      this.#refuse('it is an incomplete invocation context that names no missing value');
    if (specs.length > MAX_EFFECTS_PER_REPLY) {
      this.#refuse(`it names ${specs.length} missing values, more than the ${MAX_EFFECTS_PER_REPLY} allowed`);
    }
    return {
      kind: 'incomplete',
      missing: specs.map((spec, i) => this.#registration(spec, `missing value ${i}`)),
    };
  }

  #registration(spec: FromFunction_PersistedValueSpec, what: string): ValueRegistration {
    if (spec.stateName === '') this.#refuse(`${what} has no name`);
    const name = spec.stateName;
    if (spec.typeTypename === '') this.#refuse(`${what} "${name}" has no typename`);
    return {
      name,
      typename: spec.typeTypename,
      expiration: this.#expiration(spec.expirationSpec, `${what} "${name}"`),
    };
  }

  #expiration(spec: FromFunction_ExpirationSpec | undefined, what: string): Expiration {
    // The official JavaScript SDK leaves the spec out for a value that never expires.
    if (spec === undefined) return { mode: 'none' };
    let mode: 'after-write' | 'after-call';
    switch (spec.mode) {
      case ExpireMode.NONE:
        return { mode: 'none' };
      case ExpireMode.AFTER_WRITE:
        mode = 'after-write';
        break;
      case ExpireMode.AFTER_INVOKE:
        mode = 'after-call';
        break;
      default:
        return this.#refuse(`${what} has the unknown expiration mode ${spec.mode}`);
    }
    const afterMs = spec.expireAfterMillis;
    if (afterMs <= 0n || afterMs > MAX_DELAY_MS) {
      this.#refuse(`${what} expires ${mode} ${afterMs} ms, which is not a positive safe integer`);
    }
    return { mode, afterMs: Number(afterMs) };
  }

  #address(address: Address | undefined, what: string): StoredAddress {
    if (address === undefined) this.#refuse(`${what} is missing`);
    try {
      TypeName.of(address.namespace, address.type);
    } catch (error) {
      this.#refuse(`${what} is not a valid address: ${errorMessage(error)}`, error);
    }
    return [address.namespace, address.type, address.id];
  }

  /** A present value with its typename; its bytes copied out of the reply's buffer. */
  #value(value: TypedValue | undefined, what: string): StoredValue {
    if (value === undefined) this.#refuse(`${what} is missing`);
    if (value.typename === '') this.#refuse(`${what} has no typename`);
    // A stored value is always present: an absent one (has_value false) has no meaning here.
    if (!value.hasValue) this.#refuse(`${what} (${value.typename}) has no value`);
    return { typename: value.typename, value: value.value.slice() };
  }

  #refuse(problem: string, cause?: unknown): never {
    throw new InvalidReplyError(
      `function ${this.#functionType} sent an invalid reply: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  }
}
