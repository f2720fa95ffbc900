// Stream keys name one step of one story run: `namespace/run/step`, the hub's unit of buffering,
// sequencing and checkpointing. Each part is a DNS label, so a key is also a safe relative path.

import { InvalidStreamKeyError } from './errors.ts';
import { maxNameLength, nameProblem } from './names.ts';

/** `namespace/run/step`, each part a DNS label. */
export type StreamKey = `${string}/${string}/${string}`;

export interface StreamKeyParts {
  readonly namespace: string;
  readonly run: string;
  readonly step: string;
}

/** Longest valid stream key: three maximal labels and two slashes. */
export const maxStreamKeyLength = maxNameLength * 3 + 2;

/** The key of `step` in story run `run` of `namespace`; throws InvalidStreamKeyError naming the bad part. */
export function streamKey(namespace: string, run: string, step: string): StreamKey {
  checkPart('namespace', namespace);
  checkPart('run', run);
  checkPart('step', step);
  return `${namespace}/${run}/${step}`;
}

/** The parts of a stream key; throws InvalidStreamKeyError for anything `streamKey` would not make. */
export function parseStreamKey(key: string): StreamKeyParts {
  if (typeof key !== 'string') throw new InvalidStreamKeyError('stream key must be a string');
  if (key.length > maxStreamKeyLength) {
    throw new InvalidStreamKeyError(
      `stream key must be at most ${maxStreamKeyLength} characters, got ${key.length}`,
    );
  }
  const parts = key.split('/');
  if (parts.length !== 3) {
    throw new InvalidStreamKeyError(
      `stream key must be namespace/run/step, got ${JSON.stringify(key)} (${parts.length} parts)`,
    );
  }
  const [namespace, run, step] = parts as [string, string, string];
  checkPart('namespace', namespace);
  checkPart('run', run);
  checkPart('step', step);
  return Object.freeze({ namespace, run, step });
}

/** True when `key` is a well-formed stream key. */
export function isStreamKey(key: unknown): key is StreamKey {
  if (typeof key !== 'string') return false;
  try {
    parseStreamKey(key);
    return true;
  } catch {
    return false;
  }
}

function checkPart(part: keyof StreamKeyParts, value: unknown): void {
  const problem = nameProblem(value);
  if (problem !== undefined) throw new InvalidStreamKeyError(`stream key ${part} ${problem}`);
}
