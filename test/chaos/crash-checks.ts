// What the crash tests check once the load is over: the egress records in the JetStream stream,
// and what contradicts "each acknowledged message applied once" (chaos-workload.ts describes the
// workload). Shared by the single-node crash test and the cluster's. Not a test file itself.

import type { JetStreamManager, NatsConnection } from 'nats';

import { keyName, type EgressValue, type NodeState } from './chaos-workload.ts';

/** Every record in the stream, in stream order. */
export async function readStream(
  manager: JetStreamManager,
  nats: NatsConnection,
  name: string,
): Promise<EgressValue[]> {
  const total = (await manager.streams.info(name)).state.messages;
  const consumer = await nats.jetstream().consumers.get(name);
  const records: EgressValue[] = [];
  while (records.length < total) {
    const before = records.length;
    const batch = await consumer.fetch({ max_messages: Math.min(5_000, total - before), expires: 2_000 });
    for await (const message of batch) records.push(message.json<EgressValue>());
    if (records.length === before)
      throw new Error(`read ${before} of the stream's ${total} records, then nothing`);
  }
  return records;
}

/**
 * What contradicts "each acknowledged message applied once": per key, `count` and `delayed` equal
 * the messages acknowledged for it, and its bump and fired records number 1…count once each and
 * name exactly those messages, once each.
 */
export function findProblems(
  keys: number,
  acknowledged: ReadonlyMap<number, string>,
  state: NodeState,
  records: readonly EgressValue[],
): string[] {
  const problems: string[] = [];
  const expected = new Map<string, Set<number>>();
  for (const [msg, key] of acknowledged) {
    let messages = expected.get(key);
    if (messages === undefined) expected.set(key, (messages = new Set()));
    messages.add(msg);
  }
  const recordsByKey = new Map<string, EgressValue[]>();
  for (const record of records) {
    let list = recordsByKey.get(record.key);
    if (list === undefined) recordsByKey.set(record.key, (list = []));
    list.push(record);
  }
  if (records.length !== 2 * acknowledged.size) {
    problems.push(`${records.length} records in the stream, expected ${2 * acknowledged.size}`);
  }
  for (let i = 0; i < keys; i++) {
    const key = keyName(i);
    const messages = expected.get(key) ?? new Set<number>();
    const values = state[key] ?? { count: 0, delayed: 0 };
    if (values.count !== messages.size)
      problems.push(`${key}: count ${values.count}, acknowledged ${messages.size}`);
    if (values.delayed !== messages.size) {
      problems.push(`${key}: delayed ${values.delayed}, acknowledged ${messages.size}`);
    }
    for (const kind of ['bump', 'fired'] as const) {
      const ofKind = (recordsByKey.get(key) ?? []).filter((record) => record.kind === kind);
      const ns = ofKind.map((record) => record.n).sort((a, b) => a - b);
      const wrongNs = ns.filter((n, index) => n !== index + 1);
      if (ns.length !== messages.size || wrongNs.length > 0) {
        problems.push(`${key}: ${kind} records n = ${describeList(ns)}, expected 1…${messages.size}`);
      }
      const seen = new Set<number>();
      for (const { msg } of ofKind) {
        if (seen.has(msg)) problems.push(`${key}: message ${msg} has two ${kind} records`);
        else if (!messages.has(msg))
          problems.push(`${key}: a ${kind} record for message ${msg}, never acknowledged`);
        seen.add(msg);
      }
      const missing = [...messages].filter((msg) => !seen.has(msg));
      if (missing.length > 0)
        problems.push(`${key}: no ${kind} record for messages ${describeList(missing)}`);
    }
  }
  return problems.length > 40 ? [...problems.slice(0, 40), `… and ${problems.length - 40} more`] : problems;
}

function describeList(values: readonly number[]): string {
  return values.length > 12 ? `${values.slice(0, 12).join(',')},… (${values.length})` : values.join(',');
}
