// The media type a stored manifest is served with. The store keeps bytes by digest only, so the
// type is read back from the manifest itself: Docker v2 manifests and lists always carry
// `mediaType`, OCI ones should (image-spec 1.0.2 on) and otherwise are told apart by their
// fields, as registries do.

import { manifestMediaTypes } from './origin-client.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const known: ReadonlySet<string> = new Set(manifestMediaTypes);

/** The manifest's media type, or undefined when the bytes are not a JSON manifest we serve. */
export function manifestMediaTypeOf(bytes: Uint8Array): string | undefined {
  let manifest: unknown;
  try {
    manifest = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) return undefined;
  const { mediaType, manifests, config, layers } = manifest as Partial<Record<string, unknown>>;
  if (typeof mediaType === 'string') return known.has(mediaType) ? mediaType : undefined;
  if (Array.isArray(manifests)) return OCI_INDEX;
  if (typeof config === 'object' && Array.isArray(layers)) return OCI_MANIFEST;
  return undefined;
}
