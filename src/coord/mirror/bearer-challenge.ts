// Parsing an origin's `WWW-Authenticate` header (RFC 9110 §11.6.1) into the challenge a registry
// client answers: `Bearer realm="…",service="…",scope="…"` (the Docker token protocol) or `Basic`.
//
// The header comes from the network, so it is hostile: its length and parameter count are bounded,
// quoted values may hold commas and escaped quotes, and anything that does not follow the grammar
// yields a `problem` sentence instead of an exception. The realm must be an http(s) URL without
// embedded credentials: it is where this node sends the requester's credential.

/** A challenge this client can answer. */
export type OriginChallenge =
  | {
      readonly scheme: 'bearer';
      readonly realm: URL;
      readonly service: string | undefined;
      readonly scope: string | undefined;
    }
  | { readonly scheme: 'basic' };

export type ChallengeParseResult =
  | { readonly challenge: OriginChallenge; readonly problem?: undefined }
  | { readonly challenge?: undefined; readonly problem: string };

/** Longest header accepted; real ones are a few hundred bytes. */
export const MAX_CHALLENGE_HEADER_LENGTH = 8 * 1024;
const maxParamsPerChallenge = 32;

// RFC 9110 token characters.
const tchar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

interface RawChallenge {
  readonly scheme: string;
  readonly params: Map<string, string>;
}

/**
 * Picks the challenge to answer from the header values of one response: the first Bearer
 * challenge, else Basic. A header that breaks the grammar, or a Bearer challenge without a usable
 * realm, is a `problem`.
 */
export function parseOriginChallenge(headerValues: readonly string[]): ChallengeParseResult {
  const challenges: RawChallenge[] = [];
  for (const value of headerValues) {
    const parsed = parseChallenges(value);
    if (typeof parsed === 'string') return { problem: parsed };
    challenges.push(...parsed);
  }
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  if (bearer !== undefined) return bearerChallenge(bearer.params);
  if (challenges.some((c) => c.scheme === 'basic')) return { challenge: { scheme: 'basic' } };
  if (challenges.length === 0) return { problem: 'no WWW-Authenticate challenge' };
  return { problem: `no Bearer or Basic challenge (got ${challenges.map((c) => c.scheme).join(', ')})` };
}

function bearerChallenge(params: Map<string, string>): ChallengeParseResult {
  const realmText = params.get('realm');
  if (realmText === undefined) return { problem: 'Bearer challenge without a realm' };
  let realm: URL;
  try {
    realm = new URL(realmText);
  } catch {
    return { problem: `Bearer realm ${JSON.stringify(realmText)} is not a URL` };
  }
  if (realm.protocol !== 'http:' && realm.protocol !== 'https:') {
    return { problem: `Bearer realm must be http(s), not ${JSON.stringify(realm.protocol)}` };
  }
  if (realm.username !== '' || realm.password !== '') {
    return { problem: 'Bearer realm must not carry credentials' };
  }
  return {
    challenge: { scheme: 'bearer', realm, service: params.get('service'), scope: params.get('scope') },
  };
}

/** Every challenge in one header value, or a sentence saying where the grammar broke. */
function parseChallenges(header: string): RawChallenge[] | string {
  if (header.length > MAX_CHALLENGE_HEADER_LENGTH) {
    return `WWW-Authenticate header of ${header.length} characters exceeds ${MAX_CHALLENGE_HEADER_LENGTH}`;
  }
  const challenges: RawChallenge[] = [];
  let pos = 0;
  const skipSpaces = (): void => {
    while (pos < header.length && (header[pos] === ' ' || header[pos] === '\t')) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < header.length && tchar.test(header.charAt(pos))) pos++;
    return header.slice(start, pos);
  };

  for (;;) {
    // Empty list elements (", ,") are allowed by the list grammar.
    while (pos < header.length && /[ \t,]/.test(header.charAt(pos))) pos++;
    if (pos >= header.length) return challenges;
    const scheme = readToken();
    if (scheme === '')
      return `unexpected ${JSON.stringify(header.charAt(pos))} at ${pos} where a scheme belongs`;
    const params = new Map<string, string>();
    challenges.push({ scheme: scheme.toLowerCase(), params });
    skipSpaces();

    // The rest of this challenge: auth-params, or one token68 (which we accept and ignore).
    for (;;) {
      if (pos >= header.length) return challenges;
      const paramStart = pos;
      const name = readToken();
      skipSpaces();
      if (name === '' || header[pos] !== '=') {
        // Not a parameter: a token68 (e.g. "Negotiate a+b/c==", accepted and ignored) or the
        // next challenge's scheme, which the outer loop reads.
        pos = paramStart;
        if (params.size === 0) {
          const token68 = /^[A-Za-z0-9\-._~+/]+=*/.exec(header.slice(pos))?.[0];
          if (token68 !== undefined && /^[ \t]*(?:,|$)/.test(header.slice(pos + token68.length))) {
            pos += token68.length;
          }
        }
        break;
      }
      pos++; // '='
      skipSpaces();
      let value: string;
      if (header[pos] === '"') {
        const quoted = readQuoted(header, pos);
        if (typeof quoted === 'string') return quoted;
        value = quoted.value;
        pos = quoted.end;
      } else {
        value = readToken();
        if (value === '') {
          // "name=" followed by nothing: the token68 form "abc=" of a scheme without params.
          if (params.size === 0 && /^=*(?:[ \t]*(?:,|$))/.test(header.slice(pos))) {
            while (header[pos] === '=') pos++;
            skipSpaces();
            break;
          }
          return `parameter ${JSON.stringify(name)} has no value at ${pos}`;
        }
      }
      const key = name.toLowerCase();
      if (params.has(key)) return `parameter ${JSON.stringify(key)} appears twice`;
      if (params.size >= maxParamsPerChallenge) return `more than ${maxParamsPerChallenge} parameters`;
      params.set(key, value);
      skipSpaces();
      if (pos >= header.length) return challenges;
      if (header[pos] !== ',') return `expected "," at ${pos}, got ${JSON.stringify(header.charAt(pos))}`;
      pos++;
      skipSpaces();
      // Another parameter of this challenge, or the start of the next challenge: the next
      // iteration tells them apart by whether a "=" follows the token.
      while (pos < header.length && /[ \t,]/.test(header.charAt(pos))) pos++;
    }
  }
}

/** Reads a quoted-string starting at the opening quote; backslash escapes the next character. */
function readQuoted(header: string, open: number): { value: string; end: number } | string {
  let value = '';
  for (let pos = open + 1; pos < header.length; pos++) {
    const ch = header.charAt(pos);
    if (ch === '"') return { value, end: pos + 1 };
    if (ch === '\\') {
      pos++;
      if (pos >= header.length) break;
      value += header.charAt(pos);
      continue;
    }
    // Control characters are not allowed in a quoted-string (qdtext excludes them).
    const code = ch.charCodeAt(0);
    if (code < 0x20 && ch !== '\t') return `control character in a quoted value at ${pos}`;
    if (code === 0x7f) return `control character in a quoted value at ${pos}`;
    value += ch;
  }
  return `unterminated quoted value starting at ${open}`;
}
