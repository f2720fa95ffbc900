// The hub's per-downstream MessageBuffer: where packets wait, bounded and in order, until their
// step can take them. Every packet added ends exactly once as delivered, still waiting, or
// dropped under a named reason counted in `stats()`. Time comes from the injected Clock.

export { createMessageBuffer } from './message-buffer.ts';
export { defaultMessageBufferConfig, resolveMessageBufferConfig } from './config.ts';
export { defaultRetryPolicy, fallbackRetryDelay, resolveRetryPolicy, retryDelayMs } from './retry-policy.ts';
export { dropReasons, isDropReason } from './drop-reason.ts';
export { isLane, lanes } from './lane.ts';
export { InvalidBufferInputError } from './errors.ts';

export type {
  AddResult,
  BufferEntry,
  Dropped,
  FlushOptions,
  LaneUsage,
  MessageBuffer,
  MessageBufferOptions,
  MessageBufferStats,
  SendPacket,
} from './message-buffer.ts';
export type { DropPolicy, LaneLimit, MessageBufferConfig, MessageBufferConfigInput } from './config.ts';
export type { RetryBackoff, RetryPolicy } from './retry-policy.ts';
export type { DropReason } from './drop-reason.ts';
export type { Lane } from './lane.ts';
