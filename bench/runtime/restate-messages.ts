// What the Restate peer's three processes say to each other.
//
// restate-peer.ts (the bench process) drives restate-driver.ts (inside a network namespace of
// its own) by lines of JSON: commands on the driver's stdin, replies on its stdout, one reply
// per command, in order. Closing the driver's stdin asks it to stop. The driver's endpoint
// process (restate-endpoint.ts) sends it one IPC message: its port.
//
// Each side checks what it reads: the other side is another process.

import { checkLoad, type Load, type LoadResult } from './workload.ts';

export const restateCounter = {
  /** The virtual object's name: calls go to /counter/<key>/add. */
  service: 'counter',
  state: 'count',
} as const;

export type DriverCommand = { readonly op: 'run'; readonly load: Load } | { readonly op: 'check' };

export type DriverReply =
  | { readonly type: 'ready'; readonly version: string }
  | { readonly type: 'result'; readonly result: LoadResult }
  | { readonly type: 'checked'; readonly keys: number }
  | { readonly type: 'failed'; readonly message: string };

/** A line is at most this long; the longest reply is a failure message with a log tail. */
export const maxLineBytes = 256 * 1024;

function record(line: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new TypeError(`${what}: not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${what}: not an object: ${line.slice(0, 200)}`);
  }
  return value as Record<string, unknown>;
}

export function parseCommand(line: string): DriverCommand {
  const command = record(line, 'restate driver command');
  if (command['op'] === 'check') return { op: 'check' };
  if (command['op'] === 'run' && typeof command['load'] === 'object' && command['load'] !== null) {
    const { concurrency, keys, requests, durationMs } = command['load'] as Record<string, unknown>;
    checkLoad({ concurrency, keys, requests, durationMs } as Load);
    // Only the size that was given: a run tells them apart by which key it has.
    const load = (
      requests === undefined ? { concurrency, keys, durationMs } : { concurrency, keys, requests }
    ) as Load;
    return { op: 'run', load };
  }
  throw new TypeError(`restate driver command: unknown: ${line.slice(0, 200)}`);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export function parseReply(line: string): DriverReply {
  const reply = record(line, 'restate driver reply');
  const { type } = reply;
  if (type === 'ready' && typeof reply['version'] === 'string') return { type, version: reply['version'] };
  if (type === 'checked' && isFiniteNumber(reply['keys'])) return { type, keys: reply['keys'] };
  if (type === 'failed' && typeof reply['message'] === 'string') return { type, message: reply['message'] };
  if (type === 'result' && typeof reply['result'] === 'object' && reply['result'] !== null) {
    const { opsPerS, p50Ms, p99Ms, count } = reply['result'] as Record<string, unknown>;
    if (isFiniteNumber(opsPerS) && isFiniteNumber(p50Ms) && isFiniteNumber(p99Ms) && isFiniteNumber(count)) {
      return { type, result: { opsPerS, p50Ms, p99Ms, count } };
    }
  }
  throw new TypeError(`restate driver reply: unexpected: ${line.slice(0, 200)}`);
}

/** The endpoint process's one message: it listens on `port` of 127.0.0.1. */
export interface EndpointReady {
  readonly type: 'ready';
  readonly port: number;
}

export function parseEndpointReady(message: unknown): EndpointReady {
  if (typeof message === 'object' && message !== null) {
    const { type, port } = message as Record<string, unknown>;
    if (
      type === 'ready' &&
      typeof port === 'number' &&
      Number.isSafeInteger(port) &&
      port > 0 &&
      port < 65_536
    ) {
      return { type, port };
    }
  }
  throw new TypeError(`unexpected message from the restate endpoint process: ${JSON.stringify(message)}`);
}
