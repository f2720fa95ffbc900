// The node suite: a Weft node as an operator and a dashboard user meet it. No peer has these
// figures (they are of Weft's own command and page), so every row is ours alone, as the hub's
// handoff-gap is.
//
// - dev-ready (`ready_ms`): from spawning `weft dev` as `npm start` runs it (the CLI from the
//   sources through tsx, three node processes with the example application, a fresh data
//   directory each time) until it prints that the cluster is up, every node having reported
//   ready (node/dev-start.ts). Each sample is a whole start, then a stop with SIGINT that must
//   exit with 0. The warm-up start fills tsx's transform cache, as a developer's first
//   `npm start` does.
// - dashboard-first-paint-10k (`first_paint_ms`): one node in the bench process (compiled
//   weft/node) whose `functions` view holds 10 000 addresses; headless Chromium opens its
//   dashboard in a fresh context each time, from navigation start until a row of the functions
//   table is visible (node/dashboard-fixture.ts).
// - dashboard-update-latency-10k (`update_latency_ms`): the same node and view, one page kept
//   open; one message to an address on its first page, from the ingress's 202 until the row's
//   state cell shows the new count.

import path from 'node:path';

import { defineSuite, type BenchCase } from './harness.ts';
import { SharedResource } from './shared-resource.ts';
import { chromiumBinary } from './node/chromium.ts';
import { DashboardFixture } from './node/dashboard-fixture.ts';
import { DevStarts, devNodes } from './node/dev-start.ts';

const repoDir = path.dirname(import.meta.dirname);
const dashboardAddresses = 10_000;

const dashboard = new SharedResource('node bench dashboard', () =>
  DashboardFixture.start(dashboardAddresses),
);

function devReadyCase(): BenchCase {
  const starts = new DevStarts(repoDir);
  return {
    name: 'dev-ready',
    metric: 'ready_ms',
    rounds: 20,
    quickRounds: 10,
    ours: { label: `weft dev (${devNodes} nodes, tsx)`, fn: () => starts.readyMs() },
    check: () => {
      // Each sample stops its cluster; one still running would slow the next start.
      if (starts.running > 0) throw new Error(`${starts.running} weft dev process(es) still running`);
      return undefined;
    },
    teardown: () => {
      starts.close();
      return undefined;
    },
  };
}

function dashboardCase(
  name: string,
  metric: 'first_paint_ms' | 'update_latency_ms',
  rounds: { full: number; quick: number },
  label: string,
  measure: (d: DashboardFixture) => Promise<number>,
  prepare?: (d: DashboardFixture) => Promise<void>,
): BenchCase {
  let d: DashboardFixture | undefined;
  const fixture = (): DashboardFixture => {
    if (d === undefined) throw new Error(`${name}: setup did not run`);
    return d;
  };
  return {
    name,
    metric,
    rounds: rounds.full,
    quickRounds: rounds.quick,
    ours: { label, fn: () => measure(fixture()) },
    setup: async () => {
      d = await dashboard.acquire();
      await prepare?.(d);
    },
    check: () => fixture().check(),
    teardown: () => {
      if (d !== undefined) dashboard.release();
      return undefined;
    },
  };
}

export default defineSuite({
  notes: () => [
    `dev-ready: weft dev from the sources (tsx), ${devNodes} nodes on loopback, a fresh data dir per start`,
    `dashboard: one node in this process (dist/node) with ${dashboardAddresses.toLocaleString('en-US')} addresses in its functions view; ${chromiumBinary} headless`,
  ],
  cases: [
    devReadyCase(),
    dashboardCase(
      'dashboard-first-paint-10k',
      'first_paint_ms',
      { full: 20, quick: 10 },
      'weft/node dashboard, fresh context',
      (d) => d.firstPaintMs(),
    ),
    dashboardCase(
      'dashboard-update-latency-10k',
      'update_latency_ms',
      { full: 50, quick: 10 },
      'weft/node dashboard, SSE',
      (d) => d.updateLatencyMs(),
      (d) => d.openLivePage(),
    ),
  ],
});
