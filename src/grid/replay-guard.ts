// Refuses a replayed handshake. A Connect's token is valid for the whole clock-skew
// window, so someone who captured one (on a link without TLS) could send it again within
// that window. Each dialling process (node id) must present strictly newer times; a new
// process of the same host starts its own sequence, so a restart is never locked out,
// even if its wall clock is behind its predecessor's.

export class ReplayGuard {
  readonly #windowMs: number;
  readonly #maxProcessesPerHost: number;
  /** host → node id (hex) → newest accepted Connect time, in insertion (recency) order. */
  readonly #seen = new Map<string, Map<string, number>>();

  constructor(windowMs: number, maxProcessesPerHost = 16) {
    this.#windowMs = windowMs;
    this.#maxProcessesPerHost = maxProcessesPerHost;
  }

  /**
   * True, and remembered, if `timeMs` is newer than anything accepted from this process of
   * `host`. Only hosts in the cluster reach here, so the map has one entry per peer.
   */
  claim(host: string, nodeId: Uint8Array, timeMs: number, nowMs: number): boolean {
    let processes = this.#seen.get(host);
    if (processes === undefined) {
      processes = new Map();
      this.#seen.set(host, processes);
    }
    // A process last heard from before the window can only present expired tokens.
    for (const [id, last] of processes) if (last < nowMs - this.#windowMs) processes.delete(id);
    const id = Buffer.from(nodeId).toString('hex');
    const last = processes.get(id);
    if (last !== undefined && timeMs <= last) return false;
    processes.delete(id);
    processes.set(id, timeMs);
    if (processes.size > this.#maxProcessesPerHost) {
      const oldest = processes.keys().next().value;
      if (oldest !== undefined) processes.delete(oldest);
    }
    return true;
  }
}
