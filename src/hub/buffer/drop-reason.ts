// Why a message left a buffer without being delivered. Each drop is counted once, under one reason.

export const dropReasons = [
  /** Larger than the buffer's whole byte budget. */
  'oversize',
  /** Larger than its lane's byte budget. */
  'lane_oversize',
  /** Its lane was full (the new message under drop_newest, the lane's oldest under drop_oldest). */
  'lane_full',
  /** The buffer was full (the new message under drop_newest, the head under drop_oldest). */
  'buffer_full',
  /** Waited longer than maxAgeMs. */
  'expired',
  /** The whole buffer was removed for being idle. */
  'evicted',
  /** The flush failed maxRetries times in a row. */
  'retry_exhausted',
  /** Not buffered because the retry policy allows no retries. */
  'retry_disabled',
  /** Not buffered because the hub holds as many buffers as it may. */
  'max_buffers',
  /** Not buffered because the sender's call was already cancelled. */
  'context_done',
  /** The buffer's deadline passed before it drained. */
  'timeout',
  /** No packet to buffer. */
  'nil_packet',
] as const;

export type DropReason = (typeof dropReasons)[number];

export function isDropReason(value: unknown): value is DropReason {
  return typeof value === 'string' && (dropReasons as readonly string[]).includes(value);
}
