// The flow area's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/**
 * A packet named a partition past the stream key's partition limit. The packet cannot be
 * sequenced, so it is refused. Terminal: partitions keep their sequence state for the stream's
 * life, so room does not come back.
 */
export class PartitionLimitError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.PartitionLimitError');
  static readonly code = 'WEFT_HUB_FLOW_PARTITION_LIMIT';
  readonly partition: string;
  readonly limit: number;

  constructor(partition: string, limit: number, options?: WeftErrorOptions) {
    super(
      PartitionLimitError.code,
      `stream tracks ${limit} partitions already; partition ${JSON.stringify(partition.slice(0, 64))} refused`,
      false,
      options,
    );
    this.partition = partition;
    this.limit = limit;
  }
}

/** A size, credit count or sequence handed to the flow state is not a valid number. Terminal. */
export class InvalidFlowInputError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.InvalidFlowInputError');
  static readonly code = 'WEFT_HUB_FLOW_INVALID_INPUT';
  readonly field: string;

  constructor(field: string, problem: string, options?: WeftErrorOptions) {
    super(InvalidFlowInputError.code, `invalid flow input ${field}: ${problem}`, false, options);
    this.field = field;
  }
}
