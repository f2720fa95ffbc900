// Bounds on sockets that have not proved who they are.
//
// A socket is watched from the moment its TCP connection is accepted. Until it sends its
// first HTTP request it is "waiting"; once it upgrades on the grid path it is "pending"
// until its handshake succeeds. Both share one deadline, counted from the accept, so a
// socket that dribbles its upgrade request, or upgrades and stays silent, is destroyed
// when the handshake timeout runs out. A socket whose first request is ordinary HTTP is
// released at once: the gate never holds a server's other traffic.
//
// Pending handshakes are capped in all and per source address. When a cap is reached, the
// newcomer is let in and the oldest pending socket of the busiest source is destroyed.
// A legitimate handshake completes in one round trip, so the sockets that are old are the
// ones that stay silent: holding slots then costs an attacker a constant stream of new
// connections instead of a few idle ones, and a source with few pending sockets (a peer
// that restarts) always gets a slot. Each pending socket may also send only a few bytes
// before it proves itself, so a refused or silent socket holds no memory to speak of.

import type { Duplex } from 'node:stream';

import type { Clock, Timer } from '../internal/clock.ts';

/** Why the gate destroyed a socket; counted in the Manager's stats. */
export type GateRefusal = 'too-many-handshakes' | 'handshake-timeout' | 'handshake-too-large';

export interface HandshakeGateOptions {
  readonly clock: Clock;
  /** From TCP accept to an authenticated handshake. */
  readonly timeoutMs: number;
  readonly maxPending: number;
  readonly maxPendingPerSource: number;
  /** Accepted sockets that have not sent their first request yet. */
  readonly maxWaiting: number;
  /** Bytes a pending socket may send before its handshake succeeds. */
  readonly maxHandshakeBytes: number;
  readonly onRefuse: (reason: GateRefusal) => void;
}

interface Watched {
  readonly socket: Duplex;
  readonly source: string;
  readonly deadline: number;
  stage: 'waiting' | 'pending';
  bytes: number;
  onData: ((chunk: Buffer) => void) | undefined;
  readonly onClose: () => void;
}

export class HandshakeGate {
  readonly #options: HandshakeGateOptions;
  /** Every watched socket, in accept order, which is also deadline order. */
  readonly #watched = new Map<Duplex, Watched>();
  /** Pending sockets per source, oldest first. */
  readonly #pendingBySource = new Map<string, Set<Watched>>();
  #pending = 0;
  #waiting = 0;
  #timer: Timer | undefined;
  #closed = false;

  constructor(options: HandshakeGateOptions) {
    this.#options = options;
  }

  /** Handshakes under way (upgraded, not yet authenticated). */
  get pending(): number {
    return this.#pending;
  }

  /** Accepted sockets that have not sent a request yet. */
  get waiting(): number {
    return this.#waiting;
  }

  /** A new TCP (or TLS) connection: its deadline starts now. */
  accepted(socket: Duplex): void {
    if (this.#closed || this.#watched.has(socket)) return;
    if (this.#waiting >= this.#options.maxWaiting) {
      const oldest = this.#oldestWaiting();
      if (oldest !== undefined) this.#destroy(oldest, 'too-many-handshakes');
    }
    this.#watch(socket, 'waiting');
  }

  /** The socket's first request is not a grid upgrade: it is the server's, not ours. */
  released(socket: Duplex): void {
    const watched = this.#watched.get(socket);
    if (watched?.stage === 'waiting') this.#forget(watched);
  }

  /**
   * The socket upgrades on the grid path. Returns false if it was destroyed instead (the
   * gate is closed, or its deadline has passed).
   */
  upgrading(socket: Duplex, remoteAddress: string | undefined): boolean {
    if (this.#closed) {
      socket.destroy();
      return false;
    }
    const watched = this.#watched.get(socket) ?? this.#watch(socket, 'waiting', remoteAddress);
    if (watched.stage === 'pending') return true;
    if (this.#options.clock.now() >= watched.deadline) {
      this.#destroy(watched, 'handshake-timeout');
      return false;
    }
    const { maxPending, maxPendingPerSource } = this.#options;
    const own = this.#pendingBySource.get(watched.source);
    if (own !== undefined && own.size >= maxPendingPerSource) this.#evictOldest(own);
    if (this.#pending >= maxPending) this.#evictOldest(this.#busiestSource());
    this.#waiting -= 1;
    watched.stage = 'pending';
    this.#pending += 1;
    let set = this.#pendingBySource.get(watched.source);
    if (set === undefined) {
      set = new Set();
      this.#pendingBySource.set(watched.source, set);
    }
    set.add(watched);
    return true;
  }

  /**
   * Starts counting what a pending socket sends. Called once its WebSocket reads the
   * socket: a 'data' listener added earlier would start the flow before ws listens.
   */
  meter(socket: Duplex): void {
    const watched = this.#watched.get(socket);
    if (watched?.stage !== 'pending' || watched.onData !== undefined) return;
    watched.onData = (chunk: Buffer) => {
      watched.bytes += chunk.length;
      if (watched.bytes > this.#options.maxHandshakeBytes) this.#destroy(watched, 'handshake-too-large');
    };
    socket.on('data', watched.onData);
  }

  /** The handshake succeeded: the socket belongs to its connection now. */
  authenticated(socket: Duplex): void {
    const watched = this.#watched.get(socket);
    if (watched !== undefined) this.#forget(watched);
  }

  /**
   * Destroys every pending handshake, and from now on every grid upgrade. Sockets still
   * waiting for their first request are left to the server, which may serve other things.
   */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const watched of [...this.#watched.values()]) {
      this.#forget(watched);
      if (watched.stage === 'pending') watched.socket.destroy();
    }
  }

  #watch(socket: Duplex, stage: 'waiting', remoteAddress?: string): Watched {
    const watched: Watched = {
      socket,
      source: sourceOf(remoteAddress ?? (socket as { remoteAddress?: string }).remoteAddress),
      deadline: this.#options.clock.now() + this.#options.timeoutMs,
      stage,
      bytes: 0,
      onData: undefined,
      onClose: () => {
        const current = this.#watched.get(socket);
        if (current !== undefined) this.#forget(current);
      },
    };
    this.#watched.set(socket, watched);
    this.#waiting += 1;
    socket.once('close', watched.onClose);
    if (this.#timer === undefined) this.#arm();
    return watched;
  }

  #forget(watched: Watched): void {
    if (!this.#watched.delete(watched.socket)) return;
    // No timer outlives the sockets it watches for.
    if (this.#watched.size === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
    watched.socket.off('close', watched.onClose);
    if (watched.onData !== undefined) watched.socket.off('data', watched.onData);
    if (watched.stage === 'waiting') {
      this.#waiting -= 1;
      return;
    }
    this.#pending -= 1;
    const set = this.#pendingBySource.get(watched.source);
    set?.delete(watched);
    if (set?.size === 0) this.#pendingBySource.delete(watched.source);
  }

  #destroy(watched: Watched, reason: GateRefusal): void {
    this.#forget(watched);
    this.#options.onRefuse(reason);
    watched.socket.destroy();
  }

  #evictOldest(set: Set<Watched> | undefined): void {
    const oldest = set?.values().next().value;
    if (oldest !== undefined) this.#destroy(oldest, 'too-many-handshakes');
  }

  #busiestSource(): Set<Watched> | undefined {
    let busiest: Set<Watched> | undefined;
    for (const set of this.#pendingBySource.values())
      if (busiest === undefined || set.size > busiest.size) busiest = set;
    return busiest;
  }

  #oldestWaiting(): Watched | undefined {
    for (const watched of this.#watched.values()) if (watched.stage === 'waiting') return watched;
    return undefined;
  }

  /** One timer, set for the oldest deadline; each firing destroys what has expired. */
  #arm(): void {
    const head = this.#watched.values().next().value;
    if (head === undefined || this.#closed) {
      this.#timer = undefined;
      return;
    }
    this.#timer = this.#options.clock.setTimeout(
      () => {
        this.#expire();
      },
      Math.max(0, head.deadline - this.#options.clock.now()),
    );
  }

  #expire(): void {
    const now = this.#options.clock.now();
    for (const watched of this.#watched.values()) {
      if (watched.deadline > now) break;
      this.#destroy(watched, 'handshake-timeout');
    }
    this.#arm();
  }
}

/**
 * The unit a per-source limit counts: an IPv4 address, or an IPv6 /64 (what one host or
 * one site is usually given; counting single IPv6 addresses would let one host take
 * every slot).
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0] as string;
  const [head = '', tail] = bare.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros =
    tail === undefined
      ? []
      : new Array<string>(Math.max(0, 8 - headParts.length - tailParts.length)).fill('0');
  const groups = [...headParts, ...zeros, ...tailParts].slice(0, 4);
  return `${groups.map((group) => Number.parseInt(group, 16).toString(16)).join(':')}::/64`;
}
