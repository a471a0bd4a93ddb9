import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium package (scripts/ci/chromium.sh); playwright-core drives it and downloads nothing. */
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of every page the browser tests open, kept as test artifacts (gitignored). */
export const SCREENSHOTS = join(process.cwd(), 'test-artifacts', 'ui');

/** A reason to skip the browser tests, or false. Under CI=true a missing Chromium fails instead. */
export function skipWithoutChromium(): false | string {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') throw new Error(`Chromium is required under CI=true but ${CHROMIUM} is missing (scripts/ci/chromium.sh installs it)`);
  return `Chromium not installed at ${CHROMIUM} (run scripts/ci/chromium.sh)`;
}

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless Chromium, nothing fetched in the background. Playwright gives every launch() a fresh temporary profile
 * (--user-data-dir) of its own and refuses one in `args`; each test file launches its own browser.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Fails the test on anything the page logs as an error (a CSP violation, an exception, a failed script). */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return errors;
}
