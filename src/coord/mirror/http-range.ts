// The `Range` request header (RFC 9110 §14.2) for blob GETs, reduced to what a blob server needs:
// one byte range, or the whole blob.
//
// Whatever the header RFC 9110 lets a server ignore is ignored, and the whole blob is served with
// 200: a unit other than `bytes`, several ranges (allowed to be answered whole, and it spares us
// multipart bodies), malformed syntax, and an invalid range-spec such as `bytes=5-1` (last before
// first). So are headers over 1 KiB and numbers over 15 digits, which no real blob needs and
// which would otherwise lose precision. A well-formed range that selects nothing (first byte at
// or past the end, a zero-length suffix, any range of an empty blob) is unsatisfiable: 416 with
// `Content-Range: bytes */size`.

/** How to answer a blob GET given its `Range` header. Ranges are inclusive, as in `ByteRange`. */
export type RangeResult =
  | { readonly kind: 'whole' }
  | { readonly kind: 'range'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

/** Longer `Range` headers are ignored. */
export const MAX_RANGE_HEADER_LENGTH = 1024;

// At most 15 digits, so every position is an exact safe integer.
const intRangePattern = /^([0-9]{1,15})-([0-9]{0,15})$/;
const suffixRangePattern = /^-([0-9]{1,15})$/;

const WHOLE: RangeResult = { kind: 'whole' };
const UNSATISFIABLE: RangeResult = { kind: 'unsatisfiable' };

/** Interprets a `Range` header against a blob of `size` bytes. */
export function parseRangeHeader(header: string | undefined, size: number): RangeResult {
  checkSize(size);
  if (header === undefined || header.length > MAX_RANGE_HEADER_LENGTH) return WHOLE;
  const equals = header.indexOf('=');
  if (equals < 0) return WHOLE;
  // The range unit is case-insensitive; whitespace is allowed only around the range-spec.
  if (header.slice(0, equals).trim().toLowerCase() !== 'bytes') return WHOLE;
  const spec = header.slice(equals + 1).trim();
  if (spec.includes(',')) return WHOLE;

  const suffix = suffixRangePattern.exec(spec);
  if (suffix !== null) {
    const length = Number(suffix[1]);
    if (length === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'range', start: Math.max(size - length, 0), end: size - 1 };
  }
  const int = intRangePattern.exec(spec);
  if (int === null) return WHOLE;
  const start = Number(int[1]);
  const last = int[2] === '' || int[2] === undefined ? undefined : Number(int[2]);
  if (last !== undefined && last < start) return WHOLE;
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'range', start, end: Math.min(last ?? size - 1, size - 1) };
}

/** `Content-Range` of a 206 answer: `bytes start-end/size`. Throws `RangeError` outside the blob. */
export function contentRangeHeader(start: number, end: number, size: number): string {
  checkSize(size);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end >= size) {
    throw new RangeError(`range ${start}-${end} is not inside a blob of ${size} bytes`);
  }
  return `bytes ${start}-${end}/${size}`;
}

/** `Content-Range` of a 416 answer: `bytes *\/size` (RFC 9110 §14.4). */
export function unsatisfiedRangeHeader(size: number): string {
  checkSize(size);
  return `bytes */${size}`;
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`blob size must be a non-negative integer, got ${size}`);
  }
}
