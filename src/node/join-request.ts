// Joining a running cluster. A new node cannot open a grid connection to a member that does not
// list it (the grid refuses unknown hosts), so it first asks a member over plain HTTP:
//
//   POST /v1/cluster/join
//   Weft-Signature: <hex HMAC-SHA256 of the body under the cluster secret>
//   {"host":"http://10.0.0.4:7400","name":"node-4","to":"http://10.0.0.1:7400",
//    "ts":1733500000000,"nonce":"<32 hex>"}
//
// The member checks the signature, that the join is addressed to it (`to`), that `ts` is within a
// minute of its own clock and that it has not seen the nonce in that time (a captured request
// cannot be replayed, to it or to another member). It adds the host to its grid, tells the other
// members, and answers with the members it knows and the request's nonce, signed the same way, so
// the new node adds them all, knowing the answer is to its own request.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { ConfigError } from '../internal/errors.ts';
import { nodeUrl } from './config.ts';

export const JOIN_PATH = '/v1/cluster/join';
export const SIGNATURE_HEADER = 'weft-signature';
export const MAX_JOIN_BODY_BYTES = 64 * 1024;
/** 1024 members of at most 128-character names and 4 KiB URLs, with room to spare. */
export const MAX_JOIN_ANSWER_BYTES = 5 * 1024 * 1024;
/** How far a join's timestamp may be from the receiver's clock. */
export const JOIN_MAX_SKEW_MS = 60_000;

export interface MemberIdentity {
  readonly host: string;
  readonly name: string;
}

export interface JoinRequest extends MemberIdentity {
  /** The member the join is sent to. */
  readonly to: string;
  readonly ts: number;
  readonly nonce: string;
}

export interface JoinAnswer {
  /** The nonce of the request answered. */
  readonly nonce: string;
  readonly members: readonly MemberIdentity[];
}

export function sign(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export function signatureMatches(secret: string, body: string, signature: string | undefined): boolean {
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(sign(secret, body), 'hex'), Buffer.from(signature, 'hex'));
}

export function newJoinRequest(identity: MemberIdentity, to: string, now: number): JoinRequest {
  return { ...identity, to, ts: now, nonce: randomBytes(16).toString('hex') };
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
  const to = nodeUrl(request.to, 'join.to');
  return { ...identity, to, ts: request.ts, nonce: request.nonce };
}

/** A signed answer to the request whose nonce is `nonce`. */
export function parseJoinAnswer(body: string, nonce: string): JoinAnswer {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ConfigError('join answer', 'the body is not JSON');
  }
  const answer = value as { members?: unknown; nonce?: unknown } | null;
  if (answer?.nonce !== nonce) throw new ConfigError('join answer.nonce', 'is not the nonce of this join');
  const members = answer.members;
  if (!Array.isArray(members) || members.length > 1024) {
    throw new ConfigError('join answer.members', 'must be a list of at most 1024 members');
  }
  return { nonce, members: members.map((m: unknown, i) => parseIdentity(m, `join answer.members[${i}]`)) };
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
