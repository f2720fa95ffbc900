// Routing for the pull-through mirror's OCI distribution endpoints: turns a request's method and
// raw URL into what it asks for, or into the OCI error it must be refused with.
//
// The mirror is read-only: only GET and HEAD of `/v2/`, `/v2/<name>/blobs/<digest>` and
// `/v2/<name>/manifests/<reference>` are served; uploads, tag lists, the catalog and referrers are
// refused with 405 UNSUPPORTED. The path is judged as received: nothing is percent-decoded, and a
// `%` anywhere in the path is refused, so no escape (`%2e%2e`, `%2f`) can smuggle a separator or a
// traversal past the checks. Names, digests and tags are checked by their grammars, which admit no
// `/`, `..`, `\` or NUL where they should not be.
//
// containerd asks mirrors with `?ns=<upstream host>`; it is returned as `namespace`, lowercased so
// a host has one spelling.

import { isIPv6 } from 'node:net';

import { isDigest } from '../digest.ts';
import { isRepositoryName, isTag } from './oci-names.ts';

/** What a request under `/v2` asks the mirror for, or why it is refused. */
export type MirrorRoute =
  | { readonly kind: 'base'; readonly namespace?: string }
  | {
      readonly kind: 'blob';
      readonly repository: string;
      readonly digest: string;
      readonly namespace?: string;
    }
  | {
      readonly kind: 'manifest';
      readonly repository: string;
      /** A tag, or a digest when `referenceIsDigest`. */
      readonly reference: string;
      readonly referenceIsDigest: boolean;
      readonly namespace?: string;
    }
  /** Not an OCI distribution path: the server may route it elsewhere. */
  | { readonly kind: 'not-mirror' }
  /** Answer with `writeOciError(res, status, code, message)`. */
  | { readonly kind: 'refused'; readonly status: number; readonly code: string; readonly message: string };

/** Longest request URL (path and query, in bytes) considered; longer is refused with 414. */
export const MAX_MIRROR_URL_BYTES = 4096;

/** Longest `ns` host name, without its port (the DNS bound). */
export const MAX_NAMESPACE_HOST_LENGTH = 253;

const hostLabel = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const portPattern = /^[0-9]{1,5}$/;
// Anything outside visible ASCII (controls, NUL, DEL, non-ASCII) is refused before any grammar.
const visibleAscii = /^[\x21-\x7e]*$/;

/** Routes a request by its method and raw URL (`req.url`: path and query, not decoded). */
export function parseMirrorPath(method: string, rawUrl: string): MirrorRoute {
  const queryStart = rawUrl.indexOf('?');
  const path = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart);
  const query = queryStart < 0 ? '' : rawUrl.slice(queryStart + 1);
  if (path !== '/v2' && !path.startsWith('/v2/')) return { kind: 'not-mirror' };

  // Judged on the raw length, before anything else looks at the URL.
  if (rawUrl.length > MAX_MIRROR_URL_BYTES || Buffer.byteLength(rawUrl, 'utf8') > MAX_MIRROR_URL_BYTES) {
    return refused(414, 'URL_TOO_LONG', `request URL is longer than ${MAX_MIRROR_URL_BYTES} bytes`);
  }
  if (method !== 'GET' && method !== 'HEAD') {
    return refused(405, 'UNSUPPORTED', 'this registry is a read-only mirror: only GET and HEAD are served');
  }
  if (!visibleAscii.test(path) || path.includes('%') || path.includes('\\')) {
    return refused(
      400,
      'NAME_INVALID',
      'request path must be plain ASCII without percent-escapes or backslashes',
    );
  }

  const namespace = parseNamespace(query);
  if (typeof namespace === 'object') return namespace;
  const withNamespace = namespace === undefined ? {} : { namespace };

  if (path === '/v2' || path === '/v2/') return { kind: 'base', ...withNamespace };

  // `/v2/<name>/<endpoint>/<last>`: digests and references have no `/`, so the endpoint is the
  // second-to-last segment and the name is everything before it.
  const rest = path.slice('/v2/'.length);
  const lastSlash = rest.lastIndexOf('/');
  const endpointSlash = lastSlash < 0 ? -1 : rest.lastIndexOf('/', lastSlash - 1);
  const endpoint = rest.slice(endpointSlash + 1, Math.max(lastSlash, 0));
  const last = rest.slice(lastSlash + 1);
  const repository = endpointSlash < 0 ? '' : rest.slice(0, endpointSlash);

  const isBlobOrManifest =
    (endpoint === 'blobs' && last !== '' && last !== 'uploads') || (endpoint === 'manifests' && last !== '');
  if (lastSlash >= 0 && isBlobOrManifest) {
    if (!isRepositoryName(repository)) {
      return refused(400, 'NAME_INVALID', 'repository name is not a valid OCI repository name');
    }
    if (endpoint === 'blobs') {
      if (!isDigest(last)) return refused(400, 'DIGEST_INVALID', 'blob digest is not a valid digest');
      return { kind: 'blob', repository, digest: last, ...withNamespace };
    }
    if (last.includes(':')) {
      if (!isDigest(last)) return refused(400, 'DIGEST_INVALID', 'manifest digest is not a valid digest');
      return { kind: 'manifest', repository, reference: last, referenceIsDigest: true, ...withNamespace };
    }
    if (!isTag(last)) return refused(400, 'TAG_INVALID', 'manifest tag is not a valid tag');
    return { kind: 'manifest', repository, reference: last, referenceIsDigest: false, ...withNamespace };
  }
  // Uploads, tags/list, _catalog, referrers and anything else: a mirror serves no writes or lists.
  return refused(
    405,
    'UNSUPPORTED',
    'this registry is a read-only mirror: only blobs and manifests are served',
  );
}

/**
 * The `ns` query parameter as a lowercase `host[:port]`; undefined when absent; a refusal when
 * present but not a host (repeated, empty, or malformed).
 */
function parseNamespace(query: string): string | undefined | MirrorRoute {
  if (query === '') return undefined;
  const values = new URLSearchParams(query).getAll('ns');
  if (values.length === 0) return undefined;
  const value = values[0];
  if (values.length > 1 || value === undefined || !isHostAndPort(value)) {
    return refused(400, 'NAME_INVALID', 'ns must be a single registry host[:port]');
  }
  return value.toLowerCase();
}

function isHostAndPort(value: string): boolean {
  let host = value;
  let port: string | undefined;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return false;
    host = value.slice(0, close + 1);
    const after = value.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return false;
      port = after.slice(1);
    }
  } else {
    const colon = value.indexOf(':');
    if (colon >= 0) {
      host = value.slice(0, colon);
      port = value.slice(colon + 1);
    }
  }
  if (port !== undefined && (!portPattern.test(port) || Number(port) < 1 || Number(port) > 65_535))
    return false;
  if (host.startsWith('[')) return host.endsWith(']') && isIPv6(host.slice(1, -1));
  if (host.length === 0 || host.length > MAX_NAMESPACE_HOST_LENGTH) return false;
  return host
    .toLowerCase()
    .split('.')
    .every((label) => hostLabel.test(label));
}

function refused(status: number, code: string, message: string): MirrorRoute {
  return { kind: 'refused', status, code, message };
}
