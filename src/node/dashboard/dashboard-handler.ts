// Serves the node's live dashboard: a static page (assets/) that reads the node's views over
// Server-Sent Events. The asset folder is small and fixed, so it is read once at startup and
// served from memory; a request can only ever name a file that was in that listing, which is
// what rules out path traversal and dotfiles without touching the file system per request.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DashboardHandlerOptions {
  /** Folder holding index.html and its assets; defaults to the assets/ folder beside this file. */
  readonly assetsDirectory?: string;
}

/** Answers the request and returns true, or returns false (untouched) for paths it does not serve. */
export type DashboardHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

const INDEX = 'index.html';
const PREFIX = '/dashboard/';
// A guard against pointing the handler at the wrong folder: the real one is a few tens of KiB.
const MAX_ASSETS_BYTES = 8 * 1024 * 1024;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function dashboardHandler(options: DashboardHandlerOptions = {}): DashboardHandler {
  const directory = options.assetsDirectory ?? fileURLToPath(new URL('./assets/', import.meta.url));
  const assets = loadAssets(directory);

  return (req, res) => {
    const name = assetNameFor(req.url ?? '/');
    if (name === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return true;
    }
    const asset = name === null ? undefined : assets.get(name);
    if (asset === undefined) {
      reply(res, 404, 'not found\n');
      return true;
    }
    const headers = {
      ...SECURITY_HEADERS,
      'Cache-Control': 'no-cache',
      ETag: asset.etag,
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': asset.contentType,
      'Content-Length': asset.body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}

/**
 * The asset a request path names: a file name, null for a path under /dashboard/ that can name
 * no asset (it is refused with 404), undefined for a path that is not the dashboard's. The raw
 * path is used on purpose: URL normalisation would turn `/dashboard/../x` into someone else's `/x`.
 */
function assetNameFor(url: string): string | null | undefined {
  const query = url.search(/[?#]/);
  const pathname = query === -1 ? url : url.slice(0, query);
  if (pathname === '/' || pathname === '/dashboard' || pathname === PREFIX) return INDEX;
  if (!pathname.startsWith(PREFIX)) return undefined;
  try {
    return decodeURIComponent(pathname.slice(PREFIX.length));
  } catch {
    return null; // malformed percent-encoding
  }
}

function loadAssets(directory: string): ReadonlyMap<string, Asset> {
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch (cause) {
    throw new Error(`dashboard: cannot read the assets directory ${directory}`, { cause });
  }
  const assets = new Map<string, Asset>();
  let totalBytes = 0;
  for (const entry of entries) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    const body = readFileSync(path.join(directory, entry.name));
    totalBytes += body.length;
    if (totalBytes > MAX_ASSETS_BYTES) {
      throw new Error(
        `dashboard: the assets directory ${directory} holds more than ${MAX_ASSETS_BYTES} bytes`,
      );
    }
    const contentType = CONTENT_TYPES[path.extname(entry.name).toLowerCase()] ?? 'application/octet-stream';
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    assets.set(entry.name, { body, contentType, etag });
  }
  if (!assets.has(INDEX)) {
    throw new Error(`dashboard: the assets directory ${directory} has no ${INDEX}`);
  }
  return assets;
}

function reply(
  res: http.ServerResponse,
  status: number,
  text: string,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...extraHeaders,
    'Cache-Control': 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
