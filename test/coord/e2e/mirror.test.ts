// The mirror end to end: Weft nodes in front of a real registry (docker-registry), pulled
// through by a real OCI client (skopeo). What a cluster of mirrors promises a client: the
// image it gets is the origin's, byte for byte; the origin sees each blob once however many
// nodes pull; a node dying mid-pull costs the others a detour, not a failure; and bytes that
// do not match their digest are never served whole and never kept.
//
// These tests drive real programs over loopback, so they run on real time with generous
// bounds. Skipped with the reason where the tools are absent, a failure where
// WEFT_REQUIRE_SERVICES=1.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { hrwRank } from '../../../src/coord/hrw.ts';
import { Mirror, type MirrorStats } from '../../../src/coord/mirror/mirror.ts';
import { TestGrid } from '../../../src/testing/index.ts';
import { buildImage, deterministicBytes, pushImage } from './image.ts';
import { startMirrorNodes, type MirrorNode } from './mirror-node.ts';
import type { OciImage } from './oci-layout.ts';
import { startOrigin } from './origin.ts';
import { pullWithSkopeo, type PulledImage } from './skopeo.ts';
import { startThrottleProxy } from './throttle-proxy.ts';
import { ociToolsGate } from './tools-gate.ts';

const gate = await ociToolsGate();
const MiB = 1024 * 1024;
// Grid and mirror warnings (peers going away) are expected here; errors are not.
const quiet = {
  warn: (): void => undefined,
  error: (message: string, details?: unknown): void => {
    console.error(message, details);
  },
};

test(
  'four nodes pulling one image at once get it byte for byte, and the origin sends each blob once',
  { skip: gate.skip, timeout: 120_000 },
  async (t) => {
    const work = await workDirectory(t, 'weft-mirror-e2e-');
    const origin = await startOrigin();
    t.after(() => origin.stop());
    const built = await buildImage(path.join(work, 'built'), {
      seed: 'four-nodes',
      layerSizesBytes: [4 * MiB, 1 * MiB, 512 * 1024, 64 * 1024],
    });
    await pushImage(built, origin.url, 'weft/four');

    const mirrors: Mirror[] = [];
    const grid = await TestGrid.start(4, {
      onRequest: (i, req, res) => mirrors[i]?.handle(req, res) ?? false,
      logger: quiet,
    });
    t.after(() => grid.close());
    for (let i = 0; i < 4; i++) {
      const storeDirectory = path.join(work, `store-${i}`);
      const mirror = await Mirror.open({
        grid: grid.manager(i),
        storeDirectory,
        maxStoreBytes: 1e9,
        origin: origin.url,
        logger: quiet,
      });
      mirrors.push(mirror);
      t.after(() => mirror.close());
    }
    await grid.waitAllConnected({ signal: AbortSignal.timeout(10_000) });
    const getsBefore = blobGetsOf(origin, built);
    const manifestGetsBefore = manifestGets(origin, built.manifestDigest);

    const startedAt = performance.now();
    const pulls = await Promise.all(
      grid.hosts.map((host, i) =>
        pullWithSkopeo(host, 'weft/four', built.refName, path.join(work, `pulled-${i}`)),
      ),
    );
    t.diagnostic(`4 concurrent pulls took ${Math.round(performance.now() - startedAt)} ms`);

    for (const pulled of pulls) await assertSameImage(pulled, built);
    for (const digest of built.blobDigests) {
      assert.equal(
        origin.blobGets(digest) - (getsBefore.get(digest) ?? 0),
        1,
        `origin GETs of blob ${digest} while four nodes pulled it`,
      );
    }
    assert.equal(
      manifestGets(origin, built.manifestDigest) - manifestGetsBefore,
      1,
      'origin GETs of the manifest by digest',
    );
    const stats = mirrors.map((m) => m.stats());
    t.diagnostic(`per node: ${stats.map(summary).join(' | ')}`);
    assert.ok(
      stats.some((s) => s.content.peerFetches > 0),
      'no node took a blob from a peer',
    );
    assert.equal(
      sum(stats, (s) => s.responses.serverErrors),
      0,
      '5xx answers',
    );
    assert.equal(
      sum(stats, (s) => s.originFetches.failed),
      0,
      'failed origin fetches',
    );
    for (let i = 0; i < 4; i++) await assertStoreSound(path.join(work, `store-${i}`));
  },
);

test(
  'a node killed while it fetches a layer from a slow origin does not fail the pulls through the others',
  { skip: gate.skip, timeout: 120_000 },
  async (t) => {
    const work = await workDirectory(t, 'weft-mirror-kill-');
    const origin = await startOrigin();
    t.after(() => origin.stop());
    const built = await buildImage(path.join(work, 'built'), {
      seed: 'killed-node',
      layerSizesBytes: [8 * MiB, 256 * 1024, 64 * 1024],
    });
    const bigLayer = built.layerDigests[0] as string;
    await pushImage(built, origin.url, 'weft/kill');
    // 2 MiB/s per connection: the 8 MiB layer takes about 4 s to come from the origin.
    const slowOrigin = await startThrottleProxy(origin.url, 2 * MiB);
    t.after(() => slowOrigin.close());

    const storeDirectories = [0, 1, 2, 3].map((i) => path.join(work, `store-${i}`));
    const nodes = await startMirrorNodes({ origin: slowOrigin.url, storeDirectories });
    t.after(() => Promise.all(nodes.map((node) => node.kill())));

    // The node HRW ranks first for the big layer is the one asked to fetch it: pull through the others.
    const victim = predictFetcher(nodes, bigLayer);
    const pullers = nodes.filter((node) => node !== victim);
    const startedAt = performance.now();
    const pulls = pullers.map((node, i) =>
      pullWithSkopeo(node.host, 'weft/kill', built.refName, path.join(work, `pulled-${i}`)),
    );
    // Whatever happens below, no pull is left to reject unobserved.
    const settled = Promise.allSettled(pulls);

    // Kill it mid-layer, once the survivors hold the manifest and the other layers: then they wait
    // on it for this one layer only. (Waiting on a dead node for more keys than the per-node origin fallback
    // budget, 2 a minute, makes the mirror answer 503 to the rest; skopeo does not retry those.)
    // (skopeo asks for the config last, after every layer.)
    const others = [built.manifestDigest, ...built.layerDigests.filter((d) => d !== bigLayer)];
    const seenMidway = await waitUntil(30_000, 'the victim to be mid-layer', async () => {
      const written = await originWriteInProgress(victim);
      const ready = pullers.every((node) => others.every((d) => holds(node.storeDirectory, d)));
      return ready && written >= 1 * MiB ? written : undefined;
    });
    const killedAt = performance.now();
    await victim.kill();
    t.diagnostic(
      `killed ${victim.host} ${Math.round(killedAt - startedAt)} ms into the pull, ` +
        `with ${seenMidway} bytes of the ${8 * MiB}-byte layer written`,
    );

    const outcomes = await settled;
    const doneAt = performance.now();
    t.diagnostic(`pulls through the survivors ended ${Math.round(doneAt - killedAt)} ms after the kill`);
    const stats = await Promise.all(pullers.map((node) => node.stats()));
    t.diagnostic(`survivors: ${stats.map(summary).join(' | ')}`);
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'rejected') {
        assert.fail(`pull through ${pullers[i]?.host} failed: ${String(outcome.reason)}`);
      }
      await assertSameImage(outcome.value, built);
    }
    // The cascade gave up on the dead puller as soon as it left the membership, not after its stall.
    assert.ok(
      stats.some((s) => s.cascade.pullersGone > 0),
      'no survivor noticed its puller was gone',
    );
    assert.ok(doneAt - killedAt < 25_000, 'the survivors waited out the stall threshold');
    // The victim's store too: it died mid-write, and only verified blobs may be at a blob path.
    for (const dir of storeDirectories) await assertStoreSound(dir);
  },
);

test(
  'a blob whose bytes do not match its digest is never served whole and never stored',
  { skip: gate.skip, timeout: 120_000 },
  async (t) => {
    const work = await workDirectory(t, 'weft-mirror-lies-');
    const good = deterministicBytes('the truth', 256 * 1024);
    const digest = `sha256:${createHash('sha256').update(good).digest('hex')}`;
    const lies = Buffer.from(good);
    lies[lies.length - 1] = (lies[lies.length - 1] as number) ^ 0xff; // the last byte, the cruellest
    const liar = await startLyingOrigin(digest, lies);
    t.after(() => liar.close());

    const mirrors: Mirror[] = [];
    const grid = await TestGrid.start(2, {
      onRequest: (i, req, res) => mirrors[i]?.handle(req, res) ?? false,
      logger: quiet,
    });
    t.after(() => grid.close());
    for (let i = 0; i < 2; i++) {
      const mirror = await Mirror.open({
        grid: grid.manager(i),
        storeDirectory: path.join(work, `store-${i}`),
        maxStoreBytes: 1e9,
        origin: liar.url,
        logger: quiet,
      });
      mirrors.push(mirror);
      t.after(() => mirror.close());
    }
    await grid.waitAllConnected({ signal: AbortSignal.timeout(10_000) });

    for (const host of grid.hosts) {
      const startedAt = performance.now();
      const got = await httpGet(new URL(`/v2/weft/lies/blobs/${digest}`, host));
      t.diagnostic(
        `GET via ${host}: ${got.status}, ${got.bytes.length} bytes, ` +
          `${got.complete ? 'complete' : 'cut'}, after ${Math.round(performance.now() - startedAt)} ms`,
      );
      assert.ok(
        got.status >= 500 || (got.status === 200 && !got.complete),
        `answered ${got.status} with ${got.complete ? 'a complete' : 'a cut'} body`,
      );
      assert.ok(!(got.complete && got.bytes.equals(lies)), 'the lying bytes were served whole');
      if (got.status === 200) assert.ok(got.bytes.length < lies.length, 'a 200 carried every byte');
    }

    assert.ok(liar.gets() >= 1, 'the origin was never asked');
    const stats = mirrors.map((m) => m.stats());
    t.diagnostic(`origin GETs ${liar.gets()}; per node: ${stats.map(summary).join(' | ')}`);
    assert.ok(sum(stats, (s) => s.store.digestMismatches) >= 1, 'no digest mismatch counted');
    for (const [i, s] of stats.entries()) assert.equal(s.store.blobs, 0, `store ${i} holds a blob`);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await assertStoreSound(path.join(work, `store-${i}`)), [], `store ${i} blobs`);
    }
  },
);

async function workDirectory(
  t: { after: (fn: () => Promise<void>) => void },
  prefix: string,
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Same manifest digest, same blobs, every blob byte for byte the one that was pushed. */
async function assertSameImage(pulled: PulledImage, built: OciImage): Promise<void> {
  assert.equal(pulled.manifestDigest, built.manifestDigest, `manifest via ${pulled.source}`);
  assert.deepEqual(pulled.blobDigests, built.blobDigests, `blobs via ${pulled.source}`);
  for (const digest of built.blobDigests) {
    const [ours, theirs] = await Promise.all([
      readFile(built.blobPath(digest)),
      readFile(pulled.blobPath(digest)),
    ]);
    assert.ok(ours.equals(theirs), `blob ${digest} via ${pulled.source} differs from the origin's`);
  }
}

/**
 * Hashes every file at a blob path in a content store and checks it against its name; returns the
 * digests found. Writes in progress (tmp/) are not blobs.
 */
async function assertStoreSound(storeDirectory: string): Promise<string[]> {
  const root = path.join(storeDirectory, 'blobs', 'sha256');
  if (!existsSync(root)) return [];
  const found: string[] = [];
  for (const name of await readdir(root, { recursive: true })) {
    const file = path.join(root, name);
    if (!(await stat(file)).isFile()) continue;
    const hex = path.basename(file);
    const actual = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    assert.equal(actual, hex, `${file} holds bytes that hash to ${actual}`);
    found.push(`sha256:${hex}`);
  }
  return found.sort();
}

function blobGetsOf(origin: { blobGets: (d: string) => number }, image: OciImage): Map<string, number> {
  return new Map(image.blobDigests.map((d) => [d, origin.blobGets(d)]));
}

function manifestGets(
  origin: { accessLog: () => { method: string; path: string }[] },
  digest: string,
): number {
  return origin.accessLog().filter((e) => e.method === 'GET' && e.path.endsWith(`/manifests/${digest}`))
    .length;
}

/** The node that will fetch `key` from the origin: the one every node ranks first (HRW). */
function predictFetcher(nodes: readonly MirrorNode[], key: string): MirrorNode {
  const first = hrwRank(
    nodes.map((n) => n.host),
    key,
  )[0];
  const node = nodes.find((n) => n.host === first);
  assert.ok(node !== undefined);
  return node;
}

/** Polls `check` every 50 ms until it gives a value; rejects after `timeoutMs`. */
async function waitUntil<T>(
  timeoutMs: number,
  what: string,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Bytes of the largest write in `node`'s store while it fetches from the origin, else 0. */
async function originWriteInProgress(node: MirrorNode): Promise<number> {
  if ((await node.stats()).originFetches.running === 0) return 0;
  const tmp = path.join(node.storeDirectory, 'tmp');
  const names = await readdir(tmp).catch(() => [] as string[]);
  const sizes = await Promise.all(
    names.map((name) =>
      stat(path.join(tmp, name)).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return Math.max(0, ...sizes);
}

/** True when the content store at `storeDirectory` holds `digest` (its layout: blobs/sha256/ab/abcd…). */
function holds(storeDirectory: string, digest: string): boolean {
  const hex = digest.slice('sha256:'.length);
  return existsSync(path.join(storeDirectory, 'blobs', 'sha256', hex.slice(0, 2), hex));
}

interface HttpResult {
  readonly status: number;
  readonly bytes: Buffer;
  /** The body ended as the server said it would (not cut short). */
  readonly complete: boolean;
}

/** A plain GET that reports a body cut short instead of throwing. */
function httpGet(url: URL): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 90_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const finish = (complete: boolean): void => {
        resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), complete });
      };
      res.once('end', () => {
        finish(res.complete);
      });
      res.once('error', () => {
        finish(false);
      });
      res.once('aborted', () => {
        finish(false);
      });
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url.href} timed out`)));
    req.once('error', reject);
  });
}

/** An origin that answers every GET of blob `digest` with `bytes`, which are not what hashes to it. */
async function startLyingOrigin(
  digest: string,
  bytes: Buffer,
): Promise<{ url: string; gets: () => number; close: () => Promise<void> }> {
  let gets = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (url.endsWith(`/blobs/${digest}`) && (req.method === 'GET' || req.method === 'HEAD')) {
      if (req.method === 'GET') gets++;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': bytes.length,
        'docker-content-digest': digest,
      });
      res.end(req.method === 'GET' ? bytes : undefined);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gets: () => gets,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

function sum(stats: readonly MirrorStats[], of: (s: MirrorStats) => number): number {
  return stats.reduce((total, s) => total + of(s), 0);
}

/** One node's stats in a line, for the test's diagnostics. */
function summary(s: MirrorStats): string {
  const d = s.content.decisions;
  return [
    `ok ${s.responses.ok} 5xx ${s.responses.serverErrors}`,
    `origin ${s.originFetches.stored}/${s.originFetches.started} failed ${s.originFetches.failed}`,
    `peer ${s.content.peerFetches} (failed ${s.content.peerFetchFailures})`,
    `decisions local ${d['serve-local']} peer ${d['fetch-from-peer']} origin ${d['fetch-from-origin']} fail ${d.fail}`,
    `fallbacks ${s.cascade.originFallbacks} (refused ${s.cascade.originFallbacksRefused})`,
    `pullersGone ${s.cascade.pullersGone} honorWindows ${s.cascade.honorWindowsOpened}`,
    `mismatches ${s.store.digestMismatches}`,
  ].join(', ');
}
