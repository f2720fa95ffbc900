// Debian's Chromium, driven by playwright-core, headless. The browser is a tool of the machine,
// not a package: without it the dashboard cases fail at once saying so; none is ever downloaded.

import { access, constants } from 'node:fs/promises';

import { chromium, type Browser } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_BINARY } from '../../test/e2e/chromium.ts';

export const chromiumBinary = CHROMIUM_BINARY;
const chromiumArgs = [...CHROMIUM_ARGS];
const launchTimeoutMs = 30_000;

export async function launchChromium(): Promise<Browser> {
  try {
    await access(chromiumBinary, constants.X_OK);
  } catch {
    throw new Error(
      `the dashboard cases need Chromium at ${chromiumBinary} (Debian: apt-get install chromium); it is not there`,
    );
  }
  return chromium.launch({
    executablePath: chromiumBinary,
    headless: true,
    args: chromiumArgs,
    timeout: launchTimeoutMs,
  });
}
