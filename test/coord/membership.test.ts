import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ConnectionState } from '../../src/grid/index.ts';
import { gridMembership, staticMembership } from '../../src/coord/membership.ts';

test('a static membership holds each member once, itself included', () => {
  const membership = staticMembership('a', ['b', 'a', 'c', 'b']);
  assert.equal(membership.self, 'a');
  assert.deepEqual([...membership.members()].sort(), ['a', 'b', 'c']);
});

test('the grid membership is this node and the peers connected now', () => {
  const states = new Map<string, ConnectionState>([
    ['http://b', 'connected'],
    ['http://c', 'connecting'],
    ['http://d', 'connected'],
  ]);
  const manager = {
    hostName: () => 'http://a',
    targets: () => [...states.keys()],
    connection: (host: string) => ({ state: () => states.get(host) as ConnectionState }),
  } as unknown as Parameters<typeof gridMembership>[0];
  const membership = gridMembership(manager);
  assert.equal(membership.self, 'http://a');
  assert.deepEqual(membership.members(), ['http://a', 'http://b', 'http://d']);
  states.set('http://b', 'connection-error');
  states.set('http://c', 'connected');
  assert.deepEqual(membership.members(), ['http://a', 'http://c', 'http://d']);
});
