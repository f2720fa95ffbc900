// Driving skopeo, the real OCI client of the end-to-end tests. Every call runs with
// --insecure-policy (no dependence on /etc/containers/policy.json), anonymous access
// (no auth.json from the home directory) and TLS off, because our registries listen on
// plain HTTP on loopback. --preserve-digests makes skopeo fail rather than silently
// re-encode a manifest, so the digests we compare are the ones on the wire.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { readOciImage, type OciImage } from './oci-layout.ts';

export const skopeoBinary = 'skopeo';

const copyTimeoutMs = 120_000;
const outputLimitBytes = 1024 * 1024;
const repositoryNamePattern =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const digestPattern = /^sha256:[0-9a-f]{64}$/;

/**
 * The `docker://` reference skopeo understands for `name` at a registry given by its
 * http URL, e.g. `http://127.0.0.1:5000` → `docker://127.0.0.1:5000/name:tag`.
 * `reference` is a tag or a `sha256:` digest.
 */
export function dockerReference(registryUrl: string, name: string, reference: string): string {
  const url = new URL(registryUrl);
  if (url.protocol !== 'http:' || url.pathname !== '/' || url.search !== '') {
    throw new Error(`registry URL ${registryUrl} must be http://host:port with no path`);
  }
  if (!repositoryNamePattern.test(name)) throw new Error(`${JSON.stringify(name)} is not a repository name`);
  if (digestPattern.test(reference)) return `docker://${url.host}/${name}@${reference}`;
  if (tagPattern.test(reference)) return `docker://${url.host}/${name}:${reference}`;
  throw new Error(`${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
}

/**
 * `skopeo copy source destination`; resolves with the digest of the manifest copied
 * (skopeo's --digestfile) or rejects with skopeo's own words.
 */
export async function skopeoCopy(
  source: string,
  destination: string,
  options: { signal?: AbortSignal } = {},
): Promise<string> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'weft-skopeo-'));
  const digestFile = path.join(scratch, 'digest');
  const args = [
    '--insecure-policy',
    '--tmpdir',
    scratch,
    'copy',
    '--preserve-digests',
    '--src-no-creds',
    '--dest-no-creds',
    ...(source.startsWith('docker://') ? ['--src-tls-verify=false'] : []),
    ...(destination.startsWith('docker://') ? ['--dest-tls-verify=false'] : []),
    '--digestfile',
    digestFile,
    source,
    destination,
  ];
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        skopeoBinary,
        args,
        { timeout: copyTimeoutMs, maxBuffer: outputLimitBytes, signal: options.signal },
        (error, _stdout, stderr) => {
          if (error === null) resolve();
          else
            reject(
              new Error(`skopeo ${args.join(' ')} failed: ${stderr.trim() || error.message}`, {
                cause: error,
              }),
            );
        },
      );
    });
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** What one pull wrote: the image as read back (and verified) from the local layout. */
export interface PulledImage extends OciImage {
  /** The `docker://` reference that was pulled. */
  readonly source: string;
}

/**
 * Pulls `name` at `reference` (tag or digest) from the registry at `registryUrl` into a new
 * OCI layout at `destDir`, and reads back what skopeo wrote. The result's blobs can be
 * compared byte for byte with the origin's. `destDir` must not exist yet: skopeo skips
 * layers a layout already holds, which would hide fetches from a count of origin GETs.
 */
export async function pullWithSkopeo(
  registryUrl: string,
  name: string,
  reference: string,
  destDir: string,
  options: { signal?: AbortSignal } = {},
): Promise<PulledImage> {
  const source = dockerReference(registryUrl, name, reference);
  await mkdir(path.dirname(destDir), { recursive: true });
  await mkdir(destDir); // EEXIST when reused, see above
  // The layout needs a ref to find the image by; a digest is not a valid one.
  const refName = digestPattern.test(reference) ? 'pulled' : reference;
  const copiedDigest = await skopeoCopy(source, `oci:${destDir}:${refName}`, options);
  const image = await readOciImage(destDir, refName);
  if (image.manifestDigest !== copiedDigest) {
    throw new Error(`skopeo reported manifest ${copiedDigest} but ${destDir} holds ${image.manifestDigest}`);
  }
  return { ...image, source };
}
