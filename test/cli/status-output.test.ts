// What `weft status` prints of a node's status, fed a status JSON as `GET /v1/status` answers it
// (no node runs here: the printer is a function of that JSON).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { statusLines } from '../../src/cli/client-commands.ts';
import type { NodeStats } from '../../src/node/index.ts';

const NOW = 1_700_000_000_000;

function statusOf(extra: Partial<NodeStats> = {}): NodeStats {
  const json = JSON.stringify({
    node: 'http://10.0.0.1:7400',
    name: 'alpha',
    startedAt: NOW - 90_000,
    now: NOW,
    members: [{ name: 'alpha', host: 'http://10.0.0.1:7400', state: 'self', since: NOW - 90_000 }],
    grid: { nodeId: 'n1', connections: {} },
    views: {},
    runtime: {
      functionTypes: ['example/counter'],
      addresses: 4,
      backlog: 0,
      messagesIn: 10,
      messagesProcessed: 10,
      batches: 8,
      batchFailures: 0,
    },
    ...extra,
  });
  return JSON.parse(json) as NodeStats;
}

const CLUSTER: NonNullable<NodeStats['cluster']> = {
  partitionsHeld: 86,
  partitionsOwned: 85,
  partitionsMoving: 1,
  maxEpoch: 12,
  quorum: true,
  liveMembers: 3,
  knownMembers: 3,
  leasesAcquired: 90,
  leasesLost: 4,
  fencedBatches: 2,
  forwarded: 1200,
  forwardRefused: 3,
  forwardFailed: 1,
  forwardPending: 5,
  wakesSent: 40,
  wakesReceived: 38,
  pool: { size: 10, total: 6, idle: 2, waiting: 1, errors: 0 },
  commits: 500,
  batchesCommitted: 800,
  meanBatchesPerCommit: 1.6,
};

describe('weft status output', () => {
  test('a cluster section is printed as a Cluster block after the functions', () => {
    const lines = statusLines(statusOf({ cluster: CLUSTER }));
    const at = lines.indexOf(
      'Cluster: partitions 86 held, 85 owned, 1 moving   max epoch 12   quorum (3 of 3 members live)',
    );
    assert.ok(at > 0, `no Cluster line in:\n${lines.join('\n')}`);
    assert.equal(lines[at - 1], '', 'a blank line before the block');
    assert.ok(lines.findIndex((line) => line.startsWith('Functions: ')) < at, 'after the functions');
    assert.deepEqual(lines.slice(at + 1, at + 5), [
      '  leases acquired 90, lost 4   fenced batches 2',
      '  forwarded 1200 (refused 3, failed 1, pending 5)   wakes sent 40, received 38',
      '  PostgreSQL pool 6 total / 2 idle / 1 waiting of 10, errors 0',
      '  commits 500 (batches 800, 1.6 per commit)',
    ]);
  });

  test('a node without quorum and without pool figures says so', () => {
    const lines = statusLines(
      statusOf({ cluster: { ...CLUSTER, quorum: false, liveMembers: 1, pool: undefined } }),
    );
    assert.ok(
      lines.some((line) => line.endsWith('   no quorum (1 of 3 members live)')),
      lines.join('\n'),
    );
    assert.ok(lines.includes('  PostgreSQL pool -'), lines.join('\n'));
  });

  test('a node without a cluster section prints no Cluster block, the rest as before', () => {
    const lines = statusLines(statusOf());
    assert.deepEqual(lines, [
      'alpha  http://10.0.0.1:7400  up 90 s',
      '',
      'Members',
      `  ${'alpha'.padEnd(12)} ${'http://10.0.0.1:7400'.padEnd(26)} ${'self'.padEnd(12)} since 90 s`,
      '',
      'Functions: example/counter',
      '  addresses 4   messages in 10, run 10   backlog 0',
    ]);
  });
});
