// Writes what the mirror serves to the client: a stored blob or manifest (whole, or one byte
// range; headers only for HEAD), and the sink a blob streams through while it is being stored.

import type http from 'node:http';
import { pipeline } from 'node:stream/promises';

import type { Clock, Timer } from '../../internal/clock.ts';
import type { ContentStore } from '../content-store.ts';
import type { BlobSink } from './cluster-content.ts';
import { contentRangeHeader, parseRangeHeader, unsatisfiedRangeHeader } from './http-range.ts';
import { OCI_API_VERSION_HEADER, writeOciError } from './oci-errors.ts';

const SINK_WINDOW_BYTES = 1024 * 1024;

export interface ServeStoredOptions {
  /** The media type to answer with (a manifest's); blobs are `application/octet-stream`. */
  readonly mediaType?: string | undefined;
  /** Honour `Range` (blobs); manifests are always served whole. */
  readonly ranges: boolean;
}

/**
 * Answers `req` from the store. Resolves with the bytes sent, or undefined when the key is no
 * longer stored (evicted since it was obtained): the caller answers that.
 */
export async function serveStored(
  store: ContentStore,
  key: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: ServeStoredOptions,
): Promise<number | undefined> {
  const size = store.size(key);
  if (size === undefined) return undefined;
  const headers: Record<string, string | number> = {
    ...OCI_API_VERSION_HEADER,
    'content-type': options.mediaType ?? 'application/octet-stream',
    'docker-content-digest': key,
    etag: `"${key}"`,
  };
  const range = options.ranges ? parseRangeHeader(header(req, 'range'), size) : { kind: 'whole' as const };
  if (options.ranges) headers['accept-ranges'] = 'bytes';
  if (range.kind === 'unsatisfiable') {
    writeOciError(res, 416, 'RANGE_INVALID', `range not satisfiable for a blob of ${size} bytes`, {
      'content-range': unsatisfiedRangeHeader(size),
    });
    return 0;
  }
  const status = range.kind === 'range' ? 206 : 200;
  const length = range.kind === 'range' ? range.end - range.start + 1 : size;
  headers['content-length'] = length;
  if (range.kind === 'range') headers['content-range'] = contentRangeHeader(range.start, range.end, size);
  if (req.method === 'HEAD') {
    res.writeHead(status, headers).end();
    return 0;
  }
  const stream = await store.read(key, range.kind === 'range' ? range : undefined);
  if (stream === undefined) return undefined;
  res.writeHead(status, headers);
  try {
    await pipeline(stream, res);
  } catch {
    // The client left or the disk failed mid-blob: the response is cut short, the client retries.
    if (!res.destroyed) res.destroy();
  }
  return length;
}

/**
 * The client's response as a `BlobSink`. A client that reads nothing for `stallMs` is cut off,
 * so a stalled client never holds up storing the blob for everyone else.
 */
export class ResponseSink implements BlobSink {
  readonly #res: http.ServerResponse;
  readonly #key: string;
  readonly #clock: Clock;
  readonly #stallMs: number;
  #started = false;
  #detached = false;

  constructor(res: http.ServerResponse, key: string, clock: Clock, stallMs: number) {
    this.#res = res;
    this.#key = key;
    this.#clock = clock;
    this.#stallMs = stallMs;
    res.once('close', () => {
      this.#detached = true;
    });
  }

  get started(): boolean {
    return this.#started;
  }

  start(size: number | undefined): void {
    this.#started = true;
    if (this.#detached) return;
    const headers: Record<string, string | number> = {
      ...OCI_API_VERSION_HEADER,
      'content-type': 'application/octet-stream',
      'docker-content-digest': this.#key,
      etag: `"${this.#key}"`,
      'accept-ranges': 'bytes',
    };
    if (size !== undefined) headers['content-length'] = size;
    this.#res.writeHead(200, headers);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#detached) return;
    this.#res.write(chunk);
    // Up to a window of bytes may wait in the socket's buffer, so the client, the peer and the
    // disk overlap; past it, wait for the client (bounded by the stall time).
    if (this.#res.writableLength < SINK_WINDOW_BYTES) return;
    await new Promise<void>((resolve) => {
      let timer: Timer | undefined;
      const settle = (): void => {
        timer?.cancel();
        this.#res.off('drain', settle);
        this.#res.off('close', settle);
        resolve();
      };
      // A client that reads, however slowly, keeps its connection; one that reads nothing for
      // the stall time is cut off.
      let buffered = this.#res.writableLength;
      const check = (): void => {
        if (this.#res.writableLength < buffered) {
          buffered = this.#res.writableLength;
          timer = this.#clock.setTimeout(check, this.#stallMs);
          return;
        }
        this.abort();
        settle();
      };
      timer = this.#clock.setTimeout(check, this.#stallMs);
      this.#res.once('drain', settle);
      this.#res.once('close', settle);
    });
  }

  finish(last: Buffer | undefined): void {
    if (this.#detached) return;
    this.#res.end(last);
  }

  abort(): void {
    this.#detached = true;
    this.#res.destroy();
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
