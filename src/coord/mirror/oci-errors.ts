// OCI distribution error answers: `{"errors":[{"code","message"}]}` with the status that goes with
// the code. Clients (containerd, Docker, skopeo) show `message` to users, so it is kept short.
//
// Writing an error must never throw into a request handler: when the answer has already started
// (headers sent) the only honest thing left is to cut the connection, so the client sees a
// truncated response rather than a corrupt one; a header the caller passes that Node refuses does
// the same.

import type http from 'node:http';

/** Sent on every mirror answer; Docker clients check it on `/v2/`. */
export const OCI_API_VERSION_HEADER: Readonly<Record<string, string>> = {
  'docker-distribution-api-version': 'registry/2.0',
};

/** Longest `message` sent, in UTF-16 code units. */
export const MAX_OCI_ERROR_MESSAGE_LENGTH = 300;

// Headers a handler may have set for the content it meant to send; they would misdescribe the
// error body.
const representationHeaders = [
  'content-encoding',
  'content-length',
  'content-range',
  'content-type',
  'docker-content-digest',
  'etag',
  'last-modified',
  'accept-ranges',
  'transfer-encoding',
] as const;

/**
 * Answers `status` with an OCI error body (no body to a HEAD, same headers), plus
 * `OCI_API_VERSION_HEADER` and `extraHeaders` (e.g. `allow`, `www-authenticate`, `retry-after`).
 * If the answer has already started, destroys it instead. Never throws.
 */
export function writeOciError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  extraHeaders?: Record<string, string>,
): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  try {
    const body = JSON.stringify({ errors: [{ code, message: truncate(message) }] });
    for (const name of representationHeaders) res.removeHeader(name);
    const headers: Record<string, string> = { ...OCI_API_VERSION_HEADER };
    for (const [name, value] of Object.entries(extraHeaders ?? {})) {
      const lower = name.toLowerCase();
      // A 416's Content-Range names the blob's size (RFC 9110 §15.5.17), not the error body.
      const ofTheBlob = status === 416 && lower === 'content-range';
      if (ofTheBlob || !(representationHeaders as readonly string[]).includes(lower)) headers[lower] = value;
    }
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(status, headers);
    res.end(res.req.method === 'HEAD' ? undefined : body);
  } catch {
    // A status or header Node refuses: nothing valid can be sent any more.
    res.destroy();
  }
}

function truncate(message: string): string {
  if (message.length <= MAX_OCI_ERROR_MESSAGE_LENGTH) return message;
  let cut = message.slice(0, MAX_OCI_ERROR_MESSAGE_LENGTH - 1);
  // Never leave half a surrogate pair, which would not survive UTF-8 encoding.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}
