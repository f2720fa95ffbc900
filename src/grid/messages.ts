// Payloads of the control frames: handshake, pings, stream windows and errors.
//
// Each is a small MessagePack value with short string keys. Decoders check every field
// they read, so a malformed control frame is a `ProtocolError` naming the field, never
// an exception from deep inside the connection.

import { Packr } from 'msgpackr';

import { ProtocolError, REFUSAL_REASONS, RemoteError, type RefusalReason } from './errors.ts';

// Plain MessagePack: no msgpackr records or extensions, so any MessagePack library reads it.
// 64-bit integers read as numbers: other encoders write a millisecond time as uint64, and
// the decoders below refuse anything past 2^53 anyway.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

function unpack(bytes: Uint8Array | undefined, what: string): unknown {
  if (bytes === undefined) throw new ProtocolError(`${what}: payload missing`);
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new ProtocolError(`${what}: payload is not MessagePack`, { cause: error });
  }
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError(`${what}: expected a map`);
  }
  return value as Record<string, unknown>;
}

function field<T>(
  map: Record<string, unknown>,
  key: string,
  what: string,
  check: (v: unknown) => v is T,
  kind: string,
): T {
  const value = map[key];
  if (!check(value)) throw new ProtocolError(`${what}: field ${key} must be ${kind}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** Nonces are 16 random bytes, like node ids. */
export const NONCE_BYTES = 16;
const NODE_ID_BYTES = 16;
/** Longest host URL a handshake may name; a real one is far shorter. */
const MAX_HOST_LENGTH = 2_048;

/** The acceptor's first frame, sent as soon as the socket is upgraded: who it is and its nonce. */
export interface Challenge {
  readonly version: number;
  readonly nodeId: Uint8Array;
  /** The acceptor's own host URL. */
  readonly host: string;
  /** The acceptor's wall time in whole ms since the epoch. */
  readonly timeMs: number;
  readonly nonce: Uint8Array;
}

export function encodeChallenge(m: Challenge): Buffer {
  return pack({ v: m.version, id: m.nodeId, host: m.host, t: m.timeMs, n: m.nonce });
}

export function decodeChallenge(bytes: Uint8Array | undefined): Challenge {
  const what = 'Challenge';
  const map = record(unpack(bytes, what), what);
  return {
    version: field(map, 'v', what, isUint, 'an unsigned integer'),
    nodeId: fixedBytes(map, 'id', what, NODE_ID_BYTES),
    host: hostField(map, what),
    timeMs: field(map, 't', what, isUint, 'whole ms since the epoch'),
    nonce: fixedBytes(map, 'n', what, NONCE_BYTES),
  };
}

/** The dialler's answer to the Challenge: who it is, its nonce, and its token over both. */
export interface ConnectRequest {
  readonly version: number;
  /** The sender's node id: 16 random bytes, new at every process start. */
  readonly nodeId: Uint8Array;
  /** The sender's own host URL, as listed in the receiver's hosts. */
  readonly host: string;
  /** The sender's wall time in whole ms since the epoch. */
  readonly timeMs: number;
  readonly nonce: Uint8Array;
  /** The dialler's token over the handshake's claims (auth.ts). */
  readonly token: string;
}

export function encodeConnect(m: ConnectRequest): Buffer {
  return pack({ v: m.version, id: m.nodeId, host: m.host, t: m.timeMs, n: m.nonce, token: m.token });
}

/** Decodes a Connect; the version is read first, so a peer of another version is told so. */
export function decodeConnect(bytes: Uint8Array | undefined): ConnectRequest {
  const what = 'Connect';
  const map = record(unpack(bytes, what), what);
  const version = field(map, 'v', what, isUint, 'an unsigned integer');
  return {
    version,
    nodeId: fixedBytes(map, 'id', what, NODE_ID_BYTES),
    host: hostField(map, what),
    timeMs: field(map, 't', what, isUint, 'whole ms since the epoch'),
    nonce: fixedBytes(map, 'n', what, NONCE_BYTES),
    token: boundedString(map, 'token', what, 1_024),
  };
}

/** The version of a Connect that may not decode in full (a peer speaking another version). */
export function connectVersion(bytes: Uint8Array | undefined): number | undefined {
  try {
    const v = record(unpack(bytes, 'Connect'), 'Connect')['v'];
    return isUint(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export type ConnectResponse =
  /** Accepted: the acceptor's token over the same claims, so both sides prove the secret. */
  | { readonly accepted: true; readonly token: string }
  | { readonly accepted: false; readonly reason: RefusalReason; readonly detail: string };

export function encodeConnectResponse(m: ConnectResponse): Buffer {
  return pack(m.accepted ? { ok: true, token: m.token } : { ok: false, reason: m.reason, detail: m.detail });
}

const refusalReasons = new Set<string>(REFUSAL_REASONS);

export function decodeConnectResponse(bytes: Uint8Array | undefined): ConnectResponse {
  const what = 'ConnectResponse';
  const map = record(unpack(bytes, what), what);
  const accepted = field(map, 'ok', what, isBoolean, 'a boolean');
  if (accepted) return { accepted, token: boundedString(map, 'token', what, 1_024) };
  const reason = field(map, 'reason', what, isString, 'a string');
  return {
    accepted,
    reason: (refusalReasons.has(reason) ? reason : 'bad-handshake') as RefusalReason,
    detail: field(map, 'detail', what, isString, 'a string').slice(0, MAX_ERROR_MESSAGE),
  };
}

function fixedBytes(map: Record<string, unknown>, key: string, what: string, length: number): Uint8Array {
  const value = map[key];
  if (!isBytes(value) || value.length !== length) {
    throw new ProtocolError(`${what}: field ${key} must be ${length} bytes`);
  }
  return value;
}

function boundedString(map: Record<string, unknown>, key: string, what: string, max: number): string {
  const value = field(map, key, what, isString, 'a string');
  if (value.length > max) throw new ProtocolError(`${what}: field ${key} is longer than ${max} characters`);
  return value;
}

function hostField(map: Record<string, unknown>, what: string): string {
  return boundedString(map, 'host', what, MAX_HOST_LENGTH);
}

/** Ping payload: the sender's monotonic time, echoed in the pong to measure the round trip. */
export function encodePing(sentAt: number): Buffer {
  return pack({ t: sentAt });
}

export function decodePing(bytes: Uint8Array | undefined): number {
  return field(record(unpack(bytes, 'Ping'), 'Ping'), 't', 'Ping', isFiniteNumber, 'a number');
}

export interface Pong {
  readonly sentAt: number;
  /** The mux pinged is unknown on the receiver. */
  readonly notFound: boolean;
}

export function encodePong(pong: Pong): Buffer {
  return pack(pong.notFound ? { t: pong.sentAt, nf: true } : { t: pong.sentAt });
}

export function decodePong(bytes: Uint8Array | undefined): Pong {
  const map = record(unpack(bytes, 'Pong'), 'Pong');
  return { sentAt: field(map, 't', 'Pong', isFiniteNumber, 'a number'), notFound: map['nf'] === true };
}

/** ConnectMux payload: the caller's response window and the stream's initial payload. */
export interface StreamOpen {
  /** Responses the caller buffers; the handler starts with this many output credits. 0 = stateless. */
  readonly outWindow: number;
  readonly initial: Uint8Array | undefined;
}

export function encodeStreamOpen(m: StreamOpen): Buffer {
  return pack([m.outWindow, m.initial ?? null]);
}

export function decodeStreamOpen(bytes: Uint8Array | undefined): StreamOpen {
  const value = unpack(bytes, 'ConnectMux');
  if (!Array.isArray(value) || value.length !== 2)
    throw new ProtocolError('ConnectMux: expected [window, payload]');
  const [outWindow, initial] = value as [unknown, unknown];
  if (!isUint(outWindow)) throw new ProtocolError('ConnectMux: window must be an unsigned integer');
  if (initial !== null && !isBytes(initial))
    throw new ProtocolError('ConnectMux: payload must be bytes or nil');
  return { outWindow, initial: initial ?? undefined };
}

/** AckMux payload: the handler's input window, the caller's initial input credits. */
export function encodeWindow(window: number): Buffer {
  return pack(window);
}

export function decodeWindow(bytes: Uint8Array | undefined): number {
  const value = unpack(bytes, 'AckMux');
  if (!isUint(value)) throw new ProtocolError('AckMux: window must be an unsigned integer');
  return value;
}

/** Unblock payload: the number of credits returned; an absent payload means one. */
export function encodeCredits(count: number): Buffer | undefined {
  return count === 1 ? undefined : pack(count);
}

export function decodeCredits(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 1;
  const value = unpack(bytes, 'Unblock');
  if (!isUint(value) || value === 0) throw new ProtocolError('Unblock: credits must be an integer >= 1');
  return value;
}

/**
 * An error as it crosses the wire: code, message, retryable. Any thrown object keeps a
 * string `code` of its own (a Weft error's, Node's `ECONNRESET`, an application's) and a
 * boolean `retryable`; a code that is not a short printable word (`isWireCode`) is replaced
 * by `WEFT_GRID_REMOTE`, and `retryable` is false unless it is `true`.
 */
export function encodeError(error: unknown): Buffer {
  const { code, retryable } = errorIdentity(error);
  const message = describe(error);
  // A message is for people; a huge one would only make the error frame itself too large.
  const trimmed = message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}…` : message;
  return pack({ code, message: trimmed, retryable });
}

const MAX_ERROR_MESSAGE = 4_096;
/** Longest error code sent or accepted: real ones (`WEFT_GRID_REMOTE`, `ERR_STREAM_PREMATURE_CLOSE`) are far shorter. */
export const MAX_ERROR_CODE_LENGTH = 64;
// Printable ASCII without spaces: a code is matched on and logged, so nothing that could
// fake a log line, hide in a terminal or differ by Unicode normalisation.
const WIRE_CODE = /^[\x21-\x7e]+$/;

/** True for a code that may cross the wire: 1 to 64 printable ASCII characters, no spaces. */
export function isWireCode(code: unknown): code is string {
  return typeof code === 'string' && code.length <= MAX_ERROR_CODE_LENGTH && WIRE_CODE.test(code);
}

/**
 * The code and retryability a thrown value carries, read without trusting it: a getter that
 * throws, a Proxy or a value of any type yields the defaults instead of an exception.
 */
function errorIdentity(error: unknown): { code: string; retryable: boolean } {
  if ((typeof error !== 'object' || error === null) && typeof error !== 'function') {
    return { code: RemoteError.code, retryable: false };
  }
  const fields = error as { readonly code?: unknown; readonly retryable?: unknown };
  let code: unknown;
  let retryable: unknown;
  try {
    code = fields.code;
  } catch {
    code = undefined;
  }
  try {
    retryable = fields.retryable;
  } catch {
    retryable = undefined;
  }
  return { code: isWireCode(code) ? code : RemoteError.code, retryable: retryable === true };
}

/** A thrown value's message; never throws, whatever was thrown (`String(Object.create(null))` does). */
function describe(error: unknown): string {
  try {
    if (typeof error === 'object' && error !== null) {
      // Errors, and plain objects thrown as errors ({ code, message }).
      const { message } = error as { readonly message?: unknown };
      if (typeof message === 'string') return message;
    }
    return String(error);
  } catch {
    return 'unprintable error';
  }
}

/** Decodes an error payload into a `RemoteError`; a payload that is not one still yields one. */
export function decodeError(bytes: Uint8Array | undefined): RemoteError {
  try {
    const map = record(unpack(bytes, 'error'), 'error');
    // The peer's code is checked as ours are: a caller may match on it and log it. Our
    // messages are at most MAX_ERROR_MESSAGE characters and an ellipsis.
    const code = isWireCode(map['code']) ? map['code'] : RemoteError.code;
    const message = isString(map['message'])
      ? map['message'].slice(0, MAX_ERROR_MESSAGE + 1)
      : 'remote error';
    return new RemoteError(code, message, map['retryable'] === true);
  } catch (error) {
    return new RemoteError(RemoteError.code, 'remote error with an unreadable payload', false, {
      cause: error,
    });
  }
}
