// The cold-start cascade: decides where a node gets a key it does not hold (its own store, a
// peer, a designated puller, or, rate limited, the origin), after Gantry's C4. It decides only;
// the HTTP mirror acts on the decision. Ranks are always the requester's own (HRW on its
// membership view); the directory's health is read once per resolution; an honor window of at
// most 30 s stops probing a key a peer failed transiently; every resolution publishes the rule
// it took on `weft:coord:cascade`.

export { Cascade, defaultCascadeConfig, verifyCascadeConfig } from './cascade.ts';
export { CASCADE_RULES } from './types.ts';
export { CascadeCooldownError, CascadeExhaustedError, FailureShortCircuitError } from './errors.ts';

export type { CascadeConfig } from './cascade.ts';
export type {
  CascadeDeps,
  CascadeEvent,
  CascadeRule,
  CascadeStats,
  Decision,
  ResolveOptions,
} from './types.ts';
export type { ExhaustedReason } from './errors.ts';
