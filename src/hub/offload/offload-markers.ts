// How an offloaded packet says what was taken out of it. The bytes are replaced by empty bytes
// (a frame) or removed (the payload), and metadata names the blob:
//
//   weft-offloaded-ref            blob reference of the frame bytes
//   weft-offloaded-bytes          their size, decimal
//   weft-offloaded-field          which bytes: binary.payload | audio.pcm | video.payload
//   weft-offloaded-payload-ref    blob reference of the payload, as UTF-8 JSON
//   weft-offloaded-payload-bytes  its size, decimal
//
// A frame and the payload are offloaded independently, so a packet may carry both sets.

import type { DataPacket } from '../../gen/transport/v1/hub_pb.ts';
import { parseBlobRef } from './blob-ref.ts';
import { InvalidOffloadMarkerError } from './errors.ts';

export const OFFLOADED_REF_KEY = 'weft-offloaded-ref';
export const OFFLOADED_BYTES_KEY = 'weft-offloaded-bytes';
export const OFFLOADED_FIELD_KEY = 'weft-offloaded-field';
export const OFFLOADED_PAYLOAD_REF_KEY = 'weft-offloaded-payload-ref';
export const OFFLOADED_PAYLOAD_BYTES_KEY = 'weft-offloaded-payload-bytes';

const frameKeys = [OFFLOADED_REF_KEY, OFFLOADED_BYTES_KEY, OFFLOADED_FIELD_KEY] as const;
const payloadKeys = [OFFLOADED_PAYLOAD_REF_KEY, OFFLOADED_PAYLOAD_BYTES_KEY] as const;
export const offloadMarkerKeys: readonly string[] = [...frameKeys, ...payloadKeys];

/** The frame field whose bytes were offloaded. */
export type OffloadedFrameField = 'binary.payload' | 'audio.pcm' | 'video.payload';
/** What was offloaded: frame bytes, or the payload Struct as JSON. */
export type OffloadedField = OffloadedFrameField | 'payload';

export interface OffloadedPart {
  readonly field: OffloadedField;
  readonly ref: string;
  readonly bytes: number;
}

const frameFieldOfCase = {
  binary: 'binary.payload',
  audio: 'audio.pcm',
  video: 'video.payload',
} as const satisfies Record<NonNullable<DataPacket['frame']['case']>, OffloadedFrameField>;

/** The frame's bytes field and its current bytes; undefined when the packet has no frame. */
export function frameBytesOf(
  packet: DataPacket,
): { readonly field: OffloadedFrameField; readonly bytes: Uint8Array } | undefined {
  const frame = packet.frame;
  switch (frame.case) {
    case 'binary':
      return { field: frameFieldOfCase.binary, bytes: frame.value.payload };
    case 'audio':
      return { field: frameFieldOfCase.audio, bytes: frame.value.pcm };
    case 'video':
      return { field: frameFieldOfCase.video, bytes: frame.value.payload };
    default:
      return undefined;
  }
}

/** A copy of `packet` whose frame bytes are `bytes`; frame and packet objects are new, the input is untouched. */
export function withFrameBytes(
  packet: DataPacket,
  bytes: Uint8Array,
  metadata: Record<string, string>,
): DataPacket {
  const frame = packet.frame;
  switch (frame.case) {
    case 'binary':
      return { ...packet, metadata, frame: { case: 'binary', value: { ...frame.value, payload: bytes } } };
    case 'audio':
      return { ...packet, metadata, frame: { case: 'audio', value: { ...frame.value, pcm: bytes } } };
    case 'video':
      return { ...packet, metadata, frame: { case: 'video', value: { ...frame.value, payload: bytes } } };
    default:
      return { ...packet, metadata };
  }
}

/** True when the packet carries any offload marker. */
export function hasOffloadMarkers(packet: DataPacket): boolean {
  return offloadMarkerKeys.some((key) => Object.hasOwn(packet.metadata, key));
}

/** The packet's metadata without any offload marker (a new object). */
export function metadataWithoutMarkers(metadata: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) if (!offloadMarkerKeys.includes(key)) out[key] = value;
  return out;
}

/**
 * A copy of `packet` without offload markers, for packets from connectors that must not name
 * blobs (a reference is a capability to read the blob). The input itself when it has none.
 */
export function stripOffloadMarkers(packet: DataPacket): DataPacket {
  if (!hasOffloadMarkers(packet)) return packet;
  return { ...packet, metadata: metadataWithoutMarkers(packet.metadata) };
}

export interface ParsedMarkers {
  readonly frame: (OffloadedPart & { readonly field: OffloadedFrameField }) | undefined;
  readonly payload: (OffloadedPart & { readonly field: 'payload' }) | undefined;
}

/**
 * The packet's markers, checked: both or neither of each set's keys, a valid reference, a
 * decimal size, a field naming the packet's own frame. Throws `InvalidOffloadMarkerError` or
 * `InvalidBlobRefError`.
 */
export function parseOffloadMarkers(packet: DataPacket): ParsedMarkers {
  const metadata = packet.metadata;
  let frame: ParsedMarkers['frame'];
  if (frameKeys.some((key) => Object.hasOwn(metadata, key))) {
    const ref = required(metadata, OFFLOADED_REF_KEY);
    const bytes = parseSize(required(metadata, OFFLOADED_BYTES_KEY), OFFLOADED_BYTES_KEY);
    const field = required(metadata, OFFLOADED_FIELD_KEY);
    parseBlobRef(ref);
    const actual = frameBytesOf(packet);
    if (actual === undefined || actual.field !== field) {
      throw new InvalidOffloadMarkerError(
        `${OFFLOADED_FIELD_KEY} names ${JSON.stringify(field.slice(0, 32))} but the packet's frame is ${actual?.field ?? 'absent'}`,
      );
    }
    if (actual.bytes.length !== 0) {
      throw new InvalidOffloadMarkerError(`${actual.field} must be empty while offloaded`);
    }
    frame = { field: actual.field, ref, bytes };
  }
  let payload: ParsedMarkers['payload'];
  if (payloadKeys.some((key) => Object.hasOwn(metadata, key))) {
    const ref = required(metadata, OFFLOADED_PAYLOAD_REF_KEY);
    const bytes = parseSize(required(metadata, OFFLOADED_PAYLOAD_BYTES_KEY), OFFLOADED_PAYLOAD_BYTES_KEY);
    parseBlobRef(ref);
    if (packet.payload !== undefined && Object.keys(packet.payload).length > 0) {
      throw new InvalidOffloadMarkerError('payload must be empty while offloaded');
    }
    payload = { field: 'payload', ref, bytes };
  }
  return { frame, payload };
}

function required(metadata: Readonly<Record<string, string>>, key: string): string {
  const value = metadata[key];
  if (value === undefined || !Object.hasOwn(metadata, key))
    throw new InvalidOffloadMarkerError(`${key} is missing`);
  return value;
}

const sizePattern = /^(0|[1-9][0-9]{0,14})$/;

function parseSize(value: string, key: string): number {
  if (!sizePattern.test(value)) {
    throw new InvalidOffloadMarkerError(
      `${key} must be a decimal byte count, got ${JSON.stringify(value.slice(0, 32))}`,
    );
  }
  return Number(value);
}
