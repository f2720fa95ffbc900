// The end-to-end groundwork on its own: a real registry (docker-registry) as origin, an
// image built offline pushed to it and pulled back with skopeo. Skipped with the reason
// where the tools are absent, a failure where WEFT_REQUIRE_SERVICES=1.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { buildImage, pushImage } from './image.ts';
import { startOrigin } from './origin.ts';
import { pullWithSkopeo } from './skopeo.ts';
import { ociToolsGate } from './tools-gate.ts';

const gate = await ociToolsGate();

test(
  'an image pushed to the origin pulls back byte for byte, one origin GET per blob',
  { skip: gate.skip, timeout: 120_000 },
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'weft-e2e-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const origin = await startOrigin();
    t.after(() => origin.stop());

    const built = await buildImage(path.join(work, 'built'), { seed: 'smoke' });
    await pushImage(built, origin.url, 'weft/smoke');
    const getsBeforePull = new Map(built.blobDigests.map((d) => [d, origin.blobGets(d)]));

    const pulled = await pullWithSkopeo(origin.url, 'weft/smoke', built.refName, path.join(work, 'pulled'));

    assert.equal(pulled.manifestDigest, built.manifestDigest);
    assert.deepEqual(pulled.blobDigests, built.blobDigests);
    for (const digest of built.blobDigests) {
      const [ours, theirs] = await Promise.all([
        readFile(built.blobPath(digest)),
        readFile(pulled.blobPath(digest)),
      ]);
      assert.ok(ours.equals(theirs), `blob ${digest} differs after the round trip`);
      assert.equal(
        origin.blobGets(digest) - (getsBeforePull.get(digest) ?? 0),
        1,
        `origin GETs of ${digest} during the pull`,
      );
    }
  },
);
