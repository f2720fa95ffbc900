// Tells owners about inbox messages this node stored for them: a batch's messages to addresses
// another node runs are committed to the shared store by this node, and their owner learns of
// them here (forward-codec.ts, handler 29). Wakes are grouped per owner, one request in flight
// each, an address named once per request however many messages it got. They are a shortcut,
// not a guarantee: a wake that cannot be queued (past `maxPendingPerPeer` addresses) or sent is
// counted and dropped, and the owner finds the messages at its next scan of its partitions.

import { addressKey } from '../address-key.ts';
import type { StoredAddress } from '../store/state-store.ts';
import { encodeWake, MAX_WAKE_ADDRESSES, WAKE_HANDLER } from './forward-codec.ts';
import type { GridRequest } from './forwarding-input.ts';

export interface WakeSenderOptions {
  readonly request: GridRequest;
  /** Addresses waiting to be sent to one owner; default 10 000. */
  readonly maxPendingPerPeer?: number | undefined;
  /** Owners with wakes waiting; default 1 024. */
  readonly maxPeers?: number | undefined;
}

export interface WakeStats {
  readonly sent: number;
  /** Wakes dropped: a queue was full, or the request failed. The owner's scan finds them. */
  readonly dropped: number;
}

interface PeerQueue {
  pending: Map<string, StoredAddress>;
  sending: boolean;
}

export class WakeSender {
  readonly #options: WakeSenderOptions;
  readonly #peers = new Map<string, PeerQueue>();
  #sent = 0;
  #dropped = 0;
  #closed = false;

  constructor(options: WakeSenderOptions) {
    this.#options = options;
  }

  wake(owner: string, address: StoredAddress): void {
    if (this.#closed) return;
    let peer = this.#peers.get(owner);
    if (peer === undefined) {
      if (this.#peers.size >= (this.#options.maxPeers ?? 1_024)) {
        this.#dropped += 1;
        return;
      }
      peer = { pending: new Map(), sending: false };
      this.#peers.set(owner, peer);
    }
    const key = addressKey(address);
    if (!peer.pending.has(key) && peer.pending.size >= (this.#options.maxPendingPerPeer ?? 10_000)) {
      this.#dropped += 1;
      return;
    }
    peer.pending.set(key, address);
    if (!peer.sending) void this.#send(owner, peer);
  }

  stats(): WakeStats {
    return { sent: this.#sent, dropped: this.#dropped };
  }

  close(): void {
    this.#closed = true;
    this.#peers.clear();
  }

  async #send(owner: string, peer: PeerQueue): Promise<void> {
    peer.sending = true;
    // Wakes made in the same turn (one commit's messages) go together.
    await Promise.resolve();
    while (peer.pending.size > 0 && !this.#closed) {
      // The oldest, taken without copying the whole queue.
      const addresses: StoredAddress[] = [];
      for (const [key, address] of peer.pending) {
        if (addresses.length === MAX_WAKE_ADDRESSES) break;
        addresses.push(address);
        peer.pending.delete(key);
      }
      try {
        await this.#options.request(owner, WAKE_HANDLER, encodeWake(addresses));
        this.#sent += addresses.length;
      } catch {
        this.#dropped += addresses.length;
      }
    }
    peer.sending = false;
    if (peer.pending.size === 0) this.#peers.delete(owner);
  }
}
