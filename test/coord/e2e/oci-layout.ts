// Reading an OCI image layout directory (the `oci:` transport of skopeo): index.json names
// manifests by ref, blobs live at blobs/<algorithm>/<hex>. Both the images we build and the
// images skopeo pulls are read through here, and every blob read is checked against its
// digest, so a comparison between two layouts compares verified bytes.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const ociManifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
export const ociConfigMediaType = 'application/vnd.oci.image.config.v1+json';
export const ociLayerGzipMediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const refNameAnnotation = 'org.opencontainers.image.ref.name';

/** One image in a layout: its manifest and the blobs that manifest names. */
export interface OciImage {
  readonly layoutDir: string;
  /** The ref (tag) it is stored under in index.json. */
  readonly refName: string;
  /** `sha256:<hex>` of the manifest bytes: what a registry addresses the image by. */
  readonly manifestDigest: string;
  readonly manifestBytes: Buffer;
  readonly configDigest: string;
  readonly layerDigests: readonly string[];
  /** The config followed by the layers: every blob a client GETs to pull the image. */
  readonly blobDigests: readonly string[];
  /** Where the blob `digest` is stored in the layout. */
  blobPath(digest: string): string;
}

const digestPattern = /^sha256:[0-9a-f]{64}$/;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function blobPathIn(layoutDir: string, digest: string): string {
  if (!digestPattern.test(digest)) throw new Error(`${JSON.stringify(digest)} is not a sha256 digest`);
  return path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Reads a blob and checks that its bytes hash to `digest`. */
export async function readBlob(layoutDir: string, digest: string): Promise<Buffer> {
  const bytes = await readFile(blobPathIn(layoutDir, digest));
  const actual = sha256Digest(bytes);
  if (actual !== digest) throw new Error(`blob ${digest} in ${layoutDir} holds bytes with digest ${actual}`);
  return bytes;
}

/** The image stored under `refName` in the layout at `layoutDir`. */
export async function readOciImage(layoutDir: string, refName: string): Promise<OciImage> {
  const index = asRecord(
    JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')),
    'index.json',
  );
  const entries = asArray(index['manifests'], 'index.json manifests');
  const entry = entries
    .map((e, i) => asRecord(e, `index.json manifests[${i}]`))
    .find((e) => asRecord(e['annotations'] ?? {}, 'annotations')[refNameAnnotation] === refName);
  if (entry === undefined) throw new Error(`${layoutDir}/index.json has no manifest with ref ${refName}`);
  const manifestDigest = asDigest(entry['digest'], 'index.json manifest digest');
  const manifestBytes = await readBlob(layoutDir, manifestDigest);
  const manifest = asRecord(JSON.parse(manifestBytes.toString('utf8')), `manifest ${manifestDigest}`);
  const configDigest = asDigest(asRecord(manifest['config'], 'manifest config')['digest'], 'config digest');
  const layerDigests = asArray(manifest['layers'], 'manifest layers').map((layer, i) =>
    asDigest(asRecord(layer, `layers[${i}]`)['digest'], `layers[${i}] digest`),
  );
  return {
    layoutDir,
    refName,
    manifestDigest,
    manifestBytes,
    configDigest,
    layerDigests,
    blobDigests: [configDigest, ...layerDigests],
    blobPath: (digest) => blobPathIn(layoutDir, digest),
  };
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a JSON array`);
  return value as unknown[];
}

function asDigest(value: unknown, what: string): string {
  if (typeof value !== 'string' || !digestPattern.test(value)) {
    throw new Error(`${what} is ${JSON.stringify(value)}, not a sha256 digest`);
  }
  return value;
}
