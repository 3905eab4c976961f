import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`); playwright-core brings no browser of its own. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where a failing browser test leaves its screenshot (git-ignored). */
export const RESULTS_DIR = 'test-results';

/**
 * `describe(..., browserSuite)` options: the browser suites run whenever Chromium is
 * installed. Without it they are skipped with a printed notice, except under CI, where they
 * run (and fail), because CI must exercise them.
 */
export function browserSuite(): { skip: string | false } {
  if (process.env.CI || existsSync(CHROMIUM)) return { skip: false };
  const reason = `${CHROMIUM} is missing; browser tests skipped (apt-get install -y chromium, or set CI=1 to force them)`;
  console.log(`NOTICE: ${reason}`);
  return { skip: reason };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}

/** What a page did that a test should fail on: console errors (CSP violations among them) and requests elsewhere. */
export interface PageWatch {
  errors: string[];
  foreign: string[];
}

/**
 * A fresh page (its own context, so its own sessionStorage) that records every console error
 * and every request to any origin but `origin`. The viewport defaults to a laptop's.
 */
export async function openPage(
  browser: Browser,
  origin: string,
  viewport = { width: 1280, height: 900 },
): Promise<{ page: Page; watch: PageWatch; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const watch: PageWatch = { errors: [], foreign: [] };
  page.on('console', (message) => {
    // Chromium reports every answer of 400 or more as a console error; the 401 and 503 tests expect them.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      watch.errors.push(message.text());
    }
  });
  page.on('pageerror', (err) => watch.errors.push(String(err)));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) watch.foreign.push(url);
  });
  return { page, watch, close: () => context.close() };
}

/**
 * Runs `body` with the page; when it throws, the page as it was is saved as
 * `test-results/<name>.png` before the failure is passed on.
 */
export async function screenshotOnFailure<T>(page: Page, name: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const path = join(RESULTS_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
    await page.screenshot({ path, fullPage: true }).catch(() => undefined);
    console.log(`screenshot of the failing page: ${path}`);
    throw err;
  }
}
