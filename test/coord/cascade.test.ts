import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';

import {
  Cascade,
  CascadeCooldownError,
  CascadeExhaustedError,
  FailureShortCircuitError,
  type CascadeConfig,
  type CascadeEvent,
  type Decision,
} from '../../src/coord/cascade/index.ts';
import { hrwRank, hrwTopK } from '../../src/coord/hrw.ts';
import { staticMembership } from '../../src/coord/membership.ts';
import type { IntentAnswer, PleaseFetchRequest, PleaseFetchResult } from '../../src/coord/rpc/index.ts';
import { subscribeDiagnostics } from '../../src/internal/diagnostics.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const ORIGIN = 'https://registry.example';
const REPOSITORY = 'library/alpine';
const KEY = digestOf('layer');
const NODES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e', 'node-f', 'node-g', 'node-h'];
/** The cluster's HRW order for KEY; the requester is the last one, so it is never in the top-K. */
const RANKED = hrwRank(NODES, KEY);
const SELF = RANKED[7] as string;
const at = (rank: number): string => RANKED[rank] as string;

function digestOf(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

type Answer = Partial<IntentAnswer> | 'unreachable' | 'hang';

interface Setup {
  readonly members?: readonly string[];
  readonly self?: string;
  readonly local?: boolean;
  readonly answers?: Record<string, Answer>;
  readonly pleaseFetch?: (node: string) => PleaseFetchResult['outcome'] | Omit<PleaseFetchResult, 'key'>;
  readonly health?: number;
  readonly random?: () => number;
  readonly config?: CascadeConfig;
}

function setup(options: Setup = {}) {
  const clock = new FakeClock({ startMs: 1_000_000 });
  const members = options.members ?? NODES;
  const self = options.self ?? SELF;
  const calls = { intent: [] as string[], pleaseFetch: [] as string[], directory: 0 };
  let providers: string[] = [];
  let local = options.local ?? false;
  // A node that took a pleaseFetch reports the fetch as running, as a real node does.
  const fetching = new Map<string, number>();
  const cascade = new Cascade(
    {
      membership: staticMembership(self, members),
      self,
      clock,
      random: options.random ?? (() => 0),
      hasLocal: () => Promise.resolve(local),
      findProviders: () => {
        calls.directory++;
        return Promise.resolve(providers);
      },
      intent: (node, key) => {
        calls.intent.push(node);
        const answer = options.answers?.[node] ?? {};
        if (answer === 'unreachable') return Promise.reject(new Error(`${node} unreachable`));
        if (answer === 'hang') return new Promise<IntentAnswer>(() => undefined);
        const startedAtWallMs = fetching.get(node);
        return Promise.resolve({
          hasCached: false,
          inFlight: startedAtWallMs !== undefined,
          recentlyFailed: false,
          hrwRank: hrwRank(members, key).indexOf(node),
          ...(startedAtWallMs === undefined ? {} : { startedAtWallMs }),
          ...answer,
        });
      },
      pleaseFetch: (node, request: PleaseFetchRequest) => {
        calls.pleaseFetch.push(node);
        const outcome = options.pleaseFetch?.(node) ?? 'unspecified';
        const result = typeof outcome === 'string' ? { outcome } : outcome;
        if (result.outcome === 'started' || result.outcome === 'already-running') {
          fetching.set(node, clock.wallTimeMs());
        }
        return Promise.resolve([
          { key: request.keys[0] as string, startedAtWallMs: clock.wallTimeMs(), ...result },
        ]);
      },
      ...(options.health === undefined ? {} : { directoryHealth: () => options.health as number }),
    },
    options.config,
  );
  return {
    cascade,
    clock,
    calls,
    setProviders: (list: string[]): void => {
      providers = list;
    },
    setLocal: (value: boolean): void => {
      local = value;
    },
    resolveBlob: (extra: { origin?: string; delegatedCredential?: boolean; key?: string } = {}) =>
      cascade.resolve(extra.key ?? KEY, {
        kind: 'blob',
        origin: 'origin' in extra ? extra.origin : ORIGIN,
        repository: REPOSITORY,
        delegatedCredential: extra.delegatedCredential,
      }),
  };
}

/** Settles `promise` while advancing fake time in `stepMs` steps, up to `limitMs`. */
async function settle<T>(clock: FakeClock, promise: Promise<T>, stepMs = 100, limitMs = 120_000): Promise<T> {
  const progress = watch(promise);
  for (let spent = 0; !progress.settled && spent <= limitMs; spent += stepMs)
    await clock.advanceAsync(stepMs);
  return promise;
}

/** Lets a test look at a decision that may not have arrived yet. */
function watch(promise: Promise<Decision> | Promise<unknown>): {
  settled: boolean;
  decision: Decision | undefined;
} {
  const state: { settled: boolean; decision: Decision | undefined } = { settled: false, decision: undefined };
  void (promise as Promise<unknown>).then(
    (value) => {
      state.settled = true;
      state.decision = value as Decision;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

function failure(decision: Decision): Error {
  assert.equal(decision.action, 'fail');
  return (decision as { error: Error }).error;
}

function wallIn(clock: FakeClock, ms: number): number {
  return clock.wallTimeMs() + ms;
}

describe('cold-start cascade, steps 1 and 2', () => {
  test('a local hit is served before anything else is asked', async () => {
    const { cascade, calls, setProviders } = setup({
      local: true,
      answers: { [at(0)]: { recentlyFailed: true, failureClass: 'auth' } },
    });
    setProviders([at(1)]);
    assert.deepEqual(await cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }), {
      action: 'serve-local',
    });
    assert.equal(calls.directory, 0);
    assert.deepEqual(calls.intent, []);
    assert.equal(cascade.stats().rules['local-hit'], 1);
  });

  test('providers in the directory are fetched from, in its order, without probing', async () => {
    const { calls, setProviders, resolveBlob } = setup();
    setProviders([at(5), SELF, at(2), at(5)]);
    assert.deepEqual(await resolveBlob(), { action: 'fetch-from-peer', providers: [at(5), at(2)] });
    assert.deepEqual(calls.intent, []);
  });

  test('a key that is not a digest is refused', async () => {
    const { cascade } = setup();
    await assert.rejects(cascade.resolve('../etc/passwd', { kind: 'blob' }), {
      code: 'WEFT_COORD_INVALID_DIGEST',
    });
  });
});

describe('cold-start table rule 1: trusted failures', () => {
  for (const failureClass of ['auth', 'not-found', 'rate-limited'] as const) {
    test(`a ${failureClass} failure short-circuits, even over a peer that has the key, with no pleaseFetch`, async () => {
      const { clock, calls, resolveBlob } = setup({
        answers: {
          [at(0)]: { hasCached: true },
          [at(2)]: { recentlyFailed: true, failureClass, cooldownUntilWallMs: wallIn(new FakeClock(), 0) },
        },
      });
      const error = failure(await resolveBlob());
      assert.ok(error instanceof FailureShortCircuitError);
      assert.equal(error.retryable, false);
      assert.equal(error.failureClass, failureClass);
      assert.equal(error.node, at(2));
      assert.equal(typeof error.cooldownUntil, 'number');
      assert.deepEqual(calls.pleaseFetch, []);
      assert.equal(clock.pendingTimers, 0);
    });
  }

  test('a request with its own credential does not trust them, and falls back to the origin', async () => {
    const { calls, resolveBlob } = setup({
      answers: { [at(0)]: { recentlyFailed: true, failureClass: 'auth' } },
      pleaseFetch: () => ({ outcome: 'recently-failed', failureClass: 'auth' }),
    });
    const decision = await resolveBlob({ delegatedCredential: true });
    assert.deepEqual(decision, { action: 'fetch-from-origin', reason: 'untrusted-failure' });
    assert.deepEqual(calls.pleaseFetch, [at(0)]);
  });
});

describe('cold-start table rule 2: a peer has it', () => {
  test('holders come first, then the rest of the top-K that answered', async () => {
    const { calls, resolveBlob } = setup({
      answers: { [at(2)]: { hasCached: true }, [at(1)]: 'unreachable' },
    });
    assert.deepEqual(await resolveBlob(), { action: 'fetch-from-peer', providers: [at(2), at(0)] });
    assert.deepEqual(calls.intent.sort(), [at(0), at(1), at(2)].sort());
    assert.deepEqual(calls.pleaseFetch, []);
  });
});

describe('cold-start table rule 3: a fresh puller is waited for', () => {
  test('the directory is polled every 200 ms for a manifest until the puller announces it', async () => {
    const { cascade, clock, calls, setProviders } = setup({
      answers: {
        [at(1)]: { inFlight: true, startedAtWallMs: wallIn(new FakeClock({ startMs: 1_000_000 }), -1_000) },
      },
    });
    const decisionWatch = watch(
      cascade.resolve(KEY, { kind: 'manifest', origin: ORIGIN, repository: REPOSITORY }),
    );
    await clock.advanceAsync(600);
    assert.equal(decisionWatch.decision, undefined);
    assert.equal(calls.directory, 1 + 3); // the first lookup, then one poll per 200 ms
    setProviders([at(1)]);
    await clock.advanceAsync(200);
    assert.deepEqual(decisionWatch.decision, { action: 'fetch-from-peer', providers: [at(1)] });
    assert.deepEqual(calls.pleaseFetch, []);
    assert.equal(cascade.stats().rules['in-flight'], 1);
  });

  test('a blob puller is polled every second until its stall deadline, then the cascade is exhausted', async () => {
    const { cascade, clock, calls } = setup({ answers: { [at(0)]: { inFlight: true } } });
    const decision = await settle(
      clock,
      cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }),
    );
    assert.deepEqual(decision, { action: 'fetch-from-origin', reason: 'pull-stalled' });
    assert.equal(cascade.stats().polls, 30); // 30 s stall threshold of an unsized blob, 1 s apart
    assert.equal(calls.pleaseFetch.length, 0);
  });

  test('a stalled puller is skipped (counted as a takeover) and the table goes on', async () => {
    const start = new FakeClock({ startMs: 1_000_000 });
    const { cascade, calls } = setup({
      answers: { [at(1)]: { inFlight: true, startedAtWallMs: wallIn(start, -6_000) } },
      pleaseFetch: () => 'unspecified',
    });
    const decision = await cascade.resolve(KEY, { kind: 'config', origin: ORIGIN, repository: REPOSITORY });
    assert.deepEqual(decision, { action: 'fetch-from-origin', reason: 'unspecified' });
    assert.equal(cascade.stats().takeovers, 1);
    assert.deepEqual(calls.pleaseFetch, [at(0)]);
  });
});

describe('cold-start table rule 4: transient failures and the honor window', () => {
  test('a cooldown error, then no probing until the window ends', async () => {
    const start = new FakeClock({ startMs: 1_000_000 });
    const { cascade, clock, calls, resolveBlob } = setup({
      answers: {
        [at(1)]: {
          recentlyFailed: true,
          failureClass: 'transient',
          cooldownUntilWallMs: wallIn(start, 10_000),
        },
      },
    });
    const error = failure(await resolveBlob());
    assert.ok(error instanceof CascadeCooldownError);
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 10_000);
    assert.equal(error.cooldownUntil, clock.now() + 10_000);
    assert.equal(calls.intent.length, 3);

    clock.advance(9_999);
    const suppressed = failure(await resolveBlob());
    assert.ok(suppressed instanceof CascadeCooldownError);
    assert.equal(suppressed.retryAfterMs, 1);
    assert.equal(calls.intent.length, 3, 'no probe inside the window');
    assert.equal(cascade.stats().rules['honor-window'], 1);

    clock.advance(1);
    await resolveBlob();
    assert.equal(calls.intent.length, 6, 'probing resumes when the window ends');
  });

  test('the window is capped at 30 s however long the peer cools down', async () => {
    const start = new FakeClock({ startMs: 1_000_000 });
    const { clock, calls, resolveBlob } = setup({
      answers: {
        [at(0)]: {
          recentlyFailed: true,
          failureClass: 'transient',
          cooldownUntilWallMs: wallIn(start, 600_000),
        },
      },
    });
    const error = failure(await resolveBlob());
    assert.ok(error instanceof CascadeCooldownError);
    assert.equal(error.retryAfterMs, 30_000);
    clock.advance(30_000);
    await resolveBlob();
    assert.equal(calls.intent.length, 6);
  });
});

describe('cold-start table rules 5 to 7', () => {
  test('nobody reachable in the top-K widens the probe to 2K', async () => {
    const { cascade, calls, resolveBlob } = setup({
      answers: { [at(0)]: 'unreachable', [at(1)]: 'unreachable', [at(2)]: 'unreachable' },
    });
    await resolveBlob();
    assert.equal(calls.intent.length, 6);
    assert.deepEqual(calls.pleaseFetch, [at(3)]);
    assert.equal(cascade.stats().expansions.noneReachable, 1);
  });

  test('an intent that never answers counts as unreachable after 2 s', async () => {
    const { cascade, clock, calls } = setup({
      answers: { [at(0)]: 'hang' },
      pleaseFetch: () => 'unspecified',
    });
    const decision = await settle(
      clock,
      cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }),
    );
    assert.deepEqual(decision, { action: 'fetch-from-origin', reason: 'unspecified' });
    assert.deepEqual(calls.pleaseFetch, [at(1)]);
    assert.equal(cascade.stats().probesFailed, 1);
  });

  test('nobody reachable even in 2K exhausts the cascade', async () => {
    const answers = Object.fromEntries(NODES.map((n) => [n, 'unreachable' as const]));
    const { cascade, resolveBlob } = setup({ answers });
    assert.deepEqual(await resolveBlob(), { action: 'fetch-from-origin', reason: 'none-reachable' });
    assert.equal(cascade.stats().rules['none-reachable'], 1);
  });

  test('a degraded directory widens an idle first pass to 2K and finds a holder there', async () => {
    const { cascade, calls, resolveBlob } = setup({ health: 0.5, answers: { [at(4)]: { hasCached: true } } });
    const decision = await resolveBlob();
    assert.deepEqual(decision, {
      action: 'fetch-from-peer',
      providers: [at(4), at(0), at(1), at(2), at(3), at(5)],
    });
    assert.equal(calls.intent.length, 6);
    assert.equal(cascade.stats().expansions.degraded, 1);
  });

  test('a healthy directory asks the requester-ranked first node of the top-K, then polls', async () => {
    const { cascade, clock, calls, setProviders } = setup({
      health: 0.9,
      pleaseFetch: () => 'started',
      answers: { [at(0)]: { hrwRank: 2 } }, // its own view disagrees: counted, not used
    });
    const decisionWatch = watch(
      cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }),
    );
    await clock.advanceAsync(0);
    assert.deepEqual(calls.pleaseFetch, [at(0)]);
    assert.equal(calls.intent.length, 3);
    setProviders([at(0)]);
    await clock.advanceAsync(1_000);
    assert.deepEqual(decisionWatch.decision, { action: 'fetch-from-peer', providers: [at(0)] });
    assert.equal(cascade.stats().rankMismatches, 1);
  });

  test('without an origin nobody is asked to fetch and the cascade fails exhausted', async () => {
    const { calls, resolveBlob } = setup();
    const error = failure(await resolveBlob({ origin: undefined as unknown as string }));
    assert.ok(error instanceof CascadeExhaustedError);
    assert.equal(error.reason, 'no-origin');
    assert.equal(error.retryable, true);
    assert.deepEqual(calls.pleaseFetch, []);
  });

  test('ALREADY_RUNNING polls the directory like STARTED', async () => {
    const { cascade, clock, setProviders } = setup({ pleaseFetch: () => 'already-running' });
    const decisionWatch = watch(
      cascade.resolve(KEY, { kind: 'manifest', origin: ORIGIN, repository: REPOSITORY }),
    );
    await clock.advanceAsync(400);
    assert.equal(decisionWatch.decision, undefined);
    setProviders([at(0)]);
    await clock.advanceAsync(200);
    assert.deepEqual(decisionWatch.decision, { action: 'fetch-from-peer', providers: [at(0)] });
  });

  test('RECENTLY_FAILED with a trusted class short-circuits', async () => {
    const { resolveBlob } = setup({
      pleaseFetch: () => ({ outcome: 'recently-failed', failureClass: 'not-found' }),
    });
    const error = failure(await resolveBlob());
    assert.ok(error instanceof FailureShortCircuitError);
    assert.equal(error.failureClass, 'not-found');
  });

  test('RECENTLY_FAILED transient opens an honor window', async () => {
    const start = new FakeClock({ startMs: 1_000_000 });
    const { calls, resolveBlob } = setup({
      pleaseFetch: () => ({
        outcome: 'recently-failed',
        failureClass: 'transient',
        cooldownUntilWallMs: wallIn(start, 5_000),
      }),
    });
    const error = failure(await resolveBlob());
    assert.ok(error instanceof CascadeCooldownError);
    assert.equal(error.retryAfterMs, 5_000);
    assert.ok(failure(await resolveBlob()) instanceof CascadeCooldownError);
    assert.equal(calls.pleaseFetch.length, 1);
  });

  test('UNSPECIFIED exhausts at once, without polling', async () => {
    const { cascade, calls, resolveBlob } = setup({ pleaseFetch: () => 'unspecified' });
    assert.deepEqual(await resolveBlob(), { action: 'fetch-from-origin', reason: 'unspecified' });
    assert.equal(cascade.stats().polls, 0);
    assert.equal(calls.directory, 1);
  });
});

describe('direct-origin fallback', () => {
  test('at most 2 per minute per node, each after its jitter', async () => {
    const { cascade, clock } = setup({ pleaseFetch: () => 'unspecified', random: () => 0.5 });
    const resolveKey = (key: string) =>
      cascade.resolve(key, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY });

    const firstWatch = watch(resolveKey(digestOf('1')));
    await clock.advanceAsync(499);
    assert.equal(firstWatch.settled, false, 'waits its 500 ms of jitter');
    await clock.advanceAsync(1);
    assert.equal(firstWatch.decision?.action, 'fetch-from-origin');

    assert.equal((await settle(clock, resolveKey(digestOf('2')))).action, 'fetch-from-origin');
    const refused = failure(await resolveKey(digestOf('3')));
    assert.ok(refused instanceof CascadeExhaustedError);
    assert.equal(refused.fallbackRateLimited, true);
    assert.equal(cascade.stats().originFallbacksRefused, 1);

    await clock.advanceAsync(60_000);
    assert.equal((await settle(clock, resolveKey(digestOf('4')))).action, 'fetch-from-origin');
  });
});

describe('divergent membership views', () => {
  test('nine requesters on three different views start at most three origin fetches', async () => {
    const clock = new FakeClock({ startMs: 1_000_000 });
    const fetching = new Set<string>();
    const fetched = new Set<string>();
    const views = [NODES, NODES.filter((n) => n !== at(0)), NODES.filter((n) => n !== at(0) && n !== at(1))];
    const requesters = views.flatMap((view) =>
      view.slice(-3).map(
        (self) =>
          new Cascade({
            membership: staticMembership(self, view),
            self,
            clock,
            random: () => 0,
            hasLocal: () => Promise.resolve(false),
            findProviders: () => Promise.resolve([...fetched]),
            intent: (node, key) =>
              Promise.resolve({
                hasCached: fetched.has(node),
                inFlight: fetching.has(node),
                recentlyFailed: false,
                hrwRank: hrwRank(NODES, key).indexOf(node),
              }),
            pleaseFetch: (node, request) => {
              const outcome = fetching.has(node) ? 'already-running' : 'started';
              fetching.add(node);
              // Each puller finishes 2 s later and announces itself in the directory.
              clock.setTimeout(() => fetched.add(node), 2_000);
              return Promise.resolve([
                { key: request.keys[0] as string, outcome, startedAtWallMs: clock.wallTimeMs() },
              ]);
            },
          }),
      ),
    );
    const decisions = await settle(
      clock,
      Promise.all(
        requesters.map((c) => c.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY })),
      ),
    );
    assert.ok(fetching.size >= 1 && fetching.size <= 3, `origin fetches: ${[...fetching].join(', ')}`);
    assert.ok(decisions.every((d) => d.action === 'fetch-from-peer'));
  });
});

describe('diagnostics', () => {
  test('every resolution publishes its rule and action on weft:coord:cascade', async (t) => {
    const events: CascadeEvent[] = [];
    const unsubscribe = subscribeDiagnostics('weft:coord:cascade', (m) => events.push(m as CascadeEvent));
    t.after(unsubscribe);
    const { cascade, setProviders, resolveBlob } = setup();
    setProviders([at(3)]);
    await resolveBlob();
    assert.deepEqual(events, [{ key: KEY, rule: 'directory', action: 'fetch-from-peer' }]);
    assert.equal(cascade.stats().rules.directory, 1);
  });
});

describe('cold-start table rule 3: a puller that leaves or stops', () => {
  test('once the puller has left the membership, the wait ends at the next poll and the cascade decides again without it', async () => {
    const clock = new FakeClock({ startMs: 1_000_000 });
    let members = NODES;
    const asked: string[] = [];
    const cascade = new Cascade({
      membership: { self: SELF, members: () => members },
      self: SELF,
      clock,
      random: () => 0,
      hasLocal: () => Promise.resolve(false),
      findProviders: () => Promise.resolve([]),
      intent: (node, key) =>
        Promise.resolve({
          hasCached: false,
          inFlight: node === at(0),
          recentlyFailed: false,
          hrwRank: hrwRank(members, key).indexOf(node),
          startedAtWallMs: clock.wallTimeMs(),
        }),
      pleaseFetch: (node, request) => {
        asked.push(node);
        return Promise.resolve([{ key: request.keys[0] as string, outcome: 'unspecified' as const }]);
      },
    });
    const decisionWatch = watch(
      cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }),
    );
    await clock.advanceAsync(2_000);
    assert.equal(decisionWatch.settled, false, 'the puller is waited for while it is a member');
    assert.equal(cascade.stats().polls, 2);
    assert.deepEqual(asked, [], 'nobody is asked to fetch while a puller is waited for');

    members = NODES.filter((node) => node !== at(0));
    await clock.advanceAsync(1_000);
    assert.equal(cascade.stats().polls, 3, 'stopped at the next poll, long before the 30 s stall');
    assert.equal(cascade.stats().pullersGone, 1);
    // Decided again on the smaller membership: the node it ranks first now is asked to fetch.
    assert.deepEqual(asked, [hrwTopK(members, KEY, 3)[0]]);
    assert.deepEqual(decisionWatch.decision, { action: 'fetch-from-origin', reason: 'unspecified' });
  });

  test('a puller that reports its fetch failed ends the wait at the next poll, with its failure', async () => {
    const clock = new FakeClock({ startMs: 1_000_000 });
    const designated = hrwTopK(NODES, KEY, 3)[0] as string;
    let state: 'idle' | 'fetching' | 'failed' = 'idle';
    const cascade = new Cascade({
      membership: staticMembership(SELF, NODES),
      self: SELF,
      clock,
      random: () => 0,
      hasLocal: () => Promise.resolve(false),
      findProviders: () => Promise.resolve([]),
      intent: (node, key) =>
        Promise.resolve({
          hasCached: false,
          inFlight: node === designated && state === 'fetching',
          recentlyFailed: node === designated && state === 'failed',
          hrwRank: hrwRank(NODES, key).indexOf(node),
          startedAtWallMs: clock.wallTimeMs(),
          ...(node === designated && state === 'failed'
            ? { failureClass: 'not-found' as const, cooldownUntilWallMs: clock.wallTimeMs() + 10_000 }
            : {}),
        }),
      pleaseFetch: (_node, request) => {
        state = 'fetching';
        return Promise.resolve([
          {
            key: request.keys[0] as string,
            outcome: 'started' as const,
            startedAtWallMs: clock.wallTimeMs(),
          },
        ]);
      },
    });
    const decisionWatch = watch(
      cascade.resolve(KEY, { kind: 'blob', origin: ORIGIN, repository: REPOSITORY }),
    );
    await clock.advanceAsync(2_000);
    assert.equal(decisionWatch.settled, false, 'a running fetch is waited for');
    state = 'failed';
    await clock.advanceAsync(1_000);
    const error = failure(decisionWatch.decision as Decision);
    assert.ok(error instanceof FailureShortCircuitError, 'a trusted failure short-circuits');
    assert.equal(error.node, designated);
    assert.equal(cascade.stats().polls, 3, 'long before the 30 s stall deadline');
  });
});
