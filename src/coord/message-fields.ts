// Reading the MessagePack maps the coord handlers exchange: a request a peer sent (a fault is
// the caller's: `MalformedCoordRequestError`) or an answer a peer gave (a fault is the peer's:
// `ProtocolError`). Shared by the RPCs and the provider directory.

import { ProtocolError } from '../grid/index.ts';
import { parseDigest } from './digest.ts';
import { MalformedCoordRequestError } from './rpc/errors.ts';

/** The fields of a request map, or a `MalformedCoordRequestError` saying what it was instead. */
export function fieldsOf(value: unknown, what: string): Readonly<Record<string, unknown>> {
  if (!isMap(value)) throw new MalformedCoordRequestError(`${what} must be a map, got ${typeName(value)}`);
  return value;
}

/** The fields of an answer map, or a `ProtocolError` saying what it was instead. */
export function answerFields(value: unknown, what: string): Readonly<Record<string, unknown>> {
  if (!isMap(value)) throw new ProtocolError(`coord ${what} must be a map, got ${typeName(value)}`);
  return value;
}

/** A checked digest, or a `MalformedCoordRequestError` naming `field`. */
export function checkKey(key: unknown, field: string): string {
  if (key === undefined) throw new MalformedCoordRequestError(`${field} is missing`);
  try {
    return parseDigest(key).digest;
  } catch (error) {
    throw new MalformedCoordRequestError(`${field}: ${(error as Error).message}`, { cause: error });
  }
}

/** What a value is, for an error message. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value;
}

function isMap(value: unknown): value is Readonly<Record<string, unknown>> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}
