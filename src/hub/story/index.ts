// Stories: pipeline definitions for the hub. A story is a DAG of steps (edges from each step's
// `needs`) with per-step, optionally per-edge, delivery policies (buffer, retry, delivery, flow,
// drain, offload, heartbeat) merged over story defaults. Stories are plain JSON or YAML, parsed
// safely and validated strictly: unknown fields, cycles and out-of-range values are refused with
// every problem's path listed. A validated Story is frozen. Stream keys `namespace/run/step` name
// one step of one story run.

export { loadStory, maxStoryBytes, maxYamlAliases, parseStory } from './parse.ts';
export { maxSteps, storyApiVersion, validateStory } from './validate.ts';
export { lanes, mergePolicies, policyDefaults } from './policy.ts';
export { isStreamKey, maxStreamKeyLength, parseStreamKey, streamKey } from './stream-key.ts';
export { maxNameLength } from './names.ts';
export { maxListedProblems } from './problems.ts';
export { InvalidStreamKeyError, StoryLoadError, StoryValidationError, UnknownStepError } from './errors.ts';

export type { ParseStoryOptions, StoryFormat } from './parse.ts';
export type { Story, StoryEdge, StoryStep } from './story.ts';
export type { StreamKey, StreamKeyParts } from './stream-key.ts';
export type { StoryProblem } from './errors.ts';
export type {
  Backoff,
  BufferPolicy,
  DeliveryMode,
  DeliveryPolicy,
  DeepPartial,
  DrainPolicy,
  DropPolicy,
  FlowMode,
  FlowPolicy,
  HeartbeatPolicy,
  Lane,
  LaneLimits,
  OffloadMode,
  OffloadPolicy,
  Ordering,
  PolicyInput,
  ReplayMode,
  RetryPolicy,
  StepPolicy,
} from './policy.ts';
