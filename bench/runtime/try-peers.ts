// Runs each peer of the runtime suite once and prints its figures: a way to see that every peer
// works on this machine before the suite measures anything with it.
//
//   node --import tsx bench/runtime/try-peers.ts [--quick] [--group-size G] [restate|lmdb|official …]
//
// With no names, all three run. `--quick` keeps each under about 15 s. `--group-size` adds a
// floor run with that mean commit size to the fixed 1 and 100.

import { parseArgs } from 'node:util';

import { runLmdbFloor } from './lmdb-floor.ts';
import { createRequestLoop, startOfficialEndpoint } from './official-loop.ts';
import { startRestateCounter } from './restate-peer.ts';

const concurrency = 32;
const keys = 10_000;
const peers = ['restate', 'lmdb', 'official'] as const;
type Peer = (typeof peers)[number];

const { values, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, 'group-size': { type: 'string' } },
  allowPositionals: true,
});
const quick = values.quick;
const unknown = positionals.filter((name) => !(peers as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown peer ${unknown.join(', ')}; peers: ${peers.join(', ')}`);
  process.exit(2);
}
const chosen = new Set<Peer>(positionals.length === 0 ? peers : (positionals as Peer[]));
const groupSizes = [1, 100, ...(values['group-size'] === undefined ? [] : [Number(values['group-size'])])];

function show(what: string, figures: object): void {
  const shown = Object.entries(figures).map(([name, value]) =>
    typeof value === 'number'
      ? `${name}=${Number.isInteger(value) ? value : value.toFixed(2)}`
      : `${name}=${String(value)}`,
  );
  console.log(`${what}: ${shown.join(' ')}`);
}

async function timed(what: string, run: () => Promise<void>): Promise<void> {
  const start = performance.now();
  await run();
  console.log(`  (${what} took ${((performance.now() - start) / 1000).toFixed(1)} s)`);
}

if (chosen.has('restate')) {
  await timed('restate', async () => {
    const restate = await startRestateCounter({
      warmup: { concurrency, keys, durationMs: quick ? 1_000 : 3_000 },
    });
    try {
      const result = await restate.run({ concurrency, keys, durationMs: quick ? 5_000 : 15_000 });
      const checked = await restate.check();
      show(`restate ${restate.version} durable-counter c=${concurrency} keys=${keys}`, {
        ...result,
        checked,
      });
    } finally {
      await restate.close();
    }
  });
}

if (chosen.has('lmdb')) {
  await timed('lmdb floor', async () => {
    for (const groupSize of groupSizes) {
      const updates = Math.round(Math.min(groupSize, 100) * (quick ? 2_000 : 10_000));
      show(`lmdb floor G=${groupSize} keys=${keys}`, {
        ...(await runLmdbFloor({ keys, groupSize, updates })),
        updates,
      });
    }
  });
}

if (chosen.has('official')) {
  await timed('official loop', async () => {
    const endpoint = await startOfficialEndpoint();
    const loop = createRequestLoop({ url: endpoint.url, concurrency, keys });
    try {
      await loop.run({ durationMs: quick ? 1_000 : 3_000 });
      const result = await loop.run({ requests: quick ? 30_000 : 150_000 });
      await loop.check();
      show(`apache-flink-statefun remote-official c=${concurrency} keys=${keys}`, result);
    } finally {
      loop.close();
      await endpoint.close();
    }
  });
}
