// The shared part of the hub chaos tests (hub-chaos.test.ts, hub-restart-chaos.test.ts): sizes,
// the schedule of kills and cutovers, and the pipeline of connector processes.

import { randomInt } from 'node:crypto';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { ChildProcessHandle } from './children.ts';
import { RecordTail, SinkLedger } from './sink-ledger.ts';
import { type ConnectorConfig, type Role } from './workload.ts';

export const PARTITIONS = 4;
// 1,000,000 takes 8-13 minutes on a shared 2-core machine (1,300-2,000 packets/s measured with
// the kills and cutovers, alone on the machine). In the suite, beside the other test files, the
// rate falls below 1,000/s: 40,000 keeps the file well inside the suite's 2-minute limit.
export const PACKETS = envCount('WEFT_HUB_CHAOS_PACKETS', 40_000);
export const RESTART_PACKETS = envCount('WEFT_HUB_CHAOS_RESTART_PACKETS', 100_000);
export const CUTOVERS = 20;
export const KILLS = 20;
export const HUB_KILLS = 3;
/** No event sooner than this after the previous one: a new process gets time to connect. */
export const MIN_EVENT_GAP_MS = 300;
/** A run that records nothing new for this long has stalled. */
export const STALL_MS = 30_000;
export const POLL_MS = 100;
export const START_TIMEOUT_MS = 30_000;
export const RETIRE_TIMEOUT_MS = 15_000;
/** Bounds that scale with the count: the test never hangs, a slow machine still finishes. */
export const RUN_DEADLINE_MS = 60_000 + PACKETS;
export const RESTART_RUN_DEADLINE_MS = 60_000 + 3 * RESTART_PACKETS;

export function envCount(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < PARTITIONS || value % PARTITIONS !== 0) {
    throw new Error(`${name} must be a positive multiple of ${PARTITIONS}, got ${text}`);
  }
  return value;
}

type ChaosEvent = { kind: 'cutover'; role: 'relay' | 'sink' } | { kind: 'kill'; role: Role };

/** 20 cutovers (relays and sinks) and 20 kills (sources, relays, sinks), shuffled. */
export function schedule(random: () => number): ChaosEvent[] {
  const events: ChaosEvent[] = [];
  for (let i = 0; i < CUTOVERS; i++) events.push({ kind: 'cutover', role: i % 2 === 0 ? 'relay' : 'sink' });
  const killed: Role[] = ['source', 'relay', 'sink'];
  for (let i = 0; i < KILLS; i++) events.push({ kind: 'kill', role: killed[i % killed.length] as Role });
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [events[i], events[j]] = [events[j] as ChaosEvent, events[i] as ChaosEvent];
  }
  return events;
}

/** The three connector roles, each one live process at a time (two during a cutover). */
export class Pipeline {
  readonly #address: string;
  readonly #dir: string;
  readonly #perPartition: number;
  readonly #live = new Map<Role, ChildProcessHandle>();
  readonly #all: ChildProcessHandle[] = [];
  readonly #generation: Record<Role, number> = { source: 0, relay: 0, sink: 0 };
  #failure: Error | undefined;

  constructor(address: string, dir: string, perPartition: number) {
    this.#address = address;
    this.#dir = dir;
    this.#perPartition = perPartition;
  }

  get sinkFile(): string {
    return path.join(this.#dir, 'sink.log');
  }

  get progressFile(): string {
    return path.join(this.#dir, 'source-progress.json');
  }

  /** Starts the next generation of `role`. */
  start(role: Role): ChildProcessHandle {
    const generation = ++this.#generation[role];
    const config: ConnectorConfig = {
      address: this.#address,
      generation,
      life: generation,
      partitions: PARTITIONS,
      perPartition: this.#perPartition,
      file: role === 'source' ? this.progressFile : this.sinkFile,
    };
    const child = new ChildProcessHandle(role, `${role} generation ${generation}`, config, (error) => {
      this.#failure ??= error;
    });
    this.#live.set(role, child);
    this.#all.push(child);
    return child;
  }

  async kill(role: Role): Promise<void> {
    await this.#live.get(role)?.kill();
    this.start(role);
  }

  /** A new generation takes over; the old one exits once the hub refuses it. */
  cutover(role: 'relay' | 'sink'): void {
    const old = this.#live.get(role);
    old?.retire();
    this.start(role);
  }

  /** The retired processes that have not exited by themselves within the timeout. */
  async lingering(): Promise<string[]> {
    const retired = this.#all.filter((child) => child.running && ![...this.#live.values()].includes(child));
    const results = await Promise.all(
      retired.map(async (child) => {
        const exited = await Promise.race([child.exited.then(() => true), sleep(RETIRE_TIMEOUT_MS, false)]);
        return exited ? undefined : child.name;
      }),
    );
    return results.filter((name): name is string => name !== undefined);
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  logs(): string {
    return [...this.#live.values()].map((child) => `--- ${child.name}\n${child.logTail()}`).join('\n');
  }

  async killAll(): Promise<void> {
    for (const child of this.#all) child.retire();
    await Promise.all(this.#all.map((child) => child.kill()));
  }
}

/** Reads the sink's records until all `ledger.total` arrived; `onProgress` may act between reads. */
export async function runUntilComplete(
  ledger: SinkLedger,
  tail: RecordTail,
  deadlineMs: number,
  check: () => void,
  onProgress: (distinct: number) => Promise<void>,
  describeState: () => string,
): Promise<void> {
  let lastDistinct = -1;
  let lastChange = performance.now();
  while (ledger.counts().distinct < ledger.total) {
    check();
    await tail.read();
    const { distinct } = ledger.counts();
    const now = performance.now();
    if (distinct !== lastDistinct) {
      lastDistinct = distinct;
      lastChange = now;
    } else if (now - lastChange > STALL_MS) {
      throw new Error(
        `no new record for ${STALL_MS} ms at ${distinct}/${ledger.total}; missing ${ledger.missing().join(', ')}\n${describeState()}`,
      );
    }
    if (now > deadlineMs) {
      throw new Error(`not complete in time: ${distinct}/${ledger.total}\n${describeState()}`);
    }
    await onProgress(distinct);
    await sleep(POLL_MS);
  }
  await tail.read();
}

export function seedOf(t: TestContext): number {
  const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? randomInt(2 ** 31));
  if (!Number.isSafeInteger(seed)) throw new Error('WEFT_CHAOS_SEED must be an integer');
  t.diagnostic(`seed ${seed} (WEFT_CHAOS_SEED=${seed} reruns this schedule)`);
  return seed;
}

export function rate(count: number, ms: number): string {
  return `${Math.round((count * 1000) / ms).toLocaleString('en-US')}/s`;
}
