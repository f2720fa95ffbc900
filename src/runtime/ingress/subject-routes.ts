// Which function a NATS message is for: the subject → address mapping shared by the JetStream
// and the core NATS ingress.
//
// A route names a subject pattern with NATS wildcards (`*` is one token, a final `>` is one or
// more), the function type that receives the messages, and where their type and id come from:
//
//   target   = route.functionType, with id:
//                the `Weft-Id` header, when the message carries one (a per-message override);
//                else route.id: 'last-token' (default), the subject's last token
//                (`orders.created.42` → '42'), or { header: 'Order-Id' }, that header's value
//   argument = typename route.messageType when the route names one (the route is the contract,
//              a header cannot change it), else the `Weft-Message-Type` header; value the payload
//
// Routes are tried in the order given and the first whose subject matches wins, so a message is
// delivered once even when patterns overlap. Header names match case-insensitively. A message that
// no route matches, whose id is missing or empty, or whose type is missing, repeated or not
// `namespace/name` is unmappable: no retry can make it succeed.

import { ConfigError, errorMessage } from '../../internal/errors.ts';
import { TypeName } from '../../statefun/index.ts';
import type { StoredAddress, StoredValue } from '../store/state-store.ts';

/** The header that names a message's type (`namespace/name`), when its route does not. */
export const MESSAGE_TYPE_HEADER = 'Weft-Message-Type';
/** The header that names a message's target id, overriding its route's rule. */
export const ID_HEADER = 'Weft-Id';

export interface SubjectRoute {
  /** A NATS subject, wildcards allowed: `orders.*.created`, `orders.>`. */
  readonly subject: string;
  /** The function type that receives the messages: `namespace/name`. */
  readonly functionType: string;
  /** The messages' type; default: each message's `Weft-Message-Type` header. */
  readonly messageType?: string | undefined;
  /** Where the target id comes from when the message has no `Weft-Id` header. Default 'last-token'. */
  readonly id?: 'last-token' | { readonly header: string } | undefined;
}

/** A NATS message as the router sees it; nats.js's `MsgHdrs` is such an iterable. */
export interface RoutableMessage {
  readonly subject: string;
  readonly headers?: Iterable<[string, string[]]> | undefined;
  readonly data: Uint8Array;
}

export type UnmappableReason = 'no-route' | 'bad-id' | 'bad-type' | 'bad-headers';

export type RouteMapping =
  | {
      readonly ok: true;
      /** The index of the route that matched. */
      readonly route: number;
      readonly target: StoredAddress;
      readonly argument: StoredValue;
    }
  | { readonly ok: false; readonly reason: UnmappableReason; readonly detail: string };

interface CompiledRoute {
  readonly tokens: readonly string[];
  readonly functionType: TypeName;
  readonly messageType: string | undefined;
  /** Lower-cased; undefined for the subject's last token. */
  readonly idHeader: string | undefined;
}

const MESSAGE_TYPE_KEY = MESSAGE_TYPE_HEADER.toLowerCase();
const ID_KEY = ID_HEADER.toLowerCase();
// An HTTP-style header name (RFC 9110 token): what NATS headers use too.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class SubjectRouter {
  readonly #routes: readonly CompiledRoute[];

  /** Checks `routes` (a ConfigError names the bad field, under `field`) and compiles them. */
  constructor(routes: readonly SubjectRoute[], field = 'routes') {
    // Checked as unknown: routes come from configuration files as often as from code.
    const given: unknown = routes;
    if (!Array.isArray(given) || given.length === 0) {
      throw new ConfigError(field, 'at least one route is needed');
    }
    this.#routes = routes.map((route, i) => compileRoute(route, `${field}[${i}]`));
  }

  /** The route subjects, in order: what a core NATS ingress subscribes to. */
  get subjects(): string[] {
    return this.#routes.map((route) => route.tokens.join('.'));
  }

  /** The index of the first route whose subject matches `subject`, or -1. */
  routeOf(subject: string): number {
    const tokens = subject.split('.');
    return this.#routes.findIndex((route) => subjectMatches(route.tokens, tokens));
  }

  /** The target and argument of `message`, or why it has none. */
  map(message: RoutableMessage): RouteMapping {
    const index = this.routeOf(message.subject);
    const route = this.#routes[index];
    if (route === undefined) {
      return { ok: false, reason: 'no-route', detail: `no route matches subject ${message.subject}` };
    }
    let headers: ReturnType<typeof headerValues>;
    try {
      // nats.js parses headers when they are read, and throws on a malformed one (a key with a
      // space or a colon, which another client can publish).
      headers = headerValues(message.headers);
    } catch (error) {
      return {
        ok: false,
        reason: 'bad-headers',
        detail: `the message's headers cannot be read: ${errorMessage(error)}`,
      };
    }

    let id: string | { readonly problem: string };
    if (headers.has(ID_KEY)) id = single(headers, ID_KEY, ID_HEADER);
    else if (route.idHeader !== undefined) id = single(headers, route.idHeader, route.idHeader);
    else id = message.subject.slice(message.subject.lastIndexOf('.') + 1);
    if (typeof id !== 'string') return { ok: false, reason: 'bad-id', detail: id.problem };
    if (id === '') return { ok: false, reason: 'bad-id', detail: 'the id is empty' };

    let typename = route.messageType;
    if (typename === undefined) {
      const header = single(headers, MESSAGE_TYPE_KEY, MESSAGE_TYPE_HEADER);
      if (typeof header !== 'string') {
        return {
          ok: false,
          reason: 'bad-type',
          detail: `${header.problem}, and the route names no messageType`,
        };
      }
      try {
        typename = TypeName.parse(header).toString();
      } catch (error) {
        return {
          ok: false,
          reason: 'bad-type',
          detail: `${MESSAGE_TYPE_HEADER}: ${(error as Error).message}`,
        };
      }
    }
    return {
      ok: true,
      route: index,
      target: [route.functionType.namespace, route.functionType.name, id],
      argument: { typename, value: message.data },
    };
  }
}

function compileRoute(route: SubjectRoute, field: string): CompiledRoute {
  const given: unknown = route;
  if (typeof given !== 'object' || given === null) throw new ConfigError(field, 'must be an object');
  const subjectProblem = patternProblem(route.subject);
  if (subjectProblem !== undefined) throw new ConfigError(`${field}.subject`, subjectProblem);
  const functionType = typeNameOption(`${field}.functionType`, route.functionType);
  const messageType =
    route.messageType === undefined
      ? undefined
      : typeNameOption(`${field}.messageType`, route.messageType).toString();
  let idHeader: string | undefined;
  const id = route.id ?? 'last-token';
  if (id !== 'last-token') {
    const header: unknown = typeof id === 'object' ? (id as { header?: unknown }).header : undefined;
    if (typeof header !== 'string' || !HEADER_NAME.test(header)) {
      throw new ConfigError(`${field}.id`, "must be 'last-token' or { header: <a header name> }");
    }
    idHeader = header.toLowerCase();
  }
  return { tokens: route.subject.split('.'), functionType, messageType, idHeader };
}

function typeNameOption(field: string, value: unknown): TypeName {
  try {
    return TypeName.parse(value as string);
  } catch (error) {
    throw new ConfigError(field, (error as Error).message);
  }
}

/** Why `subject` is not a NATS subject pattern, or undefined when it is one. */
function patternProblem(subject: unknown): string | undefined {
  if (typeof subject !== 'string' || subject === '') return 'must be a non-empty string';
  if (/\s/.test(subject)) return `${JSON.stringify(subject)} contains whitespace`;
  const tokens = subject.split('.');
  for (const [i, token] of tokens.entries()) {
    if (token === '') return `${JSON.stringify(subject)} has an empty token`;
    if (token.length > 1 && (token.includes('*') || token.includes('>'))) {
      return `${JSON.stringify(subject)}: a wildcard must be a whole token`;
    }
    if (token === '>' && i !== tokens.length - 1) return `${JSON.stringify(subject)}: '>' must be last`;
  }
  return undefined;
}

function subjectMatches(pattern: readonly string[], tokens: readonly string[]): boolean {
  for (const [i, token] of pattern.entries()) {
    if (token === '>') return tokens.length > i;
    if (i >= tokens.length) return false;
    if (token !== '*' && token !== tokens[i]) return false;
  }
  return pattern.length === tokens.length;
}

/** Header values by lower-cased name, every spelling of a name merged. */
function headerValues(headers: Iterable<[string, string[]]> | undefined): Map<string, string[]> {
  const values = new Map<string, string[]>();
  if (headers === undefined) return values;
  for (const [name, list] of headers) {
    const key = name.toLowerCase();
    const known = values.get(key);
    if (known === undefined) values.set(key, [...list]);
    else known.push(...list);
  }
  return values;
}

/** The one value of header `key`, or what is wrong with it (absent or repeated). */
function single(
  headers: ReadonlyMap<string, string[]>,
  key: string,
  name: string,
): string | { readonly problem: string } {
  const values = headers.get(key) ?? [];
  if (values.length === 1) return values[0] ?? '';
  return { problem: values.length === 0 ? `no ${name} header` : `${values.length} ${name} headers` };
}
