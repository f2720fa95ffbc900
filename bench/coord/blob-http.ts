// The registry API calls the coord cases make by hand: GET a blob (timed, counted and, when
// asked, hashed) and upload one (the OCI monolithic upload: POST, then PUT with the digest).
// Plain node:http, one fresh connection per GET, as a registry client pulling a layer does.

import { createHash } from 'node:crypto';
import http from 'node:http';

export interface FetchedBlob {
  readonly bytes: number;
  /** From sending the request until the last byte arrived. */
  readonly ms: number;
  /** `sha256:<hex>` of the body, when `verify` was set. */
  readonly digest: string | undefined;
}

const requestTimeoutMs = 60_000;

/** GETs `<baseUrl>/v2/<repository>/blobs/<digest>`; rejects on any status but 200. */
export function getBlob(
  baseUrl: string,
  repository: string,
  digest: string,
  options: { verify?: boolean } = {},
): Promise<FetchedBlob> {
  const url = `${baseUrl}/v2/${repository}/blobs/${digest}`;
  const hash = options.verify === true ? createHash('sha256') : undefined;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.get(url, { agent: false, timeout: requestTimeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash?.update(chunk);
      });
      res.once('end', () => {
        const ms = performance.now() - start;
        resolve({ bytes, ms, digest: hash === undefined ? undefined : `sha256:${hash.digest('hex')}` });
      });
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${requestTimeoutMs} ms`)));
    req.once('error', reject);
  });
}

/** GETs a blob and throws unless its bytes hash to `digest`. */
export async function getVerifiedBlob(baseUrl: string, repository: string, digest: string): Promise<number> {
  const fetched = await getBlob(baseUrl, repository, digest, { verify: true });
  if (fetched.digest !== digest) {
    throw new Error(`${baseUrl} served ${fetched.digest ?? '?'} for ${digest}`);
  }
  return fetched.bytes;
}

/** The status a peer's mirror gets for `digest` from `baseUrl`: 200 held there, 404 not. */
export function peerHeadStatus(baseUrl: string, repository: string, digest: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${baseUrl}/v2/${repository}/blobs/${digest}`,
      // The mirror answers a peer's request from its own store only, never from the cluster.
      { method: 'HEAD', agent: false, headers: { 'weft-mirrored': '1' }, timeout: requestTimeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.once('timeout', () => req.destroy(new Error('HEAD timed out')));
    req.once('error', reject);
    req.end();
  });
}

/** Uploads `bytes` to the registry at `originUrl` as a blob of `repository`; returns its digest. */
export async function uploadBlob(originUrl: string, repository: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const started = await send('POST', `${originUrl}/v2/${repository}/blobs/uploads/`, undefined);
  const location = started.headers.location;
  if (started.statusCode !== 202 || location === undefined) {
    throw new Error(`starting an upload to ${originUrl}: ${started.statusCode ?? '?'}`);
  }
  const target = new URL(location, originUrl);
  target.searchParams.set('digest', digest);
  const put = await send('PUT', target.href, bytes);
  if (put.statusCode !== 201)
    throw new Error(`uploading ${digest} to ${originUrl}: ${put.statusCode ?? '?'}`);
  return digest;
}

// node:http rather than fetch: fetch copies a Buffer body before sending it.
function send(method: string, url: string, body: Buffer | undefined): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers = {
      'content-type': 'application/octet-stream',
      'content-length': String(body?.length ?? 0),
    };
    const req = http.request(url, { method, headers, agent: false, timeout: requestTimeoutMs }, (res) => {
      res.resume();
      res.once('end', () => {
        resolve(res);
      });
      res.once('error', reject);
    });
    req.once('timeout', () =>
      req.destroy(new Error(`${method} ${url}: no answer in ${requestTimeoutMs} ms`)),
    );
    req.once('error', reject);
    req.end(body);
  });
}
