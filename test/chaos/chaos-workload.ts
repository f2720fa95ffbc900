// What the crash test and the runtime node it kills agree on: the node's configuration, the
// function's types, the egress record, and a seeded random source. Not a test file itself.
//
// The workload: `chaos/counter` at ids k0…k{keys-1}. A `chaos/bump` message {msg} raises the
// address's `count`, writes the egress record {kind: 'bump', key, n: count, msg} and sends the
// address a `chaos/fired` message {msg} after 50 to 200 ms; a fired message raises `delayed` and
// writes {kind: 'fired', key, n: delayed, msg}. So each acknowledged message leaves one count,
// one delayed, and two records, each naming the message.

import {
  egressMessage,
  intType,
  jsonType,
  messageBuilder,
  StatefulFunctions,
  valueSpec,
} from '../../src/statefun/index.ts';

export const COUNTER_TYPE = 'chaos/counter';
export const EGRESS_ID = 'chaos/out';

export interface MessageValue {
  readonly msg: number;
}

export interface EgressValue {
  readonly kind: 'bump' | 'fired';
  readonly key: string;
  readonly n: number;
  readonly msg: number;
}

export const bumpType = jsonType<MessageValue>('chaos/bump');
export const firedType = jsonType<MessageValue>('chaos/fired');
export const egressType = jsonType<EgressValue>('chaos/record');
export const countSpec = valueSpec({ name: 'count', type: intType });
export const delayedSpec = valueSpec({ name: 'delayed', type: intType });

/** The node's one argument, as JSON. */
export interface ChaosNodeConfig {
  readonly store: { readonly kind: 'lmdb'; readonly dataDir: string } | PostgresStoreConfig;
  readonly natsUrl: string;
  /** The JetStream subject of every egress record; the test's stream captures it. */
  readonly subject: string;
  readonly msgIdPrefix: string;
  /** Keys k0…k{keys-1}, which `/chaos/state` reports. */
  readonly keys: number;
}

export interface PostgresStoreConfig {
  readonly kind: 'postgres';
  readonly url: string;
  readonly schema: string;
}

/** What the node prints on stdout, one JSON line, once it serves. */
export interface ReadyLine {
  readonly port: number;
}

/** `GET /chaos/stats`: the store's own counts (exact, unlike the runtime's refreshed ones). */
export interface NodeStats {
  readonly inboxMessages: number;
  readonly delayedMessages: number;
  readonly outboxRecords: number;
  readonly runningBatches: number;
  readonly batchFailures: number;
}

/** `GET /chaos/state`: each key's values (0 when absent). */
export type NodeState = Record<string, { readonly count: number; readonly delayed: number }>;

export const STATS_PATH = '/chaos/stats';
export const STATE_PATH = '/chaos/state';

export function keyName(index: number): string {
  return `k${index}`;
}

/** The counter's address for `key`, as the store keys it. */
export function counterAddress(key: string): readonly [string, string, string] {
  return ['chaos', 'counter', key];
}

/** The delay of message `msg`'s fired message: fixed per message, so a rerun schedules it alike. */
export function delayMsFor(msg: number): number {
  return 50 + ((msg * 37) % 151);
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The workload's function, `chaos/counter`. */
export function counterFunctions(): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: COUNTER_TYPE,
    specs: [countSpec, delayedSpec],
    fn: (context, message) => {
      const key = context.self.id;
      const record = (kind: 'bump' | 'fired', n: number, msg: number): void => {
        context.sendEgress(
          egressMessage({ typeName: EGRESS_ID, value: { kind, key, n, msg }, valueType: egressType }),
        );
      };
      if (message.is(bumpType)) {
        const { msg } = message.as(bumpType);
        const n = (context.storage.get(countSpec) ?? 0) + 1;
        context.storage.set(countSpec, n);
        record('bump', n, msg);
        context.sendAfter(
          delayMsFor(msg),
          messageBuilder({ target: context.self, value: { msg }, valueType: firedType }),
        );
      } else if (message.is(firedType)) {
        const { msg } = message.as(firedType);
        const n = (context.storage.get(delayedSpec) ?? 0) + 1;
        context.storage.set(delayedSpec, n);
        record('fired', n, msg);
      } else {
        throw new Error(`unexpected message type ${message.valueTypeName}`);
      }
    },
  });
}
