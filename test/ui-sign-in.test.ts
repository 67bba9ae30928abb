/**
 * Signing in to a collector with a token, in a real headless Chromium: the UI
 * asks for the token once, keeps an HttpOnly, SameSite=Strict session cookie
 * for the browser session, and live events flow with that cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { HopRecord } from '../src/contract/hop.ts';
import { threeServiceChain } from './helpers/chain-fixtures.ts';
import { postHops, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { asRecords, ensureUiBuilt, launchBrowser, until } from './helpers/ui-browser.ts';

const TOKEN = 'ui-sign-in-token';
let collector: TestCollector;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

async function ingest(hops: readonly HopRecord[]): Promise<void> {
  const { status, body } = await postHops(collector.url, hops, { token: TOKEN });
  if (status !== 202) throw new Error(`ingest answered ${status}: ${JSON.stringify(body)}`);
}

const first = threeServiceChain({ seed: 301, start: Date.now() - 60_000 });

beforeAll(async () => {
  await ensureUiBuilt();
  collector = await startTestCollector({ token: TOKEN });
  await ingest(asRecords(first.hops));
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
});

const row = (p: Page, correlationId: string) => p.locator(`[data-chain-row][data-correlation-id="${correlationId}"]`);

describe('signing in to a collector with a token', () => {
  it('the UI asks for the token and shows no chain before it is given', async () => {
    await page.goto(`${collector.url}/`);
    await page.getByTestId('sign-in').waitFor();
    expect(await page.locator('[data-chain-row]').count()).toBe(0);
    expect(await page.getByTestId('chain-list').count()).toBe(0);
  });

  it('a wrong token is refused with a message and no cookie', async () => {
    await page.locator('input[name="token"]').fill('not it');
    await page.getByRole('button', { name: 'sign in' }).click();
    await until(() => page.getByTestId('sign-in').getByRole('alert').textContent()).toContain('not this collector');
    expect(await context.cookies()).toEqual([]);
  });

  it('the right token opens the chains, through an HttpOnly, SameSite=Strict session cookie the page cannot read', async () => {
    await page.locator('input[name="token"]').fill(TOKEN);
    await page.getByRole('button', { name: 'sign in' }).click();
    await row(page, first.correlationId).waitFor();
    expect(await page.getByTestId('sign-in').count()).toBe(0);
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'hoptrace_session', httpOnly: true, sameSite: 'Strict', path: '/' });
    // A session cookie: it ends with the browser session.
    expect(cookies[0].expires).toBe(-1);
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
  });

  it('live events arrive with the session cookie', async () => {
    await until(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    const late = threeServiceChain({ seed: 302, start: Date.now() - 1000 });
    await ingest(asRecords(late.hops));
    await row(page, late.correlationId).waitFor();
  });

  it('a reload keeps the session: the token is asked for once', async () => {
    await page.reload();
    await row(page, first.correlationId).waitFor();
    expect(await page.getByTestId('sign-in').count()).toBe(0);
  });

  it('another browser session is asked for the token again', async () => {
    const other = await browser.newContext();
    try {
      const p = await other.newPage();
      await p.goto(`${collector.url}/#/topology`);
      await p.getByTestId('sign-in').waitFor();
    } finally {
      await other.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
