// The node's dashboard in a real browser (Debian's Chromium, driven by playwright-core) against
// three real `weft start` processes: the page follows a member that dies and comes back, and
// shows what `weft send` did to a function's state, without a console error on the way.
//
// Chromium is a tool of the machine, not a package: without it the test is skipped with a
// reason, unless WEFT_REQUIRE_SERVICES=1 (CI), where that is a failure. No browser is ever
// downloaded.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type TestContext } from 'node:test';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

import { requireServicesVariable } from '../../src/testing/index.ts';
import { CHROMIUM_ARGS, CHROMIUM_BINARY } from './chromium.ts';
import { freePort, repoRoot, startNodeProcess, weftCliArgs, type NodeProcess } from './node-process.ts';

const chromiumBinary = CHROMIUM_BINARY;
const chromiumArgs = [...CHROMIUM_ARGS];
const counterAddress = 'example/counter/ada';
const screenshotFile = path.join(repoRoot, 'test-artifacts', 'dashboard.png');
/** A grid notices a SIGKILLed peer by its reset socket, at worst by its missed pongs. */
const memberChangeTimeoutMs = 30_000;
const pageTimeoutMs = 15_000;

const gate = await chromiumGate();

test(
  'the dashboard follows a member that dies and comes back, and a function state sent by the CLI',
  { skip: gate, timeout: 110_000 },
  async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), 'weft-dashboard-e2e-'));
    const secret = randomBytes(24).toString('base64url');
    const names = ['node-1', 'node-2', 'node-3'] as const;
    const ports = await Promise.all(names.map(() => freePort()));
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);
    const optionsOf = (i: number): Parameters<typeof startNodeProcess>[0] => ({
      name: names[i] as string,
      port: ports[i] as number,
      seeds: urls.filter((_, j) => j !== i),
      dataDir: path.join(root, names[i] as string),
      secret,
      example: true,
    });
    const nodes: NodeProcess[] = [];
    let browser: BrowserContext | undefined;
    t.after(async () => {
      await browser?.close().catch(() => undefined);
      await Promise.all(nodes.map((node) => node.kill()));
      await rm(root, { recursive: true, force: true });
    });

    const problems: string[] = [];
    let page: Page | undefined;
    const openPage = (): Page => {
      assert.ok(page !== undefined, 'the dashboard was not opened');
      return page;
    };
    const member = (i: number, state: string) =>
      openPage().locator(`#members tr[data-host="${urls[i] as string}"][data-state="${state}"]`);
    const step = stepper(t);

    await step('three nodes start, each seeded with the other two', 60_000, async () => {
      nodes.push(...(await Promise.all(names.map((_, i) => startNodeProcess(optionsOf(i))))));
    });

    await step("node-1's dashboard lists three members, node-2 and node-3 connected", 45_000, async () => {
      const userDataDir = await mkdtemp(path.join(root, 'chromium-'));
      // A persistent context is how playwright takes a profile directory of our own.
      browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath: chromiumBinary,
        headless: true,
        args: chromiumArgs,
        timeout: pageTimeoutMs,
      });
      page = browser.pages()[0] ?? (await browser.newPage());
      page.on('console', (message) => {
        const type = message.type();
        if (type === 'error' || type === 'warning') problems.push(`console ${type}: ${message.text()}`);
      });
      page.on('pageerror', (error) => {
        problems.push(`page error: ${error.message}`);
      });
      await page.goto(`${urls[0] as string}/`, { timeout: pageTimeoutMs });
      await member(0, 'self').waitFor({ timeout: pageTimeoutMs });
      await member(1, 'connected').waitFor({ timeout: memberChangeTimeoutMs });
      await member(2, 'connected').waitFor({ timeout: memberChangeTimeoutMs });
      assert.equal(await page.locator('#members tr').count(), 3);
    });

    await step('node-3 killed with SIGKILL is shown disconnected', 40_000, async () => {
      const exit = await (nodes[2] as NodeProcess).kill();
      assert.equal(exit.signal, 'SIGKILL');
      await member(2, 'disconnected').waitFor({ timeout: memberChangeTimeoutMs });
      await member(1, 'connected').waitFor({ timeout: 1_000 });
      assert.equal(await openPage().locator('#members tr').count(), 3, 'a dead member stays listed');
    });

    await step('node-3 restarted on its port and data dir is shown connected again', 60_000, async () => {
      nodes[2] = await startNodeProcess(optionsOf(2));
      await member(2, 'connected').waitFor({ timeout: memberChangeTimeoutMs });
      assert.equal(await openPage().locator('#members tr').count(), 3);
    });

    await step(
      'a value sent with `weft send` shows as the counter state, once then twice',
      45_000,
      async () => {
        const row = openPage().locator(`#functions tr[data-address="${counterAddress}"]`);
        for (const count of [1, 2]) {
          const sent = await runCli(['send', counterAddress, '"from the test"', '--node', urls[0] as string]);
          assert.equal(sent.code, 0, `weft send failed:\n${sent.output}`);
          await row
            .locator('.state', { hasText: new RegExp(`"count":${count}(?!\\d)`) })
            .waitFor({ timeout: pageTimeoutMs });
        }
        assert.match(await row.locator('.state').innerText(), /"last":"from the test"/);
      },
    );

    await step('a screenshot is saved and the page logged no error or warning', 20_000, async () => {
      await mkdir(path.dirname(screenshotFile), { recursive: true });
      await openPage().screenshot({ path: screenshotFile, fullPage: true, timeout: pageTimeoutMs });
      assert.deepEqual(problems, []);
    });
  },
);

/**
 * Runs each step as a subtest with its own timeout, so a failure names the step; once a step
 * has failed (or timed out, its work still running), the later ones are skipped, not run
 * against a cluster in an unknown state.
 */
function stepper(t: TestContext) {
  let broken: string | undefined;
  return async (name: string, timeoutMs: number, run: () => Promise<void>): Promise<void> => {
    const skip = broken === undefined ? false : `skipped: the step "${broken}" did not pass`;
    await t.test(name, { timeout: timeoutMs, skip }, async () => {
      broken = name;
      await run();
      broken = undefined;
    });
  };
}

interface CliResult {
  readonly code: number | null;
  /** stdout and stderr, for the failure message. */
  readonly output: string;
}

function runCli(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      weftCliArgs(args),
      { cwd: repoRoot, timeout: 20_000, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, output: `${stdout}${stderr}${error === null ? '' : `\n${error.message}`}` });
      },
    );
  });
}

/** A skip reason when Chromium does not run here, false when it does; a failure when CI requires it. */
async function chromiumGate(env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  try {
    await versionOf(chromiumBinary);
    return false;
  } catch (error) {
    const reason = `Chromium missing (${chromiumBinary}: ${(error as Error).message}); install with \`apt-get install -y chromium\``;
    if (env[requireServicesVariable] === '1') {
      throw new Error(`${reason}. ${requireServicesVariable}=1, so this is a failure, not a skip`, {
        cause: error,
      });
    }
    return reason;
  }
}

function versionOf(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], { timeout: 10_000, maxBuffer: 64 * 1024 }, (error, stdout) => {
      if (error === null) resolve(stdout.trim());
      else
        reject(new Error((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : error.message));
    });
  });
}
