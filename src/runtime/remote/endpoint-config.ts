// Endpoint specs: which remote functions live behind which URL, and how to talk to them.
//
// A spec is StateFun's `io.statefun.endpoints.v2/http` endpoint written as an object:
// `functions` is `ns/name` (one function type) or `ns/*` (every type whose namespace is exactly
// `ns`; namespaces may contain `/`, so a type splits at its last `/` and `ns/*` does not reach
// `ns/sub/name`). A specific spec wins over its namespace's wildcard. `urlPathTemplate` is the URL
// to POST to, with every `{function.name}` replaced by the type's name part, percent-encoded; the
// placeholder may sit in the path or the query, never in the scheme, host or port, so a function
// name cannot redirect a request to another server. Without the placeholder every type of the spec
// goes to one URL and the SDK there dispatches on the request's target address.
//
// Specs come from configuration files, so everything is checked here and a `ConfigError` names the
// field (`endpoints[1].urlPathTemplate`); unknown fields are refused too, since a misspelt
// `callTimeout` would otherwise silently fall back to the default.

import { MAX_TIMER_MS } from '../../internal/clock.ts';
import { ConfigError } from '../../internal/errors.ts';
import type { FunctionType } from '../function-invoker.ts';

export interface EndpointSpec {
  /** `ns/name` for one function type, `ns/*` for every type of namespace `ns`. */
  readonly functions: string;
  /** `http(s)://host:port/path/{function.name}`; the placeholder is optional. */
  readonly urlPathTemplate: string;
  /** Budget of one invocation, retries included, from its first attempt; default 2 min. */
  readonly callTimeoutMs?: number;
  /** Time to open a TCP connection before the attempt counts as failed; default 20 s. */
  readonly connectTimeoutMs?: number;
  /** Connections open to the endpoint at once (StateFun's `pool_size`); default 1 024. */
  readonly maxConnections?: number;
  /** How long an idle keep-alive connection stays open (StateFun's `pool_ttl`); default 15 s. */
  readonly poolTtlMs?: number;
  /** Largest reply body accepted (StateFun's `payload_max_bytes`); default 32 MiB. */
  readonly maxReplyBytes?: number;
}

export type EndpointLimits = Required<Omit<EndpointSpec, 'functions' | 'urlPathTemplate'>>;

/** StateFun's async (Netty) transport defaults. */
export const defaultEndpointLimits: EndpointLimits = {
  callTimeoutMs: 120_000,
  connectTimeoutMs: 20_000,
  maxConnections: 1_024,
  poolTtlMs: 15_000,
  maxReplyBytes: 32 * 1024 * 1024,
};

/** A checked spec, with its defaults filled in. */
export interface Endpoint extends EndpointLimits {
  /** Position in the configured list, for messages. */
  readonly index: number;
  readonly functions: string;
  readonly namespace: string;
  /** The function name, or undefined for a `ns/*` spec. */
  readonly name: string | undefined;
  readonly urlPathTemplate: string;
  /** `http:` or `https:`. */
  readonly protocol: string;
}

export const FUNCTION_NAME_PLACEHOLDER = '{function.name}';

const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  'functions',
  'urlPathTemplate',
  ...Object.keys(defaultEndpointLimits),
]);

/** The URL for a function of `type` at `endpoint`: the template with the name filled in. */
export function endpointUrl(endpoint: Endpoint, type: FunctionType): string {
  return endpoint.urlPathTemplate.replaceAll(FUNCTION_NAME_PLACEHOLDER, encodeURIComponent(type.name));
}

/** The endpoints of a configuration, looked up by function type. */
export class EndpointTable {
  readonly endpoints: readonly Endpoint[];
  readonly #byType = new Map<string, Endpoint>();
  readonly #byNamespace = new Map<string, Endpoint>();

  /** Checks every spec; throws a `ConfigError` naming the first bad field. */
  constructor(specs: readonly EndpointSpec[], field = 'endpoints') {
    if (!Array.isArray(specs)) throw new ConfigError(field, 'expected a list of endpoint specs');
    const endpoints: Endpoint[] = [];
    for (const [index, spec] of (specs as readonly unknown[]).entries()) {
      const endpoint = parseEndpoint(spec, index, `${field}[${index}]`);
      const table = endpoint.name === undefined ? this.#byNamespace : this.#byType;
      const key = endpoint.name === undefined ? endpoint.namespace : endpoint.functions;
      const earlier = table.get(key);
      if (earlier !== undefined) {
        throw new ConfigError(
          `${field}[${index}].functions`,
          `${endpoint.functions} is already served by ${field}[${earlier.index}]`,
        );
      }
      table.set(key, endpoint);
      endpoints.push(endpoint);
    }
    this.endpoints = endpoints;
  }

  /** The endpoint serving `type`: its own spec if there is one, else its namespace's wildcard. */
  match(type: FunctionType): Endpoint | undefined {
    return this.#byType.get(`${type.namespace}/${type.name}`) ?? this.#byNamespace.get(type.namespace);
  }
}

function parseEndpoint(spec: unknown, index: number, field: string): Endpoint {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new ConfigError(field, 'expected an object');
  }
  for (const key of Object.keys(spec)) {
    if (!KNOWN_FIELDS.has(key)) throw new ConfigError(`${field}.${key}`, 'unknown field');
  }
  const given = spec as Partial<Record<keyof EndpointSpec, unknown>>;
  const { functions, namespace, name } = parseFunctions(given.functions, `${field}.functions`);
  const urlPathTemplate = given.urlPathTemplate;
  const protocol = checkTemplate(urlPathTemplate, `${field}.urlPathTemplate`);
  const limit = (key: keyof EndpointLimits): number => {
    const value = given[key] ?? defaultEndpointLimits[key];
    return positiveInteger(value, `${field}.${key}`);
  };
  return {
    index,
    functions,
    namespace,
    name,
    urlPathTemplate: urlPathTemplate as string,
    protocol,
    callTimeoutMs: limit('callTimeoutMs'),
    connectTimeoutMs: limit('connectTimeoutMs'),
    maxConnections: limit('maxConnections'),
    poolTtlMs: limit('poolTtlMs'),
    maxReplyBytes: limit('maxReplyBytes'),
  };
}

function parseFunctions(
  value: unknown,
  field: string,
): { functions: string; namespace: string; name: string | undefined } {
  if (typeof value !== 'string') throw new ConfigError(field, 'expected a string, ns/name or ns/*');
  const slash = value.lastIndexOf('/');
  const namespace = value.slice(0, slash);
  const name = value.slice(slash + 1);
  if (slash === -1 || namespace === '' || name === '') {
    throw new ConfigError(field, `expected ns/name or ns/*, got ${JSON.stringify(value)}`);
  }
  if (namespace.includes('*') || (name !== '*' && name.includes('*'))) {
    throw new ConfigError(field, `a wildcard may only stand for the whole name (ns/*), got ${value}`);
  }
  return { functions: value, namespace, name: name === '*' ? undefined : name };
}

/** Checks the template and returns its protocol. */
function checkTemplate(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(field, 'expected a URL');
  // Two different names must give URLs that differ only after the origin.
  const first = parseUrl(value.replaceAll(FUNCTION_NAME_PLACEHOLDER, 'a'), field);
  const second = parseUrl(value.replaceAll(FUNCTION_NAME_PLACEHOLDER, 'b'), field);
  if (first.protocol !== 'http:' && first.protocol !== 'https:') {
    throw new ConfigError(field, `expected an http: or https: URL, got ${first.protocol}`);
  }
  if (first.origin !== second.origin) {
    throw new ConfigError(field, `${FUNCTION_NAME_PLACEHOLDER} may appear in the path or query only`);
  }
  // Kept out so that URLs can go into errors and logs as they are.
  if (first.username !== '' || first.password !== '') {
    throw new ConfigError(field, 'credentials in the URL are not supported');
  }
  if (first.hash !== '') throw new ConfigError(field, 'a fragment is never sent; remove it');
  return first.protocol;
}

function parseUrl(text: string, field: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new ConfigError(field, `not a URL: ${JSON.stringify(text)}`);
  }
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new ConfigError(field, `expected an integer in [1, ${MAX_TIMER_MS}], got ${String(value)}`);
  }
  return value;
}
