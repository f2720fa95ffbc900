// The cascade's contract: what it needs from the node (injected, so it runs on a FakeClock
// without a grid) and what it decides.

import type { Clock } from '../../internal/clock.ts';
import type { WeftError } from '../../internal/errors.ts';
import type { FetchKind } from '../in-flight.ts';
import type { Membership } from '../membership.ts';
import type { IntentAnswer, PleaseFetchRequest, PleaseFetchResult } from '../rpc/index.ts';
import type { ExhaustedReason } from './errors.ts';

export interface CascadeDeps {
  /** The view ranks are computed on: the requester's own, never a peer's. */
  readonly membership: Membership;
  /** This node's membership id. */
  readonly self: string;
  readonly clock: Clock;
  /** Uniform in [0, 1); jitters the origin fallback. Default `Math.random`. */
  readonly random?: () => number;
  /** True when this node's store holds `key`. A rejection counts as "not held". */
  hasLocal(key: string): Promise<boolean>;
  /** Nodes announcing `key` in the provider directory. A rejection counts as "none". */
  findProviders(key: string, signal: AbortSignal): Promise<string[]>;
  /** `CoordClient.intent`: a call to `self` is answered locally. A rejection means unreachable. */
  intent(node: string, key: string, signal: AbortSignal): Promise<IntentAnswer>;
  /** `CoordClient.pleaseFetch`: a call to `self` takes the local path. */
  pleaseFetch(node: string, request: PleaseFetchRequest, signal: AbortSignal): Promise<PleaseFetchResult[]>;
  /** Provider-directory health, 0..1; read once per resolution. Absent: healthy (1). */
  directoryHealth?(): number;
}

export interface ResolveOptions {
  readonly kind: FetchKind;
  /** Bytes, when known: sets a blob's stall threshold. */
  readonly size?: number | undefined;
  /** The origin registry URL; without it nobody can be asked to fetch, nor can this node. */
  readonly origin?: string | undefined;
  readonly repository?: string | undefined;
  /**
   * The request carries its own registry credential: peers' auth, not-found and rate-limited
   * failures say nothing about it, so they do not short-circuit.
   */
  readonly delegatedCredential?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

export type Decision =
  | { readonly action: 'serve-local' }
  /** Peers to fetch from, in the order to try them. */
  | { readonly action: 'fetch-from-peer'; readonly providers: readonly string[] }
  /** Fetch from the origin directly (the rate-limited fallback; any jitter has been waited). */
  | { readonly action: 'fetch-from-origin'; readonly reason: ExhaustedReason }
  | { readonly action: 'fail'; readonly error: WeftError };

/**
 * The rule that decided a resolution: the cascade's steps 1–2, the honor window, then the
 * rules of the table (step 3). `none-reachable` is rule 5 once expansion is spent.
 */
export type CascadeRule =
  | 'local-hit'
  | 'directory'
  | 'honor-window'
  | 'trusted-failure'
  | 'peer-cached'
  | 'in-flight'
  | 'transient-failure'
  | 'none-reachable'
  | 'please-fetch';

export const CASCADE_RULES: readonly CascadeRule[] = [
  'local-hit',
  'directory',
  'honor-window',
  'trusted-failure',
  'peer-cached',
  'in-flight',
  'transient-failure',
  'none-reachable',
  'please-fetch',
];

/** Published on `weft:coord:cascade` once per resolution. */
export interface CascadeEvent {
  readonly key: string;
  readonly rule: CascadeRule;
  readonly action: Decision['action'];
}

export interface CascadeStats {
  /** Resolutions decided by each rule. */
  readonly rules: Readonly<Record<CascadeRule, number>>;
  /** Top-K expansions to 2K, by cause (table rules 5 and 6). */
  readonly expansions: { readonly noneReachable: number; readonly degraded: number };
  /** intent probes sent, and those that failed or timed out. */
  readonly probes: number;
  readonly probesFailed: number;
  /** Peers whose self-reported rank differs from the requester's (only counted, never used). */
  readonly rankMismatches: number;
  /** Stalled pullers skipped so another node could take over. */
  readonly takeovers: number;
  /** Waits for a puller ended early because every node waited on left the membership. */
  readonly pullersGone: number;
  readonly pleaseFetches: number;
  /** Directory polls while waiting for a puller. */
  readonly polls: number;
  /** Reads of the directory or the local store that failed (treated as "none"). */
  readonly lookupFailures: number;
  readonly honorWindowsOpened: number;
  readonly honorWindowsEvicted: number;
  readonly originFallbacks: number;
  /** Fallbacks refused by the per-node rate limit. */
  readonly originFallbacksRefused: number;
}
