// Statefun suite: our SDK's request-reply endpoint against the official JavaScript SDK
// (apache-flink-statefun) and against the floor of node:http itself, on one function: per
// invocation, read an int state, increment it, write it, send one message and emit one Kafka
// egress record (statefun/workload.ts). Requests carry the state, so no incomplete-context
// round trip; a request is one batch of 1 or 50 invocations.
//
// Cases (docs/statefun.md, Performance, explains them with the results):
// - batch-N: requests/s of each server's node:http handler over loopback, keep-alive, with
//   `concurrency` requests in flight. This process is the client; the servers run side by side
//   in one forked process (statefun/server.ts). One op is one request (of N invocations); a
//   harness call completes 2 × `concurrency`. Peers: apache-flink-statefun (its `handler()`)
//   and http-floor (a bare listener that reads the body and answers 64 fixed bytes).
// - invoke-batch-N: requests/s in this process without HTTP: our `invoke(bytes)` against the
//   official SDK's `handle(bytes, fns)` (dist/handler.js), which its HTTP handler calls once it
//   has read the body (statefun/functions.ts).
// - …-10k-ids: the same, but each request is for another of 10 000 ids, in turn
//   (statefun/workload.ts, RequestCycle). Every other case sends one byte-identical request,
//   which our decoder's table of recent strings always finds; the official SDK has no such
//   table, so those rows flatter ours. Both are reported.

import assert from 'node:assert/strict';

import { equals, fromBinary } from '@bufbuild/protobuf';

import { FromFunctionSchema } from '../src/gen/statefun/request-reply_pb.ts';
import { defineSuite, type BenchCase } from './harness.ts';
import { runConcurrently } from './grid/concurrency.ts';
import { SharedStatefunServers, type StatefunServers } from './statefun/fixture.ts';
import {
  officialInvoker,
  officialStateFun,
  officialViaPublicHandle,
  ourFunctions,
  type Invoke,
} from './statefun/functions.ts';
import type { PostClient } from './statefun/http-client.ts';
import { loadStatefun } from './statefun/load-statefun.ts';
import {
  assertCounterReply,
  counterRequest,
  floorReply,
  manyIdsTarget,
  RequestCycle,
} from './statefun/workload.ts';

/** Requests in flight per HTTP peer, each on its own keep-alive connection. */
const concurrency = 8;
// Requests per caller in one harness call: each caller issues its second as its first returns.
const requestsPerCaller = 2;
const perCall = concurrency * requestsPerCaller;
const batchSizes = [1, 50] as const;
/** Ids the many-ids cases cycle through. */
const manyIds = 10_000;
/** Ids whose replies the many-ids checks compare between ours and the official SDK. */
const checkedIds = [0, 1, 4_999, manyIds - 1];

/** The workloads: one request over and over, or a request per id of `manyIds`, in turn. */
interface Workload {
  readonly suffix: string;
  readonly next: () => Buffer;
  readonly checked: readonly { readonly id: string; readonly body: Buffer }[];
}

function makeWorkloads(invocations: number): Workload[] {
  const one = counterRequest(invocations);
  const cycle = new RequestCycle(invocations, manyIds);
  return [
    { suffix: '', next: () => one, checked: [{ id: 'user-1', body: one }] },
    {
      suffix: `-${manyIds / 1000}k-ids`,
      next: () => cycle.next(),
      checked: checkedIds.map((i) => ({ id: manyIdsTarget(i), body: cycle.bodies[i] as Buffer })),
    },
  ];
}

// Built once per batch size and shared by the HTTP and in-process cases (10 000 requests of 50
// invocations are about 19 MB).
const workloadsBySize = new Map(batchSizes.map((invocations) => [invocations, makeWorkloads(invocations)]));

function workloads(invocations: (typeof batchSizes)[number]): readonly Workload[] {
  const built = workloadsBySize.get(invocations);
  if (built === undefined) throw new Error(`no workloads for batches of ${invocations}`);
  return built;
}

const shared = new SharedStatefunServers(
  concurrency,
  batchSizes.flatMap((invocations) => [counterRequest(invocations), counterRequest(invocations, 'user-0')]),
);
let running: StatefunServers | undefined;

function servers(): StatefunServers {
  if (running === undefined) throw new Error('the statefun servers are not running: setup did not run');
  return running;
}

// Full GCs before a sample slow the next milliseconds of this async, allocation-heavy work
// (harness.ts), and not equally for both sides; every case collects the young generation only.
const gc = 'minor';

const httpLifecycle: Pick<BenchCase, 'gc' | 'setup' | 'teardown'> = {
  gc,
  setup: async (): Promise<void> => {
    running = await shared.acquire();
  },
  teardown: (): undefined => {
    running = undefined;
    shared.release();
  },
};

/** `concurrency` requests at once, so a reply sent on the wrong connection shows. */
function postConcurrently(client: PostClient, body: Buffer): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: concurrency }, () => client.post(body)));
}

const cases: BenchCase[] = [];

// ---------------------------------------------------------------------------------------
// Over HTTP: each server's handler, loopback, keep-alive, 8 in flight

interface HttpPeer {
  readonly name: string;
  readonly client: () => PostClient;
  readonly check: (replies: readonly Buffer[], ours: Buffer, invocations: number, id: string) => void;
}

const httpPeers: readonly HttpPeer[] = [
  {
    name: 'apache-flink-statefun',
    client: () => servers().official,
    check: (replies, ours, invocations, id) => {
      const expected = fromBinary(FromFunctionSchema, ours);
      replies.forEach((reply, i) => {
        const decoded = assertCounterReply(reply, invocations, `apache-flink-statefun, reply ${i}`, id);
        assert.ok(equals(FromFunctionSchema, decoded, expected), 'apache-flink-statefun and ours differ');
      });
    },
  },
  {
    name: 'http-floor',
    client: () => servers().floor,
    check: (replies) => {
      replies.forEach((reply, i) => {
        assert.equal(Buffer.compare(reply, floorReply), 0, `http-floor: reply ${i}`);
      });
    },
  },
];

for (const invocations of batchSizes) {
  for (const workload of workloads(invocations)) {
    for (const peer of httpPeers) {
      cases.push({
        name: `batch-${invocations}${workload.suffix}`,
        metric: 'ops_per_s',
        opsPerCall: perCall,
        ours: {
          label: 'weft/statefun handler()',
          fn: () => runConcurrently(perCall, concurrency, () => servers().ours.post(workload.next())),
        },
        peer: {
          name: peer.name,
          fn: () => runConcurrently(perCall, concurrency, () => peer.client().post(workload.next())),
        },
        ...httpLifecycle,
        check: async () => {
          for (const { id, body } of workload.checked) {
            const ours = await postConcurrently(servers().ours, body);
            ours.forEach((reply, i) =>
              assertCounterReply(reply, invocations, `weft/statefun, reply ${i}`, id),
            );
            const theirs = await postConcurrently(peer.client(), body);
            peer.check(theirs, ours[0] ?? Buffer.alloc(0), invocations, id);
          }
        },
      });
    }
  }
}

// ---------------------------------------------------------------------------------------
// In this process, without HTTP

interface Local {
  readonly ours: Invoke;
  readonly official: Invoke;
}

let local: Local | undefined;

function locals(): Local {
  if (local === undefined) throw new Error('the in-process functions are not set up: setup did not run');
  return local;
}

for (const invocations of batchSizes) {
  for (const workload of workloads(invocations)) {
    cases.push({
      name: `invoke-batch-${invocations}${workload.suffix}`,
      metric: 'ops_per_s',
      ours: { label: 'weft/statefun invoke()', fn: () => locals().ours(workload.next()) },
      peer: { name: 'apache-flink-statefun', fn: () => locals().official(workload.next()) },
      gc,
      setup: async () => {
        const functions = ourFunctions(await loadStatefun());
        local = { ours: (bytes) => functions.invoke(bytes), official: officialInvoker() };
      },
      check: async () => {
        for (const { id, body } of workload.checked) {
          const ours = await locals().ours(body);
          const official = await locals().official(body);
          const expected = assertCounterReply(ours, invocations, 'weft/statefun', id);
          const decoded = assertCounterReply(official, invocations, 'apache-flink-statefun', id);
          assert.ok(equals(FromFunctionSchema, decoded, expected), 'apache-flink-statefun and ours differ');
          // The internal entry point answers exactly as the SDK's public handle(req, res) does.
          const viaPublic = await officialViaPublicHandle(officialStateFun(), body);
          assert.equal(
            Buffer.compare(viaPublic, official),
            0,
            'official handle(bytes) and handle(req, res) differ',
          );
        }
      },
      teardown: () => {
        local = undefined;
        return undefined;
      },
    });
  }
}

export default defineSuite({
  cases,
  notes: () => [
    'function: per invocation, read + increment + write one int state, send one message, emit one Kafka record',
    `batch-N: client here, servers in one forked process; loopback, keep-alive, ${concurrency} requests in flight`,
    `batch-N: one op = one request of N invocations; a call completes ${perCall} requests`,
    'invoke-batch-N: in process, no HTTP; one op = one request of N invocations',
    `…-${manyIds / 1000}k-ids: each request for the next of ${manyIds} ids in turn; otherwise one id`,
  ],
});
