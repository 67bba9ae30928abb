/**
 * The chains list and the topology page in a real headless Chromium against a
 * real collector, fed through `POST /v1/hops`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ChainDetail, ChainList } from '../collector/api-types.ts';
import {
  ChainFixture,
  deadLetterChain,
  fanOutChain,
  lostMessageChain,
  redeliveryLoopChain,
  threeServiceChain,
  unroutableChain,
} from './helpers/chain-fixtures.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { ensureUiBuilt, ingest, launchBrowser, openPage, screenshot, until } from './helpers/ui-browser.ts';

let collector: TestCollector;
let browser: Browser;
let page: Page;
let dialogs: string[];
let pageErrors: string[];
// Recent timestamps, so the topology's default window (last 24 h) holds them.
const start = Date.now() - 20 * 60_000;
const fixtures = [
  threeServiceChain({ seed: 101, start, skewMs: { billing: -180_000 } }),
  deadLetterChain({ seed: 102, start: start + 60_000 }),
  redeliveryLoopChain({ seed: 103, start: start + 120_000 }),
  fanOutChain({ seed: 104, start: start + 180_000 }),
  lostMessageChain({ seed: 105, start: start + 240_000 }),
  unroutableChain({ seed: 106, start: start + 300_000 }),
];

beforeAll(async () => {
  await ensureUiBuilt();
  collector = await startTestCollector();
  browser = await launchBrowser();
  ({ page, dialogs, pageErrors } = await openPage(browser));
});

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
});

const rowIds = (p: Page) => p.locator('[data-chain-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-correlation-id')));

/** Tick statuses in the status filter (a multi-select dropdown). */
async function chooseStatuses(p: Page, statuses: string[]): Promise<void> {
  await p.getByTestId('filter-status-summary').click();
  for (const status of statuses) await p.locator(`[data-status-option="${status}"]`).check();
  await p.getByTestId('filter-status-summary').click();
}

describe('chains list', () => {
  it('an empty collector says where to point the services', async () => {
    await page.goto(`${collector.url}/`);
    const empty = page.getByTestId('empty');
    await empty.waitFor();
    expect(await empty.textContent()).toContain('No chains yet');
    expect(await empty.textContent()).toContain(`${collector.url}/v1/hops`);
  });

  it('lists every ingested chain, newest first, with status badges', async () => {
    for (const f of fixtures) await ingest(collector.url, f.hops);
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').nth(fixtures.length - 1).waitFor();

    const api = (await getJson(collector.url, '/api/chains')).body as ChainList;
    expect(await rowIds(page)).toEqual(api.items.map((c) => c.correlationId));
    expect(new Set(await rowIds(page))).toEqual(new Set(fixtures.map((f) => f.correlationId)));

    for (const chain of api.items) {
      const row = page.locator(`[data-chain-row][data-correlation-id="${chain.correlationId}"]`);
      expect(await row.getAttribute('data-status')).toBe(chain.status);
      expect(await row.locator('.badge').first().getAttribute('data-status')).toBe(chain.status);
      const text = (await row.textContent()) ?? '';
      for (const service of chain.services) expect(text).toContain(service);
      expect(text).toContain(String(chain.hopCount));
    }
    // The failing fixtures are flagged as such, not as ok.
    const deadLettered = page.locator(`[data-chain-row][data-correlation-id="${fixtures[1].correlationId}"]`);
    expect(await deadLettered.getAttribute('data-status')).not.toBe('ok');
    await screenshot(page, 'chains-list');
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('the search finds a chain by its correlation id', async () => {
    const target = fixtures[3].correlationId;
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await page.getByTestId('search').fill(target);
    await page.getByTestId('search').press('Enter');
    await until(() => rowIds(page)).toEqual([target]);
    expect(page.url()).toContain(`q=${encodeURIComponent(target)}`);
  });

  it('the search finds a chain by a message id and by a trace id', async () => {
    const target = fixtures[4];
    const detail = (await getJson(collector.url, `/api/chains/${target.correlationId}`)).body as ChainDetail;
    await page.goto(`${collector.url}/#/?q=${encodeURIComponent(target.messageIds[1])}`);
    await until(() => rowIds(page)).toEqual([target.correlationId]);
    await page.goto(`${collector.url}/#/?q=${encodeURIComponent(detail.traceIds[0])}`);
    await until(() => rowIds(page)).toContain(target.correlationId);
  });

  it('filters by status and by service', async () => {
    const api = (await getJson(collector.url, '/api/chains?status=failed')).body as ChainList;
    expect(api.items.length).toBeGreaterThan(0);
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await chooseStatuses(page, ['failed']);
    await until(() => rowIds(page)).toEqual(api.items.map((c) => c.correlationId));

    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await page.getByTestId('filter-service').selectOption('dlq-monitor');
    await until(() => rowIds(page)).toEqual([fixtures[1].correlationId]);
  });

  it('the redelivered filter shows exactly the chains with a redelivery, as the collector selects them', async () => {
    const api = (await getJson(collector.url, '/api/chains?status=redelivered')).body as ChainList;
    expect(api.items.map((c) => c.correlationId)).toContain(fixtures[2].correlationId);
    expect(api.items.every((c) => c.redelivered)).toBe(true);
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await chooseStatuses(page, ['redelivered']);
    await until(() => rowIds(page)).toEqual(api.items.map((c) => c.correlationId));
  });

  it('a chain ingested while the list is open appears without a reload', async () => {
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await until(() => page.getByTestId('live-state').textContent()).toBe('live');
    // A reload would lose this flag.
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));

    const late = threeServiceChain({ seed: 107, start: Date.now() - 1000 });
    await ingest(collector.url, late.hops);
    const row = page.locator(`[data-chain-row][data-correlation-id="${late.correlationId}"]`);
    await row.waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    // Newest first: it started last, so it is on top.
    expect((await rowIds(page))[0]).toBe(late.correlationId);
  });

  it('a chain that grows while the list is open updates its row in place', async () => {
    const f = new ChainFixture({ seed: 108, start: Date.now() - 500 });
    const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.growing' });
    await ingest(collector.url, f.hops());
    await page.goto(`${collector.url}/`);
    const row = page.locator(`[data-chain-row][data-correlation-id="${f.correlationId}"]`);
    await row.waitFor();
    await until(() => page.getByTestId('live-state').textContent()).toBe('live');
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));
    const before = f.hops().length;
    f.consume({ messageId: id, service: 'billing', queue: 'billing.growing', at: 20 });
    await ingest(collector.url, f.hops().slice(before));
    await until(async () => (await row.locator('td.num').first().textContent())?.trim()).toBe(String(f.hops().length));
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(await row.textContent()).toContain('billing');
  });

  it('clicking a row opens the chain at a deep link', async () => {
    const target = fixtures[0].correlationId;
    await page.goto(`${collector.url}/`);
    await page.locator(`[data-chain-row][data-correlation-id="${target}"] [data-testid="chain-link"]`).click();
    await page.getByTestId('chain-view').waitFor();
    expect(decodeURIComponent(new URL(page.url()).hash)).toContain(`#/chains/${target}`);
  });

  it('a chain id the collector does not know is said plainly, with no retry that cannot help', async () => {
    await page.goto(`${collector.url}/#/chains/no-such-chain`);
    const missing = page.getByTestId('not-found');
    await missing.waitFor();
    expect(await missing.textContent()).toContain('No chain with id no-such-chain.');
    expect(await page.getByText('Something went wrong').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'try again' }).count()).toBe(0);
    expect(await missing.getByRole('link', { name: 'Back to the chains' }).getAttribute('href')).toBe('#/');
  });
});

describe('topology', () => {
  it('draws the observed services, exchanges and queues with counts', async () => {
    await page.goto(`${collector.url}/#/topology`);
    await page.locator('[data-node-id]').first().waitFor();
    const ids = await page.locator('[data-node-id]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-node-id')));
    for (const id of ['service:order-api', 'service:billing', 'exchange:orders', 'queue:billing.order-placed']) {
      expect(ids).toContain(id);
    }
    expect(await page.locator('[data-node-kind="service"]').count()).toBeGreaterThanOrEqual(5);
    expect(await page.locator('[data-edge]').count()).toBeGreaterThan(0);
    expect(await page.locator('.topo-edge-label').first().textContent()).toMatch(/\d+ msgs?/);
    await screenshot(page, 'topology');
    expect(pageErrors).toEqual([]);
  });
});
