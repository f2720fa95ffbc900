// What a caller is told when it gives up.
//
// However a caller cancels (a request's signal, a stream's signal, a send's signal,
// `cancel()`, leaving a `for await` loop), what it awaits rejects with one kind of error:
// a `CancelledError` whose `cause` is the reason (the signal's reason, or what was passed
// to `cancel()`). A signal that aborts because a deadline passed is not a cancel: its
// `DeadlineExceededError` surfaces as a `DeadlineExceededError`, with the reason as cause.
// Errors are made where the caller awaits, so their stacks lead back to it.

import { CancelledError, DeadlineExceededError } from '../internal/errors.ts';

/** The error for a caller that gave up with `reason`; `what` names the call ("stream 7"). */
export function cancelledError(what: string, reason: unknown): CancelledError | DeadlineExceededError {
  if (reason instanceof DeadlineExceededError) {
    const { timeoutMs } = reason;
    return new DeadlineExceededError(
      reason.message,
      timeoutMs === undefined ? { cause: reason } : { cause: reason, timeoutMs },
    );
  }
  return new CancelledError(`${what} cancelled`, { cause: reason });
}

/**
 * A cancel that callers may be waiting on in several places (the iteration, a send). The
 * stream's buffers end with `marker`; each await that meets it gets an error of its own.
 */
export class Cancellation {
  readonly #what: string;
  readonly #reason: unknown;
  readonly marker: Error;

  constructor(what: string, reason: unknown) {
    this.#what = what;
    this.#reason = reason;
    this.marker = cancelledError(what, reason);
  }

  /** A fresh error for this cancel: call it where the caller awaits. */
  error(): Error {
    return cancelledError(this.#what, this.#reason);
  }

  /** `error` as a caller should see it: this cancel's marker becomes a fresh error, the rest stays. */
  atCaller(error: unknown): unknown {
    return error === this.marker ? this.error() : error;
  }
}
