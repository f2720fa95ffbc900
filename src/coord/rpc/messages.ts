// The coord RPCs on the wire: two grid single requests on reserved handler ids, their messages
// as plain MessagePack maps (field names as below, so a peer in another language can speak
// them), and the checks that turn an untrusted payload into a request (on the serving node) or
// into an answer (on the calling node). Unknown fields are ignored, so fields can be added.
//
// intent       { key }                                → IntentAnswer
// pleaseFetch  { keys, origin, repository, kind }     → { results: PleaseFetchResult[] }

import { ProtocolError } from '../../grid/index.ts';
import { isFailureClass, type FailureClass } from '../failure-class.ts';
import type { FetchKind } from '../in-flight.ts';
import { answerFields, checkKey, fieldsOf, typeName } from '../message-fields.ts';
import { MalformedCoordRequestError } from './errors.ts';

/** Grid handler ids (reserved range) of the two coord RPCs. */
export const COORD_INTENT_HANDLER = 16;
export const COORD_PLEASE_FETCH_HANDLER = 17;

/** Keys in one pleaseFetch call; a larger request is refused whole (clients chunk). */
export const MAX_KEYS_PER_PLEASE_FETCH = 256;
/** Largest coord request a node reads (Gantry's 1 MiB read cap). */
export const MAX_COORD_MESSAGE_BYTES = 1024 * 1024;
/** Longest origin URL and repository name accepted. */
export const MAX_ORIGIN_LENGTH = 2048;
export const MAX_REPOSITORY_LENGTH = 1024;

export const FETCH_KINDS: readonly FetchKind[] = ['blob', 'manifest', 'config'];

/** What a node knows about one key, answered from its own state. */
export interface IntentAnswer {
  /** The key is in this node's store (a store that cannot answer counts as "not cached"). */
  readonly hasCached: boolean;
  /** This node is fetching the key from the origin now. */
  readonly inFlight: boolean;
  /** When that fetch started, Unix-epoch ms (only when `inFlight`). */
  readonly startedAtWallMs?: number;
  /** This node's own HRW rank for the key on its own membership view; −1 if it is not in it. */
  readonly hrwRank: number;
  /** The key failed here recently and is in cooldown. */
  readonly recentlyFailed: boolean;
  /** End of that cooldown, Unix-epoch ms (only when `recentlyFailed`). */
  readonly cooldownUntilWallMs?: number;
  readonly failureClass?: FailureClass;
}

/** Asks a node to fetch keys from the origin. One origin, repository and kind per call. */
export interface PleaseFetchRequest {
  /** OCI digests; one that is not well formed is left out of the results. */
  readonly keys: readonly string[];
  /** The origin registry's URL, e.g. `https://registry-1.docker.io`. */
  readonly origin: string;
  /** The repository name, e.g. `library/alpine`. */
  readonly repository: string;
  readonly kind: FetchKind;
}

export type PleaseFetchOutcome = 'started' | 'already-running' | 'recently-failed' | 'unspecified';

export const PLEASE_FETCH_OUTCOMES: readonly PleaseFetchOutcome[] = [
  'started',
  'already-running',
  'recently-failed',
  'unspecified',
];

export interface PleaseFetchResult {
  readonly key: string;
  /**
   * `started`: this call started the fetch; `already-running`: a fetch was running already;
   * `recently-failed`: the key is in cooldown here; `unspecified`: the node did not start it
   * (no fetcher, the fetcher declined, or it is at capacity).
   */
  readonly outcome: PleaseFetchOutcome;
  /** For `started` and `already-running`: when the fetch started, Unix-epoch ms. */
  readonly startedAtWallMs?: number;
  /** For `recently-failed`: when the cooldown ends, Unix-epoch ms, and why the key failed. */
  readonly cooldownUntilWallMs?: number;
  readonly failureClass?: FailureClass;
}

/** A checked pleaseFetch: its keys are not checked yet (a bad key is left out, not refused). */
export interface CheckedPleaseFetch {
  readonly keys: readonly unknown[];
  readonly origin: string;
  readonly repository: string;
  readonly kind: FetchKind;
}

// --- Requests, as the serving node reads them -----------------------------------------------------

/** The key of an intent request; a bad one is a `MalformedCoordRequestError` saying why. */
export function parseIntentRequest(value: unknown): string {
  return checkIntentKey(fieldsOf(value, 'an intent request')['key']);
}

export function checkIntentKey(key: unknown): string {
  return checkKey(key, 'intent.key');
}

/**
 * Checks a pleaseFetch request; anything wrong but a key is a `MalformedCoordRequestError`
 * naming the field. `maxKeys` is the wire limit; a client checking its own call passes Infinity.
 */
export function parsePleaseFetchRequest(
  value: unknown,
  maxKeys: number = MAX_KEYS_PER_PLEASE_FETCH,
): CheckedPleaseFetch {
  const fields = fieldsOf(value, 'a pleaseFetch request');
  const keys = fields['keys'];
  if (keys === undefined) throw new MalformedCoordRequestError('pleaseFetch.keys is missing');
  if (!Array.isArray(keys)) {
    throw new MalformedCoordRequestError(
      `pleaseFetch.keys must be an array of digests, got ${typeName(keys)}`,
    );
  }
  if (keys.length > maxKeys) {
    throw new MalformedCoordRequestError(
      `pleaseFetch carries at most ${maxKeys} keys, got ${keys.length} (split the request)`,
    );
  }
  return {
    keys,
    origin: checkOrigin(fields['origin']),
    repository: checkRepository(fields['repository']),
    kind: checkKind(fields['kind']),
  };
}

function checkOrigin(origin: unknown): string {
  const text = requiredString(origin, 'pleaseFetch.origin', MAX_ORIGIN_LENGTH);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    throw new MalformedCoordRequestError(
      `pleaseFetch.origin must be an http:// or https:// URL, got ${quote(text)}`,
    );
  }
  return text;
}

// The OCI distribution spec's repository name grammar: lowercase path components separated by
// `/`, with `.`, `_`, `__` or dashes inside a component. No `..`, no leading `/`: the name goes
// into an origin URL path.
const repositoryName = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

function checkRepository(repository: unknown): string {
  const text = requiredString(repository, 'pleaseFetch.repository', MAX_REPOSITORY_LENGTH);
  if (!repositoryName.test(text)) {
    throw new MalformedCoordRequestError(
      `pleaseFetch.repository must be an OCI repository name (e.g. library/alpine), got ${quote(text)}`,
    );
  }
  return text;
}

function checkKind(kind: unknown): FetchKind {
  if (kind === undefined) throw new MalformedCoordRequestError('pleaseFetch.kind is missing');
  if (typeof kind !== 'string' || !(FETCH_KINDS as readonly string[]).includes(kind)) {
    throw new MalformedCoordRequestError(
      `pleaseFetch.kind must be one of ${FETCH_KINDS.join(', ')}, got ${typeof kind === 'string' ? quote(kind) : typeName(kind)}`,
    );
  }
  return kind as FetchKind;
}

function requiredString(value: unknown, field: string, maxLength: number): string {
  if (value === undefined || value === '') throw new MalformedCoordRequestError(`${field} is missing`);
  if (typeof value !== 'string') {
    throw new MalformedCoordRequestError(`${field} must be a string, got ${typeName(value)}`);
  }
  if (value.length > maxLength) {
    throw new MalformedCoordRequestError(`${field} is longer than ${maxLength} characters (${value.length})`);
  }
  return value;
}

// --- Answers, as the calling node reads them ------------------------------------------------------

/** Checks an intent answer from a peer; anything off is a `ProtocolError` naming the field. */
export function parseIntentAnswer(value: unknown): IntentAnswer {
  const fields = answerFields(value, 'intent answer');
  const hrwRank = fields['hrwRank'];
  if (typeof hrwRank !== 'number' || !Number.isSafeInteger(hrwRank) || hrwRank < -1) {
    throw new ProtocolError('coord intent answer: hrwRank must be an integer ≥ −1');
  }
  return {
    hasCached: answerBoolean(fields, 'hasCached', 'intent answer'),
    inFlight: answerBoolean(fields, 'inFlight', 'intent answer'),
    ...optionalTime(fields, 'startedAtWallMs', 'intent answer'),
    hrwRank,
    recentlyFailed: answerBoolean(fields, 'recentlyFailed', 'intent answer'),
    ...optionalTime(fields, 'cooldownUntilWallMs', 'intent answer'),
    ...optionalFailureClass(fields, 'intent answer'),
  };
}

/**
 * Checks a pleaseFetch answer from a peer: at most one result per key asked, and only keys
 * that were asked. Anything off is a `ProtocolError`.
 */
export function parsePleaseFetchAnswer(value: unknown, asked: readonly string[]): PleaseFetchResult[] {
  const results = answerFields(value, 'pleaseFetch answer')['results'];
  if (!Array.isArray(results) || results.length > asked.length) {
    throw new ProtocolError(`coord pleaseFetch answer: results must be an array of at most ${asked.length}`);
  }
  const askedKeys = new Set(asked);
  return results.map((result: unknown): PleaseFetchResult => {
    const fields = answerFields(result, 'pleaseFetch result');
    const key = fields['key'];
    if (typeof key !== 'string' || !askedKeys.has(key)) {
      throw new ProtocolError('coord pleaseFetch result: key is not one of the keys asked');
    }
    const outcome = fields['outcome'];
    if (typeof outcome !== 'string' || !(PLEASE_FETCH_OUTCOMES as readonly string[]).includes(outcome)) {
      throw new ProtocolError('coord pleaseFetch result: outcome is not a known outcome');
    }
    return {
      key,
      outcome: outcome as PleaseFetchOutcome,
      ...optionalTime(fields, 'startedAtWallMs', 'pleaseFetch result'),
      ...optionalTime(fields, 'cooldownUntilWallMs', 'pleaseFetch result'),
      ...optionalFailureClass(fields, 'pleaseFetch result'),
    };
  });
}

function answerBoolean(fields: Readonly<Record<string, unknown>>, field: string, what: string): boolean {
  const value = fields[field];
  if (typeof value !== 'boolean') throw new ProtocolError(`coord ${what}: ${field} must be a boolean`);
  return value;
}

function optionalTime<F extends 'startedAtWallMs' | 'cooldownUntilWallMs'>(
  fields: Readonly<Record<string, unknown>>,
  field: F,
  what: string,
): { readonly [K in F]?: number } {
  const value = fields[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ProtocolError(`coord ${what}: ${field} must be a number of ms`);
  }
  return { [field]: value } as { readonly [K in F]?: number };
}

function optionalFailureClass(
  fields: Readonly<Record<string, unknown>>,
  what: string,
): { readonly failureClass?: FailureClass } {
  const value = fields['failureClass'];
  if (value === undefined || value === null) return {};
  if (!isFailureClass(value)) throw new ProtocolError(`coord ${what}: failureClass is not a known class`);
  return { failureClass: value };
}

/** A string echoed in an error, cut short: a hostile peer must not fill logs through it. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
