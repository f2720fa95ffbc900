// The runtime's two grid messages between the nodes of a cluster (docs/wire/grid.md §11):
//
// - forward (handler 28): messages ingress took for addresses another node owns, sent to that
//   node, which appends them to the store and answers once they are durable. MessagePack: an array
//   of envelopes, each `[namespace, type, id, caller | nil, typename, value, ingressId | nil]`,
//   caller being `[namespace, type, id]`. The answer is a map: `{ok: [[seq, duplicate], …]}` in
//   the order sent, `{full: what, limit}` when the owner pushes back (nothing was appended), or
//   `{error: message, code}` when it refused them.
// - wake (handler 29): addresses with new inbox messages in the store that the receiver owns, as
//   an array of `[namespace, type, id]`; no answer. A lost wake costs latency only: each node also
//   scans its partitions' inboxes.
//
// A request comes from a peer that passed the grid's authentication, and is checked all the same:
// a malformed one is refused whole with a clear error, never half applied.

import { Packr } from 'msgpackr';

import { CapacityExceededError, ClosedError } from '../../internal/errors.ts';
import { MAX_INGRESS_ID_LENGTH } from '../store/store-records.ts';
import type { Appended, Envelope, StoredAddress } from '../store/state-store.ts';
import { UnknownFunctionTypeError } from '../errors.ts';

export const FORWARD_HANDLER = 28;
export const WAKE_HANDLER = 29;
/** Envelopes in one forward request. */
export const MAX_FORWARD_ENVELOPES = 512;
/** Addresses in one wake. */
export const MAX_WAKE_ADDRESSES = 4_096;
/** Characters in a namespace, type, id or typename carried between nodes. */
const MAX_PART_LENGTH = 4_096;

const packr = new Packr({ useRecords: false, moreTypes: false });

/** A peer sent a forward or wake request that is not one. */
export class MalformedForwardError extends Error {
  override readonly name = 'MalformedForwardError';
}

export type ForwardAnswer =
  | { readonly ok: readonly (readonly [seq: number, duplicate: boolean])[] }
  | { readonly full: string; readonly limit: number }
  | { readonly error: string; readonly code: string };

export function encodeForward(envelopes: readonly Envelope[]): Uint8Array {
  return packr.pack(
    envelopes.map((e) => [
      e.target[0],
      e.target[1],
      e.target[2],
      e.caller === undefined ? null : [...e.caller],
      e.argument.typename,
      e.argument.value,
      e.ingressId ?? null,
    ]),
  );
}

export function decodeForward(payload: Uint8Array | undefined): Envelope[] {
  const items = unpackArray(payload, 'a forward request', MAX_FORWARD_ENVELOPES);
  return items.map((item, i) => {
    if (!Array.isArray(item) || item.length !== 7) {
      throw new MalformedForwardError(`envelope ${i} must be an array of 7 fields`);
    }
    const [namespace, type, id, caller, typename, value, ingressId] = item as unknown[];
    const envelope: Envelope = {
      target: [part(namespace, i, 'namespace'), part(type, i, 'type'), part(id, i, 'id')],
      // A copy: the decoded bytes are a view of the request's buffer, which is not the store's.
      argument: { typename: part(typename, i, 'typename'), value: bytes(value, i).slice() },
      ...(caller === null ? {} : { caller: address(caller, `envelope ${i}'s caller`) }),
      ...(ingressId === null ? {} : { ingressId: ingressIdOf(ingressId, i) }),
    };
    return envelope;
  });
}

export function encodeAppended(appended: readonly Appended[]): Uint8Array {
  return packr.pack({ ok: appended.map((a) => [a.seq, a.duplicate]) });
}

/** The answer for a refused forward: backpressure stays retryable on the sending node. */
export function encodeRefusal(error: unknown): Uint8Array {
  if (error instanceof CapacityExceededError) {
    return packr.pack({ full: error.message.replace(/ is full \(limit \d+\)$/, ''), limit: error.limit });
  }
  const code =
    typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
      ? (error as { code: string }).code
      : 'ERROR';
  return packr.pack({ error: error instanceof Error ? error.message : String(error), code });
}

/**
 * The owner's answer for `envelopes`, as the appends it made; throws what the owner refused
 * with (a `CapacityExceededError` for backpressure).
 */
export function decodeAnswer(payload: Uint8Array | undefined, envelopes: readonly Envelope[]): Appended[] {
  if (payload === undefined) throw new MalformedForwardError('a forward answer is empty');
  let answer: unknown;
  try {
    answer = packr.unpack(payload);
  } catch (error) {
    throw new MalformedForwardError('a forward answer is not MessagePack', { cause: error });
  }
  if (typeof answer !== 'object' || answer === null)
    throw new MalformedForwardError('a forward answer must be a map');
  const fields = answer as Record<string, unknown>;
  if (typeof fields['full'] === 'string' && typeof fields['limit'] === 'number') {
    throw new CapacityExceededError(`${fields['full']} on the owning node`, fields['limit']);
  }
  if (typeof fields['error'] === 'string') {
    const message = `the owning node refused the messages: ${fields['error']}`;
    if (fields['code'] === ClosedError.code) throw new ClosedError(message);
    if (fields['code'] === UnknownFunctionTypeError.code) {
      throw new UnknownFunctionTypeError(
        envelopes[0] === undefined ? '?' : `${envelopes[0].target[0]}/${envelopes[0].target[1]}`,
      );
    }
    throw new Error(message);
  }
  const ok = fields['ok'];
  if (!Array.isArray(ok) || ok.length !== envelopes.length) {
    throw new MalformedForwardError(`a forward answer must hold ${envelopes.length} results`);
  }
  return envelopes.map((envelope, i): Appended => {
    const result: unknown = ok[i];
    if (!Array.isArray(result) || !Number.isSafeInteger(result[0]) || typeof result[1] !== 'boolean') {
      throw new MalformedForwardError(`result ${i} of a forward answer must be [seq, duplicate]`);
    }
    return { ...envelope, seq: result[0] as number, duplicate: result[1] };
  });
}

export function encodeWake(addresses: readonly StoredAddress[]): Uint8Array {
  return packr.pack(addresses.map((a) => [...a]));
}

export function decodeWake(payload: Uint8Array | undefined): StoredAddress[] {
  return unpackArray(payload, 'a wake', MAX_WAKE_ADDRESSES).map((item, i) => address(item, `address ${i}`));
}

function unpackArray(payload: Uint8Array | undefined, what: string, max: number): unknown[] {
  if (payload === undefined) throw new MalformedForwardError(`${what} is empty`);
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (error) {
    throw new MalformedForwardError(`${what} is not MessagePack`, { cause: error });
  }
  if (!Array.isArray(value)) throw new MalformedForwardError(`${what} must be an array`);
  if (value.length === 0 || value.length > max) {
    throw new MalformedForwardError(`${what} must hold 1 to ${max} items, got ${value.length}`);
  }
  return value;
}

function part(value: unknown, index: number, field: string): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_PART_LENGTH) {
    throw new MalformedForwardError(
      `envelope ${index}'s ${field} must be a string of 1 to ${MAX_PART_LENGTH} characters`,
    );
  }
  return value;
}

function address(value: unknown, what: string): StoredAddress {
  if (
    !Array.isArray(value) ||
    value.length !== 3 ||
    !value.every((p) => typeof p === 'string' && p !== '' && p.length <= MAX_PART_LENGTH)
  ) {
    throw new MalformedForwardError(`${what} must be [namespace, type, id], each a non-empty string`);
  }
  return [value[0] as string, value[1] as string, value[2] as string];
}

function bytes(value: unknown, index: number): Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new MalformedForwardError(`envelope ${index}'s value must be bytes`);
  return value;
}

function ingressIdOf(value: unknown, index: number): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_INGRESS_ID_LENGTH) {
    throw new MalformedForwardError(
      `envelope ${index}'s ingressId must be a string of 1 to ${MAX_INGRESS_ID_LENGTH} characters`,
    );
  }
  return value;
}
