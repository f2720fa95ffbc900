// The function under test (workload.ts says what it does), written once with our SDK and once
// with the official JavaScript SDK (apache-flink-statefun, CommonJS), each as its own docs show.
//
// The official SDK's `StateFun.handle(req, res)` reads the body and passes the bytes to
// `handle(bytes, fns)` in dist/handler.js, which does all the protocol work; the package does
// not re-export it, but it is exported from that module and is the SDK's only path that skips
// HTTP. `officialInvoker` calls it with the index `bind` would build (`FunctionSpec.fromOpts`
// of the same options); `officialViaPublicHandle` runs the public `handle(req, res)` on a
// minimal fake request and response, and the suite's check compares the two.

import {
  kafkaEgressMessage as officialKafkaEgressMessage,
  messageBuilder as officialMessageBuilder,
  StateFun,
} from 'apache-flink-statefun';
import { FunctionSpec, type FunctionOpts } from 'apache-flink-statefun/dist/core.js';
import { handle as officialHandle } from 'apache-flink-statefun/dist/handler.js';

import type { StatefunModule } from './load-statefun.ts';
import { countState, counterTypeName, egressTopic, egressTypeName, sinkTypeName } from './workload.ts';

export type OurFunctions = InstanceType<StatefunModule['StatefulFunctions']>;

/** Ours: `bench/counter` registered on a StatefulFunctions of the given (compiled) module. */
export function ourFunctions(sdk: StatefunModule): OurFunctions {
  const count = sdk.valueSpec({ name: countState, type: sdk.intType });
  // Parsed once, as a tuned user would (both builders take the string too).
  const sink = sdk.TypeName.parse(sinkTypeName);
  const egress = sdk.TypeName.parse(egressTypeName);
  return new sdk.StatefulFunctions().withSpec({
    typeName: counterTypeName,
    specs: [count],
    fn(context, message) {
      const value = (context.storage.get(count) ?? 0) + message.asInt();
      context.storage.set(count, value);
      context.send(sdk.messageBuilder({ target: sdk.Address.of(sink, context.self.id), value }));
      context.sendEgress(
        sdk.kafkaEgressMessage({ typeName: egress, topic: egressTopic, key: context.self.id, value }),
      );
    },
  });
}

/** The official SDK's storage: one property per declared value; null when there is none. */
interface CounterStorage {
  count: number | null;
}

/** The same function for the official SDK, as options for `StateFun.bind`. */
export const officialOptions: FunctionOpts = {
  typename: counterTypeName,
  specs: [{ name: countState, type: StateFun.intType() }],
  fn(context, message) {
    const storage = context.storage as CounterStorage;
    const value = (storage.count ?? 0) + (message.asInt() ?? 0);
    storage.count = value;
    context.send(officialMessageBuilder({ typename: sinkTypeName, id: context.self.id, value }));
    context.send(
      officialKafkaEgressMessage({
        typename: egressTypeName,
        topic: egressTopic,
        key: context.self.id,
        value,
      }),
    );
  },
};

export function officialStateFun(): StateFun {
  const statefun = new StateFun();
  statefun.bind(officialOptions);
  return statefun;
}

export type Invoke = (body: Buffer) => Promise<Uint8Array>;

/** The official SDK's protocol handler without HTTP, on the function index `bind` builds. */
export function officialInvoker(): Invoke {
  const fns = { [counterTypeName]: FunctionSpec.fromOpts(officialOptions) };
  return (body) => officialHandle(body, fns);
}

/** The official SDK's public `handle(req, res)`, fed `body` as its only chunk; the reply's body. */
export async function officialViaPublicHandle(statefun: StateFun, body: Buffer): Promise<Buffer> {
  let status = 0;
  let reply: Buffer | undefined;
  // `handle` only iterates the request and calls writeHead and end on the response.
  const request = [body];
  const response = {
    writeHead(code: number): void {
      status = code;
    },
    end(bytes?: Uint8Array): void {
      reply = Buffer.from(bytes ?? []);
    },
  };
  await statefun.handle(request, response);
  if (status !== 200 || reply === undefined) throw new Error(`official handle: status ${status}`);
  return reply;
}
