// The source step of the hub chaos test, one process per life:
// `node --import tsx test/chaos/hub/source.ts '<ConnectorConfig as JSON>'`.
//
// Sends (partition, n) for n = 1…perPartition in every partition, round robin, numbers resuming
// after what its progress file says the hub acknowledged to an earlier life. Before each chunk it
// records the highest number it may send (intent); as it goes, a lower bound of what the hub has
// acknowledged. Prints {"done": true} once the hub acknowledged everything, then idles until
// killed or its stdin closes.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import { HubConnector } from '../../../src/hub/connector/index.ts';
import {
  connectorOptions,
  reportStats,
  exitWithParent,
  packetOf,
  parseConfig,
  partitionName,
  type SourceProgress,
} from './workload.ts';

/** Numbers per partition sent between two progress writes. */
const CHUNK = 128;
/** Chunks written and not yet confirmed written before the next is queued. */
const CHUNKS_AHEAD = 2;
/**
 * The window of packets sent and not yet acknowledged. Its size is what a restarted source
 * resends (the progress it knows is a lower bound, short of the window and the queued chunks).
 */
const MAX_UNACKED = 2000;

exitWithParent();
const config = parseConfig(process.argv[2]);
const { partitions, perPartition, file } = config;

function readProgress(): SourceProgress {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SourceProgress;
  } catch {
    return {
      acked: Array<number>(partitions).fill(0),
      intent: Array<number>(partitions).fill(0),
      done: false,
    };
  }
}

function writeProgress(progress: SourceProgress): void {
  // Written aside and renamed: a kill mid-write leaves the previous progress, never half of it.
  writeFileSync(`${file}.tmp`, JSON.stringify(progress));
  renameSync(`${file}.tmp`, file);
}

const previous = readProgress();
const priorIntent = previous.intent.slice();
const acked = previous.acked.slice();
/** Per partition, the highest number handed to `send` by this life (or acked by an earlier one). */
const issued = previous.acked.slice();
const connector = await HubConnector.connect({
  ...connectorOptions(config, 'source'),
  maxUnacked: MAX_UNACKED,
});
reportStats(`source generation ${config.generation}`, connector);
connector.closed.catch((error: unknown) => {
  process.stderr.write(`source: connector ended: ${String(error)}\n`);
  process.exit(1);
});

/**
 * Per partition, the entries not yet acknowledged are the last ones it sent, and there are at
 * most `unacked + waitingSends` of them all told: what was issued before them is acknowledged.
 */
function saveProgress(intent: readonly number[], done = false): void {
  const { unacked, waitingSends } = connector.stats();
  const slack = unacked + waitingSends;
  for (let p = 0; p < partitions; p++) {
    acked[p] = Math.max(acked[p] ?? 0, (issued[p] ?? 0) - slack);
  }
  writeProgress({ acked, intent: [...intent], done });
}

const written: Promise<unknown>[] = [];
while (issued.some((n) => n < perPartition)) {
  const ends = issued.map((n) => Math.min(perPartition, n + CHUNK));
  const intent = ends.map((end, p) => Math.max(end, priorIntent[p] ?? 0));
  saveProgress(intent);
  let last: Promise<unknown> | undefined;
  for (let step = 0; step < CHUNK; step++) {
    for (let p = 0; p < partitions; p++) {
      const n = (issued[p] ?? 0) + 1;
      if (n > (ends[p] ?? 0)) continue;
      issued[p] = n;
      const sent = connector.send(
        packetOf({ n, life: config.life, upstreamReplay: n <= (priorIntent[p] ?? 0) }),
        { partition: partitionName(p) },
      );
      // Only an ended connector rejects a send, and that ends this process (above).
      sent.catch(() => undefined);
      last = sent;
    }
  }
  if (last !== undefined) written.push(last);
  if (written.length > CHUNKS_AHEAD) await written.shift();
}
await Promise.all(written);
await connector.drained();
saveProgress(issued, true);
process.stdout.write(`${JSON.stringify({ done: true, stats: connector.stats() })}\n`);
