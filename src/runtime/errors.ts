// The runtime's failures, each with a stable code. A function that fails, an endpoint that
// answers wrongly, an address whose batch cannot run: none of them takes the runtime down; the
// address is parked and retried later, and nothing it holds is dropped.

import { WeftError, type WeftErrorOptions } from '../internal/errors.ts';

/** No function of this type is served, in-process or by an endpoint. Terminal. */
export class UnknownFunctionTypeError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.UnknownFunctionTypeError');
  static readonly code = 'WEFT_UNKNOWN_FUNCTION_TYPE';
  readonly functionType: string;

  constructor(functionType: string, options?: WeftErrorOptions) {
    super(UnknownFunctionTypeError.code, `no function of type ${functionType} is served`, false, options);
    this.functionType = functionType;
  }
}

/**
 * A batch of invocations did not complete: the function threw, its endpoint failed or timed out,
 * or its reply was refused. Retryable: the batch stays in the inbox and runs again later.
 */
export class InvocationFailedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvocationFailedError');
  static readonly code = 'WEFT_INVOCATION_FAILED';
  /** The function type (`namespace/name`) the batch was for. */
  readonly functionType: string;

  constructor(functionType: string, message: string, options?: WeftErrorOptions) {
    super(InvocationFailedError.code, message, true, options);
    this.functionType = functionType;
  }
}

/**
 * A function's reply broke the protocol: not a FromFunction, a mutation of an unregistered value
 * or with the wrong typename, a negative delay, an empty cancellation token, an address that is
 * not one. Retryable as a whole batch (a remote endpoint may have answered garbage once).
 */
export class InvalidReplyError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidReplyError');
  static readonly code = 'WEFT_INVALID_REPLY';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidReplyError.code, message, true, options);
  }
}

/** An HTTP endpoint answered with something other than a 2xx octet-stream body. Retryable. */
export class EndpointError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.EndpointError');
  static readonly code = 'WEFT_ENDPOINT_FAILED';
  readonly url: string;
  /** The HTTP status, when the endpoint answered at all. */
  readonly status: number | undefined;
  /** The start of the endpoint's body, for the operator (at most 1 KiB). */
  readonly body: string | undefined;

  constructor(
    url: string,
    message: string,
    options?: WeftErrorOptions & { status?: number | undefined; body?: string | undefined },
  ) {
    super(EndpointError.code, message, true, options);
    this.url = url;
    this.status = options?.status;
    this.body = options?.body;
  }
}

/**
 * A commit was refused because the partition it ran under was taken over: another node acquired
 * its lease (a higher epoch) since this one did. Nothing of the batch was applied; this node must
 * stop running the partition's addresses. Terminal for the batch.
 */
export class FencedError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.FencedError');
  static readonly code = 'WEFT_FENCED';
  /** The partitions whose epoch had moved on. */
  readonly partitions: readonly number[];

  constructor(partitions: readonly number[], options?: WeftErrorOptions) {
    super(
      FencedError.code,
      `partition${partitions.length === 1 ? '' : 's'} ${partitions.join(', ')} ${partitions.length === 1 ? 'is' : 'are'} owned under a newer lease: the commit is refused`,
      false,
      options,
    );
    this.partitions = partitions;
  }
}

/**
 * Ingress took messages for an address another node of the cluster owns, and that node could not
 * be reached or did not answer in time (it died, or the grid link is down). Nothing is known to
 * be appended: retry (an ingress id keeps a retry from storing a message twice); ownership moves
 * to a live node within a few seconds of one dying.
 */
export class OwnerUnavailableError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.OwnerUnavailableError');
  static readonly code = 'WEFT_OWNER_UNAVAILABLE';
  /** The member (its URL) the messages were for. */
  readonly owner: string;

  constructor(owner: string, options?: WeftErrorOptions) {
    super(
      OwnerUnavailableError.code,
      `the node owning these messages (${owner}) could not take them`,
      true,
      options,
    );
    this.owner = owner;
  }
}
