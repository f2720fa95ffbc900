// The registration a grid connector opens its stream with: a MessagePack map of the gRPC
// registration keys to string values. It comes from any node of the cluster, so it is read as
// hostile: bounded in bytes, a plain map of known keys only, string values only. The names
// themselves are then checked by the hub exactly as gRPC metadata is (parseRegistration).

import { Metadata } from '@grpc/grpc-js';

import { msgpackCodec } from '../../grid/index.ts';
import { errorMessage } from '../../internal/errors.ts';
import { InvalidHubRegistrationError } from '../wire/errors.ts';
import {
  CONNECTOR_GENERATION_KEY,
  CURRENT_STEP_ID_KEY,
  STORYRUN_NAME_KEY,
  STORYRUN_NAMESPACE_KEY,
} from '../wire/registration.ts';
import { MAX_REGISTRATION_BYTES } from './protocol.ts';

/** The keys a registration may carry: the gRPC metadata keys, and `story-name` (the hub's STORY_NAME_KEY). */
export const GRID_REGISTRATION_KEYS: ReadonlySet<string> = new Set([
  STORYRUN_NAME_KEY,
  STORYRUN_NAMESPACE_KEY,
  CURRENT_STEP_ID_KEY,
  CONNECTOR_GENERATION_KEY,
  'story-name',
]);

/** Longest value read; longer names are refused by the hub anyway (the run name allows 253). */
const MAX_VALUE_LENGTH = 256;
/** What the registration payload is called in errors: no single metadata key is at fault. */
const PAYLOAD = 'payload';

const msgpack = msgpackCodec<Record<string, string>>();

export function encodeGridRegistration(entries: Iterable<readonly [string, string]>): Uint8Array {
  return msgpack.encode(Object.fromEntries(entries)) as Uint8Array;
}

/** Reads a registration payload into the metadata the hub reads; throws InvalidHubRegistrationError. */
export function decodeGridRegistration(bytes: Uint8Array | undefined): Metadata {
  if (bytes === undefined || bytes.byteLength === 0) {
    throw new InvalidHubRegistrationError(PAYLOAD, 'is missing: open the stream with the registration map');
  }
  if (bytes.byteLength > MAX_REGISTRATION_BYTES) {
    throw new InvalidHubRegistrationError(
      PAYLOAD,
      `is ${bytes.byteLength} bytes, more than ${MAX_REGISTRATION_BYTES}`,
    );
  }
  let value: unknown;
  try {
    value = msgpack.decode(bytes);
  } catch (error) {
    throw new InvalidHubRegistrationError(PAYLOAD, `is not MessagePack: ${errorMessage(error)}`);
  }
  // A decoded `__proto__` key would show as another prototype: only a plain map is read.
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new InvalidHubRegistrationError(PAYLOAD, 'must be a map of registration keys to strings');
  }
  const metadata = new Metadata();
  for (const [key, entry] of Object.entries(value)) {
    if (!GRID_REGISTRATION_KEYS.has(key)) {
      throw new InvalidHubRegistrationError(
        JSON.stringify(key.slice(0, 64)),
        `is not a registration key (${[...GRID_REGISTRATION_KEYS].join(', ')})`,
      );
    }
    if (typeof entry !== 'string') throw new InvalidHubRegistrationError(key, 'must be a string');
    if (entry.length > MAX_VALUE_LENGTH) {
      throw new InvalidHubRegistrationError(key, `is longer than ${MAX_VALUE_LENGTH} characters`);
    }
    metadata.set(key, entry);
  }
  return metadata;
}
