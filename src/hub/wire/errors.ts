// The wire layer's failures. Each carries the gRPC status code the hub answers with, so the
// server turns any of them into a status with `grpcStatusOf` (grpc-js would otherwise map a
// string `code` to UNKNOWN).

import { status } from '@grpc/grpc-js';

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/** An error the hub reports to a connector as a gRPC status. */
export interface WireFailure {
  readonly grpcCode: status;
  readonly message: string;
}

/** The `{ code, details }` a grpc-js server call is ended with (`call.emit('error', …)`). */
export interface WireStatus {
  readonly code: status;
  readonly details: string;
}

/** The status to end a call with for `error`: its own code for wire errors, INTERNAL otherwise. */
export function grpcStatusOf(error: unknown): WireStatus {
  for (const kind of wireErrorKinds) {
    if (error instanceof kind) return { code: error.grpcCode, details: error.message };
  }
  return { code: status.INTERNAL, details: 'internal error' };
}

/** A message's bytes are not a valid protobuf encoding of the expected type. Terminal. */
export class UndecodableHubMessageError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.UndecodableHubMessageError');
  static readonly code = 'WEFT_HUB_UNDECODABLE_MESSAGE';
  readonly grpcCode: status = status.INVALID_ARGUMENT;
  /** Size of the undecodable message in bytes. */
  readonly size: number;

  constructor(typeName: string, size: number, options?: WeftErrorOptions) {
    super(
      UndecodableHubMessageError.code,
      `message of ${size} bytes is not a valid ${typeName}`,
      false,
      options,
    );
    this.size = size;
  }
}

/** A decoded request breaks a wire rule (a limit or an envelope rule); the message names the field. */
export class InvalidHubRequestError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.InvalidHubRequestError');
  static readonly code = 'WEFT_HUB_INVALID_REQUEST';
  readonly grpcCode: status = status.INVALID_ARGUMENT;
  /** Path of the offending field, e.g. `packet.envelope.chunk_id`. */
  readonly field: string;

  constructor(field: string, problem: string, options?: WeftErrorOptions) {
    super(InvalidHubRequestError.code, `invalid request: ${field} ${problem}`, false, options);
    this.field = field;
  }
}

/** Registration metadata is missing or malformed (storyrun-name, storyrun-namespace, current-step-id). */
export class InvalidHubRegistrationError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.InvalidHubRegistrationError');
  static readonly code = 'WEFT_HUB_INVALID_REGISTRATION';
  readonly grpcCode: status = status.INVALID_ARGUMENT;
  /** The metadata key at fault. */
  readonly key: string;

  constructor(key: string, problem: string, options?: WeftErrorOptions) {
    super(InvalidHubRegistrationError.code, `registration metadata ${key} ${problem}`, false, options);
    this.key = key;
  }
}

/**
 * `connector-generation` is present but not a canonical int32 > 0. FAILED_PRECONDITION, as for an
 * unsupported protocol version: the connector is built wrong, not the request.
 */
export class InvalidConnectorGenerationError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.InvalidConnectorGenerationError');
  static readonly code = 'WEFT_HUB_INVALID_CONNECTOR_GENERATION';
  readonly grpcCode: status = status.FAILED_PRECONDITION;

  constructor(value: string, options?: WeftErrorOptions) {
    super(
      InvalidConnectorGenerationError.code,
      `connector-generation ${JSON.stringify(value.slice(0, 32))} is not a decimal int32 > 0`,
      false,
      options,
    );
  }
}

/** Why a chunk was refused as malformed; the same chunk would be refused every time. */
export type ChunkInvalidReason =
  | 'not_chunked'
  | 'not_binary'
  | 'missing_id'
  | 'out_of_range'
  | 'duplicate'
  | 'header_mismatch'
  | 'size_mismatch'
  | 'chunk_too_large';

/** A chunk is malformed or inconsistent with its earlier chunks. Terminal; ends the stream. */
export class ChunkInvalidError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.ChunkInvalidError');
  static readonly code = 'WEFT_HUB_CHUNK_INVALID';
  readonly grpcCode: status = status.INVALID_ARGUMENT;
  readonly reason: ChunkInvalidReason;

  constructor(reason: ChunkInvalidReason, message: string, options?: WeftErrorOptions) {
    super(ChunkInvalidError.code, message, false, options);
    this.reason = reason;
  }
}

/** Which reassembly budget a chunk would have broken. */
export type ChunkBudget = 'in_flight_bytes' | 'partials_per_stream' | 'partials_global';

/** Reassembly is at a budget (bytes in flight or partial messages). Retryable once others complete or expire. */
export class ChunkBudgetExceededError extends WeftError implements WireFailure {
  static override readonly brand = Symbol.for('weft.error.ChunkBudgetExceededError');
  static readonly code = 'WEFT_HUB_CHUNK_BUDGET_EXCEEDED';
  readonly grpcCode: status = status.RESOURCE_EXHAUSTED;
  readonly budget: ChunkBudget;
  readonly limit: number;

  constructor(budget: ChunkBudget, limit: number, options?: WeftErrorOptions) {
    super(
      ChunkBudgetExceededError.code,
      `chunk reassembly budget ${budget} exhausted (limit ${limit})`,
      true,
      options,
    );
    this.budget = budget;
    this.limit = limit;
  }
}

const wireErrorKinds = [
  UndecodableHubMessageError,
  InvalidHubRequestError,
  InvalidHubRegistrationError,
  InvalidConnectorGenerationError,
  ChunkInvalidError,
  ChunkBudgetExceededError,
] as const;
