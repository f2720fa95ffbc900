import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { hrwRank } from '../../src/coord/hrw.ts';
import { Mirror, type MirrorOptions } from '../../src/coord/mirror/mirror.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/test-grid.ts';

const REPOSITORY = 'library/alpine';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

interface OriginRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface FakeManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
}

/** Just enough of a registry: blobs and manifests by digest, tags, and an optional Basic login. */
interface FakeOrigin {
  readonly url: string;
  readonly requests: OriginRequest[];
  /** Digest → the bytes served for it (which a lying origin makes other bytes). */
  readonly blobs: Map<string, Buffer>;
  /** Digest → manifest. */
  readonly manifests: Map<string, FakeManifest>;
  /** Tag → digest. */
  readonly tags: Map<string, string>;
  /** When set, every request must carry this `Authorization`, else 401 with a Basic challenge. */
  requiredAuthorization: string | undefined;
}

async function startOrigin(t: TestContext): Promise<FakeOrigin> {
  const server = http.createServer((req, res) => {
    origin.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (
      origin.requiredAuthorization !== undefined &&
      req.headers.authorization !== origin.requiredAuthorization
    ) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-length': 0 }).end();
      return;
    }
    const match = /^\/v2\/(.+)\/(blobs|manifests)\/([^/]+)$/.exec(req.url ?? '');
    const head = req.method === 'HEAD';
    if (match?.[2] === 'blobs') {
      const bytes = origin.blobs.get(match[3] as string);
      if (bytes !== undefined) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        res.end(head ? undefined : bytes);
        return;
      }
    } else if (match?.[2] === 'manifests') {
      const reference = match[3] as string;
      const digest = origin.tags.get(reference) ?? reference;
      const manifest = origin.manifests.get(digest);
      if (manifest !== undefined) {
        res.writeHead(200, {
          'content-type': manifest.mediaType,
          'content-length': manifest.bytes.length,
          'docker-content-digest': digest,
        });
        res.end(head ? undefined : manifest.bytes);
        return;
      }
    }
    const body = JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'unknown' }] });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const origin: FakeOrigin = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: [],
    blobs: new Map(),
    manifests: new Map(),
    tags: new Map(),
    requiredAuthorization: undefined,
  };
  return origin;
}

interface Cluster {
  readonly clock: FakeClock;
  readonly grid: TestGrid;
  readonly mirrors: readonly Mirror[];
  /** Node i's mirror URL for `pathAndQuery`. */
  url(node: number, pathAndQuery: string): string;
}

/** `n` nodes on a test grid, each with a mirror on its HTTP server, all fronting `origin`. */
async function startCluster(
  t: TestContext,
  n: number,
  origin: FakeOrigin,
  options: Partial<MirrorOptions> = {},
): Promise<Cluster> {
  const clock = new FakeClock({ wallStartMs: 1_700_000_000_000 });
  const mirrors: Mirror[] = [];
  const grid = await TestGrid.start(n, {
    clock,
    onRequest: (i, req, res) => mirrors[i]?.handle(req, res) ?? false,
  });
  const directories: string[] = [];
  t.after(async () => {
    await Promise.all(mirrors.map((m) => m.close()));
    await grid.close();
    await Promise.all(directories.map((d) => rm(d, { recursive: true, force: true })));
  });
  for (let i = 0; i < n; i++) {
    const storeDirectory = await mkdtemp(path.join(tmpdir(), 'weft-mirror-test-'));
    directories.push(storeDirectory);
    mirrors.push(
      await Mirror.open({
        grid: grid.manager(i),
        storeDirectory,
        maxStoreBytes: 1024 * 1024,
        origin: origin.url,
        clock,
        // No jitter before a direct-origin fallback, so fake time decides alone.
        cascade: { originFallbackJitterMs: 0 },
        ...options,
      }),
    );
  }
  await grid.waitAllConnected();
  return {
    clock,
    grid,
    mirrors,
    url: (node, pathAndQuery) => `${grid.hosts[node] ?? ''}${pathAndQuery}`,
  };
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** False when the connection closed before the body ended. */
  readonly complete: boolean;
}

/** One request to a mirror, on a fresh connection; a body cut short is reported, not thrown. */
function request(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // The path goes as written: a URL object would resolve `..` before the mirror saw it.
    const { hostname, port } = new URL(url);
    const rawPath = url.slice(url.indexOf('/', 'http://'.length));
    const req = http.request({
      hostname,
      port,
      path: rawPath,
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false,
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      const done = (complete: boolean): void => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete });
      };
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () => {
        done(res.complete);
      });
      res.once('error', () => {
        done(false);
      });
      res.once('aborted', () => {
        done(false);
      });
    });
    req.end();
  });
}

/** Lets loopback I/O and promise chains run until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 50_000 && !condition(); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(condition(), what);
}

/** Settles `promise`, moving fake time on in `stepMs` steps (letting I/O run between) while `advanceWhile` holds. */
async function settleAdvancing<T>(
  clock: FakeClock,
  promise: Promise<T>,
  advanceWhile: () => boolean,
  stepMs = 1_000,
  limitMs = 120_000,
): Promise<T> {
  const state = { settled: false };
  void promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  const settled = (): boolean => state.settled;
  for (let spent = 0, rounds = 0; !settled() && spent <= limitMs && rounds < 10_000; rounds++) {
    for (let turn = 0; turn < 200 && !settled(); turn++)
      await new Promise((resolve) => setImmediate(resolve));
    if (!settled() && advanceWhile()) {
      await clock.advanceAsync(stepMs);
      spent += stepMs;
    }
  }
  return promise;
}

function blobPath(digest: string, repository = REPOSITORY): string {
  return `/v2/${repository}/blobs/${digest}`;
}

function ociError(answer: Answer): string | undefined {
  if (answer.body.length === 0) return undefined;
  const parsed = JSON.parse(answer.body.toString('utf8')) as { errors: { code: string }[] };
  return parsed.errors[0]?.code;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

const layer = Buffer.from('0123456789 the bytes of one layer, served byte for byte');
const layerDigest = sha256(layer);

describe('mirror: the registry API base', () => {
  test('/v2/ answers 200 with the distribution API version; HEAD has no body', async (t) => {
    const origin = await startOrigin(t);
    const c = await startCluster(t, 1, origin);
    const get = await request(c.url(0, '/v2/'));
    assert.equal(get.status, 200);
    assert.equal(get.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(get.body.toString(), '{}');
    const head = await request(c.url(0, '/v2/'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(head.body.length, 0);
    assert.equal(origin.requests.length, 0);
  });
});

describe('mirror: blobs', () => {
  test('a blob is fetched from the origin once, then served from the store, whole, by HEAD and by range', async (t) => {
    const origin = await startOrigin(t);
    origin.blobs.set(layerDigest, layer);
    const c = await startCluster(t, 1, origin);
    const url = c.url(0, blobPath(layerDigest));

    const first = await request(url);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, layer);
    assert.equal(first.headers['content-length'], String(layer.length));
    assert.equal(first.headers['docker-content-digest'], layerDigest);
    assert.equal(origin.requests.length, 1);

    const second = await request(url);
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, layer);
    assert.equal(origin.requests.length, 1, 'the second GET is served from the store');

    const head = await request(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(layer.length));
    assert.equal(head.headers['docker-content-digest'], layerDigest);
    assert.equal(head.body.length, 0);

    const ranged = await request(url, { headers: { range: 'bytes=2-5' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], `bytes 2-5/${layer.length}`);
    assert.deepEqual(ranged.body, layer.subarray(2, 6));

    const absurd = await request(url, { headers: { range: 'bytes=999999-' } });
    assert.equal(absurd.status, 416);
    assert.equal(absurd.headers['content-range'], `bytes */${layer.length}`);

    const multi = await request(url, { headers: { range: 'bytes=0-1,4-5' } });
    assert.equal(multi.status, 200);
    assert.deepEqual(multi.body, layer);

    assert.equal(origin.requests.length, 1);
    const stats = (c.mirrors[0] as Mirror).stats();
    assert.equal(stats.originFetches.stored, 1);
    assert.equal(stats.requests.blobs, 6);
  });

  test('bad names, digests and methods are refused without reaching the origin, and serving goes on', async (t) => {
    const origin = await startOrigin(t);
    origin.blobs.set(layerDigest, layer);
    const c = await startCluster(t, 1, origin);
    const refusals: [string, string, number][] = [
      ['GET', `/v2/${REPOSITORY}/blobs/sha256:abc`, 400],
      ['GET', `/v2/${REPOSITORY}/blobs/md5:${'a'.repeat(32)}`, 400],
      ['GET', `/v2/${REPOSITORY}/blobs/sha256:${'A'.repeat(64)}`, 400],
      ['GET', `/v2/../x/blobs/${layerDigest}`, 400],
      ['GET', `/v2/%2e%2e/x/blobs/${layerDigest}`, 400],
      ['GET', `/v2/library/%2e%2e/blobs/${layerDigest}`, 400],
      ['GET', `/v2/Library/Alpine/blobs/${layerDigest}`, 400],
      ['POST', `/v2/${REPOSITORY}/blobs/uploads/`, 405],
      ['PUT', `/v2/${REPOSITORY}/manifests/latest`, 405],
      ['DELETE', blobPath(layerDigest), 405],
    ];
    for (const [method, pathAndQuery, status] of refusals) {
      const answer = await request(c.url(0, pathAndQuery), { method });
      assert.equal(answer.status, status, `${method} ${pathAndQuery}`);
      if (status === 405) assert.equal(answer.headers.allow, 'GET, HEAD', `${method} ${pathAndQuery}`);
      assert.ok(ociError(answer) !== undefined, `${method} ${pathAndQuery} has an OCI error body`);
    }
    assert.equal(origin.requests.length, 0, 'no refused request reaches the origin');
    assert.equal(c.mirrors[0]?.stats().requests.refused, refusals.length);

    const served = await request(c.url(0, blobPath(layerDigest)));
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, layer);
  });

  test('an origin that lies about a blob never gets its bytes served whole, stored, or asked again within 10 s', async (t) => {
    const origin = await startOrigin(t);
    const claimed = sha256('the bytes the digest names');
    origin.blobs.set(claimed, Buffer.from('other bytes entirely'));
    const c = await startCluster(t, 1, origin);
    const mirror = c.mirrors[0] as Mirror;
    const url = c.url(0, blobPath(claimed));

    // The node's own fetch fails; the request then ends when the cascade gives up on it.
    const first = await settleAdvancing(
      c.clock,
      request(url),
      () => mirror.stats().originFetches.failed >= 1,
    );
    const wholeWrongBody = first.status === 200 && first.complete;
    assert.ok(!wholeWrongBody, 'the client never gets a complete 200 of the wrong bytes');
    if (first.complete) assert.ok(first.status >= 500, `status ${first.status}`);
    assert.ok(mirror.stats().store.digestMismatches >= 1);
    assert.equal(mirror.stats().store.blobs, 0, 'nothing stored');
    const asked = origin.requests.length;

    const second = await request(url);
    assert.ok(second.status >= 500, `a second request within 10 s answers ${second.status}`);
    assert.notEqual(second.status, 404);
    assert.equal(origin.requests.length, asked, 'the second request does not reach the origin');
  });

  test('a failed origin fetch of a blob is answered at once, not after the puller’s stall deadline', async (t) => {
    const origin = await startOrigin(t);
    const c = await startCluster(t, 1, origin);
    const mirror = c.mirrors[0] as Mirror;
    // No fake time passes: the 30 s stall deadline of a blob is never reached.
    const answer = await request(c.url(0, blobPath(sha256('nowhere'))));
    assert.equal(answer.status, 502);
    assert.equal(mirror.stats().originFetches.failed, 1);
    assert.equal(origin.requests.length, 1, 'the origin was asked once');
  });

  test('an origin 404 for a digest is a 5xx, never 404; a 404 for a tag is MANIFEST_UNKNOWN', async (t) => {
    const origin = await startOrigin(t);
    const c = await startCluster(t, 1, origin);
    const mirror = c.mirrors[0] as Mirror;
    const missing = sha256('a blob the origin does not have');
    const blob = await settleAdvancing(
      c.clock,
      request(c.url(0, blobPath(missing))),
      () => mirror.stats().originFetches.failed >= 1,
    );
    assert.ok(blob.status >= 500, `blob: ${blob.status}`);
    assert.equal(mirror.stats().originFetches.failuresByClass['not-found'] >= 1, true);

    const manifest = await settleAdvancing(
      c.clock,
      request(c.url(0, `/v2/${REPOSITORY}/manifests/${sha256('a manifest nobody has')}`)),
      () => mirror.stats().originFetches.failed >= 2,
    );
    assert.ok(manifest.status >= 500, `manifest by digest: ${manifest.status}`);

    const tag = await request(c.url(0, `/v2/${REPOSITORY}/manifests/no-such-tag`));
    assert.equal(tag.status, 404);
    assert.equal(ociError(tag), 'MANIFEST_UNKNOWN');
  });
});

describe('mirror: manifests', () => {
  test('a tag is resolved at the origin and served with its media type; its digest is then served from the store', async (t) => {
    const origin = await startOrigin(t);
    // No `mediaType` field: by digest its type must be read from its fields (an index).
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const digest = sha256(bytes);
    origin.manifests.set(digest, { bytes, mediaType: OCI_INDEX });
    origin.tags.set('3.20', digest);
    const c = await startCluster(t, 1, origin);

    const byTag = await request(c.url(0, `/v2/${REPOSITORY}/manifests/3.20`));
    assert.equal(byTag.status, 200);
    assert.deepEqual(byTag.body, bytes);
    assert.equal(byTag.headers['content-type'], OCI_INDEX);
    assert.equal(byTag.headers['docker-content-digest'], digest);
    const heads = origin.requests.filter((r) => r.method === 'HEAD' && r.url.endsWith('/manifests/3.20'));
    assert.equal(heads.length, 1, 'the tag is resolved with a HEAD');
    const asked = origin.requests.length;

    const byDigest = await request(c.url(0, `/v2/${REPOSITORY}/manifests/${digest}`));
    assert.equal(byDigest.status, 200);
    assert.deepEqual(byDigest.body, bytes);
    assert.equal(byDigest.headers['content-type'], OCI_INDEX);
    assert.equal(byDigest.headers['docker-content-digest'], digest);
    assert.equal(origin.requests.length, asked, 'by digest it comes from the store');
  });

  test('a Docker manifest by digest is served with the media type its bytes declare', async (t) => {
    const origin = await startOrigin(t);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }));
    const digest = sha256(bytes);
    origin.manifests.set(digest, { bytes, mediaType: DOCKER_MANIFEST });
    const c = await startCluster(t, 1, origin);
    const first = await request(c.url(0, `/v2/${REPOSITORY}/manifests/${digest}`));
    assert.equal(first.status, 200);
    assert.equal(first.headers['content-type'], DOCKER_MANIFEST);
    const head = await request(c.url(0, `/v2/${REPOSITORY}/manifests/${digest}`), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], DOCKER_MANIFEST);
    assert.equal(head.headers['content-length'], String(bytes.length));
    assert.equal(head.body.length, 0);
    assert.equal(origin.requests.length, 1);
  });
});

describe('mirror: requests from peers', () => {
  test('Weft-Mirrored: a key the node lacks is 404 without asking the origin; a key it holds is served', async (t) => {
    const origin = await startOrigin(t);
    origin.blobs.set(layerDigest, layer);
    const c = await startCluster(t, 1, origin);
    const url = c.url(0, blobPath(layerDigest));
    const miss = await request(url, { headers: { 'weft-mirrored': '1' } });
    assert.equal(miss.status, 404);
    assert.equal(ociError(miss), 'BLOB_UNKNOWN');
    assert.equal(origin.requests.length, 0, 'a peer’s miss never reaches the origin');
    assert.equal(c.mirrors[0]?.stats().requests.peerMisses, 1);

    assert.equal((await request(url)).status, 200);
    const hit = await request(url, { headers: { 'weft-mirrored': '1' } });
    assert.equal(hit.status, 200);
    assert.deepEqual(hit.body, layer);
    assert.equal(origin.requests.length, 1);
  });

  test('a blob node 0 holds is served through node 1, which takes it from node 0 and then holds it', async (t) => {
    const origin = await startOrigin(t);
    const c = await startCluster(t, 2, origin);
    // A blob HRW hands to node 0, so node 0 fetches it itself and is woken by its own store.
    let blob = layer;
    for (let i = 0; hrwRank(c.grid.hosts, sha256(blob))[0] !== c.grid.hosts[0]; i++) {
      blob = Buffer.from(`${layer.toString()} #${i}`);
    }
    const digest = sha256(blob);
    origin.blobs.set(digest, blob);
    const [node0, node1] = c.mirrors as [Mirror, Mirror];

    const viaNode0 = await request(c.url(0, blobPath(digest)));
    assert.equal(viaNode0.status, 200);
    assert.deepEqual(viaNode0.body, blob);
    await until(() => node0.stats().announcements.sent >= 1, 'node 0 announced the blob');

    const viaNode1 = await request(c.url(1, blobPath(digest)));
    assert.equal(viaNode1.status, 200);
    assert.deepEqual(viaNode1.body, blob);
    assert.equal(viaNode1.headers['docker-content-digest'], digest);
    assert.equal(origin.requests.length, 1, 'the origin was asked once for the cluster');
    assert.equal(node1.stats().content.peerFetches, 1);
    assert.equal(node0.stats().requests.fromPeers, 1);

    const held = await request(c.url(1, blobPath(digest)), { headers: { 'weft-mirrored': '1' } });
    assert.equal(held.status, 200, 'node 1 now holds the blob');
    assert.deepEqual(held.body, blob);
  });
});

describe('mirror: credentials', () => {
  test('a client’s Basic credential is passed to the origin, and a 401 under it is not negative-cached', async (t) => {
    const origin = await startOrigin(t);
    origin.blobs.set(layerDigest, layer);
    const c = await startCluster(t, 1, origin);
    const mirror = c.mirrors[0] as Mirror;
    const url = c.url(0, blobPath(layerDigest));
    origin.requiredAuthorization = basic('alice', 'right');

    const refused = await settleAdvancing(
      c.clock,
      request(url, { headers: { authorization: basic('alice', 'wrong') } }),
      () => mirror.stats().originFetches.failed >= 1,
    );
    assert.ok(refused.status >= 500, `under a wrong credential: ${refused.status}`);
    assert.ok(
      origin.requests.some((r) => r.headers.authorization === basic('alice', 'wrong')),
      'the client’s credential reached the origin',
    );
    assert.ok(mirror.stats().negativeCache.skippedDelegated >= 1, 'its 401 was not recorded');

    const served = await settleAdvancing(
      c.clock,
      request(url, { headers: { authorization: basic('alice', 'right') } }),
      () => mirror.stats().originFetches.failed >= 1,
    );
    assert.equal(served.status, 200, 'the right credential is not refused for the wrong one’s failure');
    assert.deepEqual(served.body, layer);
  });
});
