// The one-hop provider directory (DESIGN §6, docs/coord.md): which nodes hold a key. A holder
// announces the key to the key's top-K HRW nodes (K = 3, on its own membership view), which
// remember it for a TTL (10 min; re-announcing renews it, withdrawing ends it); a node looking
// for the key asks those top-K nodes on its own view and merges their answers. Grid handlers
// 18 (`announce`) and 19 (`whoHas`). Invariants: a provider id is always the grid identity of
// the node that announced it; every table is bounded (keys, providers per key) and what it
// refuses or evicts is counted; a directory node that is down or slow is skipped after 2 s.

export {
  ProviderDirectory,
  defaultProviderDirectoryConfig,
  verifyProviderDirectoryConfig,
} from './provider-directory.ts';
export {
  DIRECTORY_ANNOUNCE_HANDLER,
  DIRECTORY_WHO_HAS_HANDLER,
  MAX_KEYS_PER_ANNOUNCE,
  MAX_PROVIDERS_PER_ANSWER,
  MAX_PROVIDER_ID_LENGTH,
} from './messages.ts';

export type {
  AnnounceReport,
  CallSignal,
  ProviderDirectoryConfig,
  ProviderDirectoryOptions,
  ProviderDirectoryStats,
} from './provider-directory.ts';
export type { AnnounceAnswer, AnnounceRequest, WhoHasAnswer } from './messages.ts';
export type { ProviderTableStats } from './provider-table.ts';
