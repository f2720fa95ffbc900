import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { dashboardHandler } from '../../src/node/dashboard/dashboard-handler.ts';

const assetsDirectory = fileURLToPath(new URL('../../src/node/dashboard/assets/', import.meta.url));

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

// http.request sends the path exactly as given (fetch would normalise `..` away).
function request(
  port: number,
  method: string,
  rawPath: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A server that tries the dashboard first and answers 418 for whatever it declines. */
async function startServer(handler: ReturnType<typeof dashboardHandler>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (handler(req, res)) return;
    res.writeHead(418).end('declined by the dashboard');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function assertSecurityHeaders(reply: Reply): void {
  assert.equal(reply.headers['x-content-type-options'], 'nosniff');
  const policy = String(reply.headers['content-security-policy'] ?? '');
  for (const directive of [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ]) {
    assert.ok(policy.includes(directive), `CSP lacks ${directive}: ${policy}`);
  }
}

describe('dashboardHandler', () => {
  let server: http.Server;
  let port: number;
  const indexHtml = readFileSync(path.join(assetsDirectory, 'index.html'), 'utf8');

  before(async () => {
    server = await startServer(dashboardHandler());
    port = (server.address() as AddressInfo).port;
  });
  after(
    () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  );

  for (const pagePath of ['/', '/dashboard', '/dashboard/', '/dashboard?tab=functions']) {
    test(`GET ${pagePath} serves the page with no-cache and a strict CSP`, async () => {
      const reply = await request(port, 'GET', pagePath);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(reply.headers['cache-control'], 'no-cache');
      assertSecurityHeaders(reply);
      assert.equal(reply.body, indexHtml);
      assert.equal(Number(reply.headers['content-length']), Buffer.byteLength(indexHtml));
    });
  }

  for (const [asset, contentType] of [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
  ] as const) {
    test(`GET /dashboard/${asset} serves the file as ${contentType}`, async () => {
      const reply = await request(port, 'GET', `/dashboard/${asset}`);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], contentType);
      assert.equal(reply.headers['cache-control'], 'no-cache');
      assertSecurityHeaders(reply);
      assert.equal(reply.body, readFileSync(path.join(assetsDirectory, asset), 'utf8'));
    });
  }

  test('every module the page imports is served', async () => {
    const pending = ['app.js'];
    const seen = new Set<string>();
    while (pending.length > 0) {
      const asset = pending.pop() ?? '';
      if (seen.has(asset)) continue;
      seen.add(asset);
      const reply = await request(port, 'GET', `/dashboard/${asset}`);
      assert.equal(reply.status, 200, `${asset} is not served`);
      for (const match of reply.body.matchAll(/from '\.\/([\w-]+\.js)'/g)) pending.push(match[1] ?? '');
    }
    assert.ok(seen.size > 1, 'app.js imports its panels');
  });

  for (const attempt of [
    '/dashboard/../package.json',
    '/dashboard/%2e%2e/package.json',
    '/dashboard/%2E%2E%2Fpackage.json',
    '/dashboard/..%2f..%2fpackage.json',
    '/dashboard/.x',
    '/dashboard/%2ex',
    '/dashboard/assets/app.js',
    '/dashboard/%E0%A4%A',
    '/dashboard/nope.js',
  ]) {
    test(`GET ${attempt} is refused with 404`, async () => {
      const reply = await request(port, 'GET', attempt);
      assert.equal(reply.status, 404);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
      assert.doesNotMatch(reply.body, /"name": "weft"/);
    });
  }

  for (const foreign of [
    '/v1/views/node.stats',
    '/dashboards',
    '/dashboardx/app.js',
    '/metrics',
    '/app.js',
  ]) {
    test(`${foreign} is left to the next handler`, async () => {
      const reply = await request(port, 'GET', foreign);
      assert.equal(reply.status, 418);
      assert.equal(reply.body, 'declined by the dashboard');
    });
  }

  test('HEAD answers the headers of GET and no body', async () => {
    const get = await request(port, 'GET', '/dashboard/app.js');
    const head = await request(port, 'HEAD', '/dashboard/app.js');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal(head.headers['content-length'], get.headers['content-length']);
    assert.ok(Number(head.headers['content-length']) > 0);
    assertSecurityHeaders(head);
  });

  for (const method of ['POST', 'PUT', 'DELETE']) {
    test(`${method} on a dashboard path answers 405 with Allow`, async () => {
      for (const pagePath of ['/', '/dashboard', '/dashboard/app.js']) {
        const reply = await request(port, method, pagePath);
        assert.equal(reply.status, 405, `${method} ${pagePath}`);
        assert.equal(reply.headers.allow, 'GET, HEAD');
      }
    });
  }

  test('a matching If-None-Match is answered 304 without a body', async () => {
    const first = await request(port, 'GET', '/dashboard/style.css');
    const etag = first.headers.etag ?? '';
    assert.ok(etag.length > 2);
    const again = await request(port, 'GET', '/dashboard/style.css', { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    const stale = await request(port, 'GET', '/dashboard/style.css', { 'If-None-Match': '"other"' });
    assert.equal(stale.status, 200);
  });
});

describe('dashboardHandler with its own assets directory', () => {
  let directory: string;

  before(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'weft-dashboard-'));
  });
  after(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  test('files are read once at startup: later changes and additions are not served', async () => {
    writeFileSync(path.join(directory, 'index.html'), '<p>first</p>');
    writeFileSync(path.join(directory, '.secret'), 'hidden');
    mkdirSync(path.join(directory, 'nested'));
    writeFileSync(path.join(directory, 'nested', 'inner.js'), '');
    const server = await startServer(dashboardHandler({ assetsDirectory: directory }));
    try {
      const { port } = server.address() as AddressInfo;
      writeFileSync(path.join(directory, 'index.html'), '<p>second</p>');
      writeFileSync(path.join(directory, 'late.js'), '');
      assert.equal((await request(port, 'GET', '/')).body, '<p>first</p>');
      assert.equal((await request(port, 'GET', '/dashboard/late.js')).status, 404);
      assert.equal((await request(port, 'GET', '/dashboard/.secret')).status, 404);
      assert.equal((await request(port, 'GET', '/dashboard/nested/inner.js')).status, 404);
      assert.equal((await request(port, 'GET', '/dashboard/nested')).status, 404);
    } finally {
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    }
  });

  test('a folder without index.html or a missing folder is a clear startup error', () => {
    const empty = mkdtempSync(path.join(directory, 'empty-'));
    assert.throws(() => dashboardHandler({ assetsDirectory: empty }), /has no index\.html/);
    assert.throws(
      () => dashboardHandler({ assetsDirectory: path.join(directory, 'missing') }),
      /cannot read the assets directory/,
    );
  });
});
