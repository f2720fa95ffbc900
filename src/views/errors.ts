// The failure kinds of views, with stable codes (see internal/errors.ts for the base).
//
// A materializer sorts every failure into temporary (resubscribe after the retry waiter's
// delay) or terminal (after a configured number in a row, stop and tell the waiters):
// `isTerminalViewError` decides by the error's code, which errors keep when they cross the
// grid (their class does not).

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';

/** The topic is not registered with the publisher. Terminal: asking again will not help. */
export class UnknownTopicError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.UnknownTopicError');
  static readonly code = 'WEFT_VIEWS_UNKNOWN_TOPIC';

  constructor(topic: string, options?: WeftErrorOptions) {
    super(UnknownTopicError.code, `unknown topic ${JSON.stringify(topic)}`, false, options);
  }
}

/** The subscription's token may not read the topic. Terminal. */
export class UnauthorizedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.UnauthorizedError');
  static readonly code = 'WEFT_VIEWS_UNAUTHORIZED';

  constructor(message = 'not authorized to subscribe', options?: WeftErrorOptions) {
    super(UnauthorizedError.code, message, false, options);
  }
}

/**
 * The subscriber fell further behind than the publisher's buffer reaches: the events it
 * had not read are gone. Retryable: the materializer resumes from its index (and gets a new
 * snapshot if that index is gone too).
 */
export class SubscriberTooSlowError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.SubscriberTooSlowError');
  static readonly code = 'WEFT_VIEWS_SUBSCRIBER_TOO_SLOW';

  constructor(topic: string, options?: WeftErrorOptions) {
    super(
      SubscriberTooSlowError.code,
      `subscriber to ${JSON.stringify(topic)} fell behind the publisher's buffer`,
      true,
      options,
    );
  }
}

/**
 * What the subscriber holds can no longer be trusted (the topic was reset, e.g. after a
 * restore, or a view failed to apply an event). Retryable: the view is reset and a fresh
 * snapshot follows. Consul signals this with gRPC `Aborted`.
 */
export class ViewStaleError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.ViewStaleError');
  static readonly code = 'WEFT_VIEWS_STALE';

  constructor(message = 'the view is stale and must be rebuilt', options?: WeftErrorOptions) {
    super(ViewStaleError.code, message, true, options);
  }
}

/** The event stream broke the framing rules (e.g. live events before the end of a snapshot). */
export class EventStreamError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.EventStreamError');
  static readonly code = 'WEFT_VIEWS_EVENT_STREAM';

  constructor(message: string, options?: WeftErrorOptions) {
    // Retryable: a fresh subscription starts the framing over.
    super(EventStreamError.code, message, true, options);
  }
}

/** The store is evicting this entry (its materializer stopped); ask again once it is gone. */
export class EntryEvictingError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.EntryEvictingError');
  static readonly code = 'WEFT_VIEWS_ENTRY_EVICTING';

  constructor(key: string, options?: WeftErrorOptions) {
    super(EntryEvictingError.code, `view ${JSON.stringify(key)} is marked for eviction`, true, options);
  }
}

/** The materializer stopped for good; no more updates will come. */
export class MaterializerStoppedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.MaterializerStoppedError');
  static readonly code = 'WEFT_VIEWS_STOPPED';

  constructor(message = 'the materializer has stopped', options?: WeftErrorOptions) {
    super(MaterializerStoppedError.code, message, false, options);
  }
}

/**
 * An event larger than a grid message can carry: the subscription can never get past it.
 * Terminal, so the materializer stops and says so instead of resubscribing into it forever.
 */
export class EventTooLargeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.views.EventTooLargeError');
  static readonly code = 'WEFT_VIEWS_EVENT_TOO_LARGE';

  constructor(topic: string, index: number, options?: WeftErrorOptions) {
    super(
      EventTooLargeError.code,
      `an event of topic ${JSON.stringify(topic)} at index ${index} is too large to send over the grid`,
      false,
      options,
    );
  }
}

const terminalCodes = new Set([UnknownTopicError.code, UnauthorizedError.code, EventTooLargeError.code]);

/** True for the failures that stop a materializer (after enough of them in a row). */
export function isTerminalViewError(error: unknown): boolean {
  // Across the grid the class is lost but the code is kept.
  return error instanceof WeftError && terminalCodes.has(error.code);
}

/** True for an error of `kind`, also one that crossed the grid (its class is lost, its code kept). */
export function hasErrorCode(error: unknown, kind: { readonly code: string }): boolean {
  return error instanceof WeftError && error.code === kind.code;
}
