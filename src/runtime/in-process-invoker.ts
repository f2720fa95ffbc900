// Functions written with `weft/statefun` and run in this process: the request goes to the SDK as
// bytes, exactly as it would over HTTP, so an in-process function and the same function behind
// an endpoint see the same protocol, but no socket, no HTTP parsing and no retry: a function
// that throws has failed this batch, and the dispatcher parks its address.

import { errorMessage } from '../internal/errors.ts';
import { raceSignal } from '../internal/abort.ts';
import { TypeName, UnknownFunctionError, type StatefulFunctions } from '../statefun/index.ts';
import { InvocationFailedError } from './errors.ts';
import type { FunctionInvoker, FunctionType } from './function-invoker.ts';

export class InProcessInvoker implements FunctionInvoker {
  readonly #functions: StatefulFunctions;

  constructor(functions: StatefulFunctions) {
    this.#functions = functions;
  }

  serves(type: FunctionType): boolean {
    try {
      return this.#functions.has(TypeName.of(type.namespace, type.name));
    } catch {
      return false; // not a valid type name, so no function has it
    }
  }

  async invoke<T>(
    type: FunctionType,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    let reply: Uint8Array;
    try {
      // A function that ignores its signal still lets go of the batch when it is aborted.
      reply = await raceSignal(this.#functions.invoke(request, { signal }), signal);
    } catch (error) {
      if (signal?.aborted === true) throw error;
      const functionType = `${type.namespace}/${type.name}`;
      const reason = error instanceof UnknownFunctionError ? 'is not registered' : 'failed';
      throw new InvocationFailedError(
        functionType,
        `in-process function ${functionType} ${reason}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    return accept(reply);
  }

  async close(): Promise<void> {}
}
