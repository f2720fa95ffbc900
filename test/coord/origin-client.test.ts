import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';

import { InvalidDigestError, InvalidOriginRequestError, OriginFetchError } from '../../src/coord/errors.ts';
import { parseOriginChallenge } from '../../src/coord/mirror/bearer-challenge.ts';
import { OriginClient, type OriginClientConfig } from '../../src/coord/mirror/origin-client.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { buildImage, pushImage } from './e2e/image.ts';
import { startOrigin } from './e2e/origin.ts';
import { ociToolsGate } from './e2e/tools-gate.ts';

function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface FakeServer {
  readonly url: string;
  readonly requests: SeenRequest[];
}

type Handler = (request: IncomingMessage, response: ServerResponse, server: FakeServer) => void;

const servers: http.Server[] = [];
const clients: OriginClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A loopback HTTP server that records every request and answers with `handler`. */
async function startFake(handler: Handler): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    handler(request, response, fake);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const fake: FakeServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
  };
  return fake;
}

function newClient(config: Partial<OriginClientConfig> = {}): OriginClient {
  const client = new OriginClient({ userAgent: 'weft-test/1', ...config });
  clients.push(client);
  return client;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const blobBytes = Buffer.from('layer bytes of a blob');
const blobDigest = sha256(blobBytes);
const manifestBytes = Buffer.from(
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
);
const manifestDigest = sha256(manifestBytes);
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

/**
 * A registry that wants `Bearer <token>` for everything under /v2/ and hands out tokens at
 * /token (checking the requester's Basic credential when one is expected).
 */
async function startTokenRegistry(options: {
  tokenAnswer: (n: number) => object;
  scope?: string;
  basic?: string;
}): Promise<FakeServer & { tokenRequests: () => SeenRequest[] }> {
  let issued = 0;
  const valid = new Set<string>();
  const fake = await startFake((request, response, self) => {
    const url = new URL(request.url ?? '/', self.url);
    if (url.pathname === '/token') {
      if (options.basic !== undefined && request.headers.authorization !== options.basic) {
        response.writeHead(401).end();
        return;
      }
      const answer = options.tokenAnswer(++issued) as { token?: string; access_token?: string };
      valid.add(answer.token ?? answer.access_token ?? '');
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      return;
    }
    const auth = request.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !valid.has(auth.slice(7))) {
      response
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${self.url}/token",service="fake registry",scope="${options.scope ?? 'repository:demo/app:pull'}"`,
        })
        .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    if (url.pathname === `/v2/demo/app/blobs/${blobDigest}`) {
      response.writeHead(200, { 'content-length': String(blobBytes.length) }).end(blobBytes);
      return;
    }
    response.writeHead(404).end();
  });
  return { ...fake, tokenRequests: () => fake.requests.filter((r) => r.url.startsWith('/token')) };
}

describe('bearer auth', () => {
  test('a 401 challenge is answered with a token from the realm, sent with the requester credential', async () => {
    const basic = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const registry = await startTokenRegistry({
      tokenAnswer: (n) => ({ token: `tok-${n}`, expires_in: 120 }),
      scope: 'repository:demo/app:pull,push',
      basic,
    });
    const client = newClient({ clock: new FakeClock() });

    const blob = await client.fetchBlob({
      origin: registry.url,
      repository: 'demo/app',
      digest: blobDigest,
      credential: { username: 'alice', password: 's3cret' },
    });

    assert.deepEqual(await readAll(blob.body), blobBytes);
    assert.equal(blob.size, blobBytes.length);
    const [tokenRequest] = registry.tokenRequests();
    assert.ok(tokenRequest !== undefined, 'a token was requested');
    const query = new URL(tokenRequest.url, registry.url).searchParams;
    assert.equal(query.get('service'), 'fake registry');
    assert.equal(query.get('scope'), 'repository:demo/app:pull,push', 'a quoted comma stays in the scope');
    assert.equal(tokenRequest.headers.authorization, basic);
    const retried = registry.requests.at(-1);
    assert.equal(retried?.headers.authorization, 'Bearer tok-1');
    assert.equal(retried.headers['user-agent'], 'weft-test/1');
  });

  test('a token is reused until expires_in passes on the clock, then fetched again', async () => {
    const registry = await startTokenRegistry({
      tokenAnswer: (n) => ({ token: `tok-${n}`, expires_in: 120 }),
    });
    const clock = new FakeClock();
    const client = newClient({ clock });
    const fetchOnce = async (): Promise<Buffer> =>
      readAll(
        (await client.fetchBlob({ origin: registry.url, repository: 'demo/app', digest: blobDigest })).body,
      );

    await fetchOnce();
    clock.advance(119_000);
    await fetchOnce();
    assert.equal(registry.tokenRequests().length, 1, 'the cached token served the second fetch');
    assert.equal(registry.requests.at(-1)?.headers.authorization, 'Bearer tok-1');

    clock.advance(1_000);
    assert.deepEqual(await fetchOnce(), blobBytes);
    assert.equal(registry.tokenRequests().length, 2);
    assert.equal(registry.requests.at(-1)?.headers.authorization, 'Bearer tok-2');
    assert.equal(client.stats().cachedTokens, 1);
    assert.equal(clock.pendingTimers, 0, 'no timer outlives a fetch');
  });

  test('access_token is accepted and lives 60 s when the realm gives no expires_in', async () => {
    const registry = await startTokenRegistry({ tokenAnswer: (n) => ({ access_token: `acc-${n}` }) });
    const clock = new FakeClock();
    const client = newClient({ clock });
    const fetchOnce = async (): Promise<void> => {
      await readAll(
        (await client.fetchBlob({ origin: registry.url, repository: 'demo/app', digest: blobDigest })).body,
      );
    };

    await fetchOnce();
    clock.advance(59_999);
    await fetchOnce();
    assert.equal(registry.tokenRequests().length, 1);
    clock.advance(1);
    await fetchOnce();
    assert.equal(registry.tokenRequests().length, 2);
    assert.equal(registry.requests.at(-1)?.headers.authorization, 'Bearer acc-2');
  });

  test('the token cache is bounded: the oldest token is dropped and counted', async () => {
    const registry = await startTokenRegistry({
      tokenAnswer: (n) => ({ token: `tok-${n}`, expires_in: 300 }),
    });
    const client = newClient({ clock: new FakeClock(), maxCachedTokens: 2 });
    for (const username of ['a', 'b', 'c']) {
      const blob = await client.fetchBlob({
        origin: registry.url,
        repository: 'demo/app',
        digest: blobDigest,
        credential: { username, password: 'pw' },
      });
      await readAll(blob.body);
    }
    assert.deepEqual(client.stats(), { cachedTokens: 2, tokenFetches: 3, tokenEvictions: 1 });
  });

  test('a hostile WWW-Authenticate header fails the fetch as auth with a clear message', async () => {
    const hostile = [
      'Bearer realm="http://127.0.0.1/token',
      'Bearer realm="file:///etc/passwd",service="x"',
      'Bearer realm="javascript:alert(1)"',
      'Bearer realm="http://user:pw@127.0.0.1/token"',
      'Bearer service="no realm"',
      `Bearer realm="http://127.0.0.1/${'a'.repeat(9_000)}"`,
      'Bearer ,,,=,"',
      'Bearer realm="http://127.0.0.1/t",realm="http://evil/t"',
      `Bearer ${Array.from({ length: 40 }, (_, i) => `p${i}="v"`).join(',')},realm="http://127.0.0.1/t"`,
      '@@@',
      'Negotiate abc==',
    ];
    let next = 0;
    const registry = await startFake((_request, response) => {
      response.setHeader('www-authenticate', hostile[next++] ?? '');
      response.writeHead(401).end();
    });
    const client = newClient({ clock: new FakeClock() });
    for (const header of hostile) {
      const error = await client
        .fetchManifest({ origin: registry.url, repository: 'demo/app', reference: 'v1' })
        .then(
          () => assert.fail(`accepted ${header.slice(0, 60)}`),
          (e: unknown) => e,
        );
      assert.ok(error instanceof OriginFetchError, `${header.slice(0, 60)}: ${String(error)}`);
      assert.equal(error.failureClass, 'auth');
      assert.equal(error.status, 401);
      assert.match(error.message, /unusable challenge/);
    }
    assert.equal(client.stats().tokenFetches, 0, 'no realm was contacted');
  });
});

describe('the challenge parser', () => {
  test('quoted values keep commas and escaped quotes; several challenges in one header', () => {
    const parsed = parseOriginChallenge([
      'Basic realm="r", Bearer realm="https://auth.example/token?x=1",service="reg, \\"main\\"",scope="repository:a/b:pull,push",error="insufficient_scope"',
    ]);
    assert.ok(parsed.challenge?.scheme === 'bearer', parsed.problem);
    assert.equal(parsed.challenge.realm.href, 'https://auth.example/token?x=1');
    assert.equal(parsed.challenge.service, 'reg, "main"');
    assert.equal(parsed.challenge.scope, 'repository:a/b:pull,push');
  });

  test('a token68 scheme before a Bearer challenge, and unquoted values, parse', () => {
    const parsed = parseOriginChallenge(['Negotiate a+b/c==, bearer Realm="http://127.0.0.1:9/t" , scope=x']);
    assert.ok(parsed.challenge?.scheme === 'bearer', parsed.problem);
    assert.equal(parsed.challenge.realm.href, 'http://127.0.0.1:9/t');
    assert.equal(parsed.challenge.scope, 'x');
  });

  test('Basic alone is a Basic challenge; nothing usable is a problem, not an exception', () => {
    assert.deepEqual(parseOriginChallenge(['Basic realm="registry"']).challenge, { scheme: 'basic' });
    assert.match(parseOriginChallenge([]).problem ?? '', /no WWW-Authenticate/);
    assert.match(parseOriginChallenge(['Digest nonce="x"']).problem ?? '', /no Bearer or Basic/);
  });
});

describe('redirects', () => {
  test('a blob redirected to storage on another origin is fetched without the Authorization header', async () => {
    const storage = await startFake((_request, response) => {
      response.writeHead(200, { 'content-length': String(blobBytes.length) }).end(blobBytes);
    });
    const registry = await startFake((request, response) => {
      if (request.headers.authorization === undefined) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end();
        return;
      }
      response.writeHead(307, { location: `${storage.url}/store/blob?X-Signature=secret` }).end();
    });
    const client = newClient({ clock: new FakeClock() });

    const blob = await client.fetchBlob({
      origin: registry.url,
      repository: 'demo/app',
      digest: blobDigest,
      credential: { username: 'alice', password: 'pw' },
    });

    assert.deepEqual(await readAll(blob.body), blobBytes);
    assert.equal(registry.requests.at(-1)?.headers.authorization?.startsWith('Basic '), true);
    assert.equal(storage.requests.length, 1);
    assert.equal(
      storage.requests[0]?.headers.authorization,
      undefined,
      'the credential stayed with the registry',
    );
    assert.equal(storage.requests[0]?.url, '/store/blob?X-Signature=secret');
  });

  test('more than 5 redirects fail as transient; an error URL never shows the signed query', async () => {
    const registry = await startFake((request, response) => {
      response.writeHead(302, { location: `${request.url ?? '/'}x?sig=secret` }).end();
    });
    const client = newClient({ clock: new FakeClock() });
    const error = await client
      .fetchBlob({ origin: registry.url, repository: 'demo/app', digest: blobDigest })
      .then(
        () => assert.fail('followed forever'),
        (e: unknown) => e,
      );
    assert.ok(error instanceof OriginFetchError, String(error));
    assert.equal(error.failureClass, 'transient');
    assert.equal(error.retryable, true);
    assert.match(error.message, /more than 5 redirects/);
    assert.doesNotMatch(error.url, /secret/);
    assert.equal(registry.requests.length, 6);
  });
});

describe('failures', () => {
  test('origin statuses map to failure classes', async () => {
    const cases: [number, string, Record<string, string>][] = [
      [404, 'not-found', {}],
      [401, 'auth', { 'www-authenticate': 'Basic realm="r"' }],
      [403, 'auth', {}],
      [429, 'rate-limited', {}],
      [500, 'transient', {}],
      [503, 'transient', {}],
    ];
    let next = 0;
    const registry = await startFake((_request, response) => {
      const [status, , headers] = cases[next++] ?? [500, '', {}];
      response.writeHead(status, headers).end('{"errors":[]}');
    });
    const client = newClient({ clock: new FakeClock() });
    for (const [status, failureClass] of cases) {
      const error = await client
        .fetchBlob({ origin: registry.url, repository: 'demo/app', digest: blobDigest })
        .then(
          () => assert.fail(`${status} accepted`),
          (e: unknown) => e,
        );
      assert.ok(error instanceof OriginFetchError, String(error));
      assert.equal(error.code, 'WEFT_COORD_ORIGIN_FAILED');
      assert.equal(error.status, status);
      assert.equal(error.failureClass, failureClass, `class of ${status}`);
      assert.equal(error.url, `${registry.url}/v2/demo/app/blobs/${blobDigest}`);
    }
  });

  test('a registry that never answers fails as transient after timeoutMs on the clock', async () => {
    const registry = await startFake(() => {
      // Never answers.
    });
    const clock = new FakeClock();
    const client = newClient({ clock, timeoutMs: 5_000 });
    const pending = client.fetchManifest({ origin: registry.url, repository: 'demo/app', reference: 'v1' });
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(5_000);
    const error = await pending.then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OriginFetchError, String(error));
    assert.equal(error.failureClass, 'transient');
    assert.match(error.message, /within 5000 ms/);
  });

  test("the caller's abort rejects with the caller's reason", async () => {
    const registry = await startFake(() => {
      // Never answers.
    });
    const client = newClient({ clock: new FakeClock() });
    const controller = new AbortController();
    const reason = new Error('requester went away');
    const pending = client.fetchBlob({
      origin: registry.url,
      repository: 'demo/app',
      digest: blobDigest,
      signal: controller.signal,
    });
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
  });

  test('bad repository names, tags, digests and origins are refused before any request', async () => {
    const registry = await startFake((_request, response) => response.writeHead(500).end());
    const client = newClient();
    const base = { origin: registry.url, repository: 'demo/app' };
    await assert.rejects(
      client.fetchBlob({ ...base, repository: 'Demo/../app', digest: blobDigest }),
      InvalidOriginRequestError,
    );
    await assert.rejects(
      client.fetchBlob({ ...base, repository: 'demo//app', digest: blobDigest }),
      InvalidOriginRequestError,
    );
    await assert.rejects(client.fetchBlob({ ...base, digest: 'sha256:../../etc' }), InvalidDigestError);
    await assert.rejects(client.fetchManifest({ ...base, reference: 'v1/../x' }), InvalidOriginRequestError);
    await assert.rejects(client.fetchManifest({ ...base, reference: 'md5:abc' }), InvalidDigestError);
    await assert.rejects(
      client.fetchManifest({ ...base, origin: 'ftp://127.0.0.1', reference: 'v1' }),
      InvalidOriginRequestError,
    );
    await assert.rejects(
      client.fetchManifest({ ...base, origin: 'http://u:p@127.0.0.1', reference: 'v1' }),
      InvalidOriginRequestError,
    );
    assert.equal(registry.requests.length, 0);
  });
});

describe('manifests', () => {
  async function manifestRegistry(
    headers: Record<string, string>,
    body = manifestBytes,
  ): Promise<FakeServer> {
    return startFake((_request, response) => {
      response
        .writeHead(200, { 'content-type': ociManifest, 'content-length': String(body.length), ...headers })
        .end(body);
    });
  }

  test('a manifest by tag comes back with its media type and the digest the origin named', async () => {
    const registry = await manifestRegistry({ 'docker-content-digest': manifestDigest });
    const client = newClient();
    const manifest = await client.fetchManifest({
      origin: registry.url,
      repository: 'demo/app',
      reference: 'v1',
    });
    assert.deepEqual(manifest, { bytes: manifestBytes, mediaType: ociManifest, digest: manifestDigest });
    assert.match(registry.requests[0]?.headers.accept ?? '', /application\/vnd\.oci\.image\.index\.v1\+json/);
    assert.match(
      registry.requests[0]?.headers.accept ?? '',
      /application\/vnd\.docker\.distribution\.manifest\.v2\+json/,
    );
  });

  test('a manifest whose bytes do not hash to the requested digest is refused', async () => {
    const registry = await manifestRegistry({}, Buffer.from('{"tampered":true}'));
    const client = newClient();
    const error = await client
      .fetchManifest({ origin: registry.url, repository: 'demo/app', reference: manifestDigest })
      .then(
        () => assert.fail('accepted'),
        (e: unknown) => e,
      );
    assert.ok(error instanceof OriginFetchError, String(error));
    assert.equal(error.failureClass, 'transient');
    assert.match(error.message, /hash to sha256:/);
  });

  test('a manifest whose Docker-Content-Digest does not match its bytes is refused', async () => {
    const registry = await manifestRegistry({ 'docker-content-digest': sha256('something else') });
    const client = newClient();
    await assert.rejects(
      client.fetchManifest({ origin: registry.url, repository: 'demo/app', reference: 'v1' }),
      OriginFetchError,
    );
  });

  test('a manifest over maxManifestBytes is refused', async () => {
    const big = Buffer.alloc(2048, 0x20);
    const registry = await manifestRegistry({}, big);
    const client = newClient({ maxManifestBytes: 1024 });
    await assert.rejects(
      client.fetchManifest({ origin: registry.url, repository: 'demo/app', reference: 'v1' }),
      (error) => error instanceof OriginFetchError && /exceeds 1024 bytes/.test(error.message),
    );
  });

  test('headManifest returns type, digest and size', async () => {
    const registry = await manifestRegistry({ 'docker-content-digest': manifestDigest });
    const client = newClient();
    const head = await client.headManifest({ origin: registry.url, repository: 'demo/app', reference: 'v1' });
    assert.deepEqual(head, { mediaType: ociManifest, digest: manifestDigest, size: manifestBytes.length });
    assert.equal(registry.requests[0]?.method, 'HEAD');
  });
});

const gate = await ociToolsGate();

test(
  'a real registry: an image pushed with skopeo is fetched back, manifest and blobs hash to their digests',
  { skip: gate.skip, timeout: 120_000 },
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'weft-origin-client-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const origin = await startOrigin();
    t.after(() => origin.stop());
    const image = await buildImage(path.join(work, 'built'), { seed: 'origin-client' });
    await pushImage(image, origin.url, 'weft/origin-client');
    const client = newClient();

    const byTag = await client.fetchManifest({
      origin: origin.url,
      repository: 'weft/origin-client',
      reference: image.refName,
    });
    assert.equal(byTag.digest, image.manifestDigest);
    assert.equal(byTag.mediaType, ociManifest);
    assert.deepEqual(byTag.bytes, image.manifestBytes);
    const byDigest = await client.fetchManifest({
      origin: origin.url,
      repository: 'weft/origin-client',
      reference: image.manifestDigest,
    });
    assert.deepEqual(byDigest.bytes, image.manifestBytes);

    for (const digest of image.blobDigests) {
      const blob = await client.fetchBlob({ origin: origin.url, repository: 'weft/origin-client', digest });
      const bytes = await readAll(blob.body);
      assert.equal(sha256(bytes), digest);
      assert.equal(blob.size, bytes.length);
      assert.deepEqual(bytes, await readFile(image.blobPath(digest)));
    }
    const missing = await client
      .fetchBlob({ origin: origin.url, repository: 'weft/origin-client', digest: sha256('not pushed') })
      .then(
        () => assert.fail('found'),
        (e: unknown) => e,
      );
    assert.ok(missing instanceof OriginFetchError, String(missing));
    assert.equal(missing.failureClass, 'not-found');
  },
);
