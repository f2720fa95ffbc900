// The provider directory on the wire: two grid single requests on reserved handler ids, their
// messages plain MessagePack maps (field names as below), and the checks that turn an untrusted
// payload into a request (on the directory node) or into an answer (on the asking node).
// Unknown fields are ignored, so fields can be added.
//
// announce  { keys, withdraw? }  → { recorded }     the provider is the calling node, never a field
// whoHas    { key }              → { providers }

import { ProtocolError } from '../../grid/index.ts';
import { answerFields, checkKey, fieldsOf, typeName } from '../message-fields.ts';
import { MalformedCoordRequestError } from '../rpc/errors.ts';

export { checkKey };

/** Grid handler ids (reserved range) of the two directory RPCs. */
export const DIRECTORY_ANNOUNCE_HANDLER = 18;
export const DIRECTORY_WHO_HAS_HANDLER = 19;

/** Keys in one announce call; a larger request is refused whole (the directory chunks). */
export const MAX_KEYS_PER_ANNOUNCE = 256;
/** Providers in one whoHas answer; an answer with more is a protocol error. */
export const MAX_PROVIDERS_PER_ANSWER = 16;
/** Longest provider id (a node's host URL) accepted anywhere. */
export const MAX_PROVIDER_ID_LENGTH = 1024;

export interface AnnounceRequest {
  readonly keys: readonly string[];
  /** True to withdraw: the caller no longer holds these keys. */
  readonly withdraw?: boolean;
}

export interface AnnounceAnswer {
  /** Keys recorded (or, for a withdrawal, removed) for the caller; refusals not counted. */
  readonly recorded: number;
}

export interface WhoHasAnswer {
  readonly providers: readonly string[];
}

// --- Requests, as the directory node reads them ---------------------------------------------------

/** Checks an announce request: ≤ `maxKeys` digests and an optional boolean `withdraw`. */
export function parseAnnounceRequest(
  value: unknown,
  maxKeys: number = MAX_KEYS_PER_ANNOUNCE,
): { readonly keys: string[]; readonly withdraw: boolean } {
  const fields = fieldsOf(value, 'an announce request');
  const keys = fields['keys'];
  if (keys === undefined) throw new MalformedCoordRequestError('announce.keys is missing');
  if (!Array.isArray(keys)) {
    throw new MalformedCoordRequestError(`announce.keys must be an array of digests, got ${typeName(keys)}`);
  }
  if (keys.length > maxKeys) {
    throw new MalformedCoordRequestError(
      `announce carries at most ${maxKeys} keys, got ${keys.length} (split the request)`,
    );
  }
  const withdraw = fields['withdraw'];
  if (withdraw !== undefined && withdraw !== null && typeof withdraw !== 'boolean') {
    throw new MalformedCoordRequestError(`announce.withdraw must be a boolean, got ${typeName(withdraw)}`);
  }
  // One bad key refuses the whole call: an honest node checks its keys before sending them.
  return {
    keys: keys.map((key: unknown, i) => checkKey(key, `announce.keys[${i}]`)),
    withdraw: withdraw === true,
  };
}

/** The key of a whoHas request; a bad one is a `MalformedCoordRequestError` saying why. */
export function parseWhoHasRequest(value: unknown): string {
  return checkKey(fieldsOf(value, 'a whoHas request')['key'], 'whoHas.key');
}

/** True for a provider id a directory may hold: a non-empty string of at most 1024 characters. */
export function isProviderId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_PROVIDER_ID_LENGTH;
}

// --- Answers, as the asking node reads them -------------------------------------------------------

export function parseAnnounceAnswer(value: unknown, asked: number): AnnounceAnswer {
  const recorded = answerFields(value, 'announce answer')['recorded'];
  if (typeof recorded !== 'number' || !Number.isSafeInteger(recorded) || recorded < 0 || recorded > asked) {
    throw new ProtocolError(`coord announce answer: recorded must be an integer from 0 to ${asked}`);
  }
  return { recorded };
}

/** Checks a whoHas answer from a peer; anything off is a `ProtocolError` naming the field. */
export function parseWhoHasAnswer(value: unknown): WhoHasAnswer {
  const providers = answerFields(value, 'whoHas answer')['providers'];
  if (!Array.isArray(providers) || providers.length > MAX_PROVIDERS_PER_ANSWER) {
    throw new ProtocolError(
      `coord whoHas answer: providers must be an array of at most ${MAX_PROVIDERS_PER_ANSWER}`,
    );
  }
  if (!providers.every(isProviderId)) {
    throw new ProtocolError(
      `coord whoHas answer: each provider must be a non-empty string of at most ${MAX_PROVIDER_ID_LENGTH} characters`,
    );
  }
  return { providers };
}
