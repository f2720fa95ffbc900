// The coord RPCs over the grid (docs/coord.md): `intent(key)` asks a node what it knows about a
// key (cached, being fetched, recently failed, its own HRW rank); `pleaseFetch(keys)` asks it to
// fetch them from the origin, each key once however many nodes ask. `CoordServer` answers both
// from a node's state, for peers and for itself; `CoordClient` calls them, locally for itself.
// Limits: 512 calls served at once (the next refused, not queued), 1 MiB requests, 2 s of work
// per call, 256 keys per pleaseFetch (the client splits longer requests).

export { CoordServer, defaultCoordServerConfig, verifyCoordServerConfig } from './server.ts';
export { CoordClient, DEFAULT_COORD_TIMEOUT_MS } from './client.ts';
export {
  COORD_INTENT_HANDLER,
  COORD_PLEASE_FETCH_HANDLER,
  MAX_COORD_MESSAGE_BYTES,
  MAX_KEYS_PER_PLEASE_FETCH,
  FETCH_KINDS,
  PLEASE_FETCH_OUTCOMES,
} from './messages.ts';
export { CoordBusyError, CoordMessageTooLargeError, MalformedCoordRequestError } from './errors.ts';

export type { CoordNode, CoordServerConfig, CoordServerStats, Fetcher, FetchOrder } from './server.ts';
export type { CoordClientOptions } from './client.ts';
export type { IntentAnswer, PleaseFetchOutcome, PleaseFetchRequest, PleaseFetchResult } from './messages.ts';
