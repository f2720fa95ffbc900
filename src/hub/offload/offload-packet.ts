// Offload: a packet whose frame bytes or payload JSON exceed a threshold travels with a blob
// reference instead (markers in offload-markers.ts). Materialize: the inverse, before delivery to
// a step that needs inline data; every restored byte is checked against its reference's sha256
// and its declared size, so a damaged store or a hostile marker never yields wrong data.

import type { JsonObject } from '@bufbuild/protobuf';

import type { DataPacket } from '../../gen/transport/v1/hub_pb.ts';
import { ConfigError } from '../../internal/errors.ts';
import { parseBlobRef, sha256Hex } from './blob-ref.ts';
import type { BlobStore } from './blob-store.ts';
import { OffloadBlobCorruptError, OffloadBlobTooLargeError, InvalidOffloadMarkerError } from './errors.ts';
import {
  frameBytesOf,
  metadataWithoutMarkers,
  OFFLOADED_BYTES_KEY,
  OFFLOADED_FIELD_KEY,
  OFFLOADED_PAYLOAD_BYTES_KEY,
  OFFLOADED_PAYLOAD_REF_KEY,
  OFFLOADED_REF_KEY,
  parseOffloadMarkers,
  withFrameBytes,
  type OffloadedPart,
} from './offload-markers.ts';

export interface OffloadOptions {
  readonly store: BlobStore;
  /** Frame bytes or payload JSON larger than this (strictly) are offloaded; 0 = never. */
  readonly thresholdBytes: number;
  readonly signal?: AbortSignal | undefined;
}

export interface OffloadResult {
  /** A new packet; the input itself when nothing was offloaded. */
  readonly packet: DataPacket;
  /** What went to the store, in order: the frame, then the payload. Empty when nothing did. */
  readonly offloaded: readonly OffloadedPart[];
}

export interface MaterializeOptions {
  readonly store: BlobStore;
  /** Most bytes restored into one packet (frame and payload together). */
  readonly maxBytes: number;
  readonly signal?: AbortSignal | undefined;
}

export interface MaterializeResult {
  /** A new packet with the bytes back and no markers; the input itself when it had none. */
  readonly packet: DataPacket;
  readonly materialized: readonly OffloadedPart[];
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const emptyBytes = new Uint8Array(0);

/**
 * Offloads the frame bytes (binary/audio/video) and the payload JSON of `packet` when each exceeds
 * `thresholdBytes`. On a store failure nothing stays offloaded (a blob already written is
 * deleted) and the error is rethrown: `OffloadStoreFullError` (retryable), `OffloadBlobTooLargeError`.
 * The input packet is never changed.
 */
export async function offloadPacket(packet: DataPacket, options: OffloadOptions): Promise<OffloadResult> {
  const { store, thresholdBytes, signal } = options;
  if (!Number.isSafeInteger(thresholdBytes) || thresholdBytes < 0) {
    throw new ConfigError(
      'offload.thresholdBytes',
      `must be a non-negative integer, got ${String(thresholdBytes)}`,
    );
  }
  if (thresholdBytes === 0) return { packet, offloaded: [] };

  const offloaded: OffloadedPart[] = [];
  let out = packet;
  try {
    const frame = frameBytesOf(packet);
    if (frame !== undefined && frame.bytes.length > thresholdBytes) {
      const ref = await store.put(frame.bytes, { contentType: contentTypeOf(packet), signal });
      offloaded.push({ field: frame.field, ref, bytes: frame.bytes.length });
      out = withFrameBytes(out, emptyBytes, {
        ...out.metadata,
        [OFFLOADED_REF_KEY]: ref,
        [OFFLOADED_BYTES_KEY]: String(frame.bytes.length),
        [OFFLOADED_FIELD_KEY]: frame.field,
      });
    }
    if (packet.payload !== undefined) {
      const json = textEncoder.encode(JSON.stringify(packet.payload));
      if (json.length > thresholdBytes) {
        const ref = await store.put(json, { contentType: 'application/json', signal });
        offloaded.push({ field: 'payload', ref, bytes: json.length });
        out = {
          ...out,
          payload: undefined,
          metadata: {
            ...out.metadata,
            [OFFLOADED_PAYLOAD_REF_KEY]: ref,
            [OFFLOADED_PAYLOAD_BYTES_KEY]: String(json.length),
          },
        };
      }
    }
  } catch (error) {
    await Promise.allSettled(offloaded.map((part) => store.delete(part.ref)));
    throw error;
  }
  return { packet: out, offloaded };
}

/**
 * Restores what `packet`'s markers name and removes the markers. Rejects, without a partial
 * packet, with `InvalidOffloadMarkerError` / `InvalidBlobRefError` (hostile or damaged markers),
 * `OffloadBlobTooLargeError` (over `maxBytes`), `OffloadBlobNotFoundError`, or `OffloadBlobCorruptError` (bytes that
 * do not match the reference or the declared size).
 */
export async function materializePacket(
  packet: DataPacket,
  options: MaterializeOptions,
): Promise<MaterializeResult> {
  const { store, maxBytes, signal } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new ConfigError('offload.maxBytes', `must be a non-negative integer, got ${String(maxBytes)}`);
  }
  const markers = parseOffloadMarkers(packet);
  if (markers.frame === undefined && markers.payload === undefined) return { packet, materialized: [] };

  const declared = (markers.frame?.bytes ?? 0) + (markers.payload?.bytes ?? 0);
  if (declared > maxBytes)
    throw new OffloadBlobTooLargeError('offloaded data of the packet', declared, maxBytes);

  const metadata = metadataWithoutMarkers(packet.metadata);
  let out: DataPacket = { ...packet, metadata };
  const materialized: OffloadedPart[] = [];
  if (markers.frame !== undefined) {
    const bytes = await fetchVerified(store, markers.frame, signal);
    out = withFrameBytes(out, bytes, metadata);
    materialized.push(markers.frame);
  }
  if (markers.payload !== undefined) {
    const bytes = await fetchVerified(store, markers.payload, signal);
    out = { ...out, payload: parsePayload(bytes) };
    materialized.push(markers.payload);
  }
  return { packet: out, materialized };
}

/** The blob references `packet` carries, valid or not checked; for deleting blobs once delivered. */
export function offloadedRefsOf(packet: DataPacket): string[] {
  const refs: string[] = [];
  for (const key of [OFFLOADED_REF_KEY, OFFLOADED_PAYLOAD_REF_KEY]) {
    const ref = packet.metadata[key];
    if (ref !== undefined && Object.hasOwn(packet.metadata, key)) refs.push(ref);
  }
  return refs;
}

async function fetchVerified(
  store: BlobStore,
  part: OffloadedPart,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const digest = parseBlobRef(part.ref);
  const bytes = await store.get(part.ref, { maxBytes: part.bytes, signal });
  // Checked here too: the store may be any implementation of the interface.
  if (bytes.length !== part.bytes) {
    throw new OffloadBlobCorruptError(part.ref, `${bytes.length} bytes read, ${part.bytes} declared`);
  }
  if (sha256Hex(bytes) !== digest)
    throw new OffloadBlobCorruptError(part.ref, 'sha256 of the bytes read does not match');
  return bytes;
}

function parsePayload(bytes: Uint8Array): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(bytes));
  } catch (error) {
    throw new InvalidOffloadMarkerError('the payload blob is not UTF-8 JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOffloadMarkerError('the payload blob is not a JSON object');
  }
  return value as JsonObject;
}

function contentTypeOf(packet: DataPacket): string {
  const frame = packet.frame;
  if (frame.case === 'binary' && frame.value.mimeType !== '') return frame.value.mimeType;
  return 'application/octet-stream';
}
