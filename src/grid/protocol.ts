// Protocol constants of the grid wire (docs/wire/grid.md is the full description).
//
// The ops and flags keep the values of MinIO's internal/grid so that anyone who knows
// that protocol reads captures of this one; the handshake, the stream windows and the
// limits are ours.

/**
 * Bumped on any incompatible change, together with the upgrade path: a peer of another
 * version gets 404 at the upgrade, or is refused at the handshake.
 */
export const PROTOCOL_VERSION = 3;

/** The HTTP path the WebSocket upgrade happens on. */
export const GRID_PATH = '/weft/grid/v3';

export const Op = {
  /** The dialler's answer to the Challenge: who it is, its nonce and its token. */
  Connect: 1,
  /** The acceptor's answer to Connect: accepted with its own token, or refused with a reason. */
  ConnectResponse: 2,
  /** Liveness probe: connection level with mux 0, or per stream from the caller. */
  Ping: 3,
  Pong: 4,
  /** Caller → handler: open a stream. */
  ConnectMux: 5,
  /** Handler → caller: the stream could not be opened (unknown handler, too many streams). */
  MuxConnectError: 6,
  /** Handler → caller: the stream is gone on the handler side (also the answer to an unknown mux). */
  DisconnectClientMux: 7,
  /** Caller → handler: the caller cancelled the stream. */
  DisconnectServerMux: 8,
  /** Caller → handler: one input item; EOF flag = input finished. */
  MuxClientMsg: 9,
  /** Handler → caller: one output item; EOF flag = last; EOF+ERR = the handler failed. */
  MuxServerMsg: 10,
  /** Caller → handler: one output credit returned. */
  UnblockSrvMux: 11,
  /** Handler → caller: one input credit returned. */
  UnblockClMux: 12,
  /** Handler → caller: the stream is open; the payload is the handler's input window. */
  AckMux: 13,
  /** Single request and its response; the response echoes the request's mux id. */
  Request: 14,
  Response: 15,
  /** Orderly connection shutdown: the sender is going away. */
  Disconnect: 16,
  /** A batch: the header's seq is the count of complete messages that follow. */
  Merged: 17,
  /** First frame of a handshake, from the acceptor: who it is and its nonce (not in MinIO). */
  Challenge: 18,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

const opNames = new Map<number, string>(Object.entries(Op).map(([name, value]) => [value, name]));

export function isOp(value: number): value is Op {
  return opNames.has(value);
}

export function opName(op: number): string {
  return opNames.get(op) ?? `Op(${op})`;
}

export const Flag = {
  /** A 4-byte CRC-32 ends the message. */
  CRC: 0x01,
  /** Last message of this direction of the mux. */
  EOF: 0x02,
  /** The stream has no flow control and survives reconnects (ConnectMux only). */
  Stateless: 0x04,
  /** The payload is an encoded error. */
  PayloadIsErr: 0x08,
  /** The payload is empty rather than absent. */
  PayloadIsZero: 0x10,
  /** A 32-byte subroute id follows the tuple. */
  Subroute: 0x20,
} as const;

export const KNOWN_FLAGS = 0x3f;

/** The writer merges at most this many queued messages into one Merged frame (as MinIO). */
export const MERGE_MAX_MESSAGES = 50;
/** … and stops merging before the batch reaches this many bytes (as MinIO: < 31 KiB). */
export const MERGE_MAX_BYTES = 31 * 1024;

/** Handler ids 1–63 belong to Weft's own modules; 64–255 are for applications. 0 is invalid. */
export const FIRST_USER_HANDLER = 64;
export const MAX_HANDLER = 255;

/** Length of a subroute id trailer. */
export const SUBROUTE_BYTES = 32;
/** Length of a CRC trailer. */
export const CRC_BYTES = 4;
