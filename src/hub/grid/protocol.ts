// The hub's grid protocol: one reserved stream handler per hub node.
//
//   open (initial payload): a MessagePack map of the registration keys to strings, the same
//                           keys and values a gRPC connector sends as metadata
//   items, caller → hub:    encoded transport.v1.ProcessRequest
//   items, hub → caller:    encoded transport.v1.ProcessResponse
//   end:                    a clean end is gRPC's OK; an error's code is `WEFT_HUB_STATUS_`
//                           and the gRPC status name, its message the status details

/** The grid handler id of the hub's connector streams (one of the ids reserved for Weft's modules). */
export const HUB_GRID_HANDLER = 20;

/** Largest registration payload accepted: the names are short (≤ 253 characters each). */
export const MAX_REGISTRATION_BYTES = 4096;

/** Default stream window, both ways (the grid's default). */
export const DEFAULT_HUB_GRID_WINDOW = 32;
