// How the dispatcher reaches a function: one ToFunction request in, one FromFunction reply out,
// whether the function runs in this process (`weft/statefun`, no HTTP) or behind an HTTP endpoint
// served by any StateFun SDK. Retrying is the invoker's business: it resolves with the accepted
// reply, or rejects once it has given up.

/** A function type as the wire carries it. */
export interface FunctionType {
  readonly namespace: string;
  readonly name: string;
}

export interface FunctionInvoker {
  /** Whether this invoker serves functions of `type`. */
  serves(type: FunctionType): boolean;

  /**
   * Sends `request` (ToFunction bytes) to the function of `type` and hands the reply to
   * `accept`, which decodes and checks it and throws (an `InvalidReplyError`) when it refuses
   * it. A refused reply counts as a failed attempt, as a 500 does: a remote invoker retries the
   * whole request within its call budget. Rejects with an `InvocationFailedError` (or an
   * `EndpointError` cause) once it gives up, or with `signal`'s reason when aborted.
   */
  invoke<T>(
    type: FunctionType,
    request: Uint8Array,
    accept: (reply: Uint8Array) => T,
    signal?: AbortSignal,
  ): Promise<T>;

  /** Releases connections; invocations in flight are aborted. */
  close(): Promise<void>;
}
