// Puts chunked BinaryFrame payloads back together. A sender splits a large binary payload into
// up to 256 packets sharing (stream_id, partition, chunk_id) with chunk_index/chunk_count in the
// envelope; the hub holds the parts until all have arrived and then passes on one packet.
//
// Everything held is bounded: bytes in flight across all partial messages, partial messages per
// stream_id and in total, bytes per chunk. A partial message untouched for `ttlMs` is dropped.
// Any refusal is an error that ends the sender's stream (A6); the partial message the refused
// chunk belonged to is discarded with it, since it can no longer complete.

import { create } from '@bufbuild/protobuf';

import { DataPacketSchema, type DataPacket } from '../../gen/transport/v1/hub_pb.ts';
import { BinaryFrameSchema, StreamEnvelopeSchema } from '../../gen/transport/v1/transport_pb.ts';
import { type Clock } from '../../internal/clock.ts';
import { ConfigError } from '../../internal/errors.ts';
import {
  ChunkBudgetExceededError,
  ChunkInvalidError,
  type ChunkBudget,
  type ChunkInvalidReason,
} from './errors.ts';

const MiB = 1024 * 1024;

export interface ChunkReassemblerConfig {
  /** A partial message not added to for this long is dropped. Default 120_000 (2 min). */
  readonly ttlMs?: number;
  /** Payload bytes held across all partial messages. Default 64 MiB. */
  readonly maxInFlightBytes?: number;
  /** Largest single chunk payload. Default 10 MiB. */
  readonly maxChunkBytes?: number;
  /** Partial messages per envelope stream_id. Default 64. */
  readonly maxPartialsPerStream?: number;
  /** Partial messages in total. Default 1024. */
  readonly maxPartials?: number;
  /** Largest chunk_count accepted. Default 256. */
  readonly maxChunkCount?: number;
}

export const defaultChunkReassemblerConfig: Required<ChunkReassemblerConfig> = {
  ttlMs: 120_000,
  maxInFlightBytes: 64 * MiB,
  maxChunkBytes: 10 * MiB,
  maxPartialsPerStream: 64,
  maxPartials: 1024,
  maxChunkCount: 256,
};

/** The result of adding a packet: the whole packet once complete, else still waiting. */
export type ChunkResult =
  { readonly complete: true; readonly packet: DataPacket } | { readonly complete: false };

export interface ChunkReassemblerStats {
  readonly partials: number;
  readonly inFlightBytes: number;
  /** Messages put back together. */
  readonly completed: number;
  /** Partial messages dropped after ttlMs without a new chunk. */
  readonly expired: number;
  /** Partial messages dropped because one of their chunks was refused, or by `discardStream`. */
  readonly discarded: number;
  /** Chunks refused, by reason. */
  readonly refused: Readonly<Record<ChunkInvalidReason | ChunkBudget, number>>;
}

interface Partial {
  readonly key: string;
  readonly streamId: string;
  /** Who sent it (a connector's stream key): chunks of different senders never mix. */
  readonly sender: string;
  /** `[sender, streamId]`: what the per-stream budget counts. */
  readonly scope: string;
  readonly chunkCount: number;
  readonly totalBytes: number;
  readonly parts: (Uint8Array | undefined)[];
  /** The packet of chunk 0: its metadata, payload and envelope become the whole packet's. */
  first: DataPacket | undefined;
  received: number;
  bytes: number;
  lastSeenMs: number;
}

export class ChunkReassembler {
  readonly #clock: Clock;
  readonly #config: Required<ChunkReassemblerConfig>;
  /** In order of last touch (re-inserted on each chunk), so expiry scans only the head. */
  readonly #partials = new Map<string, Partial>();
  readonly #partialsPerStream = new Map<string, number>();
  #inFlightBytes = 0;
  #completed = 0;
  #expired = 0;
  #discarded = 0;
  readonly #refused: Record<ChunkInvalidReason | ChunkBudget, number> = {
    not_chunked: 0,
    not_binary: 0,
    missing_id: 0,
    out_of_range: 0,
    duplicate: 0,
    header_mismatch: 0,
    size_mismatch: 0,
    chunk_too_large: 0,
    in_flight_bytes: 0,
    partials_per_stream: 0,
    partials_global: 0,
  };

  constructor(clock: Clock, config: ChunkReassemblerConfig = {}) {
    this.#clock = clock;
    this.#config = { ...defaultChunkReassemblerConfig, ...config };
    for (const [name, value] of Object.entries(this.#config)) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConfigError(`hub.chunks.${name}`, 'must be a positive integer');
      }
    }
  }

  /** True when the packet is one chunk of a larger message (its envelope's chunk_count > 0). */
  static isChunk(packet: DataPacket): boolean {
    return (packet.envelope?.chunkCount ?? 0) > 0;
  }

  /**
   * Adds a packet. An unchunked packet comes straight back complete. A chunk is held, and the
   * last one to arrive returns the whole packet: chunk 0's packet with the joined payload and
   * the chunk fields cleared. Throws ChunkInvalidError or ChunkBudgetExceededError.
   * `sender` scopes the chunk ids: two senders using the same ids never complete each other's.
   */
  add(packet: DataPacket, sender = ''): ChunkResult {
    const envelope = packet.envelope;
    if (envelope === undefined || envelope.chunkCount === 0) {
      if (
        envelope !== undefined &&
        (envelope.chunkId !== '' ||
          envelope.chunkIndex !== 0 ||
          envelope.chunkBytes !== 0 ||
          envelope.totalBytes !== 0)
      ) {
        throw this.#invalid('not_chunked', 'chunk fields are set but chunk_count is 0');
      }
      return { complete: true, packet };
    }
    const { streamId, partition, chunkId, chunkIndex, chunkCount, chunkBytes, totalBytes } = envelope;
    if (packet.frame.case !== 'binary') {
      throw this.#invalid('not_binary', `chunk ${chunkIndex} of ${chunkId} has no binary frame`);
    }
    if (chunkId === '' || streamId === '') {
      throw this.#invalid('missing_id', 'a chunk needs both stream_id and chunk_id');
    }
    if (chunkCount > this.#config.maxChunkCount || chunkIndex >= chunkCount) {
      throw this.#invalid(
        'out_of_range',
        `chunk_index ${chunkIndex} / chunk_count ${chunkCount} of ${chunkId} is out of range ` +
          `(index < count ≤ ${this.#config.maxChunkCount})`,
      );
    }
    const payload = packet.frame.value.payload;
    if (payload.byteLength > this.#config.maxChunkBytes) {
      throw this.#invalid(
        'chunk_too_large',
        `chunk ${chunkIndex} of ${chunkId} has ${payload.byteLength} bytes (limit ${this.#config.maxChunkBytes})`,
      );
    }
    if (chunkBytes !== 0 && chunkBytes !== payload.byteLength) {
      throw this.#invalid(
        'size_mismatch',
        `chunk ${chunkIndex} of ${chunkId} announces chunk_bytes ${chunkBytes} but carries ${payload.byteLength}`,
      );
    }

    const now = this.#clock.now();
    this.#expire(now);
    const key = JSON.stringify([sender, streamId, partition, chunkId]);
    let partial = this.#partials.get(key);
    if (this.#inFlightBytes + payload.byteLength > this.#config.maxInFlightBytes) {
      if (partial !== undefined) this.#discard(partial);
      throw this.#overBudget('in_flight_bytes', this.#config.maxInFlightBytes);
    }
    if (partial === undefined) {
      partial = this.#open(key, streamId, sender, chunkCount, totalBytes, now);
    } else {
      if (partial.chunkCount !== chunkCount || partial.totalBytes !== totalBytes) {
        throw this.#invalid(
          'header_mismatch',
          `chunk ${chunkIndex} of ${chunkId} announces chunk_count ${chunkCount}/total_bytes ${totalBytes}, ` +
            `earlier chunks ${partial.chunkCount}/${partial.totalBytes}`,
          partial,
        );
      }
      if (partial.parts[chunkIndex] !== undefined) {
        throw this.#invalid('duplicate', `chunk ${chunkIndex} of ${chunkId} arrived twice`, partial);
      }
    }
    if (partial.totalBytes !== 0 && partial.bytes + payload.byteLength > partial.totalBytes) {
      throw this.#invalid(
        'size_mismatch',
        `chunks of ${chunkId} exceed the announced total_bytes ${partial.totalBytes}`,
        partial,
      );
    }

    partial.parts[chunkIndex] = payload;
    if (chunkIndex === 0) partial.first = packet;
    partial.received += 1;
    partial.bytes += payload.byteLength;
    this.#inFlightBytes += payload.byteLength;
    partial.lastSeenMs = now;
    this.#partials.delete(key);
    this.#partials.set(key, partial);

    if (partial.received < partial.chunkCount) return { complete: false };
    if (partial.totalBytes !== 0 && partial.bytes !== partial.totalBytes) {
      throw this.#invalid(
        'size_mismatch',
        `chunks of ${chunkId} hold ${partial.bytes} bytes, total_bytes announced ${partial.totalBytes}`,
        partial,
      );
    }
    this.#remove(partial);
    this.#completed += 1;
    return { complete: true, packet: join(partial) };
  }

  /** Drops partial messages idle past ttlMs; returns how many. `add` also does this. */
  sweep(): number {
    return this.#expire(this.#clock.now());
  }

  /** Drops every partial message of `sender` (its stream ended: they can never complete). */
  discardSender(sender: string): number {
    let dropped = 0;
    for (const partial of [...this.#partials.values()]) {
      if (partial.sender !== sender) continue;
      this.#discard(partial);
      dropped += 1;
    }
    return dropped;
  }

  /** Drops every partial message of an envelope stream_id (e.g. when its sender went away). */
  discardStream(streamId: string): number {
    let dropped = 0;
    for (const partial of [...this.#partials.values()]) {
      if (partial.streamId !== streamId) continue;
      this.#discard(partial);
      dropped += 1;
    }
    return dropped;
  }

  stats(): ChunkReassemblerStats {
    return {
      partials: this.#partials.size,
      inFlightBytes: this.#inFlightBytes,
      completed: this.#completed,
      expired: this.#expired,
      discarded: this.#discarded,
      refused: { ...this.#refused },
    };
  }

  #open(
    key: string,
    streamId: string,
    sender: string,
    chunkCount: number,
    totalBytes: number,
    now: number,
  ): Partial {
    const scope = JSON.stringify([sender, streamId]);
    if (this.#partials.size >= this.#config.maxPartials) {
      throw this.#overBudget('partials_global', this.#config.maxPartials);
    }
    if ((this.#partialsPerStream.get(scope) ?? 0) >= this.#config.maxPartialsPerStream) {
      throw this.#overBudget('partials_per_stream', this.#config.maxPartialsPerStream);
    }
    const partial: Partial = {
      key,
      streamId,
      sender,
      scope,
      chunkCount,
      totalBytes,
      parts: new Array<Uint8Array | undefined>(chunkCount).fill(undefined),
      first: undefined,
      received: 0,
      bytes: 0,
      lastSeenMs: now,
    };
    this.#partials.set(key, partial);
    this.#partialsPerStream.set(scope, (this.#partialsPerStream.get(scope) ?? 0) + 1);
    return partial;
  }

  #expire(now: number): number {
    let expired = 0;
    for (const partial of this.#partials.values()) {
      if (now - partial.lastSeenMs < this.#config.ttlMs) break;
      this.#remove(partial);
      expired += 1;
    }
    this.#expired += expired;
    return expired;
  }

  #remove(partial: Partial): void {
    if (!this.#partials.delete(partial.key)) return;
    this.#inFlightBytes -= partial.bytes;
    const count = (this.#partialsPerStream.get(partial.scope) ?? 1) - 1;
    if (count <= 0) this.#partialsPerStream.delete(partial.scope);
    else this.#partialsPerStream.set(partial.scope, count);
  }

  #discard(partial: Partial): void {
    if (!this.#partials.has(partial.key)) return;
    this.#remove(partial);
    this.#discarded += 1;
  }

  #invalid(reason: ChunkInvalidReason, message: string, partial?: Partial): ChunkInvalidError {
    this.#refused[reason] += 1;
    if (partial !== undefined) this.#discard(partial);
    return new ChunkInvalidError(reason, `chunk refused: ${message}`);
  }

  #overBudget(budget: ChunkBudget, limit: number): ChunkBudgetExceededError {
    this.#refused[budget] += 1;
    return new ChunkBudgetExceededError(budget, limit);
  }
}

function join(partial: Partial): DataPacket {
  const first = partial.first;
  // Every index is filled once received === chunkCount, so chunk 0 is present.
  if (first?.frame.case !== 'binary' || first.envelope === undefined) {
    throw new Error('unreachable: a completed message has chunk 0');
  }
  const payload = new Uint8Array(partial.bytes);
  let offset = 0;
  for (const part of partial.parts) {
    if (part === undefined) continue;
    payload.set(part, offset);
    offset += part.byteLength;
  }
  return create(DataPacketSchema, {
    metadata: { ...first.metadata },
    payload: first.payload,
    inputs: first.inputs,
    transports: first.transports,
    frame: {
      case: 'binary',
      value: create(BinaryFrameSchema, {
        payload,
        mimeType: first.frame.value.mimeType,
        timestampMs: first.frame.value.timestampMs,
      }),
    },
    envelope: create(StreamEnvelopeSchema, {
      streamId: first.envelope.streamId,
      sequence: first.envelope.sequence,
      partition: first.envelope.partition,
    }),
  });
}
