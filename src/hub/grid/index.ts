// weft/hub over the grid: connectors of steps that run inside the Weft cluster reach the hub
// over a grid stream instead of gRPC.
//
// The hub's node calls `serveHubOnGrid(hub, manager)`, which serves reserved grid handler 20
// (HUB_GRID_HANDLER); a connector passes `grid: { manager, node }` to `HubConnector.connect`
// instead of `address`. The stream opens with the registration (a MessagePack map of the gRPC
// registration keys), then carries encoded ProcessRequests one way and ProcessResponses the
// other, under the grid's credits. The hub's status travels as the stream's error, code
// `WEFT_HUB_STATUS_<NAME>`, so the connector behaves exactly as over gRPC: same terminal
// statuses, same reconnects, same replay flagged redelivered.

export { serveHubOnGrid } from './serve.ts';
export { DEFAULT_HUB_GRID_WINDOW, HUB_GRID_HANDLER, MAX_REGISTRATION_BYTES } from './protocol.ts';
export { decodeGridRegistration, encodeGridRegistration, GRID_REGISTRATION_KEYS } from './registration.ts';
export { HubStatusError, statusOfCode } from './status.ts';

export type { HubGridServer, HubGridServerOptions, HubGridServerStats } from './serve.ts';
export type { HubGridTarget } from './connector-transport.ts';
