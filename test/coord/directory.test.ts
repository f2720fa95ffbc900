import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';

import {
  DIRECTORY_ANNOUNCE_HANDLER,
  DIRECTORY_WHO_HAS_HANDLER,
  ProviderDirectory,
  type ProviderDirectoryConfig,
} from '../../src/coord/directory/index.ts';
import { hrwTopK } from '../../src/coord/hrw.ts';
import { staticMembership } from '../../src/coord/membership.ts';
import { MalformedCoordRequestError } from '../../src/coord/rpc/index.ts';
import { msgpackCodec, RemoteError } from '../../src/grid/index.ts';
import { ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const wire = msgpackCodec<unknown>();
const MiB = 1024 * 1024;

function digest(seed: string | number): string {
  return `sha256:${createHash('sha256').update(String(seed)).digest('hex')}`;
}

/** The first key whose top-3 directory nodes (on `hosts`) satisfy `wanted`. */
function keyWhere(hosts: readonly string[], wanted: (top: readonly string[]) => boolean): string {
  for (let seed = 0; seed < 10_000; seed++) {
    const key = digest(`key-${seed}`);
    if (wanted(hrwTopK(hosts, key, 3))) return key;
  }
  throw new Error('no key found');
}

interface Cluster {
  readonly grid: TestGrid;
  readonly clock: FakeClock;
  readonly hosts: readonly string[];
  /** Node i's directory (every node sees every other as a member). */
  dir(i: number): ProviderDirectory;
}

/** `n` nodes, each with a directory serving on its grid, except those listed in `without`. */
async function cluster(
  t: TestContext,
  n: number,
  config: ProviderDirectoryConfig = {},
  without: readonly number[] = [],
): Promise<Cluster> {
  const clock = new FakeClock({ wallStartMs: 1_700_000_000_000 });
  const grid = await TestGrid.start(n, { clock });
  t.after(() => grid.close());
  const directories = grid.hosts.map((host, i) => {
    const directory = new ProviderDirectory({
      ...config,
      clock,
      membership: staticMembership(host, grid.hosts),
      grid: grid.manager(i),
    });
    if (!without.includes(i)) directory.register(grid.manager(i));
    return directory;
  });
  await grid.waitAllConnected();
  return {
    grid,
    clock,
    hosts: grid.hosts,
    dir(i) {
      const directory = directories[i];
      if (directory === undefined) throw new RangeError(`no node ${i}`);
      return directory;
    },
  };
}

/** Sends `value` as it is from node 0 to node 1: what a hostile or buggy peer could send. */
function rawCall(c: Cluster, handler: number, value: unknown): Promise<unknown> {
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

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 20_000 && !condition(); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(condition(), what);
}

describe('provider directory: announce and find', () => {
  test('a key one node announces is found by every other node, on the key’s top-3 nodes only', async (t) => {
    const c = await cluster(t, 4);
    // The announcer is not a directory node for this key: every record goes over the grid.
    const key = keyWhere(c.hosts, (top) => !top.includes(c.hosts[0] ?? ''));
    const report = await c.dir(0).announce([key]);
    assert.deepEqual(new Set(report.reached), new Set(hrwTopK(c.hosts, key, 3)));
    assert.deepEqual(report.unreachable, []);
    for (const i of [1, 2, 3]) assert.deepEqual(await c.dir(i).findProviders(key), [c.hosts[0]]);
    assert.equal(c.dir(0).stats().keys, 0, 'the announcer is not one of the key’s directory nodes');
    assert.deepEqual(await c.dir(0).findProviders(key), [], 'a node is never its own provider');
    assert.deepEqual(await c.dir(1).findProviders(digest('never announced')), []);
  });

  test('a node that is one of the key’s directory nodes records its own announcement without the grid', async (t) => {
    const c = await cluster(t, 3);
    const key = digest('self');
    await c.dir(0).announce([key]);
    assert.equal(c.dir(0).stats().calls, 0, 'no call reached node 0 over the grid');
    assert.equal(c.dir(0).stats().keys, 1);
    assert.deepEqual(await c.dir(1).findProviders(key), [c.hosts[0]]);
  });

  test('providers announced by several nodes are merged', async (t) => {
    const c = await cluster(t, 4);
    const key = digest('popular');
    await c.dir(0).announce([key]);
    await c.dir(1).announce([key]);
    await c.dir(2).announce([key]);
    assert.deepEqual(new Set(await c.dir(3).findProviders(key)), new Set(c.hosts.slice(0, 3)));
    assert.deepEqual(new Set(await c.dir(0).findProviders(key)), new Set(c.hosts.slice(1, 3)));
  });
});

describe('provider directory: lifetime of an announcement', () => {
  test('an announcement expires after its TTL; a re-announcement renews it', async (t) => {
    const c = await cluster(t, 3, { ttlMs: 5_000 });
    const key = digest('ttl');
    await c.dir(0).announce([key]);
    c.clock.advance(3_000);
    await c.dir(0).announce([key]);
    c.clock.advance(3_000);
    assert.deepEqual(await c.dir(1).findProviders(key), [c.hosts[0]], 'renewed at 3 s, so live at 6 s');
    assert.equal(c.dir(1).stats().refreshed, 1);
    c.clock.advance(1_999);
    assert.deepEqual(await c.dir(1).findProviders(key), [c.hosts[0]]);
    c.clock.advance(1);
    assert.deepEqual(await c.dir(1).findProviders(key), [], 'expired 5 s after the renewal');
    assert.equal(c.dir(1).stats().expired, 1);
    assert.equal(c.dir(1).stats().keys, 0, 'an expired key is dropped as it is read');
  });

  test('the default TTL is 10 minutes, and sweep() removes what expired without a read', () => {
    const clock = new FakeClock();
    const self = 'http://node-a';
    const directory = new ProviderDirectory({
      clock,
      membership: staticMembership(self, []),
      grid: {
        connection: () => {
          throw new Error('a single-node directory never calls the grid');
        },
      },
    });
    return (async () => {
      await directory.announce([digest(1), digest(2)]);
      clock.advance(10 * 60_000 - 1);
      assert.equal(directory.sweep(), 0);
      await directory.announce([digest(2)]);
      clock.advance(1);
      assert.equal(directory.sweep(), 1, 'the key not renewed is gone');
      assert.deepEqual(
        { keys: directory.stats().keys, expired: directory.stats().expired },
        { keys: 1, expired: 1 },
      );
    })();
  });

  test('a withdrawn key is no longer found', async (t) => {
    const c = await cluster(t, 4);
    const key = digest('evicted');
    await c.dir(0).announce([key]);
    await c.dir(1).announce([key]);
    const report = await c.dir(0).withdraw([key]);
    assert.equal(report.reached.length, 3);
    assert.deepEqual(await c.dir(3).findProviders(key), [c.hosts[1]], 'the other provider stays');
    const withdrawn = [0, 1, 2, 3].reduce((sum, i) => sum + c.dir(i).stats().withdrawn, 0);
    assert.equal(withdrawn, 3, 'removed on each of the key’s three directory nodes');
  });
});

describe('provider directory: nodes that are down or slow', () => {
  test('a directory node that is down is skipped when announcing and when finding', async (t) => {
    const c = await cluster(t, 4);
    const down = c.hosts[3] ?? '';
    const key = keyWhere(c.hosts, (top) => top.includes(down) && !top.includes(c.hosts[0] ?? ''));
    await c.grid.manager(3).close();
    await until(
      () => [0, 1, 2].every((i) => c.grid.connection(i, 3).state() !== 'connected'),
      'every node saw node 3 go',
    );
    const report = await c.dir(0).announce([key]);
    assert.deepEqual(report.unreachable, [down]);
    assert.equal(report.reached.length, 2);
    assert.deepEqual(await c.dir(1).findProviders(key), [c.hosts[0]]);
    assert.ok(c.dir(1).stats().peerFailures >= 1);
  });

  test('a directory node that does not answer within 2 s is skipped, and the others’ answers kept', async (t) => {
    const c = await cluster(t, 3, {}, [2]);
    // Node 2 has no directory; its whoHas handler never answers.
    const held: (() => void)[] = [];
    c.grid.manager(2).registerSingle(
      DIRECTORY_WHO_HAS_HANDLER,
      () =>
        new Promise<undefined>((resolve) => {
          held.push(() => {
            resolve(undefined);
          });
        }),
      { reserved: true },
    );
    const key = digest('slow');
    const report = await c.dir(0).announce([key]);
    assert.deepEqual(report.unreachable, [c.hosts[2]], 'node 2 serves no announce');
    let found: string[] | undefined;
    const finding = c
      .dir(1)
      .findProviders(key)
      .then((providers) => (found = providers));
    await until(() => held.length === 1, 'node 2 is asked');
    c.clock.advance(1_999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(found, undefined, 'still waiting for node 2 before 2 s');
    c.clock.advance(1);
    await finding;
    assert.deepEqual(found, [c.hosts[0]]);
    for (const release of held) release();
  });
});

describe('provider directory: bounds', () => {
  test('a full table evicts the key announced least recently, and counts it', async (t) => {
    // Three nodes: every node is one of the three directory nodes of every key.
    const c = await cluster(t, 3, { maxEntries: 2 });
    const [k1, k2, k3] = [digest('one'), digest('two'), digest('three')];
    await c.dir(0).announce([k1]);
    await c.dir(0).announce([k2]);
    await c.dir(0).announce([k1]); // renewed: now k2 is the least recently announced
    await c.dir(0).announce([k3]);
    assert.deepEqual(await c.dir(1).findProviders(k2), []);
    assert.deepEqual(await c.dir(1).findProviders(k1), [c.hosts[0]]);
    assert.deepEqual(await c.dir(1).findProviders(k3), [c.hosts[0]]);
    for (const i of [0, 1, 2]) {
      assert.equal(c.dir(i).stats().keys, 2);
      assert.equal(c.dir(i).stats().keysEvicted, 1);
    }
  });

  test('a key holds at most maxProvidersPerKey providers; more are refused and counted', async (t) => {
    const c = await cluster(t, 4, { maxProvidersPerKey: 2 });
    const key = digest('crowded');
    for (const i of [0, 1, 2]) await c.dir(i).announce([key]);
    assert.deepEqual(new Set(await c.dir(3).findProviders(key)), new Set(c.hosts.slice(0, 2)));
    const refused = [0, 1, 2, 3].reduce((sum, i) => sum + c.dir(i).stats().providersRefused, 0);
    assert.equal(refused, 3, 'refused on each of the key’s three directory nodes');
    // A provider already held renews its entry even when the key is full.
    await c.dir(1).announce([key]);
    assert.equal(
      refused,
      [0, 1, 2, 3].reduce((sum, i) => sum + c.dir(i).stats().providersRefused, 0),
    );
  });

  test('257 keys go to a node as two calls of at most 256', async (t) => {
    const c = await cluster(t, 3);
    const keys = Array.from({ length: 257 }, (_, i) => digest(`batch-${i}`));
    const report = await c.dir(0).announce(keys);
    assert.equal(report.reached.length, 3);
    for (const i of [1, 2]) {
      assert.equal(c.dir(i).stats().calls, 2);
      assert.equal(c.dir(i).stats().keys, 257);
    }
    await assert.rejects(
      rawCall(c, DIRECTORY_ANNOUNCE_HANDLER, { keys }),
      remoteCode(MalformedCoordRequestError.code, /at most 256 keys, got 257/),
    );
    assert.deepEqual(await rawCall(c, DIRECTORY_ANNOUNCE_HANDLER, { keys: keys.slice(0, 256) }), {
      recorded: 256,
    });
  });
});

describe('provider directory: hostile input', () => {
  test('a node cannot announce another node as a provider: the provider is always the caller', async (t) => {
    const c = await cluster(t, 3);
    const key = digest('spoofed');
    const victim = c.hosts[2] ?? '';
    assert.deepEqual(
      await rawCall(c, DIRECTORY_ANNOUNCE_HANDLER, { keys: [key], provider: victim, providers: [victim] }),
      { recorded: 1 },
    );
    assert.deepEqual(await c.dir(2).findProviders(key), [c.hosts[0]]);
    // Nor withdraw another node's announcement.
    await c.dir(2).announce([key]);
    await rawCall(c, DIRECTORY_ANNOUNCE_HANDLER, { keys: [key], withdraw: true, provider: victim });
    assert.deepEqual(await rawCall(c, DIRECTORY_WHO_HAS_HANDLER, { key }), { providers: [victim] });
  });

  test('malformed requests are refused with an error naming the problem, counted, and the node serves on', async (t) => {
    const c = await cluster(t, 2);
    const key = digest('fine');
    const cases: [number, unknown, RegExp][] = [
      [DIRECTORY_ANNOUNCE_HANDLER, undefined, /an announce request must be a map, got undefined/],
      [DIRECTORY_ANNOUNCE_HANDLER, [key], /must be a map, got an array/],
      [DIRECTORY_ANNOUNCE_HANDLER, {}, /announce\.keys is missing/],
      [DIRECTORY_ANNOUNCE_HANDLER, { keys: key }, /announce\.keys must be an array of digests, got string/],
      [DIRECTORY_ANNOUNCE_HANDLER, { keys: [key, 'latest'] }, /announce\.keys\[1\]: .*sha256: or sha512:/],
      [
        DIRECTORY_ANNOUNCE_HANDLER,
        { keys: [7] },
        /announce\.keys\[0\]: a digest must be a string, got number/,
      ],
      [
        DIRECTORY_ANNOUNCE_HANDLER,
        { keys: [key], withdraw: 'yes' },
        /withdraw must be a boolean, got string/,
      ],
      [DIRECTORY_WHO_HAS_HANDLER, null, /a whoHas request must be a map, got null/],
      [DIRECTORY_WHO_HAS_HANDLER, {}, /whoHas\.key is missing/],
      [DIRECTORY_WHO_HAS_HANDLER, { key: 'sha256:ABC' }, /whoHas\.key: .*64 lowercase hex digits/],
    ];
    for (const [handler, request, message] of cases) {
      await assert.rejects(
        rawCall(c, handler, request),
        remoteCode(MalformedCoordRequestError.code, message),
      );
    }
    await assert.rejects(
      c.grid
        .connection(0, 1)
        .request(DIRECTORY_WHO_HAS_HANDLER, new Uint8Array([0x92, 0x01]), { timeoutMs: 60_000 }),
      remoteCode(MalformedCoordRequestError.code, /must be MessagePack/),
    );
    await assert.rejects(
      c.grid
        .connection(0, 1)
        .request(DIRECTORY_ANNOUNCE_HANDLER, new Uint8Array(MiB + 1), { timeoutMs: 60_000 }),
      remoteCode('WEFT_COORD_MESSAGE_TOO_LARGE'),
    );
    assert.equal(c.dir(1).stats().malformed, cases.length + 1);
    assert.equal(c.dir(1).stats().tooLarge, 1);
    assert.equal(c.dir(1).stats().keys, 0, 'a refused batch records none of its keys');
    await c.dir(0).announce([key]);
    assert.deepEqual(await c.dir(1).findProviders(key), [c.hosts[0]]);
  });

  test('a node refuses its own malformed calls before sending them', async (t) => {
    const c = await cluster(t, 2);
    await assert.rejects(c.dir(0).announce([digest('ok'), 'latest']), MalformedCoordRequestError);
    await assert.rejects(c.dir(0).withdraw([42 as unknown as string]), MalformedCoordRequestError);
    await assert.rejects(c.dir(0).findProviders('sha256:'), MalformedCoordRequestError);
    assert.equal(c.dir(1).stats().calls, 0);
  });

  test('a bad configuration is refused naming the field', () => {
    const base = { membership: staticMembership('a', []), grid: { connection: () => assert.fail() } };
    assert.throws(() => new ProviderDirectory({ ...base, ttlMs: 0 }), ConfigError);
    assert.throws(() => new ProviderDirectory({ ...base, maxProvidersPerKey: 17 }), /maxProvidersPerKey/);
  });

  test('a caller that aborts gets its own reason back', async (t) => {
    const c = await cluster(t, 2);
    const reason = new Error('caller gave up');
    await assert.rejects(c.dir(0).findProviders(digest('x'), { signal: AbortSignal.abort(reason) }), reason);
    await assert.rejects(c.dir(0).announce([digest('x')], { signal: AbortSignal.abort(reason) }), reason);
  });
});
