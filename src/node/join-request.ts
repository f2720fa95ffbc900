// Joining a running cluster. A new node cannot open a grid connection to a member that does not
// list it (the grid refuses unknown hosts), so it first asks a member over plain HTTP:
//
//   POST /v1/cluster/join
//   Weft-Signature: <hex HMAC-SHA256 of the body under the cluster secret>
//   {"host":"http://10.0.0.4:7400","name":"node-4","ts":1733500000000,"nonce":"<32 hex>"}
//
// The member checks the signature and that `ts` is within a minute of its own clock (a captured
// request cannot be replayed later), adds the host to its grid, tells the other members, and
// answers with the members it knows, signed the same way, so the new node can add them all.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { ConfigError } from '../internal/errors.ts';
import { nodeUrl } from './config.ts';

export const JOIN_PATH = '/v1/cluster/join';
export const SIGNATURE_HEADER = 'weft-signature';
export const MAX_JOIN_BODY_BYTES = 64 * 1024;
/** How far a join's timestamp may be from the receiver's clock. */
export const JOIN_MAX_SKEW_MS = 60_000;

export interface MemberIdentity {
  readonly host: string;
  readonly name: string;
}

export interface JoinRequest extends MemberIdentity {
  readonly ts: number;
  readonly nonce: string;
}

export interface JoinAnswer {
  readonly members: readonly MemberIdentity[];
}

export function sign(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export function signatureMatches(secret: string, body: string, signature: string | undefined): boolean {
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(sign(secret, body), 'hex'), Buffer.from(signature, 'hex'));
}

export function newJoinRequest(identity: MemberIdentity, now: number): JoinRequest {
  return { ...identity, ts: now, nonce: randomBytes(16).toString('hex') };
}

/** Checks a join body that passed its signature: a node URL, a name, a fresh timestamp. */
export function parseJoinRequest(body: string, now: number): JoinRequest {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ConfigError('join', 'the body is not JSON');
  }
  const request = value as Partial<Record<keyof JoinRequest, unknown>>;
  if (typeof value !== 'object' || value === null) throw new ConfigError('join', 'the body is not an object');
  const identity = parseIdentity(request, 'join');
  if (typeof request.ts !== 'number' || Math.abs(request.ts - now) > JOIN_MAX_SKEW_MS) {
    throw new ConfigError('join.ts', `must be within ${JOIN_MAX_SKEW_MS / 1000} s of the receiver's clock`);
  }
  if (typeof request.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(request.nonce)) {
    throw new ConfigError('join.nonce', 'must be 32 hex characters');
  }
  return { ...identity, ts: request.ts, nonce: request.nonce };
}

export function parseJoinAnswer(body: string): JoinAnswer {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ConfigError('join answer', 'the body is not JSON');
  }
  const members = (value as { members?: unknown } | null)?.members;
  if (!Array.isArray(members) || members.length > 1024) {
    throw new ConfigError('join answer.members', 'must be a list of at most 1024 members');
  }
  return { members: members.map((m: unknown, i) => parseIdentity(m, `join answer.members[${i}]`)) };
}

export function parseIdentity(value: unknown, field: string): MemberIdentity {
  if (typeof value !== 'object' || value === null) throw new ConfigError(field, 'must be an object');
  const { host, name } = value as { host?: unknown; name?: unknown };
  const url = nodeUrl(host, `${field}.host`);
  if (typeof name !== 'string' || name === '' || name.length > 128) {
    throw new ConfigError(`${field}.name`, 'must be a string of 1 to 128 characters');
  }
  return { host: url, name };
}
