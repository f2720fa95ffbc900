// Limits every request must meet before the hub acts on it (A1). These are the bounds the
// reference schema states as protovalidate rules, checked in code so no CEL runtime is needed.
// A failed check names the field; the hub answers INVALID_ARGUMENT and ends the stream.

import type { DataPacket, ProcessRequest } from '../../gen/transport/v1/hub_pb.ts';
import {
  FlowControlSignal,
  type FlowControl,
  type StreamEnvelope,
  type TransportDescriptor,
} from '../../gen/transport/v1/transport_pb.ts';
import { InvalidHubRequestError } from './errors.ts';

const MiB = 1024 * 1024;

export const wireLimits = {
  /** audio.pcm, video.payload, binary.payload. */
  maxFrameBytes: 10 * MiB,
  maxChunkCount: 256,
  maxChunkBytes: 10 * MiB,
  maxTotalBytes: 64 * MiB,
  /** stream_id, partition, chunk_id, partition_acks[].partition, transport name/kind/mode. */
  maxIdLength: 128,
  maxPartitionAcks: 256,
  maxMetadataPairs: 100,
  maxMetadataKeyLength: 128,
  maxMetadataValueLength: 1024,
  maxTransports: 10,
  maxCodecLength: 32,
  maxMimeTypeLength: 255,
  maxTransportRefLength: 253,
  maxModeReasonLength: 512,
  maxVideoDimension: 16_384,
} as const;

export type RequestCheck =
  { readonly ok: true } | { readonly ok: false; readonly problem: InvalidHubRequestError };

const ok: RequestCheck = { ok: true };

/** A request's `packet` and `flow` both meet the wire limits; an empty request is fine. */
export function checkProcessRequest(request: ProcessRequest): RequestCheck {
  if (request.flow !== undefined) {
    const problem = flowProblem(request.flow, 'flow');
    if (problem !== undefined) return { ok: false, problem };
  }
  if (request.packet !== undefined) return checkDataPacket(request.packet, 'packet');
  return ok;
}

/** The same limits for one packet; `path` prefixes field names in the message. */
export function checkDataPacket(packet: DataPacket, path = 'packet'): RequestCheck {
  const problem = packetProblem(packet, path);
  return problem === undefined ? ok : { ok: false, problem };
}

/** The same limits for one flow control message. */
export function checkFlowControl(flow: FlowControl, path = 'flow'): RequestCheck {
  const problem = flowProblem(flow, path);
  return problem === undefined ? ok : { ok: false, problem };
}

type Problem = InvalidHubRequestError | undefined;

function packetProblem(packet: DataPacket, path: string): Problem {
  return (
    metadataProblem(packet.metadata, `${path}.metadata`) ??
    transportsProblem(packet.transports, `${path}.transports`) ??
    frameProblem(packet, path) ??
    (packet.envelope === undefined ? undefined : envelopeProblem(packet.envelope, packet, `${path}.envelope`))
  );
}

function metadataProblem(metadata: Record<string, string>, path: string): Problem {
  let pairs = 0;
  for (const key in metadata) {
    pairs += 1;
    if (pairs > wireLimits.maxMetadataPairs) {
      return new InvalidHubRequestError(path, `has more than ${wireLimits.maxMetadataPairs} pairs`);
    }
    if (key.length === 0) return new InvalidHubRequestError(path, 'has an empty key');
    if (tooLong(key, wireLimits.maxMetadataKeyLength)) {
      return new InvalidHubRequestError(
        path,
        `key ${preview(key)} is longer than ${wireLimits.maxMetadataKeyLength} characters`,
      );
    }
    const value = metadata[key] ?? '';
    if (tooLong(value, wireLimits.maxMetadataValueLength)) {
      return new InvalidHubRequestError(
        `${path}[${preview(key)}]`,
        `is longer than ${wireLimits.maxMetadataValueLength} characters`,
      );
    }
  }
  return undefined;
}

function transportsProblem(transports: readonly TransportDescriptor[], path: string): Problem {
  if (transports.length > wireLimits.maxTransports) {
    return new InvalidHubRequestError(path, `has more than ${wireLimits.maxTransports} entries`);
  }
  for (const [i, t] of transports.entries()) {
    const at = `${path}[${i}]`;
    const problem =
      stringProblem(t.name, wireLimits.maxIdLength, `${at}.name`) ??
      stringProblem(t.kind, wireLimits.maxIdLength, `${at}.kind`) ??
      stringProblem(t.mode, wireLimits.maxIdLength, `${at}.mode`) ??
      (t.typedConfig === undefined
        ? undefined
        : (stringProblem(
            t.typedConfig.transportRef,
            wireLimits.maxTransportRefLength,
            `${at}.typed_config.transport_ref`,
          ) ??
          stringProblem(
            t.typedConfig.modeReason,
            wireLimits.maxModeReasonLength,
            `${at}.typed_config.mode_reason`,
          )));
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function frameProblem(packet: DataPacket, path: string): Problem {
  const frame = packet.frame;
  switch (frame.case) {
    case undefined:
      return undefined;
    case 'audio': {
      const at = `${path}.audio`;
      const { sampleRateHz, channels } = frame.value;
      // Zero means "not stated"; a stated value must be plausible.
      if (sampleRateHz !== 0 && (sampleRateHz < 8000 || sampleRateHz > 192_000)) {
        return new InvalidHubRequestError(`${at}.sample_rate_hz`, 'must be 0 or in 8000..192000');
      }
      if (channels !== 0 && (channels < 1 || channels > 8)) {
        return new InvalidHubRequestError(`${at}.channels`, 'must be 0 or in 1..8');
      }
      return (
        bytesProblem(frame.value.pcm, `${at}.pcm`) ??
        stringProblem(frame.value.codec, wireLimits.maxCodecLength, `${at}.codec`)
      );
    }
    case 'video': {
      const at = `${path}.video`;
      const { width, height } = frame.value;
      if (width > wireLimits.maxVideoDimension) {
        return new InvalidHubRequestError(`${at}.width`, `exceeds ${wireLimits.maxVideoDimension}`);
      }
      if (height > wireLimits.maxVideoDimension) {
        return new InvalidHubRequestError(`${at}.height`, `exceeds ${wireLimits.maxVideoDimension}`);
      }
      return (
        bytesProblem(frame.value.payload, `${at}.payload`) ??
        stringProblem(frame.value.codec, wireLimits.maxCodecLength, `${at}.codec`)
      );
    }
    case 'binary': {
      const at = `${path}.binary`;
      return (
        bytesProblem(frame.value.payload, `${at}.payload`) ??
        stringProblem(frame.value.mimeType, wireLimits.maxMimeTypeLength, `${at}.mime_type`)
      );
    }
  }
}

function envelopeProblem(envelope: StreamEnvelope, packet: DataPacket, path: string): Problem {
  const idProblem =
    stringProblem(envelope.streamId, wireLimits.maxIdLength, `${path}.stream_id`) ??
    stringProblem(envelope.partition, wireLimits.maxIdLength, `${path}.partition`) ??
    stringProblem(envelope.chunkId, wireLimits.maxIdLength, `${path}.chunk_id`);
  if (idProblem !== undefined) return idProblem;
  const { chunkId, chunkIndex, chunkCount, chunkBytes, totalBytes } = envelope;
  if (chunkCount > wireLimits.maxChunkCount) {
    return new InvalidHubRequestError(`${path}.chunk_count`, `exceeds ${wireLimits.maxChunkCount}`);
  }
  if (chunkBytes > wireLimits.maxChunkBytes) {
    return new InvalidHubRequestError(`${path}.chunk_bytes`, `exceeds ${wireLimits.maxChunkBytes}`);
  }
  if (totalBytes > wireLimits.maxTotalBytes) {
    return new InvalidHubRequestError(`${path}.total_bytes`, `exceeds ${wireLimits.maxTotalBytes}`);
  }
  if (chunkCount === 0) {
    if (chunkId !== '' || chunkIndex !== 0 || chunkBytes !== 0 || totalBytes !== 0) {
      return new InvalidHubRequestError(
        path,
        'has chunk fields set while chunk_count is 0 (chunk_id, chunk_index, chunk_bytes and total_bytes must be empty)',
      );
    }
    return undefined;
  }
  if (chunkId === '') {
    return new InvalidHubRequestError(`${path}.chunk_id`, 'is required when chunk_count > 0');
  }
  if (envelope.streamId === '') {
    return new InvalidHubRequestError(`${path}.stream_id`, 'is required when chunk_count > 0');
  }
  if (chunkIndex >= chunkCount) {
    return new InvalidHubRequestError(
      `${path}.chunk_index`,
      `must be less than chunk_count (${chunkIndex} >= ${chunkCount})`,
    );
  }
  // Only binary frames are split; a chunk of anything else could never be put back together.
  if (packet.frame.case !== 'binary') {
    return new InvalidHubRequestError(path, 'is chunked but the packet has no binary frame');
  }
  return undefined;
}

function flowProblem(flow: FlowControl, path: string): Problem {
  if (flow.partitionAcks.length > wireLimits.maxPartitionAcks) {
    return new InvalidHubRequestError(
      `${path}.partition_acks`,
      `has more than ${wireLimits.maxPartitionAcks} entries`,
    );
  }
  for (const [i, ack] of flow.partitionAcks.entries()) {
    const problem = stringProblem(
      ack.partition,
      wireLimits.maxIdLength,
      `${path}.partition_acks[${i}].partition`,
    );
    if (problem !== undefined) return problem;
  }
  const signal: number = flow.signal;
  if (
    signal !== FlowControlSignal.UNSPECIFIED &&
    signal !== FlowControlSignal.PAUSE &&
    signal !== FlowControlSignal.RESUME
  ) {
    return new InvalidHubRequestError(`${path}.signal`, `has unknown value ${signal}`);
  }
  return undefined;
}

function bytesProblem(bytes: Uint8Array, path: string): Problem {
  return bytes.byteLength > wireLimits.maxFrameBytes
    ? new InvalidHubRequestError(path, `is larger than ${wireLimits.maxFrameBytes} bytes`)
    : undefined;
}

function stringProblem(value: string, maxChars: number, path: string): Problem {
  return tooLong(value, maxChars)
    ? new InvalidHubRequestError(path, `is longer than ${maxChars} characters`)
    : undefined;
}

/** Length in Unicode code points, as protovalidate counts; UTF-16 length is an upper bound. */
function tooLong(value: string, maxChars: number): boolean {
  if (value.length <= maxChars) return false;
  let chars = 0;
  for (const _ of value) {
    chars += 1;
    if (chars > maxChars) return true;
  }
  return false;
}

function preview(value: string): string {
  return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);
}
