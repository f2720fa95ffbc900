// Hub chaos: real processes on loopback, killed with SIGKILL.
//
// 1. A three-step story (source → relay → sink), at least once, ordered per partition, carries
//    (partition, n) for n = 1…N in 4 partitions while the test makes 20 blue-green cutovers (a
//    relay or sink of the next generation starts while the old one runs; the hub closes the old)
//    and 20 SIGKILLs of connector processes (source, relay or sink, restarted as the next
//    generation), spread evenly over the run. At the sink: every (partition, n) arrives, the first
//    deliveries of each partition come in increasing n, and every duplicate is flagged
//    (redelivered by the hub, or marked by the step before it as a resend of a possible
//    duplicate) and follows a kill or cutover.
// Sizes: WEFT_HUB_CHAOS_PACKETS; the schedule comes from a seeded random source (WEFT_CHAOS_SEED
// reruns it). hub-restart-chaos.test.ts kills the hub itself.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Hub } from '../../src/hub/hub.ts';
import { seededRandom } from './chaos-workload.ts';
import { RecordTail, SinkLedger } from './hub/sink-ledger.ts';
import { chaosStory } from './hub/workload.ts';
import {
  PARTITIONS,
  PACKETS,
  CUTOVERS,
  KILLS,
  MIN_EVENT_GAP_MS,
  RUN_DEADLINE_MS,
  schedule,
  Pipeline,
  runUntilComplete,
  seedOf,
  rate,
} from './hub/harness.ts';

describe('hub chaos', () => {
  test(
    `${PACKETS.toLocaleString('en-US')} packets through source → relay → sink with ${CUTOVERS} blue-green cutovers and ${KILLS} connector kills: none lost, order kept per partition, duplicates flagged`,
    { timeout: RUN_DEADLINE_MS + 30_000 },
    async (t) => {
      const random = seededRandom(seedOf(t));
      const dir = await mkdtemp(path.join(tmpdir(), 'weft-hub-chaos-'));
      const hub = new Hub({ stories: [chaosStory()], tickMs: 100 });
      const port = await hub.listen({ port: 0 });
      const pipeline = new Pipeline(`127.0.0.1:${port}`, dir, PACKETS / PARTITIONS);
      const ledger = new SinkLedger(PARTITIONS, PACKETS / PARTITIONS);
      await writeFile(pipeline.sinkFile, '');
      const tail = new RecordTail(pipeline.sinkFile, ledger);
      // Hooks run in the order registered: children first, then the hub, then their files.
      t.after(async () => {
        await pipeline.killAll();
        await tail.close();
        await hub.close();
        await rm(dir, { recursive: true, force: true });
      });

      const started = performance.now();
      pipeline.start('sink');
      pipeline.start('relay');
      pipeline.start('source');
      const events = schedule(random);
      const done: string[] = [];
      let lastEventAt = 0;
      await runUntilComplete(
        ledger,
        tail,
        started + RUN_DEADLINE_MS,
        () => {
          pipeline.throwIfFailed();
        },
        async (distinct) => {
          const next = events[done.length];
          if (next === undefined) return;
          const due = (ledger.total * (done.length + 1)) / (events.length + 1);
          if (distinct < due || performance.now() - lastEventAt < MIN_EVENT_GAP_MS) return;
          ledger.event(Date.now());
          if (next.kind === 'kill') await pipeline.kill(next.role);
          else pipeline.cutover(next.role);
          lastEventAt = performance.now();
          done.push(`${next.kind} ${next.role} @${distinct}`);
        },
        () => `hub: ${JSON.stringify(hub.stats())}\n${pipeline.logs()}`,
      );
      const elapsed = performance.now() - started;
      const counts = ledger.counts();
      const stats = hub.stats();
      t.diagnostic(
        `${counts.distinct} packets in ${Math.round(elapsed)} ms (${rate(counts.distinct, elapsed)}), ` +
          `${counts.records} records; ${counts.duplicates} duplicates (${counts.duplicatesRedelivered} redelivered by the hub, ` +
          `${counts.duplicatesUpstreamReplay} resent upstream, ${counts.duplicatesOriginalLate} originals recorded after the flagged copy), longest from an event to a duplicate ${counts.maxDuplicateLagMs} ms`,
      );
      t.diagnostic(`events: ${done.join(', ')}`);
      t.diagnostic(
        `hub: packetsIn ${stats.packetsIn}, sent ${stats.streams.sent}, replayed ${stats.streams.replayed}, ` +
          `buffered ${JSON.stringify(stats.streams.bufferedBy)}, drops ${JSON.stringify(stats.streams.drops)}, ` +
          `handoffs ${JSON.stringify(stats.streams.handoffs)}, refused ${JSON.stringify(stats.refused)}`,
      );
      assert.equal(done.length, events.length, 'every kill and cutover happened');
      assert.deepEqual(ledger.problems(), []);
      assert.deepEqual(stats.streams.drops, {}, 'the hub dropped nothing');
      assert.deepEqual(await pipeline.lingering(), [], 'every retired generation exited');
    },
  );
});
