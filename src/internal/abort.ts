// AbortSignal helpers that never leak listeners.
//
// Long-lived signals (a node's shutdown signal, a stream's signal) are handed to
// thousands of short calls. Each call that listens must stop listening when it
// ends, or the signal accumulates listeners and everything they capture. Every
// helper here returns or performs that removal; `AbortSignal.any` is not used
// because Node 20 keeps its sources alive until they are collected.
//
// Rejections carry `signal.reason` as it is: a deadline's `DeadlineExceededError`,
// a caller's own reason, or the standard `AbortError` DOMException.

/** Calls `callback` once when `signal` aborts (at once if it already has). Returns the remover. */
export function onAbort(signal: AbortSignal | undefined, callback: (reason: unknown) => void): () => void {
  if (signal === undefined) return noop;
  if (signal.aborted) {
    callback(signal.reason);
    return noop;
  }
  const listener = (): void => {
    callback(signal.reason);
  };
  signal.addEventListener('abort', listener, { once: true });
  return () => {
    signal.removeEventListener('abort', listener);
  };
}

/**
 * Reads `signal.aborted` afresh. TypeScript keeps the narrowing of a loop condition such as
 * `while (!signal.aborted)` across the awaits in its body, and would call a later check dead.
 */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** A signal that aborts when any parent aborts (with that parent's reason) or on `abort()`. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  readonly abort: (reason?: unknown) => void;
  /** Stops listening to the parents. Call it when the work the signal guards is over. */
  readonly dispose: () => void;
}

export function linkSignals(...parents: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const removers: (() => void)[] = [];
  const dispose = (): void => {
    for (const remove of removers.splice(0)) remove();
  };
  const abort = (reason?: unknown): void => {
    dispose();
    if (!controller.signal.aborted) controller.abort(reason);
  };
  for (const parent of parents) {
    if (controller.signal.aborted) break;
    removers.push(onAbort(parent, abort));
  }
  return { signal: controller.signal, abort, dispose };
}

/**
 * Settles like `promise`, or rejects with the signal's reason if it aborts first.
 * The listener is removed either way. A rejection of `promise` after the abort is
 * observed here, so it never surfaces as an unhandled rejection.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(noop);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const remove = onAbort(signal, (reason) => {
      promise.catch(noop);
      reject(reason);
    });
    promise.then(
      (value) => {
        remove();
        resolve(value);
      },
      (error: unknown) => {
        remove();
        reject(error);
      },
    );
  });
}

function noop(): void {
  // Nothing to remove or handle.
}
