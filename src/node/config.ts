// A node's configuration: what a file may say, the defaults, and the check that names the bad
// field. Layers merge in this order: built-in defaults ← file (YAML or JSON) ← environment
// (WEFT_*) ← command-line flags. A config file is input from outside the process: unknown
// keys are refused (a typo must not be silently ignored), sizes and strings are bounded.

import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

import { parse as parseYaml } from 'yaml';

import { ConfigError } from '../internal/errors.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface NodeConfig {
  /** Shown on the dashboard and in `weft status`. Default `<hostname>-<port>`. */
  readonly name: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** The URL peers and clients reach this node at. Default `http://<listen.host>:<listen.port>`. */
  readonly advertise: string;
  readonly cluster: {
    /** Shared by every node: it authenticates grid handshakes and join requests. At least 16 bytes. */
    readonly secret: string;
    /** Nodes to join through at start (any member will do). Empty: this node starts a cluster. */
    readonly seeds: readonly string[];
  };
  /** Where the runtime, the hub's checkpoints and the mirror's store keep their files. */
  readonly dataDir: string;
  readonly runtime: {
    readonly enabled: boolean;
    /**
     * A PostgreSQL URL (`postgres://user@host:5432/db`): the runtime keeps its state there, shared
     * with every node of the cluster (docs/cluster.md). Absent: an lmdb store in `dataDir`.
     */
    readonly postgres?: string | undefined;
    /** The schema of the runtime's tables; default `weft`. */
    readonly postgresSchema: string;
    /** Connections in the node's pool; default 10. */
    readonly postgresPoolSize: number;
  };
  readonly hub: {
    readonly enabled: boolean;
    /** The hub's gRPC port (its own listener; 0 picks one). */
    readonly port: number;
    readonly host: string;
    /** Story files (YAML or JSON) the hub serves, relative to the config file. */
    readonly stories: readonly string[];
  };
  readonly mirror: {
    readonly enabled: boolean;
    /** The registry images are pulled from. */
    readonly origin: string;
    readonly maxStoreBytes: number;
  };
  readonly log: { readonly level: LogLevel };
  /** Runs the example application (a counter function, its view, a story through the hub). */
  readonly example: boolean;
}

/** What a file, the environment or flags may set: any part of the config. */
export type NodeConfigInput = {
  readonly [K in keyof NodeConfig]?: NodeConfig[K] extends readonly unknown[]
    ? NodeConfig[K]
    : NodeConfig[K] extends object
      ? Partial<NodeConfig[K]>
      : NodeConfig[K];
};

export const DEFAULT_PORT = 7400;
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
const MAX_SEEDS = 64;
const MAX_STORIES = 256;
const MAX_STRING = 4096;

export const defaultNodeConfig = {
  listen: { host: '127.0.0.1', port: DEFAULT_PORT },
  cluster: { seeds: [] as string[] },
  dataDir: './weft-data',
  runtime: { enabled: true, postgresSchema: 'weft', postgresPoolSize: 10 },
  hub: { enabled: false, port: 7500, host: '127.0.0.1', stories: [] as string[] },
  mirror: { enabled: false, origin: 'https://registry-1.docker.io', maxStoreBytes: 10 * 1024 ** 3 },
  log: { level: 'info' as LogLevel },
  example: false,
} as const;

/** The keys each section may hold; anything else in a file is refused. */
const knownKeys: Readonly<Record<string, readonly string[] | undefined>> = {
  '': ['name', 'listen', 'advertise', 'cluster', 'dataDir', 'runtime', 'hub', 'mirror', 'log', 'example'],
  listen: ['host', 'port'],
  cluster: ['secret', 'seeds'],
  runtime: ['enabled', 'postgres', 'postgresSchema', 'postgresPoolSize'],
  hub: ['enabled', 'port', 'host', 'stories'],
  mirror: ['enabled', 'origin', 'maxStoreBytes'],
  log: ['level'],
};

/** Reads a YAML or JSON config file (by its content: JSON starts with `{`). */
export async function readNodeConfigFile(file: string): Promise<NodeConfigInput> {
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new ConfigError('config', `${file} is not a regular file`);
    if (info.size > MAX_CONFIG_FILE_BYTES) {
      throw new ConfigError('config', `${file} is ${info.size} bytes, more than ${MAX_CONFIG_FILE_BYTES}`);
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError('config', `cannot read ${file}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError('config', `${file} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (document === null || document === undefined) return {};
  checkShape(document, '');
  const input = document as NodeConfigInput;
  // Story paths in a file are relative to the file, not to where the node was started.
  const stories = input.hub?.stories;
  if (Array.isArray(stories)) {
    const base = path.dirname(path.resolve(file));
    return {
      ...input,
      hub: {
        ...input.hub,
        stories: stories.map((s: unknown) => (typeof s === 'string' ? path.resolve(base, s) : s) as string),
      },
    };
  }
  return input;
}

/** The parts of the config the environment sets: WEFT_NAME, WEFT_PORT, WEFT_CLUSTER_SECRET, … */
export function nodeConfigFromEnv(env: NodeJS.ProcessEnv): NodeConfigInput {
  const input: Record<string, unknown> = {};
  const section = (name: string): Record<string, unknown> => (input[name] ??= {}) as Record<string, unknown>;
  const text = (key: string): string | undefined => {
    const value = env[key];
    return value === undefined || value === '' ? undefined : value;
  };
  const name = text('WEFT_NAME');
  if (name !== undefined) input['name'] = name;
  const host = text('WEFT_HOST');
  if (host !== undefined) section('listen')['host'] = host;
  const port = text('WEFT_PORT');
  if (port !== undefined) section('listen')['port'] = numberFrom(port, 'WEFT_PORT');
  const advertise = text('WEFT_ADVERTISE');
  if (advertise !== undefined) input['advertise'] = advertise;
  const secret = text('WEFT_CLUSTER_SECRET');
  if (secret !== undefined) section('cluster')['secret'] = secret;
  const seeds = text('WEFT_SEEDS');
  if (seeds !== undefined)
    section('cluster')['seeds'] = seeds
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const dataDir = text('WEFT_DATA_DIR');
  if (dataDir !== undefined) input['dataDir'] = dataDir;
  const postgres = text('WEFT_POSTGRES_URL');
  if (postgres !== undefined) section('runtime')['postgres'] = postgres;
  const level = text('WEFT_LOG_LEVEL');
  if (level !== undefined) section('log')['level'] = level;
  return input;
}

function numberFrom(text: string, field: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value))
    throw new ConfigError(field, `must be an integer, got ${JSON.stringify(text)}`);
  return value;
}

/** Merges layers (later wins, section by section) over the defaults and checks the result. */
export function resolveNodeConfig(...layers: readonly NodeConfigInput[]): NodeConfig {
  const merged: Record<string, unknown> = structuredClone(defaultNodeConfig);
  for (const layer of layers) {
    checkShape(layer, '');
    for (const [key, value] of Object.entries(layer) as [string, unknown][]) {
      if (value === undefined) continue;
      const current = merged[key];
      merged[key] =
        isPlainObject(value) && isPlainObject(current) ? { ...current, ...dropUndefined(value) } : value;
    }
  }
  return verifyNodeConfig(merged);
}

function dropUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

function verifyNodeConfig(raw: Record<string, unknown>): NodeConfig {
  const listen = raw['listen'] as Record<string, unknown>;
  const host = boundedString(listen['host'], 'listen.host');
  const port = integer(listen['port'], 'listen.port', 0, 65535);
  const advertise =
    raw['advertise'] === undefined
      ? `http://${host.includes(':') ? `[${host}]` : host}:${port}`
      : nodeUrl(raw['advertise'], 'advertise');
  if (raw['advertise'] === undefined && port === 0) {
    throw new ConfigError('advertise', 'must be set when listen.port is 0 (peers need a port to dial)');
  }
  if (raw['advertise'] === undefined && (host === '0.0.0.0' || host === '::')) {
    throw new ConfigError('advertise', `must be set when listening on ${host} (peers cannot dial it)`);
  }
  const cluster = raw['cluster'] as Record<string, unknown>;
  if (cluster['secret'] === undefined) {
    throw new ConfigError(
      'cluster.secret',
      'is required (16 bytes or more, the same on every node); set it in the config file or WEFT_CLUSTER_SECRET',
    );
  }
  const secret = boundedString(cluster['secret'], 'cluster.secret');
  if (Buffer.byteLength(secret) < 16) throw new ConfigError('cluster.secret', 'must be at least 16 bytes');
  const seeds = list(cluster['seeds'], 'cluster.seeds', MAX_SEEDS).map((seed, i) =>
    nodeUrl(seed, `cluster.seeds[${i}]`),
  );
  const runtime = raw['runtime'] as Record<string, unknown>;
  const hub = raw['hub'] as Record<string, unknown>;
  const mirror = raw['mirror'] as Record<string, unknown>;
  const log = raw['log'] as Record<string, unknown>;
  const level = log['level'];
  if (typeof level !== 'string' || !(logLevels as readonly string[]).includes(level)) {
    throw new ConfigError('log.level', `must be one of ${logLevels.join(', ')}, got ${describe(level)}`);
  }
  const origin = boundedString(mirror['origin'], 'mirror.origin');
  if (!/^https?:\/\/[^/]+\/?$/.test(origin)) {
    throw new ConfigError(
      'mirror.origin',
      `must be an http(s) URL with no path, got ${JSON.stringify(origin)}`,
    );
  }
  return {
    name: raw['name'] === undefined ? `${hostname()}-${port}` : boundedString(raw['name'], 'name', 128),
    listen: { host, port },
    advertise,
    cluster: { secret, seeds },
    dataDir: boundedString(raw['dataDir'], 'dataDir'),
    runtime: {
      enabled: bool(runtime['enabled'], 'runtime.enabled'),
      ...(runtime['postgres'] === undefined
        ? {}
        : { postgres: postgresUrl(runtime['postgres'], 'runtime.postgres') }),
      postgresSchema: sqlIdentifier(runtime['postgresSchema'], 'runtime.postgresSchema'),
      postgresPoolSize: integer(runtime['postgresPoolSize'], 'runtime.postgresPoolSize', 1, 1_000),
    },
    hub: {
      enabled: bool(hub['enabled'], 'hub.enabled'),
      port: integer(hub['port'], 'hub.port', 0, 65535),
      host: boundedString(hub['host'], 'hub.host'),
      stories: list(hub['stories'], 'hub.stories', MAX_STORIES).map((s, i) =>
        boundedString(s, `hub.stories[${i}]`),
      ),
    },
    mirror: {
      enabled: bool(mirror['enabled'], 'mirror.enabled'),
      origin: origin.replace(/\/$/, ''),
      maxStoreBytes: integer(
        mirror['maxStoreBytes'],
        'mirror.maxStoreBytes',
        1024 * 1024,
        Number.MAX_SAFE_INTEGER,
      ),
    },
    log: { level: level as LogLevel },
    example: bool(raw['example'], 'example'),
  };
}

/** Refuses keys a section does not have, and sections that are not objects. */
function checkShape(document: unknown, at: string): void {
  if (!isPlainObject(document)) {
    throw new ConfigError(at === '' ? 'config' : at, `must be an object, got ${describe(document)}`);
  }
  const known = knownKeys[at] ?? [];
  for (const [key, value] of Object.entries(document)) {
    const field = at === '' ? key : `${at}.${key}`;
    if (!known.includes(key)) {
      throw new ConfigError(
        field,
        `is not a setting${at === '' ? '' : ` of ${at}`} (known: ${known.join(', ')})`,
      );
    }
    if (at === '' && knownKeys[key] !== undefined && value !== undefined) checkShape(value, key);
  }
}

/** An http(s) URL with a host and nothing after the port: how nodes name each other. */
export function nodeUrl(value: unknown, field: string): string {
  const text = boundedString(value, field);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(field, `must be a URL such as http://10.0.0.1:7400, got ${JSON.stringify(text)}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new ConfigError(field, `must be an http or https URL, got ${JSON.stringify(text)}`);
  }
  if (
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new ConfigError(field, `must have no path, query or credentials, got ${JSON.stringify(text)}`);
  }
  return url.origin;
}

/** A postgres:// or postgresql:// URL naming a host and a database. */
function postgresUrl(value: unknown, field: string): string {
  const text = boundedString(value, field);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(field, 'must be a URL such as postgres://127.0.0.1:5432/weft');
  }
  if ((url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || url.hostname === '') {
    throw new ConfigError(field, `must be a postgres:// URL with a host, got a ${url.protocol} URL`);
  }
  if (url.pathname.length < 2)
    throw new ConfigError(field, 'must name a database (postgres://host:5432/<database>)');
  for (const part of [url.username, url.password, url.pathname]) {
    try {
      decodeURIComponent(part);
    } catch {
      // Said without echoing the URL: it may hold a password.
      throw new ConfigError(field, 'has a malformed %-escape in its user, password or database');
    }
  }
  return text;
}

function sqlIdentifier(value: unknown, field: string): string {
  const text = boundedString(value, field, 63);
  if (!/^[a-z_][a-z0-9_]*$/.test(text)) {
    throw new ConfigError(field, `must be a lower-case SQL identifier, got ${JSON.stringify(text)}`);
  }
  return text;
}

function boundedString(value: unknown, field: string, max = MAX_STRING): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(field, `must be a non-empty string, got ${describe(value)}`);
  }
  if (value.length > max) throw new ConfigError(field, `must be at most ${max} characters`);
  return value;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean')
    throw new ConfigError(field, `must be true or false, got ${describe(value)}`);
  return value;
}

function list(value: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(field, `must be a list, got ${describe(value)}`);
  if (value.length > max)
    throw new ConfigError(field, `must have at most ${max} entries, got ${value.length}`);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}
