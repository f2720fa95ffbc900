// weft/hub flow: delivery and flow state per stream key, with no I/O.
//
// - `normalizeDeliveryConfig`: a story's ordering/semantics/replay/flow settings made consistent
//   (replay ⇒ at-least-once ⇒ ordered; unknown modes fall back to none; credits and window
//   default to the buffer limits).
// - `DeliveryState`: sequences per stream or per partition, cumulative acks, credits or window,
//   max in flight, the unacked packets held for replay, and the downstream's PAUSE/RESUME.
// - `PauseController`: exactly one PAUSE and one RESUME upstream per episode, from buffer
//   utilisation (with hysteresis) and drains together.

export {
  normalizeDeliveryConfig,
  defaultFlowBufferLimits,
  DEFAULT_MAX_UNACKED,
  DEFAULT_MAX_PARTITIONS,
} from './delivery-config.ts';
export { DeliveryState } from './delivery-state.ts';
export { PauseController } from './pause-controller.ts';
export { PartitionLimitError, InvalidFlowInputError } from './errors.ts';

export type {
  OrderingMode,
  DeliverySemantics,
  ReplayMode,
  FlowMode,
  DeliveryConfigInput,
  DeliveryConfig,
  FlowBufferLimits,
} from './delivery-config.ts';
export type {
  FlowEnvelope,
  AssignOptions,
  FlowUpdate,
  FlowUpdateResult,
  UnackedPacket,
  DeliveryCheckpoint,
  SendBlock,
  DeliveryStats,
} from './delivery-state.ts';
export type { PauseSignal, PauseThresholds, PauseControllerStats } from './pause-controller.ts';
