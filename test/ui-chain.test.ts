/**
 * The chain view in a real headless Chromium against a real collector, fed
 * through `POST /v1/hops`: causal order, step-through, first failure, hostile
 * message content, and a 2,000-hop chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ChainDetail } from '../collector/api-types.ts';
import type { HopRecord } from '../src/hop.ts';
import { ChainFixture, deadLetterChain, largeChain, threeServiceChain } from './helpers/chain-fixtures.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { asRecords, ensureUiBuilt, ingest, launchBrowser, openPage, screenshot, until } from './helpers/ui-browser.ts';

const JAEGER = 'http://jaeger.example:16686';
const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_FLAG = '<img src=x onerror="window.__pwned=1">';

let collector: TestCollector;
let browser: Browser;
let page: Page;
let dialogs: string[];
let pageErrors: string[];

const start = Date.now() - 30 * 60_000;
// billing's clock runs 3 minutes behind: arrival time and raw ts disagree with causality.
const skewed = threeServiceChain({ seed: 201, start, skewMs: { billing: -180_000 } });
const failing = deadLetterChain({ seed: 202, start: start + 60_000 });
const large = largeChain(2000, { seed: 203, start: start + 120_000 });
const hostile = hostileChain();
const slow = slowChain();

/** billing picks the message up 12 minutes after it was sent: an idle gap to compress. */
function slowChain(): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed: 205, start: start + 240_000 });
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
  f.consume({ messageId: id, service: 'billing', queue: 'orders.q', at: 12 * 60_000, handleMs: 30 });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

/** A chain whose routing key, headers, error message and payload all carry markup. */
function hostileChain(): { correlationId: string; records: HopRecord[] } {
  const f = new ChainFixture({ seed: 204, start: start + 180_000 });
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: `order.${HOSTILE}` });
  f.consume({
    messageId: id,
    service: 'billing',
    queue: 'billing.orders',
    at: 10,
    outcome: 'error',
    error: { type: 'Error', message: `bad input ${HOSTILE} ${HOSTILE_FLAG}`, stack: `Error: ${HOSTILE}\n    at handler (billing.js:1:1)` },
  });
  const records = asRecords(f.hops()).map((hop) => ({
    ...hop,
    payload: `{"note":"${HOSTILE.replaceAll('"', '\\"')}","flag":"${HOSTILE_FLAG.replaceAll('"', '\\"')}"}`,
    headers: { ...hop.headers, 'x-evil': HOSTILE_FLAG },
  }));
  return { correlationId: f.correlationId, records };
}

beforeAll(async () => {
  await ensureUiBuilt();
  collector = await startTestCollector({ jaegerUrl: JAEGER });
  for (const hops of [skewed.hops, failing.hops, large.hops, hostile.records, slow.hops]) await ingest(collector.url, hops);
  browser = await launchBrowser();
  ({ page, dialogs, pageErrors } = await openPage(browser));
});

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
});

async function detail(correlationId: string): Promise<ChainDetail> {
  const { status, body } = await getJson(collector.url, `/api/chains/${encodeURIComponent(correlationId)}`);
  expect(status).toBe(200);
  return body as ChainDetail;
}

async function openChain(correlationId: string, seq?: number): Promise<void> {
  const hash = `#/chains/${encodeURIComponent(correlationId)}${seq === undefined ? '' : `/hops/${seq}`}`;
  // A fresh document each time, so no state leaks between tests.
  await page.goto('about:blank');
  await page.goto(`${collector.url}/${hash}`);
  await page.locator('[data-hop-row]').first().waitFor();
}

const selectedSeq = async (p: Page) => Number(await p.locator('[data-hop-row][aria-selected="true"]').getAttribute('data-seq'));
const detailSeq = async (p: Page) => Number(await p.getByTestId('hop-detail').getAttribute('data-seq'));
const hashSeq = (p: Page) => Number(/\/hops\/(\d+)$/.exec(new URL(p.url()).hash)?.[1] ?? NaN);

describe('chain view', () => {
  it('shows every hop in the causal order the collector gave, whatever the clocks said', async () => {
    const api = await detail(skewed.correlationId);
    await openChain(skewed.correlationId);
    const rendered = await page.locator('[data-hop-row]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-hop-id'))));
    expect(rendered).toEqual(api.hops.map((h) => h.id));
    expect(rendered).toHaveLength(skewed.hops.length);
    // The raw timestamps disagree with that order (billing is 3 minutes behind)…
    const byTs = [...api.hops].sort((a, b) => a.ts - b.ts).map((h) => h.id);
    expect(byTs).not.toEqual(rendered);
    // …and the skew the collector estimated is on screen, per service.
    const billingSkew = api.skew.find((s) => s.service === 'billing')!;
    expect(billingSkew.offsetMs).not.toBe(0);
    const lane = page.locator('[data-lane="billing"] .skew');
    expect(await lane.textContent()).toContain('clock skew');
    expect(Number(await lane.getAttribute('data-skew'))).toBe(billingSkew.offsetMs);
    // The causal tree holds every message.
    expect(await page.locator('[data-msg-row]').count()).toBe(api.messageCount);
    await screenshot(page, 'chain-clock-skew');
  });

  it('step-through moves the selection with the buttons and the keyboard, in both views and the URL', async () => {
    const api = await detail(skewed.correlationId);
    await openChain(skewed.correlationId);
    await until(() => selectedSeq(page)).toBe(0);

    await page.getByTestId('next-hop').click();
    await until(() => selectedSeq(page)).toBe(1);
    await until(() => detailSeq(page)).toBe(1);
    await until(() => hashSeq(page)).toBe(1);

    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await until(() => selectedSeq(page)).toBe(3);
    await page.keyboard.press('k');
    await until(() => selectedSeq(page)).toBe(2);
    await page.keyboard.press('ArrowDown');
    await until(() => selectedSeq(page)).toBe(3);
    await page.getByTestId('prev-hop').click();
    await until(() => selectedSeq(page)).toBe(2);
    await until(() => hashSeq(page)).toBe(2);

    // The tree highlights the selected hop's message.
    const hop = api.hops.find((h) => h.seq === 2)!;
    expect(await page.locator('[data-msg-row][aria-selected="true"]').getAttribute('data-message-id')).toBe(hop.messageId);
    expect(await page.getByTestId('hop-detail').textContent()).toContain(hop.messageId);

    await page.keyboard.press('G');
    await until(() => selectedSeq(page)).toBe(api.hops.length - 1);
    await page.keyboard.press('j');
    await until(() => selectedSeq(page)).toBe(api.hops.length - 1);
    expect(await page.getByTestId('keyboard-help').textContent()).toContain('next');
  });

  it('a long idle gap is compressed and says what the chain waited for', async () => {
    await openChain(slow.correlationId);
    const gaps = page.locator('[data-gap]');
    expect(await gaps.count()).toBe(1);
    expect(await gaps.textContent()).toContain('waited 12 m in orders.q');
    // Compressed: the 12 minutes take less room than a few rows.
    const [send, receive] = await page.locator('[data-hop-row]').evaluateAll((rows) => rows.slice(0, 2).map((r) => r.getBoundingClientRect().top));
    expect(receive - send).toBeLessThan(100);
  });

  it('a deep link to a hop opens with that hop selected', async () => {
    await openChain(skewed.correlationId, 4);
    await until(() => selectedSeq(page)).toBe(4);
    await until(() => detailSeq(page)).toBe(4);
  });

  it('a failed chain opens on its first failure', async () => {
    const api = await detail(failing.correlationId);
    expect(api.firstFailure).toBeDefined();
    const failure = api.hops.find((h) => h.id === api.firstFailure!.hopId)!;
    expect(failure.seq).toBeGreaterThan(0);
    await openChain(failing.correlationId);
    await until(() => selectedSeq(page)).toBe(failure.seq);
    await until(() => hashSeq(page)).toBe(failure.seq);
    expect(await page.getByTestId('first-failure').textContent()).toContain(api.firstFailure!.reason);
    if (failure.error) expect(await page.getByTestId('hop-error').textContent()).toContain(failure.error.message);
    // Header: status, problems, Jaeger link per trace, exports.
    expect(await page.locator('.chain-head .badge').first().getAttribute('data-status')).toBe(api.status);
    expect(await page.getByTestId('jaeger-link').first().getAttribute('href')).toBe(`${JAEGER}/trace/${api.traceIds[0]}`);
    await screenshot(page, 'chain-first-failure');

    // Stepping away and back with `f`.
    await page.keyboard.press('g');
    await until(() => selectedSeq(page)).toBe(0);
    await page.keyboard.press('f');
    await until(() => selectedSeq(page)).toBe(failure.seq);
  });

  it('the export buttons download the chain as Jaeger and OTLP JSON', async () => {
    await openChain(failing.correlationId);
    for (const name of ['Jaeger JSON', 'OTLP JSON']) {
      const href = await page.getByText(name).getAttribute('href');
      const response = await page.request.get(href!);
      expect(response.status()).toBe(200);
      expect(typeof (await response.json())).toBe('object');
    }
  });

  it('markup in a message is shown as text and never runs', async () => {
    const api = await detail(hostile.correlationId);
    await openChain(hostile.correlationId);
    const timelineText = (await page.getByTestId('timeline').textContent()) ?? '';
    expect(timelineText).toContain(`order.${HOSTILE}`);

    const send = api.hops.find((h) => h.kind === 'send')!;
    await openChain(hostile.correlationId, send.seq);
    // The payload section is open for a captured payload.
    expect(await page.getByTestId('hop-payload').textContent()).toContain(HOSTILE);
    await page.getByText('Log line').click();
    expect(await page.getByTestId('hop-logline').textContent()).toContain('x-evil');
    const process = api.hops.find((h) => h.kind === 'process')!;
    await page.locator(`[data-hop-row][data-seq="${process.seq}"]`).click();
    expect(await page.getByTestId('hop-error').textContent()).toContain(HOSTILE);
    expect(await page.getByTestId('hop-detail').textContent()).toContain(HOSTILE_FLAG);

    await screenshot(page, 'chain-hostile-input');
    // Nothing was parsed as markup: no <img> anywhere, no alert, no flag.
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('an open chain picks up hops that arrive later, keeping the selected hop', async () => {
    const f = new ChainFixture({ seed: 206, start: Date.now() - 500 });
    const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
    await ingest(collector.url, f.hops());
    await openChain(f.correlationId);
    await until(() => page.locator('[data-hop-row]').count()).toBe(1);
    await until(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('live');
    const before = f.hops().length;
    f.consume({ messageId: id, service: 'billing', queue: 'billing.orders', at: 15 });
    await ingest(collector.url, f.hops().slice(before));
    await until(() => page.locator('[data-hop-row]').count()).toBe(f.hops().length);
    await until(() => selectedSeq(page)).toBe(0);
  });

  it('a 2,000-hop chain opens with only the visible rows in the DOM', async () => {
    const api = await detail(large.correlationId);
    expect(api.hops).toHaveLength(2000);
    await openChain(large.correlationId);
    const rows = await page.locator('[data-hop-row]').count();
    expect(rows).toBeGreaterThan(5);
    expect(rows).toBeLessThan(200);
    expect(await page.locator('[data-msg-row]').count()).toBeLessThan(100);

    // Jumping to the end renders the end, still a small window.
    await page.keyboard.press('End');
    await until(() => selectedSeq(page)).toBe(1999);
    await until(() => detailSeq(page)).toBe(1999);
    expect(await page.locator('[data-hop-row]').count()).toBeLessThan(200);
    expect(await page.locator('[data-hop-row][data-seq="0"]').count()).toBe(0);

    // Scrolling the timeline brings other rows in.
    await page.getByTestId('timeline').evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await until(async () => Number(await page.locator('[data-hop-row]').first().getAttribute('data-seq')))
      .toBeGreaterThan(200);
    await until(async () => Number(await page.locator('[data-hop-row]').first().getAttribute('data-seq'))).toBeLessThan(1900);
    expect(await page.locator('[data-hop-row]').count()).toBeLessThan(200);
    expect(pageErrors).toEqual([]);
  });
});
