// A hub in its own process, so the chaos test can kill it with SIGKILL:
// `node --import tsx test/chaos/hub/hub-node.ts '{"port": n, "storePath": "…"}'`.
//
// Serves the chaos story on loopback with an lmdb checkpoint store, replaying what the store holds
// from an earlier life; prints {"port": n} once it serves. Runs until killed or its stdin closes.

import { Hub } from '../../../src/hub/hub.ts';
import { LmdbCheckpointStore } from '../../../src/hub/checkpoint/index.ts';
import { chaosStory, exitWithParent } from './workload.ts';

exitWithParent();
const { port, storePath } = JSON.parse(process.argv[2] ?? '{}') as { port: number; storePath: string };
const checkpoints = await LmdbCheckpointStore.open({ path: storePath });
const hub = await Hub.open({
  stories: [chaosStory()],
  checkpoints,
  // Written often and whole, so that a kill loses as little of the in-flight state as it can.
  checkpoint: { intervalMs: 50, maxPending: 100_000 },
  tickMs: 100,
});
const bound = await hub.listen({ port });
process.stdout.write(`${JSON.stringify({ port: bound })}\n`);
setInterval(() => {
  process.stderr.write(`${JSON.stringify({ stats: hub.stats(), checkpoint: hub.checkpointStats() })}\n`);
}, 2000).unref();
