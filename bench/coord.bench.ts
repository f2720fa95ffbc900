// The coord suite: the OCI pull-through mirror (src/coord/mirror) and HRW, against what a
// cluster does without them. Needs docker-registry and skopeo (`apt-get install -y
// docker-registry skopeo`); without them every case fails with that message.
//
// - origin-fetches-per-blob-8-nodes (origin_fetches_per_blob): 8 nodes pull one fresh image
//   at once through their mirrors, counted in the origin's access log; the peer is the same
//   8 pulls straight from the origin (8.0 by construction; the mirror's goal is 1.0).
// - warm-pull-through-peer (mb_per_s): a 64 MiB blob served by one node's mirror while
//   another node holds it, against the same size straight from the origin.
// - hrw-top3-64-nodes (ops_per_s): hrwTopK(64 nodes, key, 3) against ranking all 64.
//
// bench/coord/*.ts say more about each. Weft is loaded compiled, from dist/ (npm run bench
// builds first).

import { FanOutPull, fanOutNodes } from './coord/fan-out-pull.ts';
import { HrwTop3 } from './coord/hrw-top3.ts';
import { requireOciTools } from './coord/tools.ts';
import { WarmPull, warmBlobBytes } from './coord/warm-pull.ts';
import { defineSuite } from './harness.ts';

const fanOut = new FanOutPull();
const warmPull = new WarmPull();
const hrw = new HrwTop3();

export default defineSuite({
  notes: () => [
    `origin fetches: ${fanOutNodes} nodes each GET the config and 3 layers (2 MiB, 1 MiB, 256 KiB) of a fresh image at once`,
    `warm pull: one ${warmBlobBytes / (1024 * 1024)} MiB blob per sample, MB = 10^6 bytes, one connection per GET`,
    `hrw: ${hrw.nodes.length} nodes, ${hrw.keys.length} keys in turn`,
  ],
  cases: [
    {
      name: `origin-fetches-per-blob-${fanOutNodes}-nodes`,
      metric: 'origin_fetches_per_blob',
      ours: { label: 'weft mirror (8 nodes)', fn: fanOut.throughMirrors },
      peer: { name: 'docker-registry (direct)', fn: fanOut.straightFromOrigin },
      rounds: 5,
      quickRounds: 2,
      setup: async () => {
        await requireOciTools();
        await fanOut.start();
      },
      check: () => {
        fanOut.check();
        return undefined;
      },
      teardown: () => fanOut.close(),
    },
    {
      name: 'warm-pull-through-peer',
      metric: 'mb_per_s',
      ours: { label: 'weft mirror (via peer)', fn: warmPull.throughPeer },
      peer: { name: 'docker-registry (direct)', fn: warmPull.fromOrigin },
      rounds: 20,
      quickRounds: 10,
      setup: async () => {
        await requireOciTools();
        await warmPull.start();
      },
      check: () => warmPull.check(),
      teardown: () => warmPull.close(),
    },
    {
      name: 'hrw-top3-64-nodes',
      metric: 'ops_per_s',
      ours: { label: 'hrwTopK', fn: hrw.topK },
      peer: { name: 'hrwRank + slice (full sort)', fn: hrw.sortAll },
      rounds: 40,
      quickRounds: 20,
      setup: () => hrw.start(),
      check: () => {
        hrw.check();
        return undefined;
      },
    },
  ],
});
