// The functions an endpoint serves, and the request-reply protocol that runs them.
//
// One request carries a batch of messages for one address, with that address's state. If
// the request lacks any value a function declared (the runtime learns about values only
// from functions), the answer lists every missing one and no user code runs; the runtime
// registers them and sends the batch again. Otherwise the batch runs in order against one
// storage, and the answer carries the final state changes and every effect, in the order
// the functions asked for them.

import type http from 'node:http';

import { ConfigError } from '../internal/errors.ts';
import { Address } from './address.ts';
import { Effects, InvocationContext, type Context } from './context.ts';
import { requestReplyHandler, type HandlerOptions } from './http-handler.ts';
import { Message } from './message.ts';
import { FunctionFailedError, InvalidRequestError, UnknownFunctionError } from './request-errors.ts';
import { BatchStorage, StorageLayout } from './storage.ts';
import { TypeName } from './type-name.ts';
import type { ValueSpec } from './value-spec.ts';
import { encodeIncompleteContext, encodeInvocationResult } from './wire/from-function-encoder.ts';
import { rememberString } from './wire/proto-reader.ts';
import { decodeToFunction, type InvocationBatch, type WireAddress } from './wire/to-function-decoder.ts';

/** A stateful function: called once per message, in order, for one address at a time. */
export type StatefulFunction = (context: Context, message: Message) => void | Promise<void>;

export interface FunctionSpec {
  readonly typeName: TypeName | string;
  /** The persisted values it uses; each must be declared here to be read or written. */
  readonly specs?: readonly ValueSpec<unknown>[] | undefined;
  readonly fn: StatefulFunction;
}

interface Registered {
  readonly typeName: TypeName;
  readonly storage: StorageLayout;
  readonly fn: StatefulFunction;
}

export class StatefulFunctions {
  // By namespace, then name: a request's target is found from the strings it carries,
  // without building its type name first.
  readonly #functions = new Map<string, Map<string, Registered>>();

  /** Registers a function; a second function of the same type, or a repeated spec name, is refused. */
  withSpec(spec: FunctionSpec): this {
    const typeName = typeof spec.typeName === 'string' ? TypeName.parse(spec.typeName) : spec.typeName;
    const key = typeName.toString();
    let byName = this.#functions.get(typeName.namespace);
    if (byName?.has(typeName.name) === true)
      throw new ConfigError('typeName', `a function of type ${key} is already registered`);
    if (typeof spec.fn !== 'function') throw new ConfigError(`${key}.fn`, 'is not a function');
    const specs = new Map<string, ValueSpec<unknown>>();
    for (const value of spec.specs ?? []) {
      if (specs.has(value.name))
        throw new ConfigError(`${key}.specs`, `value ${value.name} is declared twice`);
      specs.set(value.name, value);
    }
    // The strings every request for this function carries decode to these very string
    // objects, which the lookups and comparisons that follow take without reading them.
    for (const text of [typeName.namespace, typeName.name, ...specs.keys()]) rememberString(text);
    for (const value of specs.values()) rememberString(value.type.typeName.toString());
    if (byName === undefined) {
      byName = new Map();
      this.#functions.set(typeName.namespace, byName);
    }
    byName.set(typeName.name, { typeName, storage: new StorageLayout([...specs.values()]), fn: spec.fn });
    return this;
  }

  /** Whether a function of `typeName` is registered. */
  has(typeName: TypeName | string): boolean {
    const type = typeof typeName === 'string' ? TypeName.parse(typeName) : typeName;
    return this.#functions.get(type.namespace)?.has(type.name) === true;
  }

  /** The types registered, in registration order. */
  typeNames(): TypeName[] {
    return [...this.#functions.values()].flatMap((byName) => [...byName.values()].map((f) => f.typeName));
  }

  /** A `node:http` request listener serving the functions to a StateFun runtime. */
  handler(options?: HandlerOptions): (request: http.IncomingMessage, response: http.ServerResponse) => void {
    // The reply goes straight to the socket, so it may share its buffer (no copy).
    return requestReplyHandler((body, parentSignal) => this.#invoke(body, parentSignal, true), options);
  }

  /**
   * Answers one ToFunction request (protobuf bytes) with a FromFunction (protobuf bytes).
   * Throws `InvalidRequestError`, `UnknownFunctionError`, or `FunctionFailedError` (with the
   * function's error as the cause); on failure no effect of the batch is reported.
   */
  invoke(bytes: Uint8Array, options: { signal?: AbortSignal | undefined } = {}): Promise<Uint8Array> {
    try {
      const signal = options.signal;
      return Promise.resolve(this.#invoke(bytes, () => signal, false));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // `parentSignal` is asked for only when a function reads its own signal, so a host can make
  // it lazily (the HTTP handler does: most functions never look). A batch whose functions are
  // all synchronous is answered synchronously, with no promise at all; failures are thrown.
  // `forWrite`: the reply goes straight to a socket and may share its buffer.
  #invoke(
    bytes: Uint8Array,
    parentSignal: () => AbortSignal | undefined,
    forWrite: boolean,
  ): Uint8Array | Promise<Uint8Array> {
    let batch: InvocationBatch | undefined;
    try {
      batch = decodeToFunction(bytes);
    } catch (error) {
      throw new InvalidRequestError('the body is not a ToFunction message', { cause: error });
    }
    if (batch === undefined) throw new InvalidRequestError('the request carries no invocation batch');
    const target = batch.target;
    if (target === undefined) throw new InvalidRequestError('the batch has no target address');
    const registered = this.#functions.get(target.namespace)?.get(target.type);
    // Unknown: parsed in full, so a malformed address is reported as such.
    if (registered === undefined) throw new UnknownFunctionError(toAddress(target, 'target').type.toString());
    const self = Address.of(registered.typeName, target.id);

    const storage = new BatchStorage(registered.storage);
    let missing: ValueSpec<unknown>[] | undefined;
    try {
      missing = storage.load(batch.state);
    } catch (error) {
      throw new InvalidRequestError(error instanceof Error ? error.message : String(error), { cause: error });
    }
    if (missing !== undefined) return encodeIncompleteContext(missing);

    // The whole batch is checked before any function runs: a malformed invocation further on
    // must not leave user code run for a request that is then refused.
    const callers = batch.invocations.map((invocation) => {
      if (invocation.argument === undefined) throw new InvalidRequestError('an invocation has no argument');
      return invocation.caller === undefined ? null : toAddress(invocation.caller, 'caller');
    });
    const run: BatchRun = {
      registered,
      self,
      storage,
      parentSignal,
      effects: new Effects(),
      forWrite,
      callers,
    };
    return runInvocations(run, batch.invocations, 0);
  }
}

type Invocation = InvocationBatch['invocations'][number];

interface BatchRun {
  readonly registered: Registered;
  readonly self: Address;
  readonly storage: BatchStorage;
  readonly parentSignal: () => AbortSignal | undefined;
  readonly effects: Effects;
  readonly forWrite: boolean;
  /** Each invocation's caller, parsed when the batch was checked. */
  readonly callers: readonly (Address | null)[];
}

/**
 * Runs the batch's invocations from `from` on, in order, then encodes the reply. A function
 * that returns a promise is awaited, and the rest of the batch continues after it; as long as
 * none does, everything runs in this call.
 */
function runInvocations(
  run: BatchRun,
  invocations: InvocationBatch['invocations'],
  from: number,
): Uint8Array | Promise<Uint8Array> {
  for (let i = from; i < invocations.length; i++) {
    const invocation = invocations[i] as Invocation;
    // Checked with the batch: every invocation has an argument.
    const message = Message.fromTypedValue(
      run.self,
      invocation.argument as NonNullable<Invocation['argument']>,
    );
    const caller = run.callers[i] ?? null;
    const context = new InvocationContext({
      self: run.self,
      caller,
      storage: run.storage,
      parentSignal: run.parentSignal,
      effects: run.effects,
    });
    let result: void | Promise<void>;
    try {
      result = run.registered.fn(context, message);
    } catch (error) {
      context.end();
      throw functionFailed(run.self, error);
    }
    if (result instanceof Promise) {
      return result.then(
        () => {
          context.end();
          return runInvocations(run, invocations, i + 1);
        },
        (error: unknown) => {
          context.end();
          throw functionFailed(run.self, error);
        },
      );
    }
    // Its signal, if it took one, ends with the invocation.
    context.end();
  }
  return encodeInvocationResult(
    {
      mutations: run.storage.mutations(),
      outgoingMessages: run.effects.outgoingMessages,
      delayedInvocations: run.effects.delayedInvocations,
      outgoingEgresses: run.effects.outgoingEgresses,
    },
    run.forWrite,
  );
}

function functionFailed(self: Address, error: unknown): FunctionFailedError {
  return new FunctionFailedError(
    `function ${self.toString()} failed: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}

function toAddress(address: WireAddress, what: string): Address {
  try {
    return Address.of(TypeName.of(address.namespace, address.type), address.id);
  } catch (error) {
    throw new InvalidRequestError(`the ${what} address is not valid`, { cause: error });
  }
}
