// What every hub case carries: 1 KiB packets whose first four bytes number them, so a receiver
// can tell a lost, repeated or reordered packet; and the two stories the hub serves.

export const packetBytes = 1024;
/** Packets one timed call carries end to end (`opsPerCall`). */
export const packetsPerCall = 512;
/** How long a call may wait for its packets before the case fails instead of hanging. */
export const deliveryTimeoutMs = 15_000;

export const namespace = 'bench';
export const producerStep = 'produce';
export const consumerStep = 'consume';

/** A payload numbered `index`, the rest fixed bytes. */
export function payloadOf(index: number): Uint8Array {
  const bytes = new Uint8Array(packetBytes);
  bytes.fill(0x5a, 4);
  new DataView(bytes.buffer).setUint32(0, index);
  return bytes;
}

/** The number a payload carries; throws if it is not one of ours. */
export function indexOf(bytes: Uint8Array): number {
  if (bytes.byteLength !== packetBytes)
    throw new Error(`a packet of ${bytes.byteLength} B, expected ${packetBytes}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

export type DeliveryMode = 'at_least_once' | 'none';

export function storyName(mode: DeliveryMode): string {
  return mode === 'at_least_once' ? 'bench-alo' : 'bench-amo';
}

/** A two-step story (produce → consume) as JSON, with `mode` delivery to the consumer. */
export function storyJson(mode: DeliveryMode): string {
  return JSON.stringify({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: storyName(mode), namespace },
    spec: {
      defaults: {
        delivery: mode === 'at_least_once' ? { mode, replay: 'unacked' } : { mode, replay: 'none' },
      },
      steps: [{ id: producerStep }, { id: consumerStep, needs: [producerStep] }],
    },
  });
}

/** Resolves when `done()` holds, checked on every `poke`; rejects after `timeoutMs`. */
export class Countdown {
  #waiter: { target: number; resolve(): void } | undefined;
  count = 0;

  add(): void {
    this.count++;
    const waiter = this.#waiter;
    if (waiter !== undefined && this.count >= waiter.target) {
      this.#waiter = undefined;
      waiter.resolve();
    }
  }

  /** Waits until the count reaches `target`. */
  reach(target: number, what: string): Promise<void> {
    if (this.count >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(
          new Error(`${what}: ${this.count} of ${target} packets arrived within ${deliveryTimeoutMs} ms`),
        );
      }, deliveryTimeoutMs);
      this.#waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }
}
