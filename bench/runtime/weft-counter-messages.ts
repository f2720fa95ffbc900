// What the bench process and the Weft counter process (weft-counter-server.ts) say to each other
// over the IPC channel `child_process.fork` opens. The child sends `ready` once, then answers each
// command with one reply carrying the command's id. Closing the channel asks the child to stop.
//
// Each side checks what it reads: the other side is another process.

/** The function both sides name: `bench/counter`, one int value `count`. */
export const weftCounter = {
  namespace: 'bench',
  name: 'counter',
  state: 'count',
  /** The type of the ingress messages: an int, the amount to add (always 1). */
  messageType: 'io.statefun.types/int',
} as const;

/** The most keys `counts` reads at once (the suite's key space). */
export const maxCountedKeys = 1_000_000;

export type CounterRequest =
  /**
   * Waits until the runtime has run and committed `accepted` ingress messages in all (the 202s
   * the bench process has had), then answers with the runtime's figures.
   */
  | { readonly op: 'settle'; readonly accepted: number }
  /** The stored `count` of keys 0 to `keys` − 1 (0 for a key never written). */
  | { readonly op: 'counts'; readonly keys: number };

/** A request with the id its reply carries. */
export type CounterCommand = CounterRequest & { readonly id: number };

/** The runtime's figures since it started: cumulative, so the bench process takes differences. */
export interface CounterStats {
  /** Ingress messages appended (answered 202). */
  readonly accepted: number;
  /** Ingress messages run and committed. */
  readonly committedMessages: number;
  /** Calls of the counter function: more than committed messages if a batch ran twice. */
  readonly invocations: number;
  /** Store commits of batches, batches committed, and the largest commit. */
  readonly commits: number;
  readonly batches: number;
  readonly largestCommit: number;
  /** Trouble that the figures must not hide: each must stay 0. */
  readonly batchFailures: number;
  readonly refused: number;
  readonly errorsLogged: number;
}

export type CounterReply =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'settled'; readonly id: number; readonly stats: CounterStats }
  | { readonly type: 'counts'; readonly id: number; readonly counts: readonly number[] }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/** The start of a message, for an error: JSON.stringify gives undefined for some values. */
function describe(message: unknown): string {
  const text = JSON.stringify(message) as string | undefined;
  return (text ?? String(message)).slice(0, 200);
}

function recordOf(message: unknown, what: string): Record<string, unknown> {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new TypeError(`${what}: not an object: ${describe(message)}`);
  }
  return message as Record<string, unknown>;
}

function isCount(value: unknown, most = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= most;
}

export function parseCommand(message: unknown): CounterCommand {
  const command = recordOf(message, 'weft counter command');
  const { op, id } = command;
  if (isCount(id)) {
    if (op === 'settle' && isCount(command['accepted'])) return { op, id, accepted: command['accepted'] };
    if (op === 'counts' && isCount(command['keys'], maxCountedKeys) && command['keys'] > 0) {
      return { op, id, keys: command['keys'] };
    }
  }
  throw new TypeError(`weft counter command: unknown: ${describe(message)}`);
}

const statsFields = [
  'accepted',
  'committedMessages',
  'invocations',
  'commits',
  'batches',
  'largestCommit',
  'batchFailures',
  'refused',
  'errorsLogged',
] as const satisfies readonly (keyof CounterStats)[];

function parseStats(value: unknown): CounterStats {
  const stats = recordOf(value, 'weft counter stats');
  const parsed: Partial<Record<keyof CounterStats, number>> = {};
  for (const field of statsFields) {
    const figure = stats[field];
    if (!isCount(figure)) throw new TypeError(`weft counter stats: ${field} is ${String(figure)}`);
    parsed[field] = figure;
  }
  return parsed as CounterStats;
}

export function parseReply(message: unknown): CounterReply {
  const reply = recordOf(message, 'weft counter reply');
  const { type, id } = reply;
  if (type === 'ready' && isCount(reply['port'], 65_535) && reply['port'] > 0) {
    return { type, port: reply['port'] };
  }
  if (isCount(id)) {
    if (type === 'settled') return { type, id, stats: parseStats(reply['stats']) };
    if (type === 'failed' && typeof reply['message'] === 'string') {
      return { type, id, message: reply['message'] };
    }
    const counts = reply['counts'];
    if (
      type === 'counts' &&
      Array.isArray(counts) &&
      counts.length <= maxCountedKeys &&
      counts.every((count) => isCount(count))
    ) {
      return { type, id, counts };
    }
  }
  throw new TypeError(`weft counter reply: unexpected: ${describe(message)}`);
}
