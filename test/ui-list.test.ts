/**
 * The chains list and the topology page in a real headless Chromium against a
 * real collector, fed through `POST /v1/hops`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PROBLEM_STATUSES, type ChainDetail, type ChainList, type Topology } from '../collector/api-types.ts';
import {
  ChainFixture,
  deadLetterChain,
  fanOutChain,
  inFlightChain,
  lostMessageChain,
  redeliveryLoopChain,
  threeServiceChain,
  unroutableChain,
} from './helpers/chain-fixtures.ts';
import { getJson, makeHop, messageHops, startTestCollector, type TestCollector } from './helpers/collector.ts';
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

const rowHash = () => decodeURIComponent(new URL(page.url()).hash);

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

describe('triage in the list', () => {
  it('keyboard selection follows the chain, not the row, when new chains arrive above it', async () => {
    await page.goto('about:blank');
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').nth(2).waitFor();
    await until(() => page.getByTestId('live-state').textContent()).toBe('live');
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    const chosen = (await rowIds(page))[1]!;
    await until(() => page.locator('[data-chain-row][aria-selected="true"]').getAttribute('data-correlation-id')).toBe(chosen);

    const newer = threeServiceChain({ seed: 120, start: Date.now() - 200 });
    await ingest(collector.url, newer.hops);
    await until(async () => (await rowIds(page))[0]).toBe(newer.correlationId);
    // The same chain is still selected, one row further down …
    expect(await page.locator('[data-chain-row][aria-selected="true"]').getAttribute('data-correlation-id')).toBe(chosen);
    expect(await page.locator('[data-chain-row][aria-selected="true"]').getAttribute('data-index')).toBe('2');
    // … and Enter opens it.
    await page.keyboard.press('Enter');
    await page.getByTestId('chain-view').waitFor();
    expect(await page.getByTestId('chain-view').getAttribute('data-correlation-id')).toBe(chosen);
  });

  it('a search hit opens the chain on the searched message’s first hop, and a traceparent on its span', async () => {
    const target = fixtures[0];
    const api = (await getJson(collector.url, `/api/chains/${target.correlationId}`)).body as ChainDetail;
    const message = target.messageIds[1];
    const firstHop = api.hops.find((h) => h.messageId === message)!;
    expect(firstHop.seq).toBeGreaterThan(0);
    await page.goto(`${collector.url}/#/?q=${encodeURIComponent(message)}`);
    await until(() => rowIds(page)).toEqual([target.correlationId]);
    await page.getByTestId('chain-link').click();
    await page.getByTestId('chain-view').waitFor();
    await until(() => page.locator('[data-hop-row][aria-selected="true"]').getAttribute('data-seq')).toBe(String(firstHop.seq));
    // The URL then names the hop, as any other selection does.
    await until(rowHash).toBe(`#/chains/${target.correlationId}/hops/${firstHop.seq}`);

    const span = api.hops.find((h) => h.kind === 'receive' && h.service === 'shipping')!;
    await page.goto('about:blank');
    await page.goto(`${collector.url}/#/?q=${encodeURIComponent(`00-${span.traceId}-${span.spanId}-01`)}`);
    await until(() => rowIds(page)).toContain(target.correlationId);
    await page.locator(`[data-chain-row][data-correlation-id="${target.correlationId}"] [data-testid="chain-link"]`).click();
    await page.getByTestId('chain-view').waitFor();
    await until(() => page.locator('[data-hop-row][aria-selected="true"]').getAttribute('data-seq')).toBe(String(span.seq));
  });

  it('"any problem" and several statuses at once filter as the collector does', async () => {
    const problems = (await getJson(collector.url, `/api/chains?status=${PROBLEM_STATUSES.join(',')}`)).body as ChainList;
    expect(problems.items.length).toBeGreaterThan(2);
    expect(problems.items.every((c) => c.status !== 'ok')).toBe(true);
    await page.goto('about:blank');
    await page.goto(`${collector.url}/`);
    await page.locator('[data-chain-row]').first().waitFor();
    await chooseStatuses(page, ['problems']);
    await until(() => rowIds(page)).toEqual(problems.items.map((c) => c.correlationId));
    expect(await page.getByTestId('filter-status-summary').textContent()).toBe('any problem');

    const two = (await getJson(collector.url, '/api/chains?status=failed,lost')).body as ChainList;
    await page.getByTestId('filter-status-summary').click();
    await page.locator('[data-status-option="problems"]').uncheck();
    await page.locator('[data-status-option="failed"]').check();
    await page.locator('[data-status-option="lost"]').check();
    await until(() => rowIds(page)).toEqual(two.items.map((c) => c.correlationId));
    expect(await page.getByTestId('filter-status-summary').textContent()).toBe('failed, lost');
    expect(new URL(page.url()).hash).toContain(`status=${encodeURIComponent('failed,lost')}`);
  });

  it('a problem row names the failing service and the first error; an in-flight chain is not a problem', async () => {
    const flying = inFlightChain({ seed: 121, start: Date.now() - 1_000 });
    await ingest(collector.url, flying.hops);
    await page.goto('about:blank');
    await page.goto(`${collector.url}/`);
    const dead = page.locator(`[data-failure-for="${fixtures[1].correlationId}"] [data-testid="row-failure"]`);
    await dead.waitFor();
    expect(await dead.textContent()).toBe('billingPaymentDeclinedError: card declined: insufficient funds');
    expect(await dead.locator('.row-failure-svc').textContent()).toBe('billing');
    const lost = page.locator(`[data-failure-for="${fixtures[4].correlationId}"] [data-testid="row-failure"]`);
    expect(await lost.textContent()).toContain('billingsent by billing to exchange "payments"');

    const row = page.locator(`[data-chain-row][data-correlation-id="${flying.correlationId}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-status')).toBe('in-flight');
    expect(await page.locator(`[data-failure-for="${flying.correlationId}"]`).count()).toBe(0);
    expect(await row.getByTestId('row-duration').textContent()).toMatch(/^≥ .*still open$/);

    // Its waiting message's reason is information, not a red problem box.
    const api = (await getJson(collector.url, `/api/chains/${flying.correlationId}`)).body as ChainDetail;
    const waiting = api.hops.find((h) => h.kind === 'receive' && h.service === 'accounting')!;
    await page.goto(`${collector.url}/#/chains/${flying.correlationId}/hops/${waiting.seq}`);
    const reason = page.getByTestId('status-reason');
    await reason.waitFor();
    expect(await reason.getAttribute('data-tone')).toBe('info');
    expect(await reason.textContent()).toBe('being handled by accounting on queue "accounting.invoice-issued"');
    expect(await page.getByTestId('first-failure').count()).toBe(0);
  });
});

describe('topology', () => {
  it('each node opens the chains that used it', async () => {
    await page.goto('about:blank');
    await page.goto(`${collector.url}/#/topology`);
    await page.locator('[data-node-id]').first().waitFor();

    const byService = (await getJson(collector.url, '/api/chains?service=dlq-monitor')).body as ChainList;
    await page.locator('[data-node-id="service:dlq-monitor"]').click();
    await page.getByTestId('chain-list').waitFor();
    expect(rowHash()).toBe('#/?service=dlq-monitor');
    await until(() => rowIds(page)).toEqual(byService.items.map((c) => c.correlationId));

    const byQueue = (await getJson(collector.url, '/api/chains?queue=billing.order-placed')).body as ChainList;
    expect(byQueue.items.length).toBeGreaterThan(1);
    await page.goto(`${collector.url}/#/topology`);
    await page.locator('[data-node-id="queue:billing.order-placed"]').click();
    await page.getByTestId('filter-queue').waitFor();
    expect(await page.getByTestId('filter-queue').textContent()).toContain('billing.order-placed');
    await until(() => rowIds(page)).toEqual(byQueue.items.map((c) => c.correlationId));

    const byExchange = (await getJson(collector.url, '/api/chains?exchange=payments')).body as ChainList;
    await page.goto(`${collector.url}/#/topology`);
    await page.locator('[data-node-id="exchange:payments"]').click();
    await page.getByTestId('filter-exchange').waitFor();
    await until(() => rowIds(page)).toEqual(byExchange.items.map((c) => c.correlationId));
  });

  it('rates are over the traffic span in one unit, and lost and stuck messages are drawn on their edges', async () => {
    const c = await startTestCollector({ lostAfterMs: 300, stuckAfterMs: 300, sweepIntervalMs: 100 });
    try {
      // 30 orders over two minutes, an hour ago; the page asks about the last 24 hours.
      const hourAgo = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
      const orders = Array.from({ length: 30 }, (_, i) => messageHops({ correlationId: `order-${i}`, ts: hourAgo + 5_000 + i * 4_000 })).flat();
      // A refund nobody consumes (default exchange: its routing key is the queue), a receipt never acked.
      const refund = makeHop({ kind: 'send', service: 'customer', exchange: '', routingKey: 'refunds', correlationId: 'refund-1' });
      const receipt = messageHops({ correlationId: 'receipt-1' }, { publisher: 'customer', consumer: 'printer', exchange: '', routingKey: 'receipts', queue: 'receipts' }).slice(0, 3);
      await ingest(c.url, [...orders, refund, ...receipt]);
      // The sweep judges them lost and stuck.
      await expect
        .poll(async () => ((await getJson(c.url, '/api/topology')).body as Topology).edges.filter((e) => e.lostCount || e.stuckCount).length, { timeout: 10_000 })
        .toBe(2);

      await page.goto('about:blank');
      await page.goto(`${c.url}/#/topology`);
      const published = page.locator('[data-edge="service:orders->exchange:orders"] .topo-edge-label').first();
      await published.waitFor();
      // 30 messages in 2–3 minutes: 10 to 15 a minute (not "0.7/h" over a day).
      const label = (await published.textContent()) ?? '';
      const [, count, rate] = /^(\d+) msgs · ([\d.]+)\/min$/.exec(label) ?? [];
      expect(label).toMatch(/\/min$/);
      expect(Number(count)).toBe(30);
      expect(Number(rate)).toBeGreaterThanOrEqual(10);
      expect(Number(rate)).toBeLessThanOrEqual(15);
      // One unit for every edge.
      const rates = await page.locator('.topo-edge-label.l-count').allTextContents();
      expect(rates.length).toBeGreaterThan(3);
      for (const text of rates) expect(text).toMatch(/\/min$/);
      expect(await page.getByTestId('traffic-span').textContent()).toContain('rates per minute');

      // The refunds queue is drawn, with its lost message on the edge into it.
      expect(await page.locator('[data-node-id="queue:refunds"]').count()).toBe(1);
      expect(await page.locator('[data-edge="exchange:->queue:refunds"] .topo-edge-label').textContent()).toBe('1 lost');
      expect(await page.locator('[data-node-id="queue:refunds"]').getAttribute('class')).toContain('has-errors');
      expect(await page.locator('[data-edge="queue:receipts->service:printer"]').textContent()).toContain('1 stuck');
      expect(await page.locator('[data-node-id="service:printer"]').getAttribute('class')).toContain('has-errors');
      await screenshot(page, 'topology-lost-stuck');
    } finally {
      await c.stop();
    }
  });
});
