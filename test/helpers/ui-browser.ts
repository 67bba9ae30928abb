/**
 * What the UI tests share: a built UI (built here when missing or older than
 * its sources, so `npm test` works from a fresh clone), a headless Debian
 * Chromium driven by playwright-core, and ingest of fixture chains into a
 * real collector through `POST /v1/hops`.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { StoredHop } from '../../collector/api-types.ts';
import type { HopRecord } from '../../src/contract/hop.ts';
import { postHops } from './collector.ts';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const UI_DIR = join(root, 'dist/ui');
export const SCREENSHOT_DIR = join(root, 'test-output/screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let building: Promise<void> | undefined;

function uiIsFresh(): boolean {
  const index = join(UI_DIR, 'index.html');
  if (!existsSync(index)) return false;
  const sources = Math.max(
    newestMtime(join(root, 'ui')),
    statSync(join(root, 'collector/api-types.ts')).mtimeMs,
    statSync(join(root, 'src/contract/hop.ts')).mtimeMs,
  );
  return statSync(index).mtimeMs >= sources;
}

/**
 * Build `dist/ui` with Vite unless it is newer than everything under `ui/` and
 * the API types. Test files run in parallel workers, and a build empties the
 * output directory first, so builds take a lock (an atomic mkdir) and a worker
 * that waited re-checks before building again.
 */
export function ensureUiBuilt(): Promise<void> {
  building ??= (async () => {
    if (uiIsFresh()) return;
    const lock = join(root, 'dist/.ui-build.lock');
    mkdirSync(join(root, 'dist'), { recursive: true });
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch {
        // Another worker is building; a lock older than two minutes was left by a killed run.
        if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
        await sleep(200);
      }
    }
    try {
      if (uiIsFresh()) return;
      const { build } = await import('vite');
      await build({ configFile: join(root, 'ui/vite.config.ts'), logLevel: 'warn' });
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  })();
  return building;
}

/** Headless Debian Chromium; a missing binary is a failure that says what to install, never a skip. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}. Install Debian's \`chromium\` package (or set CHROMIUM_PATH) and run the tests again.`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
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

/**
 * A page that records what a hostile payload would need to do to be noticed:
 * any dialog, any uncaught page error. Tests assert both stay empty.
 */
export async function openPage(browser: Browser, viewport = { width: 1600, height: 1000 }): Promise<{ page: Page; dialogs: string[]; pageErrors: string[] }> {
  const context = await browser.newContext({ viewport, colorScheme: 'dark' });
  const page = await context.newPage();
  const dialogs: string[] = [];
  const pageErrors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { page, dialogs, pageErrors };
}

/** Hop records as a service would send them: the fixture's store bookkeeping removed. */
export function asRecords(hops: readonly (StoredHop | HopRecord)[]): HopRecord[] {
  return hops.map((hop) => {
    const { id, receivedAt, ...record } = hop as StoredHop;
    void id;
    void receivedAt;
    return record as HopRecord;
  });
}

/** POST hops to the collector and fail loudly unless it answers 202. */
export async function ingest(url: string, hops: readonly (StoredHop | HopRecord)[]): Promise<void> {
  const records = asRecords(hops);
  for (let i = 0; i < records.length; i += 1000) {
    const { status, body } = await postHops(url, records.slice(i, i + 1000));
    if (status !== 202) throw new Error(`ingest answered ${status}: ${JSON.stringify(body)}`);
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/**
 * `expect.poll` with room for a loaded CI machine: the UI reacts to events
 * (SSE, renders), so assertions wait for the state rather than for a time.
 */
export function until<T>(read: () => T | Promise<T>) {
  return expect.poll(read, { timeout: 15_000, interval: 50 });
}
