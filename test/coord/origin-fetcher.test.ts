import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';

import { ContentStore } from '../../src/coord/content-store.ts';
import { DigestMismatchError, OriginFetchError } from '../../src/coord/errors.ts';
import { InFlightMap } from '../../src/coord/in-flight.ts';
import { staticMembership } from '../../src/coord/membership.ts';
import type { FetchBlobRequest, FetchedBlob, OriginClient } from '../../src/coord/mirror/origin-client.ts';
import { OriginFetcher, type FetchRequest } from '../../src/coord/mirror/origin-fetcher.ts';
import { NegativeCache } from '../../src/coord/negative-cache.ts';
import { CoordServer } from '../../src/coord/rpc/index.ts';
import { ClosedError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const ORIGIN = 'https://registry.example';
const REPOSITORY = 'library/alpine';
const layer = Buffer.from('the bytes of a layer');
const layerDigest = sha256(layer);
const blobRequest: FetchRequest = { origin: ORIGIN, repository: REPOSITORY, kind: 'blob' };

function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** An origin client whose blob answers the test decides, one call at a time. */
class ScriptedOrigin implements Pick<OriginClient, 'fetchBlob' | 'fetchManifest'> {
  readonly calls: FetchBlobRequest[] = [];
  #answer: (request: FetchBlobRequest) => Promise<FetchedBlob>;

  constructor(answer: (request: FetchBlobRequest) => Promise<FetchedBlob>) {
    this.#answer = answer;
  }

  fetchBlob(request: FetchBlobRequest): Promise<FetchedBlob> {
    this.calls.push(request);
    return this.#answer(request);
  }

  fetchManifest(): never {
    throw new Error('no manifests here');
  }
}

const serves = (bytes: Buffer) => (): Promise<FetchedBlob> =>
  Promise.resolve({ body: Readable.from([bytes]), size: bytes.length });

const fails = (failureClass: OriginFetchError['failureClass'], status: number) => (): Promise<FetchedBlob> =>
  Promise.reject(new OriginFetchError(`origin answered ${status}`, { failureClass, status, url: ORIGIN }));

/** Answers only when the request's signal aborts (it rejects with the reason). */
const hangs = (request: FetchBlobRequest): Promise<FetchedBlob> =>
  new Promise((_, reject) => {
    request.signal?.addEventListener('abort', () => {
      reject(request.signal?.reason as Error);
    });
  });

async function setup(t: TestContext, origin: ScriptedOrigin) {
  const clock = new FakeClock();
  const directory = await mkdtemp(path.join(tmpdir(), 'weft-origin-fetcher-'));
  const store = await ContentStore.open({ directory, maxBytes: 1024 * 1024, clock });
  t.after(async () => {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });
  const inFlight = new InFlightMap({ clock });
  const negativeCache = new NegativeCache({ clock });
  const stored: string[] = [];
  const fetcher = new OriginFetcher({
    store,
    originClient: origin,
    inFlight,
    negativeCache,
    origins: [ORIGIN],
    onStored: (key) => stored.push(key),
  });
  const server = new CoordServer(
    {
      membership: staticMembership('self', ['self']),
      inFlight,
      negativeCache,
      hasCached: (key) => Promise.resolve(store.has(key)),
      fetcher,
    },
    { clock },
  );
  return { clock, store, inFlight, negativeCache, fetcher, server, stored };
}

/** Lets promise chains and file I/O run until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 20_000 && !condition(); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(condition(), what);
}

describe('origin fetcher: which origins', () => {
  test('a pleaseFetch naming an origin this node is not configured with is declined, and its claim released', async (t) => {
    const origin = new ScriptedOrigin(serves(layer));
    const { fetcher, server, inFlight } = await setup(t, origin);
    const results = server.localPleaseFetch({
      keys: [layerDigest],
      origin: 'https://attacker.example',
      repository: REPOSITORY,
      kind: 'blob',
    });
    assert.deepEqual(results, [{ key: layerDigest, outcome: 'unspecified' }]);
    assert.equal(inFlight.get(layerDigest), undefined, 'the claim is released');
    assert.equal(fetcher.stats().declined, 1);
    assert.equal(origin.calls.length, 0, 'nothing was fetched');
    assert.equal(fetcher.allows('https://attacker.example'), false);
    assert.equal(fetcher.allows(ORIGIN), true);
  });

  test('a pleaseFetch for a configured origin is started, stored, announced, and its claim released', async (t) => {
    const origin = new ScriptedOrigin(serves(layer));
    const { fetcher, server, inFlight, store, stored } = await setup(t, origin);
    const [result] = server.localPleaseFetch({
      keys: [layerDigest],
      origin: ORIGIN,
      repository: REPOSITORY,
      kind: 'blob',
    });
    assert.equal(result?.outcome, 'started');
    await until(() => store.has(layerDigest), 'the blob is stored');
    await until(() => inFlight.get(layerDigest) === undefined, 'the claim is released');
    assert.deepEqual(stored, [layerDigest]);
    assert.equal(fetcher.stats().stored, 1);
    assert.equal(fetcher.stats().bytes, layer.length);
  });

  test('fetch refuses an origin that is not configured without contacting it', async (t) => {
    const origin = new ScriptedOrigin(serves(layer));
    const { fetcher, inFlight } = await setup(t, origin);
    await assert.rejects(
      fetcher.fetch(layerDigest, { ...blobRequest, origin: 'https://elsewhere.example' }),
      OriginFetchError,
    );
    assert.equal(origin.calls.length, 0);
    assert.equal(inFlight.stats().inFlight, 0);
  });
});

describe('origin fetcher: one fetch per key', () => {
  test('a fetch of a key already running joins it: one origin request, both stored', async (t) => {
    let release: (() => void) | undefined;
    const origin = new ScriptedOrigin(
      () =>
        new Promise((resolve) => {
          release = () => {
            resolve({ body: Readable.from([layer]), size: layer.length });
          };
        }),
    );
    const { fetcher, store, stored } = await setup(t, origin);
    const first = fetcher.fetch(layerDigest, blobRequest);
    const second = fetcher.fetch(layerDigest, blobRequest);
    assert.ok(fetcher.running(layerDigest) !== undefined);
    await until(() => release !== undefined, 'the origin was asked');
    release?.();
    await Promise.all([first, second]);
    assert.equal(origin.calls.length, 1);
    assert.equal(fetcher.stats().joined, 1);
    assert.equal(fetcher.stats().started, 1);
    assert.ok(store.has(layerDigest));
    assert.deepEqual(stored, [layerDigest]);
    assert.equal(fetcher.running(layerDigest), undefined);
  });

  test('a caller whose signal aborts stops waiting; the fetch goes on and stores the key', async (t) => {
    let release: (() => void) | undefined;
    const origin = new ScriptedOrigin(
      () =>
        new Promise((resolve) => {
          release = () => {
            resolve({ body: Readable.from([layer]), size: layer.length });
          };
        }),
    );
    const { fetcher, store } = await setup(t, origin);
    const caller = new AbortController();
    const waiting = fetcher.fetch(layerDigest, blobRequest, caller.signal);
    caller.abort(new Error('client left'));
    await assert.rejects(waiting, /client left/);
    await until(() => release !== undefined, 'the origin was asked');
    release?.();
    await until(() => store.has(layerDigest), 'stored for the next asker');
  });
});

describe('origin fetcher: failures', () => {
  for (const [failureClass, status] of [
    ['not-found', 404],
    ['auth', 401],
    ['rate-limited', 429],
    ['transient', 503],
  ] as const) {
    test(`a ${status} releases the claim and is negative-cached as ${failureClass}`, async (t) => {
      const origin = new ScriptedOrigin(fails(failureClass, status));
      const { fetcher, inFlight, negativeCache, store } = await setup(t, origin);
      await assert.rejects(fetcher.fetch(layerDigest, blobRequest), OriginFetchError);
      assert.equal(inFlight.get(layerDigest), undefined, 'the claim is released');
      assert.equal(negativeCache.lookup(layerDigest)?.failureClass, failureClass);
      assert.equal(fetcher.stats().failuresByClass[failureClass], 1);
      assert.equal(fetcher.stats().running, 0);
      assert.equal(store.has(layerDigest), false);
    });
  }

  test('bytes that do not hash to the digest are refused, not stored, and cached as transient', async (t) => {
    const origin = new ScriptedOrigin(serves(Buffer.from('not the layer at all')));
    const { fetcher, inFlight, negativeCache, store, stored } = await setup(t, origin);
    await assert.rejects(fetcher.fetch(layerDigest, blobRequest), DigestMismatchError);
    assert.equal(store.has(layerDigest), false);
    assert.deepEqual(stored, []);
    assert.equal(inFlight.get(layerDigest), undefined);
    assert.equal(negativeCache.lookup(layerDigest)?.failureClass, 'transient');
    assert.equal(store.stats().digestMismatches, 1);
  });

  test('a failure under the requester’s own credential is not negative-cached', async (t) => {
    const origin = new ScriptedOrigin(fails('auth', 401));
    const { fetcher, negativeCache } = await setup(t, origin);
    const credential = { username: 'alice', password: 'wrong' };
    await assert.rejects(fetcher.fetch(layerDigest, { ...blobRequest, credential }), OriginFetchError);
    assert.deepEqual(origin.calls[0]?.credential, credential, 'the requester’s credential is used');
    assert.equal(negativeCache.lookup(layerDigest), undefined);
    assert.equal(negativeCache.stats().skippedDelegated, 1);
  });

  test('a failed pleaseFetch releases the server’s claim and answers recently-failed next time', async (t) => {
    const origin = new ScriptedOrigin(fails('not-found', 404));
    const { fetcher, server, inFlight } = await setup(t, origin);
    const order = { keys: [layerDigest], origin: ORIGIN, repository: REPOSITORY, kind: 'blob' as const };
    assert.equal(server.localPleaseFetch(order)[0]?.outcome, 'started');
    await until(() => fetcher.stats().failed === 1, 'the fetch failed');
    await until(() => inFlight.get(layerDigest) === undefined, 'the claim is released');
    const [again] = server.localPleaseFetch(order);
    assert.equal(again?.outcome, 'recently-failed');
    assert.equal(again.failureClass, 'not-found');
    assert.equal(origin.calls.length, 1);
  });
});

describe('origin fetcher: close', () => {
  test('close aborts running fetches, releases their claims, and caches nothing', async (t) => {
    const origin = new ScriptedOrigin(hangs);
    const { fetcher, server, inFlight, negativeCache } = await setup(t, origin);
    const own = fetcher.fetch(layerDigest, blobRequest);
    const other = sha256('another layer');
    assert.equal(
      server.localPleaseFetch({ keys: [other], origin: ORIGIN, repository: REPOSITORY, kind: 'blob' })[0]
        ?.outcome,
      'started',
    );
    await until(() => origin.calls.length === 2, 'both fetches reached the origin');
    await fetcher.close();
    await assert.rejects(own, ClosedError);
    assert.equal(inFlight.stats().inFlight, 0, 'every claim is released');
    assert.equal(negativeCache.lookup(layerDigest), undefined);
    assert.equal(negativeCache.lookup(other), undefined);
    assert.equal(negativeCache.stats().recorded, 0);
    assert.equal(fetcher.stats().running, 0);

    await assert.rejects(fetcher.fetch(layerDigest, blobRequest), ClosedError);
    const [declined] = server.localPleaseFetch({
      keys: [other],
      origin: ORIGIN,
      repository: REPOSITORY,
      kind: 'blob',
    });
    assert.equal(declined?.outcome, 'unspecified', 'a closed fetcher declines');
    assert.equal(inFlight.stats().inFlight, 0);
    assert.equal(origin.calls.length, 2);
  });
});
