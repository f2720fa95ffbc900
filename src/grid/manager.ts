// A node's grid: one Connection per other host, the handlers it serves, and the
// HTTP upgrade endpoint its peers dial.
//
// Every node lists all hosts (itself included) and the same cluster secret. For each
// pair, exactly one side dials (dial-direction.ts); the other accepts on `/weft/grid/v2`
// and checks the handshake. The node id is new at each start, so peers can tell a
// restarted node from a reconnect. Hosts can be added and removed while the node runs
// (`addHost`, `removeHost`): a node joining a cluster is added on every member.

import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

import WebSocket, { WebSocketServer } from 'ws';

import { systemClock, type Clock } from '../internal/clock.ts';
import { ClosedError, ConfigError } from '../internal/errors.ts';
import { hmacAuth, type GridAuth } from './auth.ts';
import { resolveGridLimits, type GridLimits } from './config.ts';
import { Connection } from './connection.ts';
import { shouldDial } from './dial-direction.ts';
import { HandshakeRefusedError, type RefusalReason } from './errors.ts';
import {
  HandlerRegistry,
  type RegisterOptions,
  type SingleHandler,
  type StreamHandler,
} from './handler-registry.ts';
import { acceptHandshake } from './handshake.ts';
import { HandshakeGate, type GateRefusal } from './handshake-gate.ts';
import type { Logger } from './logger.ts';
import type { ConnectionStats, FrameChecksum, GridConnection } from './grid-connection.ts';
import { GRID_PATH } from './protocol.ts';

export interface ManagerOptions {
  /** This node's host URL, e.g. `http://10.0.0.1:9000`, exactly as listed in `hosts`. */
  readonly local: string;
  /** Every node's host URL, this one included. */
  readonly hosts: readonly string[];
  /** A shared cluster secret (HMAC tokens), or your own token scheme. */
  readonly auth: { readonly secret: string | Uint8Array } | GridAuth;
  /**
   * TLS: server options for `listen`, and for dials (`wss`) the client side of a TLS
   * connection (`ca`, `cert`, `key`, `servername`, `rejectUnauthorized`, …).
   */
  readonly tls?: {
    readonly server?: https.ServerOptions | undefined;
    readonly client?: tls.ConnectionOptions | undefined;
  };
  /** No dial and no accepted handshake before this settles. */
  readonly blockConnect?: Promise<unknown> | undefined;
  readonly limits?: Partial<GridLimits> | undefined;
  readonly clock?: Clock | undefined;
  /** When frames carry a CRC: 'auto' (default: unless both ends are https), 'always' or 'never'. */
  readonly frameChecksum?: FrameChecksum | undefined;
  /** Random source for redial jitter, in [0, 1). */
  readonly random?: (() => number) | undefined;
  /**
   * Where this node reports what no caller hears: a handler of its own that failed (once per
   * failure, with the handler id and subroute) and a peer that refuses its handshake (once per
   * reason until the link is up again). Default `console`.
   */
  readonly logger?: Logger | undefined;
}

export interface ManagerStats {
  readonly nodeId: string;
  readonly connections: Readonly<Record<string, ConnectionStats>>;
  /**
   * Handshakes refused and sockets dropped before they proved themselves, by reason; and
   * hosts `addHost` refused past MAX_GRID_HOSTS (`too-many-hosts`).
   */
  readonly refused: Readonly<Partial<Record<RefusalReason | GateRefusal | 'too-many-hosts', number>>>;
  /** Handshakes under way (upgraded on the grid path, not yet authenticated). */
  readonly pendingHandshakes: number;
  /** Accepted sockets that have not sent their first request yet. */
  readonly socketsAwaitingRequest: number;
}

/** Bytes a socket may send before its handshake succeeds: a Connect is well under 1 KiB. */
export const MAX_HANDSHAKE_BYTES = 16 * 1024;

/** Hosts one grid may list, itself included (a bound on its connections and their state). */
export const MAX_GRID_HOSTS = 1024;

export class Manager {
  /** 16 random bytes, new at every start. */
  readonly nodeId: Uint8Array = randomBytes(16);
  readonly #local: string;
  readonly #hosts: Set<string>;
  readonly #connections = new Map<string, Connection>();
  readonly #registry = new HandlerRegistry();
  readonly #clock: Clock;
  readonly #limits: Required<GridLimits>;
  readonly #auth: GridAuth;
  readonly #options: ManagerOptions;
  readonly #wss: WebSocketServer;
  #server: http.Server | https.Server | undefined;
  #ownsServer = false;
  readonly #refused = new Map<string, number>();
  readonly #gate: HandshakeGate;
  /** Aborted on close: ends every handshake in progress, with its timer. */
  readonly #handshakes = new AbortController();
  #closed = false;
  #started = false;
  readonly #logger: ReturnType<typeof resolveLogger>;

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
    const logger = resolveLogger(options.logger);
    this.#clock = options.clock ?? systemClock;
    this.#limits = resolveGridLimits(options.limits);
    this.#gate = new HandshakeGate({
      clock: this.#clock,
      timeoutMs: this.#limits.handshakeTimeoutMs,
      maxPending: this.#limits.maxPendingHandshakes,
      maxPendingPerSource: this.#limits.maxPendingHandshakesPerSource,
      maxWaiting: this.#limits.maxSocketsAwaitingRequest,
      maxHandshakeBytes: MAX_HANDSHAKE_BYTES,
      onRefuse: (reason) => {
        this.#count(reason);
      },
    });
    // One listener per handshake in progress, and those are capped (maxPendingHandshakes). A
    // handshake the gate evicted lets go of its listener when its socket's close arrives, a loop
    // turn later, so under a burst of new sockets as many again may be on their way out.
    setMaxListeners(2 * this.#limits.maxPendingHandshakes + 1, this.#handshakes.signal);
    this.#auth = resolveAuth(options.auth);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#limits.maxFrameBytes,
      perMessageDeflate: false,
    });
    this.#logger = logger;
    for (const host of this.#hosts) {
      if (host !== this.#local) this.#connections.set(host, this.#newConnection(host));
    }
  }

  #newConnection(host: string): Connection {
    const options = this.#options;
    return new Connection({
      local: this.#local,
      remote: host,
      dials: shouldDial(this.#local, host),
      nodeId: this.nodeId,
      clock: this.#clock,
      random: options.random ?? Math.random,
      limits: this.#limits,
      registry: this.#registry,
      auth: this.#auth,
      // ws passes these to https.request; its own typing of checkServerIdentity differs.
      tls: options.tls?.client as WebSocket.ClientOptions | undefined,
      blockConnect: options.blockConnect,
      frameChecksum: options.frameChecksum,
      logger: this.#logger,
    });
  }

  /**
   * Adds a peer to a running node: it is dialled (or awaited, by the dial rule) from now on,
   * and its handshakes are accepted. False when it is already a host. At most `MAX_GRID_HOSTS`
   * hosts; past that the host is refused (ConfigError) and counted (`refused['too-many-hosts']`).
   */
  addHost(host: string): boolean {
    checkHost(host, 'host');
    if (this.#hosts.has(host)) return false;
    if (this.#closed) throw new ClosedError(`grid ${this.#local} is closed`);
    if (this.#hosts.size >= MAX_GRID_HOSTS) {
      this.#count('too-many-hosts');
      throw new ConfigError('host', `the grid already has ${MAX_GRID_HOSTS} hosts`);
    }
    this.#hosts.add(host);
    const connection = this.#newConnection(host);
    this.#connections.set(host, connection);
    if (this.#started) connection.start();
    return true;
  }

  /**
   * Removes a peer: its connection shuts down (its calls fail with DisconnectedError, its
   * handlers are aborted) and its handshakes are refused from now on. False when it is not a peer.
   */
  removeHost(host: string): boolean {
    if (host === this.#local) throw new ConfigError('host', 'a node cannot remove itself from its grid');
    const connection = this.#connections.get(host);
    if (connection === undefined) return false;
    this.#connections.delete(host);
    this.#hosts.delete(host);
    connection.close();
    return true;
  }

  /** Every host of the grid, this node's included. */
  hosts(): string[] {
    return [...this.#hosts];
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
  connection(host: string): GridConnection {
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

  /**
   * Serves grid upgrades on an existing server, and starts dialling. From then on every
   * new connection to the server must send its first request within `handshakeTimeoutMs`
   * (ordinary HTTP requests are released at that point); a TLS server's own handshake is
   * bounded by its `handshakeTimeout` option.
   */
  attach(server: http.Server | https.Server): void {
    if (this.#server !== undefined)
      throw new ConfigError('server', 'the grid is already attached to a server');
    this.#server = server;
    // A TLS server's sockets are watched once decrypted: that is the socket requests name.
    server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', this.#onConnection);
    server.on('request', this.#onRequest);
    server.on('upgrade', this.#onUpgrade);
    this.start();
  }

  /** Starts a server of its own (https when `tls.server` is given), then dials. */
  async listen(options: { port: number; host?: string }): Promise<AddressInfo> {
    const tlsServer = this.#options.tls?.server;
    const server =
      tlsServer === undefined
        ? http.createServer()
        : https.createServer({ handshakeTimeout: this.#limits.handshakeTimeoutMs, ...tlsServer });
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
    this.#started = true;
    for (const connection of this.#connections.values()) connection.start();
  }

  stats(): ManagerStats {
    const connections: Record<string, ConnectionStats> = {};
    for (const [host, connection] of this.#connections) connections[host] = connection.stats();
    return {
      nodeId: Buffer.from(this.nodeId).toString('hex'),
      connections,
      refused: Object.fromEntries(this.#refused),
      pendingHandshakes: this.#gate.pending,
      socketsAwaitingRequest: this.#gate.waiting,
    };
  }

  /** Closes every connection (in-flight calls fail, handlers abort) and the server if it is ours. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handshakes.abort(new HandshakeRefusedError('shutting-down', `${this.#local} is shutting down`));
    for (const connection of this.#connections.values()) connection.close();
    this.#gate.close();
    const server = this.#server;
    if (server === undefined) return;
    server.off('upgrade', this.#onUpgrade);
    server.off('request', this.#onRequest);
    server.off('connection', this.#onConnection);
    server.off('secureConnection', this.#onConnection);
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

  readonly #onConnection = (socket: Duplex): void => {
    this.#gate.accepted(socket);
  };

  readonly #onRequest = (request: http.IncomingMessage): void => {
    this.#gate.released(request.socket);
  };

  readonly #onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = pathOf(request.url);
    if (path === undefined) {
      // `//` or `/\`: not a path the URL parser takes; a listener must never throw on it.
      this.#gate.released(socket);
      rejectUpgrade(socket, 400, 'Bad Request');
      return;
    }
    if (path !== GRID_PATH) {
      this.#gate.released(socket);
      // Another upgrade handler on this server may own the path; if there is none, answer.
      if (this.#server?.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (this.#closed) {
      rejectUpgrade(socket, 503, 'Service Unavailable');
      return;
    }
    // From here the socket is a pending handshake, under the gate's caps and deadline.
    if (!this.#gate.upgrading(socket, request.socket.remoteAddress)) return;
    // ws does not call back for an upgrade it rejects (no key, wrong version, …); it
    // answers and closes, and the gate forgets the socket on close.
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      this.#gate.meter(socket);
      void this.#accept(ws, socket);
    });
  };

  async #accept(ws: WebSocket, socket: Duplex): Promise<void> {
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
          randomBytes,
        },
        (host) => this.#connections.has(host),
        this.#handshakes.signal,
      );
      this.#gate.authenticated(socket);
      if (this.#closed) {
        ws.terminate();
        return;
      }
      const connection = this.#connections.get(peer.host);
      // Removed while its handshake ran: nothing serves the socket any more.
      if (connection === undefined) {
        ws.terminate();
        return;
      }
      connection.attach(ws, peer.remoteNodeId, peer.early);
    } catch (error) {
      // acceptHandshake has destroyed the socket (after sending the refusal, if any). A
      // socket that closed by itself, or that the gate destroyed, is not a refusal.
      if (error instanceof HandshakeRefusedError) this.#count(error.reason);
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

/** Answers an upgrade with an HTTP error, then destroys the socket once that is written. */
function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => {
    socket.destroy();
  });
}

/** The logger option, checked at run time: a logger without `warn` or `error` would throw later. */
function resolveLogger(given: Logger | undefined): Logger {
  if (given === undefined) return console;
  const logger: unknown = given;
  if (
    typeof logger !== 'object' ||
    logger === null ||
    typeof (logger as Partial<Logger>).warn !== 'function' ||
    typeof (logger as Partial<Logger>).error !== 'function'
  ) {
    throw new ConfigError('grid.logger', 'must be an object with warn and error methods');
  }
  return given;
}

/** The auth option as given: a secret (checked here, naming the field) or a `GridAuth`. */
function resolveAuth(given: ManagerOptions['auth'] | undefined): GridAuth {
  // Checked at run time: plain JavaScript callers and config files get no type check.
  const auth: unknown = given;
  if (typeof auth !== 'object' || auth === null) {
    throw new ConfigError('grid.auth', 'must be { secret } or an object with authToken and verifyToken');
  }
  if ('secret' in auth) return hmacAuth(auth.secret as string | Uint8Array);
  const custom = auth as Partial<GridAuth>;
  if (typeof custom.authToken !== 'function' || typeof custom.verifyToken !== 'function') {
    throw new ConfigError('grid.auth', 'must be { secret } or an object with authToken and verifyToken');
  }
  return custom as GridAuth;
}

/** The path of a request target, or undefined when the URL parser refuses it. */
function pathOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://x').pathname;
  } catch {
    return undefined;
  }
}
