// One Weft node in the bench process (compiled weft/node, the example application on, logs
// silent) whose `functions` view holds `addresses` counter addresses, and a headless Chromium
// that opens its dashboard. The dashboard follows the view over Server-Sent Events and gets the
// whole view (all the addresses) with every change, so both figures grow with the view's size.
//
// - firstPaintMs: a fresh browser context (empty cache, new connection) per call; the page's
//   own clock from navigation start until a row of the functions table is visible, read by a
//   check run at every animation frame (so up to one frame, ~17 ms, late).
// - updateLatencyMs: on a page kept open, one message to the first address (the first row of
//   the first page); the bench's clock from the ingress's 202 until the row's state cell
//   shows the new count, also checked at every animation frame (the figure includes one
//   DevTools-protocol hop, well under a millisecond on loopback).

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { loopback } from '../forked-server.ts';
import { launchChromium } from './chromium.ts';
import { freePort } from './free-ports.ts';
import { loadNode } from './load-node.ts';
import {
  counterType,
  seedAddresses,
  seededId,
  sendCount,
  waitForView,
  type FunctionEntries,
} from './seed-addresses.ts';

type WeftNode = Awaited<ReturnType<Awaited<ReturnType<typeof loadNode>>['startNode']>>;

const seedConcurrency = 64;
const pageTimeoutMs = 30_000;
/** Problems (console errors, page errors) kept for the check's message. */
const maxProblems = 20;
/** The address the update case writes to: `id-0` sorts first, so its row is on the first page. */
const updatedId = seededId(0);
const updatedAddress = `${counterType}/${updatedId}`;

// Page-side waits, as text: the dashboard's Content-Security-Policy allows no `eval`, which
// page.waitForFunction needs, and tsx would add a helper (`__name`) the page lacks to a function
// handed over as code. page.evaluate runs the text and awaits the promise it makes: a check at
// every animation frame, as waitForFunction's `polling: 'raf'` does, resolving with the page's
// clock (ms since navigation start) at the first frame where the condition held.
function shownAt(condition: string): string {
  return `new Promise((resolve, reject) => {
    const deadline = performance.now() + ${pageTimeoutMs};
    const poll = () => {
      if (${condition}) resolve(performance.now());
      else if (performance.now() > deadline) reject(new Error('not shown within ${pageTimeoutMs} ms'));
      else requestAnimationFrame(poll);
    };
    poll();
  })`;
}

const firstRowVisible = `document.querySelector('#functions tr[data-address]')?.checkVisibility() === true`;

function stateShown(address: string, stateText: string): string {
  const selector = `#functions tr[data-address=${JSON.stringify(address)}] .state`;
  return `document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(stateText)}`;
}

/** The state cell's text for a count: the page shows the state as compact JSON. */
function stateTextOf(count: number): string {
  return JSON.stringify({ count, last: 'x' });
}

export class DashboardFixture {
  readonly addresses: number;
  readonly #node: WeftNode;
  readonly #dataDir: string;
  readonly #browser: Browser;
  readonly #problems: string[] = [];
  #livePage: Page | undefined;
  /** The count the updated address has reached: 1 from seeding, one more per update. */
  #updatedCount = 1;

  private constructor(addresses: number, node: WeftNode, dataDir: string, browser: Browser) {
    this.addresses = addresses;
    this.#node = node;
    this.#dataDir = dataDir;
    this.#browser = browser;
  }

  static async start(addresses: number): Promise<DashboardFixture> {
    // Before anything is started: without a browser there is nothing to measure.
    const browser = await launchChromium();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-bench-dashboard-'));
    let node: WeftNode | undefined;
    try {
      const { resolveNodeConfig, startNode } = await loadNode();
      const config = resolveNodeConfig({
        name: 'bench-dashboard',
        listen: { host: loopback, port: await freePort() },
        cluster: { secret: randomBytes(24).toString('base64url') },
        dataDir,
        example: true,
        log: { level: 'silent' },
      });
      node = await startNode(config);
      await seedAddresses(node.url, addresses, seedConcurrency);
      return new DashboardFixture(addresses, node, dataDir, browser);
    } catch (error) {
      await node?.close();
      await browser.close();
      await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  get url(): string {
    return `${this.#node.url}/`;
  }

  /** Milliseconds from navigation start to the first visible row, in a fresh browser context. */
  async firstPaintMs(): Promise<number> {
    const context = await this.#browser.newContext();
    try {
      const page = await this.#newPage(context);
      await page.goto(this.url, { waitUntil: 'commit', timeout: pageTimeoutMs });
      const ms = await page.evaluate<number>(shownAt(firstRowVisible));
      await this.#expectAllAddresses(page);
      return ms;
    } finally {
      await context.close();
    }
  }

  /** Opens the page the update case watches and waits until it shows the updated address. */
  async openLivePage(): Promise<void> {
    const page = await this.#newPage(await this.#browser.newContext());
    this.#livePage = page;
    await page.goto(this.url, { timeout: pageTimeoutMs });
    await page.evaluate(shownAt(stateShown(updatedAddress, stateTextOf(this.#updatedCount))));
    await this.#expectAllAddresses(page);
  }

  /** Milliseconds from the ingress's 202 for one message until the live page shows its count. */
  async updateLatencyMs(): Promise<number> {
    const page = this.#livePage;
    if (page === undefined) throw new Error('the live page is not open');
    const count = this.#updatedCount + 1;
    // Installed before the message is sent: it cannot be true before the new count exists.
    const shown = page.evaluate(shownAt(stateShown(updatedAddress, stateTextOf(count))));
    // If the send fails, the wait's own failure must not go unhandled.
    shown.catch(() => undefined);
    await sendCount(this.#node.url, updatedId);
    const accepted = performance.now();
    await shown;
    const ms = performance.now() - accepted;
    this.#updatedCount = count;
    return ms;
  }

  /** Throws unless the view holds every address, the updated one at its count, and no page had trouble. */
  async check(): Promise<void> {
    const expected = stateTextOf(this.#updatedCount);
    const entries: FunctionEntries = await waitForView(
      this.#node.url,
      (e) => JSON.stringify(e[updatedAddress]?.state) === expected,
      `${updatedAddress} at ${expected}`,
    );
    const held = Object.keys(entries).length;
    if (held !== this.addresses) {
      throw new Error(`the functions view holds ${held} addresses, not ${this.addresses}`);
    }
    if (this.#problems.length > 0) {
      throw new Error(`the dashboard had trouble:\n${this.#problems.join('\n')}`);
    }
  }

  async close(): Promise<void> {
    await this.#browser.close().catch(() => undefined);
    await this.#node.close();
    await rm(this.#dataDir, { recursive: true, force: true });
  }

  async #newPage(context: Awaited<ReturnType<Browser['newContext']>>): Promise<Page> {
    const page = await context.newPage();
    const note = (problem: string): void => {
      if (this.#problems.length < maxProblems) this.#problems.push(problem);
    };
    page.on('console', (message) => {
      if (message.type() === 'error') note(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => {
      note(`page error: ${error.message}`);
    });
    return page;
  }

  /** The page's count of addresses says it got the whole view. */
  async #expectAllAddresses(page: Page): Promise<void> {
    const label = (await page.textContent('#function-count', { timeout: pageTimeoutMs })) ?? '';
    if (label.replace(/\D/g, '') !== String(this.addresses)) {
      throw new Error(`the dashboard says "${label}", not ${this.addresses} addresses`);
    }
  }
}
