import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';

import { hrwTopK, rankOf } from '../../src/coord/hrw.ts';
import { InFlightMap } from '../../src/coord/in-flight.ts';
import { staticMembership, type Membership } from '../../src/coord/membership.ts';
import { NegativeCache } from '../../src/coord/negative-cache.ts';
import {
  COORD_INTENT_HANDLER,
  COORD_PLEASE_FETCH_HANDLER,
  CoordClient,
  CoordServer,
  MalformedCoordRequestError,
  type CoordNode,
  type FetchOrder,
  type IntentAnswer,
  type PleaseFetchRequest,
} from '../../src/coord/rpc/index.ts';
import { msgpackCodec, RemoteError } from '../../src/grid/index.ts';
import { DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const WALL_START_MS = 1_700_000_000_000;
const MiB = 1024 * 1024;
const wire = msgpackCodec<unknown>();

function digest(seed: string | number): string {
  return `sha256:${createHash('sha256').update(String(seed)).digest('hex')}`;
}

const K = digest('k');

/** One node's coord state, with a store and a fetcher a test can steer. */
class TestNode implements CoordNode {
  readonly membership: Membership;
  readonly inFlight: InFlightMap;
  readonly negativeCache: NegativeCache;
  readonly cached = new Set<string>();
  readonly fetches: FetchOrder[] = [];
  /** 'answer' from `cached`; 'hang' until `release()`; 'fail' rejects. */
  store: 'answer' | 'hang' | 'fail' = 'answer';
  readonly storeSignals: AbortSignal[] = [];
  declineFetches = false;
  readonly #hanging: (() => void)[] = [];
  readonly fetcher = {
    startFetch: (order: FetchOrder): boolean => {
      if (this.declineFetches) return false;
      this.fetches.push(order);
      return true;
    },
  };

  constructor(membership: Membership, clock: FakeClock) {
    this.membership = membership;
    this.inFlight = new InFlightMap({ clock });
    this.negativeCache = new NegativeCache({ clock });
  }

  hasCached(key: string, { signal }: { signal: AbortSignal }): Promise<boolean> {
    this.storeSignals.push(signal);
    if (this.store === 'fail') return Promise.reject(new Error('disk unavailable'));
    if (this.store === 'answer') return Promise.resolve(this.cached.has(key));
    return new Promise((resolve) => {
      this.#hanging.push(() => {
        resolve(this.cached.has(key));
      });
    });
  }

  get hangingCalls(): number {
    return this.#hanging.length;
  }

  release(): void {
    for (const resolve of this.#hanging.splice(0)) resolve();
  }
}

interface Member {
  readonly host: string;
  readonly node: TestNode;
  readonly server: CoordServer;
  readonly client: CoordClient;
}

interface CoordCluster {
  readonly grid: TestGrid;
  readonly clock: FakeClock;
  readonly hosts: readonly string[];
  readonly members: readonly Member[];
  member(i: number): Member;
}

async function cluster(t: TestContext, n = 2): Promise<CoordCluster> {
  const clock = new FakeClock({ wallStartMs: WALL_START_MS });
  const grid = await TestGrid.start(n, { clock });
  t.after(() => grid.close());
  const members = grid.hosts.map((host, i): Member => {
    const node = new TestNode(staticMembership(host, grid.hosts), clock);
    const server = new CoordServer(node, { clock });
    server.register(grid.manager(i));
    return { host, node, server, client: new CoordClient({ grid: grid.manager(i), local: server, clock }) };
  });
  await grid.waitAllConnected();
  return {
    grid,
    clock,
    hosts: grid.hosts,
    members,
    member(i) {
      const member = members[i];
      if (member === undefined) throw new RangeError(`no member ${i}`);
      return member;
    },
  };
}

function fetchRequest(
  keys: readonly string[],
  kind: PleaseFetchRequest['kind'] = 'blob',
): PleaseFetchRequest {
  return { keys, origin: 'https://registry.example', repository: 'library/alpine', kind };
}

/** Sends `value` as it is, bypassing the client's checks: what a hostile or buggy peer could send. */
function rawCall(c: CoordCluster, handler: number, value: unknown): Promise<unknown> {
  return c.grid
    .connection(0, 1)
    .request(handler, wire.encode(value), { timeoutMs: 60_000 })
    .then((bytes) => wire.decode(bytes));
}

function remoteCode(code: string, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RemoteError, `expected a RemoteError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

/** Turns the event loop until `condition` holds (socket I/O included); never waits on time. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 20_000 && !condition(); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(condition(), what);
}

describe('coord intent', () => {
  test('a key the node knows nothing about: not cached, not in flight, not failed, with its own rank', async (t) => {
    const c = await cluster(t, 3);
    const answer = await c.member(0).client.intent(c.member(1).host, K);
    assert.deepEqual(answer, {
      hasCached: false,
      inFlight: false,
      hrwRank: rankOf(c.hosts, K, c.member(1).host),
      recentlyFailed: false,
    });
    c.member(1).node.cached.add(K);
    assert.equal((await c.member(0).client.intent(c.member(1).host, K)).hasCached, true);
  });

  test('a key being fetched is reported in flight with when the fetch started', async (t) => {
    const c = await cluster(t);
    c.clock.advance(5_000);
    const claim = c.member(1).node.inFlight.start(K, { kind: 'blob' });
    assert.ok(claim.claimed);
    c.clock.advance(1_000);
    const answer = await c.member(0).client.intent(c.member(1).host, K);
    assert.equal(answer.inFlight, true);
    assert.equal(answer.startedAtWallMs, WALL_START_MS + 5_000);
    claim.handle.done();
    assert.equal((await c.member(0).client.intent(c.member(1).host, K)).inFlight, false);
  });

  test('a recent failure is surfaced with its class and the end of its cooldown', async (t) => {
    const c = await cluster(t);
    c.member(1).node.negativeCache.recordFailure(K, 'not-found');
    c.clock.advance(3_000);
    const answer = await c.member(0).client.intent(c.member(1).host, K);
    assert.equal(answer.recentlyFailed, true);
    assert.equal(answer.failureClass, 'not-found');
    assert.equal(answer.cooldownUntilWallMs, WALL_START_MS + 10_000);
    c.clock.advance(7_000);
    const later = await c.member(0).client.intent(c.member(1).host, K);
    assert.equal(later.recentlyFailed, false, 'the cooldown is over');
    assert.equal(later.failureClass, undefined);
  });

  test('a node that is not in its own membership view answers rank −1', async (t) => {
    const clock = new FakeClock();
    const node = new TestNode({ self: 'node-z', members: () => ['node-a', 'node-b'] }, clock);
    const server = new CoordServer(node, { clock });
    assert.equal((await server.localIntent(K)).hrwRank, -1);
    t.diagnostic('the rank is computed on the server’s own view');
  });

  test('an unavailable store never counts as cached, and is counted', async (t) => {
    const c = await cluster(t);
    c.member(1).node.cached.add(K);
    c.member(1).node.store = 'fail';
    assert.equal((await c.member(0).client.intent(c.member(1).host, K)).hasCached, false);
    assert.equal(c.member(1).server.stats().storeUnavailable, 1);
  });

  test('the local intent and the wire intent give identical answers', async (t) => {
    const c = await cluster(t, 3);
    const node = c.member(1).node;
    const cached = digest('cached');
    const fetching = digest('fetching');
    const failed = digest('failed');
    node.cached.add(cached);
    assert.ok(node.inFlight.start(fetching, { kind: 'manifest' }).claimed);
    node.negativeCache.recordFailure(failed, 'rate-limited');
    node.negativeCache.recordFailure(failed, 'rate-limited');
    c.clock.advance(1_234);
    for (const key of [cached, fetching, failed, digest('unknown')]) {
      const local = await c.member(1).server.localIntent(key);
      const overWire = await c.member(0).client.intent(c.member(1).host, key);
      const selfCall = await c.member(1).client.intent(c.member(1).host, key);
      assert.deepEqual(overWire, local, `wire and local differ for ${key}`);
      assert.deepEqual(selfCall, local);
    }
    assert.equal(c.member(1).server.stats().calls, 4, 'self-calls do not go through the grid');
    assert.equal(c.member(1).server.stats().localCalls, 8);
  });

  test('a call that outlasts the 2 s dispatch budget fails with DeadlineExceededError', async (t) => {
    const c = await cluster(t);
    const node = c.member(1).node;
    node.store = 'hang';
    const call = c.member(0).client.intent(c.member(1).host, K, { timeoutMs: 10_000 });
    await until(() => node.hangingCalls === 1, 'the store was asked');
    const [storeSignal] = node.storeSignals;
    assert.ok(storeSignal !== undefined);
    c.clock.advance(1_999);
    assert.equal(c.member(1).server.stats().timeouts, 0);
    assert.equal(storeSignal.aborted, false);
    c.clock.advance(1);
    assert.equal(c.member(1).server.stats().timeouts, 1);
    assert.equal(storeSignal.aborted, true, 'the abandoned work is told to stop');
    await assert.rejects(call, remoteCode(DeadlineExceededError.code, /2000 ms dispatch budget/));
    assert.equal(c.member(1).server.stats().serving, 0);
    node.release();

    // The local path has the same budget.
    const local = c.member(1).server.localIntent(K);
    await until(() => node.hangingCalls === 1, 'the store was asked locally');
    c.clock.advance(2_000);
    await assert.rejects(local, DeadlineExceededError);
  });
});

describe('coord pleaseFetch', () => {
  test('a key nobody is fetching is started, with the origin, repository and kind the caller gave', async (t) => {
    const c = await cluster(t);
    c.clock.advance(500);
    const results = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    assert.deepEqual(results, [{ key: K, outcome: 'started', startedAtWallMs: WALL_START_MS + 500 }]);
    const [order] = c.member(1).node.fetches;
    assert.ok(order !== undefined);
    assert.deepEqual(
      { key: order.key, origin: order.origin, repository: order.repository, kind: order.kind },
      { key: K, origin: 'https://registry.example', repository: 'library/alpine', kind: 'blob' },
    );
    assert.equal(c.member(1).node.inFlight.get(K), order.claim.entry, 'the fetch holds the in-flight claim');
  });

  test('a key already being fetched is answered already-running, and not started again', async (t) => {
    const c = await cluster(t);
    await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    c.clock.advance(700);
    const results = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    assert.deepEqual(results, [{ key: K, outcome: 'already-running', startedAtWallMs: WALL_START_MS }]);
    assert.equal(c.member(1).node.fetches.length, 1);
    c.member(1).node.fetches[0]?.claim.done();
    const again = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    assert.equal(again[0]?.outcome, 'started', 'once the fetch is done the key can be fetched again');
  });

  test('a key in cooldown is answered recently-failed, with its class and cooldown, and not started', async (t) => {
    const c = await cluster(t);
    c.member(1).node.negativeCache.recordFailure(K, 'auth');
    const results = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    assert.deepEqual(results, [
      {
        key: K,
        outcome: 'recently-failed',
        cooldownUntilWallMs: WALL_START_MS + 10_000,
        failureClass: 'auth',
      },
    ]);
    assert.equal(c.member(1).node.fetches.length, 0);
  });

  test('the kind reaches the fetcher and the in-flight entry unchanged', async (t) => {
    const c = await cluster(t);
    for (const kind of ['blob', 'manifest', 'config'] as const) {
      const key = digest(kind);
      await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([key], kind));
      assert.equal(c.member(1).node.fetches.at(-1)?.kind, kind);
      assert.equal(c.member(1).node.inFlight.get(key)?.kind, kind);
    }
  });

  test('a declined fetch, or no fetcher, is unspecified and leaves no claim behind', async (t) => {
    const c = await cluster(t);
    c.member(1).node.declineFetches = true;
    const results = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([K]));
    assert.deepEqual(results, [{ key: K, outcome: 'unspecified' }]);
    assert.equal(c.member(1).node.inFlight.get(K), undefined);

    const clock = new FakeClock();
    const bare = new CoordServer(
      {
        membership: staticMembership('a', []),
        inFlight: new InFlightMap({ clock }),
        negativeCache: new NegativeCache({ clock }),
        hasCached: () => Promise.resolve(false),
      },
      { clock },
    );
    assert.deepEqual(bare.localPleaseFetch(fetchRequest([K])), [{ key: K, outcome: 'unspecified' }]);
  });

  test('a key that is not a digest is left out of the results; the rest of the batch is served', async (t) => {
    const c = await cluster(t);
    const sha512 = `sha512:${'ab'.repeat(64)}`;
    const answer = await rawCall(c, COORD_PLEASE_FETCH_HANDLER, {
      ...fetchRequest([]),
      keys: [K, 'sha256:XYZ', K.toUpperCase(), 42, null, `${K}/../x`, sha512],
    });
    assert.deepEqual(
      (answer as { results: { key: string; outcome: string }[] }).results.map((r) => [r.key, r.outcome]),
      [
        [K, 'started'],
        [sha512, 'started'],
      ],
    );
    assert.equal(c.member(1).server.stats().keysLeftOut, 5);
    assert.equal(c.member(1).server.stats().malformed, 0, 'a bad key is not a bad request');
  });

  test('zero keys get empty results', async (t) => {
    const c = await cluster(t);
    assert.deepEqual(await rawCall(c, COORD_PLEASE_FETCH_HANDLER, fetchRequest([])), { results: [] });
    assert.deepEqual(await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest([])), []);
  });

  test('257 keys are refused whole by the server, and the client splits them into calls of 256', async (t) => {
    const c = await cluster(t);
    const keys = Array.from({ length: 257 }, (_, i) => digest(i));
    await assert.rejects(
      rawCall(c, COORD_PLEASE_FETCH_HANDLER, fetchRequest(keys)),
      remoteCode(MalformedCoordRequestError.code, /at most 256 keys, got 257/),
    );
    assert.equal(c.member(1).node.fetches.length, 0, 'nothing of a refused batch is started');
    assert.equal(c.member(1).server.stats().malformed, 1);

    const results = await c.member(0).client.pleaseFetch(c.member(1).host, fetchRequest(keys));
    assert.deepEqual(
      results.map((r) => r.key),
      keys,
      'one result per key, in order',
    );
    assert.ok(results.every((r) => r.outcome === 'started'));
    assert.equal(c.member(1).server.stats().calls, 3, 'the refused call, then two chunks');
  });

  test('when one chunk fails the whole call fails and its partial results are discarded', async (t) => {
    const clock = new FakeClock();
    const quiet = { warn: () => undefined, error: () => undefined };
    const grid = await TestGrid.start(2, { clock, logger: quiet });
    t.after(() => grid.close());
    // Node 1 answers a full chunk and fails the short one.
    const chunkSizes: number[] = [];
    grid.manager(1).registerSingle(
      COORD_PLEASE_FETCH_HANDLER,
      (payload) => {
        const { keys } = wire.decode(payload) as { keys: string[] };
        chunkSizes.push(keys.length);
        if (keys.length < 256) throw new Error('disk on fire');
        return wire.encode({ results: keys.map((key) => ({ key, outcome: 'started' })) });
      },
      { reserved: true },
    );
    await grid.waitAllConnected();
    const local = new CoordServer(new TestNode(staticMembership(grid.hosts[0] ?? '', grid.hosts), clock), {
      clock,
    });
    const client = new CoordClient({ grid: grid.manager(0), local, clock });
    const keys = Array.from({ length: 300 }, (_, i) => digest(i));
    await assert.rejects(
      client.pleaseFetch(grid.hosts[1] ?? '', fetchRequest(keys)),
      remoteCode('WEFT_GRID_REMOTE', /disk on fire/),
    );
    assert.deepEqual(
      chunkSizes.sort((a, b) => b - a),
      [256, 44],
      'both chunks were sent; the answered one is discarded',
    );
  });

  test('10,000 concurrent pleaseFetch calls for one key from every node start exactly one fetch', async (t) => {
    const c = await cluster(t, 3);
    const owner = hrwTopK(c.hosts, K, 1)[0] ?? '';
    const ownerIndex = c.hosts.indexOf(owner);
    const calls = Array.from({ length: 10_000 }, (_, i) =>
      c.member(i % 3).client.pleaseFetch(owner, fetchRequest([K]), { timeoutMs: 60_000 }),
    );
    const outcomes = (await Promise.all(calls)).map((results) => results[0]?.outcome);
    assert.equal(outcomes.filter((o) => o === 'started').length, 1);
    assert.equal(outcomes.filter((o) => o === 'already-running').length, 9_999);
    c.members.forEach((member, i) => {
      assert.equal(member.node.fetches.length, i === ownerIndex ? 1 : 0);
    });
    assert.equal(c.member(ownerIndex).node.inFlight.stats().claimed, 1);
  });
});

describe('coord limits and hostile requests', () => {
  test('the 513th concurrent call is refused at once with a retryable busy error, and counted', async (t) => {
    const c = await cluster(t);
    const node = c.member(1).node;
    node.store = 'hang';
    node.cached.add(K);
    const held = Array.from({ length: 512 }, () =>
      c.member(0).client.intent(c.member(1).host, K, { timeoutMs: 60_000 }),
    );
    await until(() => node.hangingCalls === 512, 'all 512 calls are being served');
    assert.equal(c.member(1).server.stats().serving, 512);
    // The clock never moves: only an immediate refusal settles this call.
    await assert.rejects(c.member(0).client.intent(c.member(1).host, K, { timeoutMs: 60_000 }), (error) => {
      remoteCode('WEFT_COORD_BUSY')(error);
      assert.equal((error as RemoteError).retryable, true);
      return true;
    });
    assert.equal(c.member(1).server.stats().refusedBusy, 1);
    assert.equal(node.hangingCalls, 512, 'the refused call was not queued');
    node.release();
    const answers: IntentAnswer[] = await Promise.all(held);
    assert.ok(answers.every((a) => a.hasCached));
    node.store = 'answer';
    assert.equal(
      (await c.member(0).client.intent(c.member(1).host, K)).hasCached,
      true,
      'served again once there is room',
    );
  });

  test('a request over 1 MiB is refused unread; one just under is served', async (t) => {
    const c = await cluster(t);
    await assert.rejects(
      c.grid.connection(0, 1).request(COORD_INTENT_HANDLER, new Uint8Array(MiB + 1), { timeoutMs: 60_000 }),
      remoteCode('WEFT_COORD_MESSAGE_TOO_LARGE', /1048577 bytes exceeds the 1048576-byte limit/),
    );
    assert.equal(c.member(1).server.stats().tooLarge, 1);
    assert.equal(c.member(1).server.stats().malformed, 0, 'refused before it was decoded');
    // Unknown fields are ignored: a request of almost 1 MiB is read.
    const padded = wire.encode({ key: K, padding: 'x'.repeat(MiB - 200) });
    assert.ok(padded !== undefined && padded.length < MiB);
    const answer = await rawCall(c, COORD_INTENT_HANDLER, { key: K, padding: 'x'.repeat(MiB - 200) });
    assert.equal((answer as IntentAnswer).hasCached, false);
  });

  test('malformed requests are refused with an error that names the problem, counted, and the node serves on', async (t) => {
    const c = await cluster(t);
    const good = fetchRequest([K]);
    const cases: [number, unknown, RegExp][] = [
      [COORD_INTENT_HANDLER, undefined, /an intent request must be a map, got undefined/],
      [COORD_INTENT_HANDLER, [K], /must be a map, got an array/],
      [COORD_INTENT_HANDLER, {}, /intent\.key is missing/],
      [COORD_INTENT_HANDLER, { key: 5 }, /intent\.key: a digest must be a string, got number/],
      [COORD_INTENT_HANDLER, { key: 'sha256:abc' }, /intent\.key: .*64 lowercase hex digits/],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, keys: undefined }, /pleaseFetch\.keys is missing/],
      [
        COORD_PLEASE_FETCH_HANDLER,
        { ...good, keys: K },
        /pleaseFetch\.keys must be an array of digests, got string/,
      ],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, origin: undefined }, /pleaseFetch\.origin is missing/],
      [
        COORD_PLEASE_FETCH_HANDLER,
        { ...good, origin: 7 },
        /pleaseFetch\.origin must be a string, got number/,
      ],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, origin: 'file:///etc' }, /pleaseFetch\.origin must be an http/],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, repository: undefined }, /pleaseFetch\.repository is missing/],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, repository: '../../etc' }, /OCI repository name/],
      [COORD_PLEASE_FETCH_HANDLER, { ...good, kind: undefined }, /pleaseFetch\.kind is missing/],
      [
        COORD_PLEASE_FETCH_HANDLER,
        { ...good, kind: 'layer' },
        /kind must be one of blob, manifest, config, got "layer"/,
      ],
    ];
    for (const [handler, request, message] of cases) {
      await assert.rejects(
        rawCall(c, handler, request),
        remoteCode(MalformedCoordRequestError.code, message),
      );
    }
    // Bytes that are not MessagePack: an array of two that ends after one.
    await assert.rejects(
      c.grid
        .connection(0, 1)
        .request(COORD_INTENT_HANDLER, new Uint8Array([0x92, 0x01]), { timeoutMs: 60_000 }),
      remoteCode(MalformedCoordRequestError.code, /must be MessagePack/),
    );
    assert.equal(c.member(1).server.stats().malformed, cases.length + 1);
    assert.equal(c.member(1).node.fetches.length, 0);
    assert.equal((await c.member(0).client.pleaseFetch(c.member(1).host, good))[0]?.outcome, 'started');
  });

  test('the client refuses a malformed call itself, without sending it', async (t) => {
    const c = await cluster(t);
    await assert.rejects(c.member(0).client.intent(c.member(1).host, 'latest'), MalformedCoordRequestError);
    await assert.rejects(
      c.member(0).client.pleaseFetch(c.member(1).host, { ...fetchRequest([K]), origin: '' }),
      /pleaseFetch\.origin is missing/,
    );
    assert.equal(c.member(1).server.stats().calls, 0);
  });
});
