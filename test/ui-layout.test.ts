/**
 * Every view readable at 1024×768 and 1920×1080, dark and light: a chain of
 * each status with the demo's long service and queue names, the chains list
 * and the topology, in a real headless Chromium against a real collector.
 * Nothing may overflow its box (scrollWidth against clientWidth), names are
 * shortened with an ellipsis (the full name on hover), ids never wrap, and a
 * screenshot of each is kept under test-output/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ChainDetail, MessageStatus } from '../collector/api-types.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { ChainFixture } from './helpers/chain-fixtures.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { asRecords, ensureUiBuilt, ingest, launchBrowser, screenshot } from './helpers/ui-browser.ts';

// In-page checks run in Chromium; the tests' tsconfig has no DOM lib, so the few globals they touch are declared here.
declare const document: any;
declare const window: { innerWidth: number };
declare function getComputedStyle(element: unknown): { textOverflow: string };
type SvgText = { getComputedTextLength(): number };

const SIZES = [
  { width: 1024, height: 768 },
  { width: 1920, height: 1080 },
] as const;
const THEMES = ['dark', 'light'] as const;

const q = (name: string) => `demo.${name}`;
const recent = Date.now() - 10 * 60_000;
const aged = Date.now() - 5 * 60_000;

/** A receipt being printed right now: in flight for the next minute (the collector's stuck limit). */
function inFlight(seed: number): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed, start: Date.now() - 1_500 });
  const id = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: q('coffee.receipts'), messageType: 'coffee.receipt.requested', confirm: 30 });
  f.consume({ messageId: id, service: 'receipt-printer', queue: q('coffee.receipts'), at: 36, outcome: 'none' });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

/** One chain per status, shaped like the demo's flows (and with its long names). */
function statusChains(): Record<MessageStatus, { correlationId: string; hops: HopRecord[] }> {
  const chain = (seed: number, start: number, build: (f: ChainFixture) => void) => {
    const f = new ChainFixture({ seed, start });
    build(f);
    return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
  };
  return {
    ok: chain(301, recent, (f) => {
      const reset = f.publish({ service: 'member', at: 0, exchange: q('events'), routingKey: 'member.auth.reset', messageType: 'member.auth.reset' });
      f.consume({ messageId: reset, service: 'family-account', queue: q('family-account.member-auth-reset'), at: 37, handleMs: 51 });
      const withdrawn = f.publish({ service: 'family-account', at: 78, exchange: q('events'), routingKey: 'family.member.withdrawn', messageType: 'family.member.withdrawn', causedBy: reset });
      f.consume({ messageId: withdrawn, service: 'notification', queue: q('notification.family-member-withdrawn'), at: 86, handleMs: 27 });
      f.consume({ messageId: withdrawn, service: 'audit', queue: q('audit.family-member-withdrawn'), at: 87, handleMs: 26 });
    }),
    'in-flight': inFlight(302),
    failed: chain(303, recent + 60_000, (f) => {
      const order = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: q('coffee.orders'), messageType: 'coffee.order.placed', confirm: 29 });
      f.consume({ messageId: order, service: 'barista', queue: q('coffee.orders'), at: 33, handleMs: 280 });
      const ready = f.publish({ service: 'barista', at: 300, exchange: q('coffee'), routingKey: 'coffee.order.ready', messageType: 'coffee.order.ready', causedBy: order });
      f.consume({ messageId: ready, service: 'customer', queue: q('coffee.counter.order-ready'), at: 302, handleMs: 0.3 });
      f.consume({
        messageId: ready,
        service: 'loyalty',
        queue: q('coffee.loyalty.order-ready'),
        at: 303,
        handleMs: 4,
        outcome: 'error',
        error: { type: 'TypeError', message: "Cannot read properties of undefined (reading 'stamps')" },
        settle: 'ack',
      });
    }),
    'dead-lettered': chain(304, recent + 120_000, (f) => {
      const order = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: q('coffee.orders'), messageType: 'coffee.order.placed', confirm: 29 });
      f.consume({
        messageId: order,
        service: 'barista',
        queue: q('coffee.orders'),
        at: 302,
        handleMs: 39,
        outcome: 'error',
        error: { type: 'UnknownDrinkError', message: '"unicorn frappuccino" is not on the menu (order order-4-2abbd9)' },
        settle: 'nack',
        requeue: false,
      });
      f.consume({
        messageId: order,
        service: 'dead-letter-monitor',
        queue: q('coffee.dead-letters'),
        at: 349,
        handleMs: 0.2,
        death: [{ queue: q('coffee.orders'), reason: 'rejected', count: 1, exchange: '', routingKeys: [q('coffee.orders')], time: f.start + 341 }],
      });
    }),
    discarded: chain(305, aged, (f) => {
      const note = f.publish({ service: 'supplier', at: 0, exchange: '', routingKey: q('coffee.inventory'), messageType: 'inventory.delivery.noted', confirm: 30 });
      f.consume({ messageId: note, service: 'inventory', queue: q('coffee.inventory'), at: 80, handleMs: 0.2, settle: 'nack', requeue: false });
    }),
    unroutable: chain(306, recent + 180_000, (f) => {
      f.publish({
        service: 'customer',
        at: 0,
        exchange: q('coffee'),
        routingKey: 'coffee.order.cancelled',
        messageType: 'coffee.order.cancelled',
        returned: { replyCode: 312, replyText: 'NO_ROUTE' },
        confirm: 29,
      });
    }),
    lost: chain(307, aged, (f) => {
      f.publish({ service: 'customer', at: 0, exchange: '', routingKey: q('coffee.refunds'), messageType: 'coffee.refund.requested', confirm: 33 });
    }),
    stuck: chain(308, aged, (f) => {
      const id = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: q('coffee.receipts'), messageType: 'coffee.receipt.requested', confirm: 31 });
      f.consume({ messageId: id, service: 'receipt-printer', queue: q('coffee.receipts'), at: 39, handleMs: 0.16, settle: 'none' });
    }),
    'redelivery-loop': chain(309, recent + 240_000, (f) => {
      const note = f.publish({ service: 'supplier', at: 0, exchange: '', routingKey: q('coffee.inventory'), messageType: 'inventory.delivery.noted', confirm: 31 });
      for (let k = 0; k < 7; k++) {
        f.consume({ messageId: note, service: 'inventory', queue: q('coffee.inventory'), at: 29 + k * 6, handleMs: 0.5, redelivered: k > 0, settle: k < 6 ? 'nack' : 'ack', requeue: true });
      }
    }),
  };
}

const chains = statusChains();
let collector: TestCollector;
let browser: Browser;

beforeAll(async () => {
  await ensureUiBuilt();
  collector = await startTestCollector();
  for (const c of Object.values(chains)) await ingest(collector.url, c.hops);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
});

/** Elements (by selector) whose content is wider or taller than their box: what the eye sees as cut. */
async function overflowing(page: Page, selector: string, axis: 'x' | 'xy' = 'x'): Promise<string[]> {
  return page.locator(selector).evaluateAll(
    (elements, checkY) =>
      elements
        .filter((e) => e.scrollWidth > e.clientWidth + 1 || (checkY && e.scrollHeight > e.clientHeight + 1))
        .map((e) => `${e.className}: "${(e.textContent ?? '').slice(0, 60)}" ${e.scrollWidth}×${e.scrollHeight} in ${e.clientWidth}×${e.clientHeight}`),
    axis === 'xy',
  );
}

/** Elements whose text takes more than one line (distinct line boxes of a range over it). */
async function wrapped(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).evaluateAll((elements) =>
    elements
      .filter((e) => {
        const range = document.createRange();
        range.selectNodeContents(e);
        const tops = new Set<number>();
        for (const r of range.getClientRects() as Iterable<{ top: number; height: number }>) if (r.height > 0) tops.add(Math.round(r.top));
        return tops.size > 1;
      })
      .map((e) => `${e.className || e.tagName}: "${e.textContent}"`),
  );
}

async function openPage(size: (typeof SIZES)[number], theme: (typeof THEMES)[number]): Promise<Page> {
  const context = await browser.newContext({ viewport: size, colorScheme: theme });
  return context.newPage();
}

describe('every status at both sizes, in both themes', () => {
  for (const size of SIZES) {
    for (const theme of THEMES) {
      it(`${size.width}×${size.height} ${theme}: every chain view fits its boxes, names and ids shortened, never cut`, async () => {
        const page = await openPage(size, theme);
        try {
          // In flight only for a minute: a fresh one for each run.
          const flying = inFlight(310 + SIZES.indexOf(size) * 2 + THEMES.indexOf(theme));
          await ingest(collector.url, flying.hops);
          for (const [status, chain] of Object.entries({ ...chains, 'in-flight': flying })) {
            const detail = (await getJson(collector.url, `/api/chains/${chain.correlationId}`)).body as ChainDetail;
            expect(detail.status, `the ${status} fixture`).toBe(status);
            await page.goto('about:blank');
            await page.goto(`${collector.url}/#/chains/${encodeURIComponent(chain.correlationId)}`);
            await page.locator('[data-hop-row]').first().waitFor();
            const where = `${status} at ${size.width}×${size.height} ${theme}`;

            expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${where}: the page scrolls sideways`).toBe(true);
            expect(await overflowing(page, '.tl-lane-name', 'xy'), `${where}: lane names`).toEqual([]);
            expect(await overflowing(page, '.tl-lane-head, .tl-lane-head .skew'), `${where}: lane headers`).toEqual([]);
            expect(await overflowing(page, '[data-testid="timeline"]'), `${where}: the timeline`).toEqual([]);
            expect(await overflowing(page, '.head-top, .chain-head .facts, .stepbar'), `${where}: the header`).toEqual([]);
            expect(await overflowing(page, '.tl-desc'), `${where}: hop text`).toEqual([]);
            // Hop text too long for its row ends in an ellipsis (its full text is the row's title).
            const ellipsis = await page.locator('.tl-desc > .tl-text').evaluateAll((els) => els.every((e) => getComputedStyle(e).textOverflow === 'ellipsis'));
            expect(ellipsis, `${where}: hop text ellipsis`).toBe(true);
            expect(await overflowing(page, '.tree-row, .tree-line1, .detail, .failure-line'), `${where}: tree and detail`).toEqual([]);
            expect(await wrapped(page, '.id-value'), `${where}: ids wrap mid-string`).toEqual([]);
            expect(await wrapped(page, '.fields dt'), `${where}: field names`).toEqual([]);
            if (size.width === 1024) {
              const head = await page.evaluate(() => document.querySelector('.chain-head')!.getBoundingClientRect().height + document.querySelector('.stepbar')!.getBoundingClientRect().height);
              expect(head, `${where}: header height`).toBeLessThanOrEqual(170);
            }
            await screenshot(page, `status-${status}-${size.width}x${size.height}-${theme}`);
          }

          // The dead-letter history, on the dead-lettered copy's receive: no word broken into pieces.
          const dead = (await getJson(collector.url, `/api/chains/${chains['dead-lettered'].correlationId}`)).body as ChainDetail;
          const copy = dead.hops.find((h) => h.kind === 'receive' && h.service === 'dead-letter-monitor')!;
          await page.goto(`${collector.url}/#/chains/${encodeURIComponent(dead.correlationId)}/hops/${copy.seq}`);
          await page.getByTestId('death-history').waitFor();
          expect(await wrapped(page, '[data-testid="death-history"] dt')).toEqual([]);
          expect(await overflowing(page, '[data-testid="death-history"], .death')).toEqual([]);
          await screenshot(page, `dead-letter-history-${size.width}x${size.height}-${theme}`);
        } finally {
          await page.context().close();
        }
      }, 180_000);

      it(`${size.width}×${size.height} ${theme}: the chains list and the topology fit their boxes`, async () => {
        const page = await openPage(size, theme);
        try {
          await page.goto(`${collector.url}/`);
          await page.locator('[data-chain-row]').nth(Object.keys(chains).length - 1).waitFor();
          const where = `list at ${size.width}×${size.height} ${theme}`;
          expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${where}: the page scrolls sideways`).toBe(true);
          expect(await overflowing(page, '[data-testid="chains-table"], .chains td, .filters'), where).toEqual([]);
          expect(await wrapped(page, '.chains th'), `${where}: column heads`).toEqual([]);
          await screenshot(page, `chains-list-${size.width}x${size.height}-${theme}`);

          await page.goto(`${collector.url}/#/topology`);
          await page.locator('[data-node-id]').first().waitFor();
          const topo = `topology at ${size.width}×${size.height} ${theme}`;
          expect(await overflowing(page, '[data-testid="topology-scroll"]'), topo).toEqual([]);
          // Every label fits the room it was given: the node's width, the gap between columns.
          const cut = await page.locator('svg.topo text[data-room]').evaluateAll((texts) =>
            texts
              .filter((t) => (t as unknown as SvgText).getComputedTextLength() > Number(t.getAttribute('data-room')) + 0.5)
              .map((t) => `"${t.textContent}" ${(t as unknown as SvgText).getComputedTextLength().toFixed(0)} > ${t.getAttribute('data-room')}`),
          );
          expect(cut, topo).toEqual([]);
          // A shortened name keeps its whole self on hover.
          const labels = await page
            .locator('[data-node-id]')
            .evaluateAll((nodes) => nodes.map((n) => [[...n.querySelectorAll('.topo-label')].map((t) => t.textContent).join(''), n.getAttribute('data-full')]));
          for (const [shown, full] of labels) if (shown !== full) expect(shown).toContain('…');
          // Queues that differ only in the middle of a long name stay told apart.
          const queues = labels.filter(([, full]) => full!.startsWith('demo.coffee.') && full!.endsWith('.order-ready')).map(([shown]) => shown);
          expect(queues).toHaveLength(2);
          expect(new Set(queues).size).toBe(2);
          await screenshot(page, `topology-${size.width}x${size.height}-${theme}`);
        } finally {
          await page.context().close();
        }
      }, 120_000);
    }
  }
});
