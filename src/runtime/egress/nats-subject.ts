// Which NATS subject an egress record goes to, and what such a subject may be. The server would refuse (or, past its control
// line limit, drop the connection over) a subject with whitespace, an empty token or a wildcard,
// so one is checked before it is used.

import { ConfigError } from '../../internal/errors.ts';
import type { OutboxRecord } from '../store/state-store.ts';
import { EgressDeliveryError } from './egress-errors.ts';

/** Longest subject published to; the server's default control line is 4 KiB, headers excluded. */
export const MAX_SUBJECT_LENGTH = 1_024;

const SUBJECT = /^[^\s.*>\p{Cc}]+(?:\.[^\s.*>\p{Cc}]+)*$/u;

/** Why `subject` cannot be published to, or undefined when it can. */
export function subjectProblem(subject: unknown): string | undefined {
  if (typeof subject !== 'string') return `a subject must be a string, got ${typeof subject}`;
  if (subject.length > MAX_SUBJECT_LENGTH) {
    return `subject is ${subject.length} characters long, more than ${MAX_SUBJECT_LENGTH}`;
  }
  if (!SUBJECT.test(subject)) {
    return `${JSON.stringify(subject)} is not a NATS subject to publish to (empty token, whitespace or wildcard)`;
  }
  return undefined;
}

/** A fixed subject, or one chosen per record. */
export type SubjectOption = string | ((record: OutboxRecord) => string);

/** A fixed subject is checked now; a function's subjects are checked per record. */
export function checkSubjectOption(field: string, subject: SubjectOption): SubjectOption {
  if (typeof subject === 'function') return subject;
  const problem = subjectProblem(subject);
  if (problem !== undefined) throw new ConfigError(field, problem);
  return subject;
}

/**
 * The subject of `record`. A subject function that throws or answers a bad subject fails the
 * delivery (retried, logged): it is a configuration bug to fix, not a reason to drop the record.
 */
export function subjectFor(subject: SubjectOption, record: OutboxRecord): string {
  if (typeof subject === 'string') return subject;
  let chosen: unknown;
  try {
    chosen = subject(record);
  } catch (error) {
    throw new EgressDeliveryError('nats', `the subject function threw for outbox record ${record.seq}`, {
      cause: error,
    });
  }
  const problem = subjectProblem(chosen);
  if (problem !== undefined) {
    throw new EgressDeliveryError(
      'nats',
      `the subject function's subject for outbox record ${record.seq} is unusable: ${problem}`,
    );
  }
  return chosen as string;
}
