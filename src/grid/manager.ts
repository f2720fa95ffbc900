// A node's grid: one Connection per other host, the handlers it serves, and the
// HTTP upgrade endpoint its peers dial.
//
// Every node lists all hosts (itself included) and the same cluster secret. For each
// pair, exactly one side dials (dial-direction.ts); the other accepts on `/weft/grid/v1`
// and checks the handshake. The node id is new at each start, so peers can tell a
// restarted node from a reconnect.

import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import WebSocket, { WebSocketServer } from 'ws';

import { systemClock, type Clock } from '../internal/clock.ts';
import { ConfigError } from '../internal/errors.ts';
import { hmacAuth, type GridAuth } from './auth.ts';
import { resolveGridLimits, type GridLimits } from './config.ts';
import { Connection, type ConnectionStats, type FrameChecksum } from './connection.ts';
import { shouldDial } from './dial-direction.ts';
import { HandshakeRefusedError, type RefusalReason } from './errors.ts';
import {
  HandlerRegistry,
  type RegisterOptions,
  type SingleHandler,
  type StreamHandler,
} from './handler-registry.ts';
import { acceptHandshake } from './handshake.ts';
import { GRID_PATH } from './protocol.ts';
import { ReplayGuard } from './replay-guard.ts';

export interface ManagerOptions {
  /** This node's host URL, e.g. `http://10.0.0.1:9000`, exactly as listed in `hosts`. */
  readonly local: string;
  /** Every node's host URL, this one included. */
  readonly hosts: readonly string[];
  /** A shared cluster secret (HMAC tokens), or your own token scheme. */
  readonly auth: { readonly secret: string | Uint8Array } | GridAuth;
  /** TLS: server options for `listen`, client options for dials (`wss`). */
  readonly tls?: {
    readonly server?: https.ServerOptions | undefined;
    readonly client?: WebSocket.ClientOptions | undefined;
  };
  /** No dial and no accepted handshake before this settles. */
  readonly blockConnect?: Promise<unknown> | undefined;
  readonly limits?: Partial<GridLimits> | undefined;
  readonly clock?: Clock | undefined;
  /** When frames carry a CRC: 'auto' (default: unless both ends are https), 'always' or 'never'. */
  readonly frameChecksum?: FrameChecksum | undefined;
  /** Random source for redial jitter, in [0, 1). */
  readonly random?: (() => number) | undefined;
}

export interface ManagerStats {
  readonly nodeId: string;
  readonly connections: Readonly<Record<string, ConnectionStats>>;
  /** Handshakes refused, by reason. */
  readonly refused: Readonly<Partial<Record<RefusalReason | 'too-many-handshakes', number>>>;
}

/** Handshakes in progress at once; more are turned away with 503. */
const MAX_PENDING_HANDSHAKES = 256;

export class Manager {
  /** 16 random bytes, new at every start. */
  readonly nodeId: Uint8Array = randomBytes(16);
  readonly #local: string;
  readonly #hosts: ReadonlySet<string>;
  readonly #connections = new Map<string, Connection>();
  readonly #registry = new HandlerRegistry();
  readonly #clock: Clock;
  readonly #limits: Required<GridLimits>;
  readonly #auth: GridAuth;
  readonly #options: ManagerOptions;
  readonly #wss: WebSocketServer;
  #server: http.Server | https.Server | undefined;
  #ownsServer = false;
  #pendingHandshakes = 0;
  readonly #refused = new Map<string, number>();
  readonly #replayGuard: ReplayGuard;
  /** Aborted on close: ends every handshake in progress, with its timer. */
  readonly #handshakes = new AbortController();
  #closed = false;

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#local = options.local;
    checkHost(options.local, 'grid.local');
    options.hosts.forEach((host, i) => {
      checkHost(host, `grid.hosts[${i}]`);
    });
    this.#hosts = new Set(options.hosts);
    if (!this.#hosts.has(options.local))
      throw new ConfigError('grid.hosts', `must include the local host ${options.local}`);
    // Checked at run time too: plain JavaScript callers get no type check.
    const checksum: unknown = options.frameChecksum ?? 'auto';
    if (checksum !== 'auto' && checksum !== 'always' && checksum !== 'never') {
      throw new ConfigError('grid.frameChecksum', `must be auto, always or never, got ${String(checksum)}`);
    }
    this.#clock = options.clock ?? systemClock;
    this.#limits = resolveGridLimits(options.limits);
    this.#replayGuard = new ReplayGuard(this.#limits.maxClockSkewMs);
    // One listener per handshake in progress, and those are capped (MAX_PENDING_HANDSHAKES).
    setMaxListeners(MAX_PENDING_HANDSHAKES + 1, this.#handshakes.signal);
    this.#auth = 'secret' in options.auth ? hmacAuth(options.auth.secret) : options.auth;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#limits.maxFrameBytes,
      perMessageDeflate: false,
    });
    for (const host of this.#hosts) {
      if (host === this.#local) continue;
      this.#connections.set(
        host,
        new Connection({
          local: this.#local,
          remote: host,
          dials: shouldDial(this.#local, host),
          nodeId: this.nodeId,
          clock: this.#clock,
          random: options.random ?? Math.random,
          limits: this.#limits,
          registry: this.#registry,
          auth: this.#auth,
          tls: options.tls?.client,
          blockConnect: options.blockConnect,
          frameChecksum: options.frameChecksum,
        }),
      );
    }
  }

  /** This node's host URL. */
  hostName(): string {
    return this.#local;
  }

  /** The other hosts. */
  targets(): string[] {
    return [...this.#connections.keys()];
  }

  /** The connection to `host`; throws for a host that is not in the list. */
  connection(host: string): Connection {
    const connection = this.#connections.get(host);
    if (connection === undefined) throw new ConfigError('host', `${host} is not a peer of ${this.#local}`);
    return connection;
  }

  registerSingle(handler: number, fn: SingleHandler, options?: RegisterOptions): void {
    this.#registry.registerSingle(handler, fn, options);
  }

  registerStream(handler: number, stream: StreamHandler, options?: RegisterOptions): void {
    this.#registry.registerStream(handler, stream, options);
  }

  /** Serves grid upgrades on an existing server, and starts dialling. */
  attach(server: http.Server | https.Server): void {
    if (this.#server !== undefined)
      throw new ConfigError('server', 'the grid is already attached to a server');
    this.#server = server;
    server.on('upgrade', this.#onUpgrade);
    this.start();
  }

  /** Starts a server of its own (https when `tls.server` is given), then dials. */
  async listen(options: { port: number; host?: string }): Promise<AddressInfo> {
    const tlsServer = this.#options.tls?.server;
    const server = tlsServer === undefined ? http.createServer() : https.createServer(tlsServer);
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end(`upgrade to WebSocket on ${GRID_PATH}\n`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#ownsServer = true;
    this.attach(server);
    return server.address() as AddressInfo;
  }

  /** Starts dialling the peers this node dials. `attach` and `listen` call it. */
  start(): void {
    if (this.#closed) return;
    for (const connection of this.#connections.values()) connection.start();
  }

  stats(): ManagerStats {
    const connections: Record<string, ConnectionStats> = {};
    for (const [host, connection] of this.#connections) connections[host] = connection.stats();
    return {
      nodeId: Buffer.from(this.nodeId).toString('hex'),
      connections,
      refused: Object.fromEntries(this.#refused),
    };
  }

  /** Closes every connection (in-flight calls fail, handlers abort) and the server if it is ours. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handshakes.abort(new HandshakeRefusedError('shutting-down', `${this.#local} is shutting down`));
    for (const connection of this.#connections.values()) connection.close();
    const server = this.#server;
    if (server === undefined) return;
    server.off('upgrade', this.#onUpgrade);
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
    if (this.#ownsServer) {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    }
  }

  readonly #onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path !== GRID_PATH) {
      // Another upgrade handler on this server may own the path; if there is none, answer.
      if (this.#server?.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (this.#closed) {
      rejectUpgrade(socket, 503, 'Service Unavailable');
      return;
    }
    if (this.#pendingHandshakes >= MAX_PENDING_HANDSHAKES) {
      this.#count('too-many-handshakes');
      rejectUpgrade(socket, 503, 'Service Unavailable');
      return;
    }
    // Released once: when the handshake ends, or when the socket closes, since ws never
    // calls back for an upgrade request it rejects (no key, wrong version, …).
    this.#pendingHandshakes += 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#pendingHandshakes -= 1;
    };
    socket.once('close', release);
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      void this.#accept(ws).finally(release);
    });
  };

  async #accept(ws: WebSocket): Promise<void> {
    ws.on('error', () => {
      // Errors surface as close; the handshake or the connection handles that.
    });
    try {
      if (this.#options.blockConnect !== undefined) await this.#options.blockConnect.catch(() => undefined);
      const peer = await acceptHandshake(
        ws,
        {
          clock: this.#clock,
          auth: this.#auth,
          local: this.#local,
          nodeId: this.nodeId,
          timeoutMs: this.#limits.handshakeTimeoutMs,
          maxClockSkewMs: this.#limits.maxClockSkewMs,
        },
        (host) => this.#connections.has(host),
        (host, nodeId, timeMs) => this.#replayGuard.claim(host, nodeId, timeMs, this.#clock.wallTimeMs()),
        this.#handshakes.signal,
      );
      if (this.#closed) {
        ws.close(1001, 'shutting down');
        return;
      }
      this.connection(peer.host).attach(ws, peer.nodeId, peer.early);
    } catch (error) {
      this.#count(error instanceof HandshakeRefusedError ? error.reason : 'bad-handshake');
      // Let the refusal frame leave before closing.
      setImmediate(() => {
        ws.close(1008, 'handshake refused');
      });
    }
  }

  #count(reason: string): void {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
  }
}

function checkHost(host: string, field: string): void {
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw new ConfigError(field, `not a URL: ${JSON.stringify(host)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(field, `must be an http:// or https:// URL, got ${host}`);
  }
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
