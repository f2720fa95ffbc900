import assert from 'node:assert/strict';
import { test } from 'node:test';

import { diagnosticChannel, subscribeDiagnostics } from '../../src/internal/diagnostics.ts';

test('channels are named weft:<module>:<event> and deliver to subscribers', () => {
  const channel = diagnosticChannel<{ state: string }>('grid', 'connection-state-test');
  assert.equal(channel.name, 'weft:grid:connection-state-test');
  const seen: { state: string }[] = [];
  const unsubscribe = subscribeDiagnostics(channel.name, (m) => seen.push(m as { state: string }));
  assert.equal(channel.hasSubscribers, true);
  channel.publish({ state: 'connected' });
  unsubscribe();
  assert.equal(channel.hasSubscribers, false);
  channel.publish({ state: 'ignored' });
  assert.deepEqual(seen, [{ state: 'connected' }]);
});

test('a lazy message is built only when someone listens', () => {
  const channel = diagnosticChannel<{ n: number }>('internal', 'lazy-test');
  let built = 0;
  channel.publishLazy(() => ({ n: ++built }));
  assert.equal(built, 0);
  const seen: number[] = [];
  const unsubscribe = subscribeDiagnostics(channel.name, (m) => seen.push((m as { n: number }).n));
  channel.publishLazy(() => ({ n: ++built }));
  unsubscribe();
  assert.deepEqual(seen, [1]);
});
