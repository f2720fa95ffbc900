import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import {
  contentRangeHeader,
  parseRangeHeader,
  unsatisfiedRangeHeader,
} from '../../src/coord/mirror/http-range.ts';
import { OCI_API_VERSION_HEADER, writeOciError } from '../../src/coord/mirror/oci-errors.ts';
import { isRepositoryName, isTag } from '../../src/coord/mirror/oci-names.ts';
import { parseMirrorPath, type MirrorRoute } from '../../src/coord/mirror/oci-routes.ts';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

function refusedWith(status: number, code: string): (route: MirrorRoute) => void {
  return (route) => {
    assert.equal(route.kind, 'refused', `expected a refusal, got ${JSON.stringify(route)}`);
    assert.equal(route.status, status);
    assert.equal(route.code, code);
    assert.ok(route.message.length > 0);
  };
}

describe('parseMirrorPath', () => {
  const served: [string, string, MirrorRoute][] = [
    ['GET', '/v2/', { kind: 'base' }],
    ['HEAD', '/v2', { kind: 'base' }],
    ['GET', '/v2/?ns=docker.io', { kind: 'base', namespace: 'docker.io' }],
    [
      'GET',
      `/v2/library/alpine/blobs/${sha256}`,
      { kind: 'blob', repository: 'library/alpine', digest: sha256 },
    ],
    ['HEAD', `/v2/a/blobs/${sha512}`, { kind: 'blob', repository: 'a', digest: sha512 }],
    [
      'GET',
      `/v2/library/alpine/blobs/${sha256}?ns=Registry.Example.com:5000`,
      { kind: 'blob', repository: 'library/alpine', digest: sha256, namespace: 'registry.example.com:5000' },
    ],
    [
      'GET',
      '/v2/library/alpine/manifests/3.20',
      { kind: 'manifest', repository: 'library/alpine', reference: '3.20', referenceIsDigest: false },
    ],
    [
      'HEAD',
      `/v2/x/manifests/${sha256}?ns=[::1]:5000&other=1`,
      {
        kind: 'manifest',
        repository: 'x',
        reference: sha256,
        referenceIsDigest: true,
        namespace: '[::1]:5000',
      },
    ],
    // `blobs`, `manifests` and `uploads` are valid name components and tags.
    [
      'GET',
      '/v2/team/blobs/manifests/uploads',
      { kind: 'manifest', repository: 'team/blobs', reference: 'uploads', referenceIsDigest: false },
    ],
    [
      'GET',
      '/v2/a.b_c__d---e/f/manifests/V1_x-y.z',
      { kind: 'manifest', repository: 'a.b_c__d---e/f', reference: 'V1_x-y.z', referenceIsDigest: false },
    ],
  ];
  for (const [method, url, expected] of served) {
    test(`${method} ${url.slice(0, 80)} is served`, () => {
      assert.deepEqual(parseMirrorPath(method, url), expected);
    });
  }

  const notMirror = ['/', '/healthz', '/v2x/foo', '/v1/foo/blobs/x', '/V2/', 'http://host/v2/', '*', ''];
  for (const url of notMirror) {
    test(`${JSON.stringify(url)} is left to other routes`, () => {
      assert.deepEqual(parseMirrorPath('GET', url), { kind: 'not-mirror' });
    });
  }

  const refusals: [string, string, number, string][] = [
    // Writes and lists: the mirror is read-only.
    ['POST', '/v2/a/blobs/uploads/', 405, 'UNSUPPORTED'],
    ['PUT', `/v2/a/manifests/latest`, 405, 'UNSUPPORTED'],
    ['DELETE', `/v2/a/blobs/${sha256}`, 405, 'UNSUPPORTED'],
    ['get', `/v2/a/blobs/${sha256}`, 405, 'UNSUPPORTED'],
    ['OPTIONS', '/v2/', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/blobs/uploads/', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/blobs/uploads', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/blobs/uploads/5f0c-uuid', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/tags/list', 405, 'UNSUPPORTED'],
    ['GET', '/v2/_catalog', 405, 'UNSUPPORTED'],
    ['GET', `/v2/a/referrers/${sha256}`, 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/manifests/', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a/blobs/', 405, 'UNSUPPORTED'],
    ['GET', '/v2/a', 405, 'UNSUPPORTED'],
    // Traversal and escapes.
    ['GET', `/v2/../etc/passwd/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/../b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/%2e%2e/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a%2fb/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/sha256%3a${'a'.repeat(64)}`, 400, 'NAME_INVALID'],
    ['GET', '/v2/a/manifests/lat%65st', 400, 'NAME_INVALID'],
    ['GET', `/v2/a\\b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a\0/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/é/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2//a/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a//b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a//blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a..b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/blobs/${sha256}`, 400, 'NAME_INVALID'],
    // Name grammar.
    ['GET', `/v2/Library/alpine/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/-a/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a___b/blobs/${sha256}`, 400, 'NAME_INVALID'],
    ['GET', `/v2/${'a'.repeat(256)}/blobs/${sha256}`, 400, 'NAME_INVALID'],
    // Digests.
    ['GET', `/v2/a/blobs/sha256:${'a'.repeat(63)}`, 400, 'DIGEST_INVALID'],
    ['GET', `/v2/a/blobs/sha256:${'a'.repeat(65)}`, 400, 'DIGEST_INVALID'],
    ['GET', `/v2/a/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['GET', `/v2/a/blobs/sha512:${'b'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['GET', `/v2/a/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
    ['GET', '/v2/a/blobs/latest', 400, 'DIGEST_INVALID'],
    ['GET', `/v2/a/manifests/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['GET', '/v2/a/manifests/sha256:', 400, 'DIGEST_INVALID'],
    // Tags.
    ['GET', '/v2/a/manifests/.hidden', 400, 'TAG_INVALID'],
    ['GET', '/v2/a/manifests/-x', 400, 'TAG_INVALID'],
    ['GET', `/v2/a/manifests/${'t'.repeat(129)}`, 400, 'TAG_INVALID'],
    ['GET', '/v2/a/manifests/a+b', 400, 'TAG_INVALID'],
    // Namespace.
    ['GET', '/v2/?ns=', 400, 'NAME_INVALID'],
    ['GET', '/v2/?ns=docker.io&ns=quay.io', 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=docker.io/evil`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=docker.io%2F..`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=-bad.io`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=host:0`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=host:65536`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=host:`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=[zz]:1`, 400, 'NAME_INVALID'],
    ['GET', `/v2/a/blobs/${sha256}?ns=user@host`, 400, 'NAME_INVALID'],
    [
      'GET',
      `/v2/a/blobs/${sha256}?ns=${'a'.repeat(50)}.${'b'.repeat(50)}.${'c'.repeat(50)}.${'d'.repeat(50)}.${'e'.repeat(50)}`,
      400,
      'NAME_INVALID',
    ],
    // Length.
    ['GET', `/v2/a/blobs/${sha256}?pad=${'x'.repeat(4096)}`, 414, 'URL_TOO_LONG'],
    ['GET', `/v2/${'a/'.repeat(2100)}blobs/${sha256}`, 414, 'URL_TOO_LONG'],
  ];
  for (const [method, url, status, code] of refusals) {
    test(`${method} ${JSON.stringify(url.slice(0, 80))} is refused with ${status} ${code}`, () => {
      refusedWith(status, code)(parseMirrorPath(method, url));
    });
  }

  test('a URL of exactly 4096 bytes is still routed, one more byte is refused', () => {
    const base = `/v2/a/blobs/${sha256}?pad=`;
    const exact = base + 'x'.repeat(4096 - base.length);
    assert.equal(parseMirrorPath('GET', exact).kind, 'blob');
    refusedWith(414, 'URL_TOO_LONG')(parseMirrorPath('GET', `${exact}x`));
  });

  test('a namespace host of 253 characters is accepted, 254 is refused', () => {
    const host253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(host253.length, 253);
    assert.deepEqual(parseMirrorPath('GET', `/v2/?ns=${host253}:443`), {
      kind: 'base',
      namespace: `${host253}:443`,
    });
    refusedWith(400, 'NAME_INVALID')(parseMirrorPath('GET', `/v2/?ns=${host253}a`));
  });

  test('a name of exactly 255 characters is accepted', () => {
    const name = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(name.length, 255);
    assert.deepEqual(parseMirrorPath('GET', `/v2/${name}/blobs/${sha256}`), {
      kind: 'blob',
      repository: name,
      digest: sha256,
    });
  });
});

describe('oci-names', () => {
  test('names and tags follow the OCI grammar', () => {
    assert.ok(isRepositoryName('library/alpine'));
    assert.ok(isRepositoryName('a-b--c/d.e/f_g/h__i'));
    for (const bad of [
      '',
      'A',
      'a/',
      '/a',
      'a..b',
      'a//b',
      'a%2fb',
      'a\\b',
      'a\0',
      'a_-b',
      'a'.repeat(256),
      7,
    ]) {
      assert.ok(!isRepositoryName(bad), JSON.stringify(bad));
    }
    assert.ok(isTag('latest'));
    assert.ok(isTag('_'));
    assert.ok(isTag('t'.repeat(128)));
    for (const bad of ['', '.a', '-a', 'a:b', 'a/b', 't'.repeat(129), undefined]) {
      assert.ok(!isTag(bad), JSON.stringify(bad));
    }
  });
});

describe('parseRangeHeader', () => {
  const cases: [string | undefined, number, ReturnType<typeof parseRangeHeader>][] = [
    [undefined, 10, { kind: 'whole' }],
    ['bytes=0-4', 10, { kind: 'range', start: 0, end: 4 }],
    ['bytes=5-', 10, { kind: 'range', start: 5, end: 9 }],
    ['bytes=5-999', 10, { kind: 'range', start: 5, end: 9 }],
    ['bytes=9-9', 10, { kind: 'range', start: 9, end: 9 }],
    ['bytes=-3', 10, { kind: 'range', start: 7, end: 9 }],
    ['bytes=-10', 10, { kind: 'range', start: 0, end: 9 }],
    ['bytes=-999', 10, { kind: 'range', start: 0, end: 9 }],
    ['Bytes= 2-3 ', 10, { kind: 'range', start: 2, end: 3 }],
    ['bytes=0-999999999999999', 10, { kind: 'range', start: 0, end: 9 }],
    // Unsatisfiable: well formed, selects nothing.
    ['bytes=10-', 10, { kind: 'unsatisfiable' }],
    ['bytes=10-20', 10, { kind: 'unsatisfiable' }],
    ['bytes=999999999999999-', 10, { kind: 'unsatisfiable' }],
    ['bytes=-0', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=-5', 0, { kind: 'unsatisfiable' }],
    // Ignored: the whole blob is served.
    ['bytes=5-1', 10, { kind: 'whole' }],
    ['bytes=0-1,3-4', 10, { kind: 'whole' }],
    ['bytes=0-1, 3-4', 10, { kind: 'whole' }],
    ['items=0-1', 10, { kind: 'whole' }],
    ['bytes 0-1', 10, { kind: 'whole' }],
    ['bytes=', 10, { kind: 'whole' }],
    ['bytes=-', 10, { kind: 'whole' }],
    ['bytes=a-b', 10, { kind: 'whole' }],
    ['bytes=+1-2', 10, { kind: 'whole' }],
    ['bytes=1.5-2', 10, { kind: 'whole' }],
    ['bytes=0x1-2', 10, { kind: 'whole' }],
    ['bytes=99999999999999999999-', 10, { kind: 'whole' }],
    ['bytes=0-99999999999999999999', 10, { kind: 'whole' }],
    ['bytes=-99999999999999999999', 10, { kind: 'whole' }],
    [`bytes=0-1${' '.repeat(1024)}`, 10, { kind: 'whole' }],
    ['items=0-1', 0, { kind: 'whole' }],
  ];
  for (const [header, size, expected] of cases) {
    test(`${JSON.stringify(header?.slice(0, 40))} of ${size} bytes is ${expected.kind}`, () => {
      assert.deepEqual(parseRangeHeader(header, size), expected);
    });
  }

  test('a size that is not a non-negative integer is a programming error', () => {
    for (const size of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => parseRangeHeader('bytes=0-1', size), RangeError);
    }
  });

  test('Content-Range headers name the range and the size', () => {
    assert.equal(contentRangeHeader(0, 4, 10), 'bytes 0-4/10');
    assert.equal(contentRangeHeader(9, 9, 10), 'bytes 9-9/10');
    assert.equal(unsatisfiedRangeHeader(10), 'bytes */10');
    assert.equal(unsatisfiedRangeHeader(0), 'bytes */0');
    assert.throws(() => contentRangeHeader(5, 4, 10), RangeError);
    assert.throws(() => contentRangeHeader(0, 10, 10), RangeError);
    assert.throws(() => contentRangeHeader(-1, 1, 10), RangeError);
  });
});

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

describe('writeOciError over loopback', () => {
  let server: http.Server;
  let port = 0;
  // Each test installs what the server does with the next request.
  let handle: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  });

  function request(method: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: '/v2/x', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('a GET gets the OCI error body with its length and the API version header', async () => {
    handle = (_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('docker-content-digest', sha256);
      writeOciError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {
        'Retry-After': '3',
        'Content-Length': '999',
      });
    };
    const answer = await request('GET');
    assert.equal(answer.status, 404);
    assert.deepEqual(JSON.parse(answer.body), {
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }],
    });
    assert.equal(answer.headers['content-type'], 'application/json');
    assert.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.body)));
    assert.equal(answer.headers['docker-content-digest'], undefined);
    assert.equal(answer.headers['retry-after'], '3');
    assert.equal(
      answer.headers['docker-distribution-api-version'],
      OCI_API_VERSION_HEADER['docker-distribution-api-version'],
    );
  });

  test('a HEAD gets the same headers and no body', async () => {
    handle = (_req, res) => {
      writeOciError(res, 405, 'UNSUPPORTED', 'read-only mirror', { allow: 'GET, HEAD' });
    };
    const head = await request('HEAD');
    const get = await request('GET');
    assert.equal(head.status, 405);
    assert.equal(head.body, '');
    assert.equal(head.headers['allow'], 'GET, HEAD');
    assert.equal(head.headers['content-type'], 'application/json');
    assert.equal(head.headers['content-length'], get.headers['content-length']);
    assert.equal(Number(get.headers['content-length']), Buffer.byteLength(get.body));
  });

  test('a long message is cut to 300 characters without splitting a character', async () => {
    handle = (_req, res) => {
      writeOciError(res, 400, 'NAME_INVALID', `${'x'.repeat(298)}😀${'y'.repeat(1000)}`);
    };
    const answer = await request('GET');
    const body = JSON.parse(answer.body) as { errors: { message: string }[] };
    const message = body.errors[0]?.message ?? '';
    assert.ok(message.length <= 300, `message has ${message.length} characters`);
    assert.ok(message.startsWith('x'.repeat(298)));
    assert.ok(!message.includes('\ufffd'));
    assert.ok(!message.includes('y'));
  });

  test('after headers were sent it cuts the connection instead of throwing', async () => {
    let threw: unknown;
    handle = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      try {
        writeOciError(res, 500, 'UNKNOWN', 'failed mid-body');
      } catch (error) {
        threw = error;
      }
    };
    await assert.rejects(request('GET'));
    assert.equal(threw, undefined);
  });

  test('a header value Node refuses cuts the connection instead of throwing', async () => {
    let threw: unknown;
    handle = (_req, res) => {
      try {
        writeOciError(res, 401, 'UNAUTHORIZED', 'no', { 'www-authenticate': 'Bearer\r\nx: y' });
      } catch (error) {
        threw = error;
      }
    };
    await assert.rejects(request('GET'));
    assert.equal(threw, undefined);
  });
});
