// Small OCI images built offline, for tests that push to and pull from real registries.
// The machine cannot download images, so we write the layout ourselves: oci-layout,
// index.json, one manifest, a config and gzip'd tar layers of deterministic pseudo-random
// bytes (incompressible, so a layer's size on the wire is about the size asked for).
// The same seed and sizes always give the same digests.

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import {
  blobPathIn,
  ociConfigMediaType,
  ociLayerGzipMediaType,
  ociManifestMediaType,
  readOciImage,
  refNameAnnotation,
  sha256Digest,
  type OciImage,
} from './oci-layout.ts';
import { dockerReference, skopeoCopy } from './skopeo.ts';
import { tarArchive } from './tar.ts';

export interface BuildImageOptions {
  /** Different seeds give images with no blob in common. Default "weft-e2e". */
  readonly seed?: string;
  /** Uncompressed payload of each layer, in bytes; 1 to 8 layers. Default 1 MiB, 2 MiB, 512 KiB. */
  readonly layerSizesBytes?: readonly number[];
  /** The ref in index.json, and the tag it is pushed under. Default "v1". */
  readonly tag?: string;
}

const maxLayerBytes = 256 * 1024 * 1024;

/** Writes a fresh OCI image layout to `layoutDir` (created) and returns the image. */
export async function buildImage(layoutDir: string, options: BuildImageOptions = {}): Promise<OciImage> {
  const seed = options.seed ?? 'weft-e2e';
  const sizes = options.layerSizesBytes ?? [1024 * 1024, 2 * 1024 * 1024, 512 * 1024];
  const tag = options.tag ?? 'v1';
  if (sizes.length < 1 || sizes.length > 8) throw new Error(`an image needs 1-8 layers, not ${sizes.length}`);
  for (const size of sizes) {
    if (!Number.isSafeInteger(size) || size < 0 || size > maxLayerBytes) {
      throw new Error(`layer size ${size} is not 0-${maxLayerBytes} bytes`);
    }
  }
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const putBlob = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = sha256Digest(bytes);
    await writeFile(blobPathIn(layoutDir, digest), bytes);
    return { digest, size: bytes.length };
  };

  const layers: { digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const tar = tarArchive([
      { path: `weft-e2e/layer-${i}.txt`, content: Buffer.from(`seed ${seed}, layer ${i}, ${size} bytes\n`) },
      { path: `weft-e2e/layer-${i}.bin`, content: deterministicBytes(`${seed}/layer-${i}`, size) },
    ]);
    diffIds.push(sha256Digest(tar));
    layers.push(await putBlob(gzipSync(tar)));
  }
  // No "created" timestamp: the config, and so the manifest digest, depends only on the inputs.
  const config = await putBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { 'dev.weft.e2e.seed': seed } },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created_by: `weft e2e layer ${i}` })),
      }),
    ),
  );
  const manifest = await putBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociManifestMediaType,
        config: { mediaType: ociConfigMediaType, ...config },
        layers: layers.map((layer) => ({ mediaType: ociLayerGzipMediaType, ...layer })),
      }),
    ),
  );
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: ociManifestMediaType, ...manifest, annotations: { [refNameAnnotation]: tag } },
      ],
    }),
  );
  return readOciImage(layoutDir, tag);
}

/**
 * Pushes `image` to the registry at `registryUrl` as `name:<image.refName>` with skopeo.
 * Rejects if the registry ends up with a different manifest digest than the layout's.
 */
export async function pushImage(
  image: OciImage,
  registryUrl: string,
  name: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const destination = dockerReference(registryUrl, name, image.refName);
  const pushed = await skopeoCopy(`oci:${image.layoutDir}:${image.refName}`, destination, options);
  if (pushed !== image.manifestDigest) {
    throw new Error(
      `pushed ${destination} as ${pushed}, but the layout's manifest is ${image.manifestDigest}`,
    );
  }
}

/** `size` pseudo-random bytes from `seed`: SHA-256 in counter mode, the same on every run. */
export function deterministicBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, counter = 0; offset < size; offset += 32, counter++) {
    createHash('sha256').update(`${seed}:${counter}`).digest().copy(out, offset);
  }
  return out;
}
