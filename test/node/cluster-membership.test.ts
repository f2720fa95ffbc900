// Nodes join a running cluster and leave it without anyone restarting: each member sees the
// others in `cluster.members`; a join must carry the cluster secret's signature. Also the node's
// own endpoints: health, readiness, status, metrics.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { resolveNodeConfig } from '../../src/node/config.ts';
import { JOIN_PATH, newJoinRequest, sign, SIGNATURE_HEADER } from '../../src/node/join-request.ts';
import type { Member } from '../../src/node/membership.ts';
import { startNode, type WeftNode } from '../../src/node/node.ts';
import type { NodeStats } from '../../src/node/node-stats.ts';

const SECRET = 'the membership test cluster secret';
const BOUNDED = { timeout: 60_000 };

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function start(
  dir: string,
  name: string,
  seeds: readonly string[] = [],
  port?: number,
): Promise<WeftNode> {
  port ??= await freePort();
  return startNode(
    resolveNodeConfig({
      name,
      listen: { port },
      cluster: { secret: SECRET, seeds },
      dataDir: path.join(dir, name),
      log: { level: 'silent' },
    }),
  );
}

type Members = Record<string, Member>;

/** Waits on the node's `cluster.members` with blocking queries until `done` holds. */
async function membersUntil(
  node: WeftNode,
  done: (members: Members) => boolean,
  what: string,
): Promise<Members> {
  let index = 0;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await fetch(`${node.url}/v1/views/cluster.members?index=${index}&wait=5s`);
    assert.equal(response.status, 200);
    const members = (await response.json()) as Members;
    if (done(members)) return members;
    if (Date.now() > deadline) assert.fail(`${node.name}: ${what}; members: ${JSON.stringify(members)}`);
    index = Number(response.headers.get('x-weft-index'));
  }
}

function connected(members: Members, nodes: readonly WeftNode[]): boolean {
  return nodes.every((n) => members[n.url]?.state === 'connected' || members[n.url]?.state === 'self');
}

async function nodeIdOf(node: WeftNode): Promise<string> {
  const status = (await (await fetch(`${node.url}/v1/status`)).json()) as NodeStats;
  return status.grid.nodeId;
}

describe('node: membership', () => {
  let dir = '';
  const nodes: WeftNode[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'weft-membership-'));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await rm(dir, { recursive: true, force: true });
  });

  test(
    'a node joins through a seed, a third through another member; all see all; one leaves',
    BOUNDED,
    async () => {
      const a = await start(dir, 'a');
      nodes.push(a);
      const b = await start(dir, 'b', [a.url]);
      nodes.push(b);
      await membersUntil(a, (m) => connected(m, [a, b]), 'b never showed up connected');
      const idA = await nodeIdOf(a);
      const idB = await nodeIdOf(b);

      // c knows only b; a learns of c from b's announcement.
      const c = await start(dir, 'c', [b.url]);
      nodes.push(c);
      for (const node of [a, b, c]) {
        const members = await membersUntil(node, (m) => connected(m, [a, b, c]), 'not all three connected');
        assert.deepEqual(Object.keys(members).sort(), [a.url, b.url, c.url].sort());
        assert.equal(members[node.url]?.self, true);
        assert.equal(members[c.url]?.name, 'c');
      }

      await c.close();
      nodes.splice(nodes.indexOf(c), 1);
      for (const node of [a, b]) {
        const members = await membersUntil(node, (m) => m[c.url] === undefined, 'c never left');
        assert.deepEqual(Object.keys(members).sort(), [a.url, b.url].sort());
      }
      assert.equal(await nodeIdOf(a), idA, 'a did not restart');
      assert.equal(await nodeIdOf(b), idB, 'b did not restart');
    },
  );

  test(
    'a join without the secret, with a stale clock, or too large is refused; others unaffected',
    BOUNDED,
    async () => {
      const a = nodes[0] as WeftNode;
      const join = (body: string, signature: string | undefined, method = 'POST'): Promise<Response> =>
        fetch(`${a.url}${JOIN_PATH}`, {
          method,
          headers: signature === undefined ? {} : { [SIGNATURE_HEADER]: signature },
          ...(method === 'POST' ? { body } : {}),
        });
      const body = JSON.stringify(
        newJoinRequest({ host: 'http://127.0.0.1:9', name: 'intruder' }, a.url, Date.now()),
      );
      assert.equal((await join(body, undefined)).status, 401);
      assert.equal((await join(body, sign('another secret of 16 bytes', body))).status, 401);
      const stale = JSON.stringify(
        newJoinRequest({ host: 'http://127.0.0.1:9', name: 'late' }, a.url, Date.now() - 3_600_000),
      );
      assert.equal((await join(stale, sign(SECRET, stale))).status, 400);
      const elsewhere = JSON.stringify(
        newJoinRequest({ host: 'http://127.0.0.1:9', name: 'lost' }, 'http://127.0.0.1:10', Date.now()),
      );
      assert.equal((await join(elsewhere, sign(SECRET, elsewhere))).status, 400, 'addressed to another node');
      const huge = 'x'.repeat(100_000);
      assert.equal((await join(huge, sign(SECRET, huge))).status, 413);
      assert.equal((await join('', undefined, 'GET')).status, 405);
      const members = (await (await fetch(`${a.url}/v1/views/cluster.members`)).json()) as Members;
      assert.equal(members['http://127.0.0.1:9'], undefined, 'nobody was added');
    },
  );

  test('health, readiness, status and metrics answer', BOUNDED, async () => {
    const a = nodes[0] as WeftNode;
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
    const status = (await (await fetch(`${a.url}/v1/status`)).json()) as NodeStats;
    assert.equal(status.name, 'a');
    assert.equal(status.members.length, 2);
    const metrics = await fetch(`${a.url}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (
      text: string,
    ) => { name: string; type: string }[];
    const families = parse(await metrics.text());
    const names = new Set(families.map((f) => f.name));
    for (const name of ['weft_grid_connections', 'weft_process_cpu_user_seconds_total']) {
      assert.ok(names.has(name), `${name} in /metrics`);
    }
    assert.equal((await fetch(`${a.url}/nope`)).status, 404);
  });

  test('a signed join is taken once: its replay is refused', BOUNDED, async () => {
    const a = nodes[0] as WeftNode;
    const body = JSON.stringify(
      newJoinRequest({ host: 'http://127.0.0.1:9', name: 'once' }, a.url, Date.now()),
    );
    const post = (): Promise<Response> =>
      fetch(`${a.url}${JOIN_PATH}`, {
        method: 'POST',
        headers: { [SIGNATURE_HEADER]: sign(SECRET, body) },
        body,
      });
    const first = await post();
    assert.equal(first.status, 200);
    assert.equal((await post()).status, 400);
    const members = (await (await fetch(`${a.url}/v1/views/cluster.members`)).json()) as Members;
    assert.equal(members['http://127.0.0.1:9']?.name, 'once');
  });

  test(
    'a node with no seeds finds its cluster again after a restart, from the members it knew',
    BOUNDED,
    async () => {
      const first = await start(dir, 'first');
      const second = await start(dir, 'second', [first.url]);
      nodes.push(second);
      await membersUntil(first, (m) => connected(m, [first, second]), 'second never joined');
      await first.close();
      await membersUntil(second, (m) => m[first.url] === undefined, 'first never left');

      // Same URL and data directory, still no seeds in its config.
      const again = await start(dir, 'first', [], Number(new URL(first.url).port));
      nodes.push(again);
      await membersUntil(second, (m) => m[again.url]?.state === 'connected', 'first never came back');
    },
  );
});
