// What the sink recorded, checked as it is read: every (partition, n) counted, the first
// deliveries of each partition in increasing n, and of each two copies of a packet one flagged
// (redelivered by the hub, or marked upstreamReplay by a step before), the second recorded after
// a kill or cutover.

import { open, type FileHandle } from 'node:fs/promises';

import { parseRecordLine, type SinkRecord } from './workload.ts';

const MAX_PROBLEMS = 40;

export interface LedgerCounts {
  readonly records: number;
  readonly distinct: number;
  readonly duplicates: number;
  /** Duplicates whose delivery the hub flagged redelivered. */
  readonly duplicatesRedelivered: number;
  /** Duplicates not flagged by the hub but marked by the relay or a restarted source. */
  readonly duplicatesUpstreamReplay: number;
  /**
   * Unflagged copies recorded after a flagged one: a replaced sink writing what it received
   * before the hub closed it, after its successor wrote the replay.
   */
  readonly duplicatesOriginalLate: number;
  /** Longest time from the latest kill or cutover to a duplicate it caused, in ms. */
  readonly maxDuplicateLagMs: number;
  readonly firstDeliveriesFlagged: number;
}

export class SinkLedger {
  readonly #perPartition: number;
  /** Per partition, deliveries of each n so far (capped at 255). */
  readonly #seen: Uint8Array[];
  /** Per partition, whether the first record of each n was flagged. */
  readonly #firstFlagged: Uint8Array[];
  readonly #lastFirst: number[];
  /** Kills and cutovers, in time order (ms). */
  readonly #events: number[] = [];
  readonly #problems: string[] = [];
  #problemCount = 0;
  #counts = {
    records: 0,
    distinct: 0,
    duplicates: 0,
    duplicatesRedelivered: 0,
    duplicatesUpstreamReplay: 0,
    duplicatesOriginalLate: 0,
    maxDuplicateLagMs: 0,
    firstDeliveriesFlagged: 0,
  };

  constructor(partitions: number, perPartition: number) {
    this.#perPartition = perPartition;
    this.#seen = Array.from({ length: partitions }, () => new Uint8Array(perPartition + 1));
    this.#firstFlagged = Array.from({ length: partitions }, () => new Uint8Array(perPartition + 1));
    this.#lastFirst = Array<number>(partitions).fill(0);
  }

  get total(): number {
    return this.#seen.length * this.#perPartition;
  }

  counts(): LedgerCounts {
    return { ...this.#counts };
  }

  /** A kill or a cutover happened at `ms`: duplicates may follow. */
  event(ms: number): void {
    this.#events.push(ms);
  }

  add(record: SinkRecord): void {
    this.#counts.records++;
    const seen = this.#seen[record.partition];
    const firstFlagged = this.#firstFlagged[record.partition];
    if (seen === undefined || firstFlagged === undefined || record.n < 1 || record.n > this.#perPartition) {
      this.#problem(`a record outside the workload: partition ${record.partition}, n ${record.n}`);
      return;
    }
    const times = seen[record.n] ?? 0;
    if (times < 255) seen[record.n] = times + 1;
    if (times === 0) {
      this.#counts.distinct++;
      if (record.redelivered || record.upstreamReplay) {
        firstFlagged[record.n] = 1;
        this.#counts.firstDeliveriesFlagged++;
      }
      const last = this.#lastFirst[record.partition] ?? 0;
      if (record.n <= last) {
        this.#problem(`partition ${record.partition}: ${record.n} first delivered after ${last}`);
      }
      this.#lastFirst[record.partition] = Math.max(last, record.n);
      return;
    }
    this.#counts.duplicates++;
    if (record.redelivered) this.#counts.duplicatesRedelivered++;
    else if (record.upstreamReplay) this.#counts.duplicatesUpstreamReplay++;
    else if (firstFlagged[record.n] === 1) this.#counts.duplicatesOriginalLate++;
    else this.#problem(`partition ${record.partition}: ${record.n} delivered again, not flagged`);
    const cause = this.#latestEventAtOrBefore(record.ms);
    if (cause === undefined) {
      this.#problem(`partition ${record.partition}: ${record.n} delivered again before any kill or cutover`);
    } else {
      this.#counts.maxDuplicateLagMs = Math.max(this.#counts.maxDuplicateLagMs, record.ms - cause);
    }
  }

  /** Per partition, the numbers not yet recorded (at most `limit` listed in all). */
  missing(limit = 20): string[] {
    const missing: string[] = [];
    let count = 0;
    this.#seen.forEach((seen, partition) => {
      for (let n = 1; n <= this.#perPartition; n++) {
        if (seen[n] !== 0) continue;
        if (count++ < limit) missing.push(`p${partition}/${n}`);
      }
    });
    if (count > limit) missing.push(`… ${count - limit} more`);
    return missing;
  }

  /** Whether every n up to `upTo[p]` of each partition p was recorded. */
  missingUpTo(upTo: readonly number[], limit = 20): string[] {
    const missing: string[] = [];
    upTo.forEach((last, partition) => {
      const seen = this.#seen[partition];
      for (let n = 1; n <= last && missing.length < limit; n++) {
        if (seen?.[n] === 0) missing.push(`p${partition}/${n}`);
      }
    });
    return missing;
  }

  problems(): string[] {
    const extra = this.#problemCount - this.#problems.length;
    return extra > 0 ? [...this.#problems, `… and ${extra} more`] : [...this.#problems];
  }

  #latestEventAtOrBefore(ms: number): number | undefined {
    let latest: number | undefined;
    for (const event of this.#events) {
      if (event > ms) break;
      latest = event;
    }
    return latest;
  }

  #problem(text: string): void {
    this.#problemCount++;
    if (this.#problems.length < MAX_PROBLEMS) this.#problems.push(text);
  }
}

/** Reads the sink's record file as it grows, feeding whole lines to the ledger. */
export class RecordTail {
  readonly #path: string;
  readonly #ledger: SinkLedger;
  #file: FileHandle | undefined;
  #offset = 0;
  #partial = '';
  readonly #chunk = Buffer.alloc(4 * 1024 * 1024);

  constructor(path: string, ledger: SinkLedger) {
    this.#path = path;
    this.#ledger = ledger;
  }

  /** Reads what was appended since the last call. */
  async read(): Promise<void> {
    this.#file ??= await open(this.#path, 'r');
    for (;;) {
      const { bytesRead } = await this.#file.read(this.#chunk, 0, this.#chunk.length, this.#offset);
      if (bytesRead === 0) return;
      this.#offset += bytesRead;
      const text = this.#partial + this.#chunk.toString('utf8', 0, bytesRead);
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') this.#ledger.add(parseRecordLine(line));
    }
  }

  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }
}
