/**
 * The chain view in a real headless Chromium against a real collector, fed
 * through `POST /v1/hops`: causal order, step-through, first failure, hostile
 * message content, and a 2,000-hop chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ChainDetail } from '../collector/api-types.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import {
  ChainFixture,
  deadLetterChain,
  largeChain,
  lostMessageChain,
  redeliveryLoopChain,
  threeServiceChain,
} from './helpers/chain-fixtures.ts';
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

/**
 * The dead-lettered coffee order: the barista waits 167 ms, fails after
 * 34 ms and nacks without requeue; the copy is dead-lettered at that nack
 * (+201.2 ms) and the dead-letter monitor picks it up 5 ms later.
 */
function coffeeDeadLetter(): { correlationId: string; records: HopRecord[] } {
  const f = new ChainFixture({ seed: 210, start: start + 300_000 });
  const id = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: 'coffee.orders', messageType: 'coffee.order.placed' });
  f.consume({
    messageId: id,
    service: 'barista',
    queue: 'coffee.orders',
    at: 167,
    handleMs: 34,
    outcome: 'error',
    error: { type: 'UnknownDrinkError', message: '"unicorn frappuccino" is not on the menu' },
    settle: 'nack',
    requeue: false,
  });
  const deadAt = f.start + 201;
  f.consume({
    messageId: id,
    service: 'dead-letter-monitor',
    queue: 'coffee.dead-letters',
    at: 206.2,
    handleMs: 0.2,
    death: [{ queue: 'coffee.orders', reason: 'rejected', count: 1, exchange: '', routingKeys: ['coffee.orders'], time: deadAt }],
  });
  // As amqplib hands them over: x-death with its typed timestamp, deliveryMode 2.
  const xDeath = JSON.stringify([{ count: 1, reason: 'rejected', queue: 'coffee.orders', time: { '!': 'timestamp', value: Math.floor(deadAt / 1000) }, exchange: '', 'routing-keys': ['coffee.orders'] }]);
  const records = asRecords(f.hops()).map((hop) => ({
    ...hop,
    properties: { ...hop.properties, deliveryMode: 2 },
    ...(hop.kind === 'receive' && hop.death ? { headers: { 'x-death': xDeath, 'x-first-death-queue': 'coffee.orders' } } : {}),
  }));
  return { correlationId: f.correlationId, records };
}

/** `family.member.withdrawn` heard by audit (14 ms) and notification (87 ms), in parallel. */
function withdrawnFanOut(): { correlationId: string; hops: HopRecord[]; withdrawn: string; reset: string } {
  const f = new ChainFixture({ seed: 211, start: start + 360_000 });
  const reset = f.publish({ service: 'member', at: 0, exchange: 'events', routingKey: 'member.auth.reset', messageType: 'member.auth.reset' });
  f.consume({ messageId: reset, service: 'family-account', queue: 'family-account.q', at: 10, handleMs: 20 });
  const withdrawn = f.publish({ service: 'family-account', at: 20, exchange: 'events', routingKey: 'family.member.withdrawn', messageType: 'family.member.withdrawn', causedBy: reset });
  f.consume({ messageId: withdrawn, service: 'audit', queue: 'audit.q', at: 29, handleMs: 14 });
  f.consume({ messageId: withdrawn, service: 'notification', queue: 'notification.q', at: 26, handleMs: 87 });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()), withdrawn, reset };
}

const coffee = coffeeDeadLetter();
const withdrawn = withdrawnFanOut();
const loop = redeliveryLoopChain({ seed: 212, start: start + 420_000, attempts: 7 });
const retried = redeliveryLoopChain({ seed: 213, start: start + 480_000, attempts: 2, recovers: true });
// Judged by the collector's own clock (limits 60 s): these are minutes old.
const recent = Date.now() - 5 * 60_000;
const lost = lostMessageChain({ seed: 214, start: recent });
const stuck = stuckHandlerChain();
const oneWay = oneWaySkewChain();
const twoWay = twoWaySkewChain();
const discarded = discardedChain();

/** billing's handler returns and never acks: received, processed, never settled. */
function stuckHandlerChain(): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed: 215, start: recent });
  const id = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: 'receipts', messageType: 'receipt.requested' });
  f.consume({ messageId: id, service: 'printer', queue: 'receipts', at: 36, handleMs: 0.2, outcome: 'ok', settle: 'none' });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

/** billing's clock is 2 s behind and traffic goes one way: its offset is bounded, not measured. */
function oneWaySkewChain(): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed: 216, start: start + 540_000, skewMs: { billing: -2_000 } });
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
  f.consume({ messageId: id, service: 'billing', queue: 'billing.q', at: 756, handleMs: 12 });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

/** pricing's clock runs 4 minutes ahead, and it replies: bounded from both sides, an estimate with an interval. */
function twoWaySkewChain(): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed: 217, start: start + 600_000, skewMs: { pricing: 240_000 } });
  const request = f.publish({ service: 'checkout', at: 0, exchange: '', routingKey: 'pricing.requests' });
  f.consume({ messageId: request, service: 'pricing', queue: 'pricing.requests', at: 6, handleMs: 10 });
  const reply = f.publish({ service: 'pricing', at: 12, exchange: '', routingKey: 'checkout.replies', causedBy: request });
  f.consume({ messageId: reply, service: 'checkout', queue: 'checkout.replies', at: 20, handleMs: 3 });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

/** billing rejects an order without requeue and no dead-lettered copy ever shows up: RabbitMQ dropped it. */
function discardedChain(): { correlationId: string; hops: HopRecord[] } {
  const f = new ChainFixture({ seed: 218, start: recent });
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({ messageId: id, service: 'billing', queue: 'billing.q', at: 4, settle: 'reject', requeue: false });
  return { correlationId: f.correlationId, hops: asRecords(f.hops()) };
}

beforeAll(async () => {
  await ensureUiBuilt();
  collector = await startTestCollector({ jaegerUrl: JAEGER });
  for (const hops of [skewed.hops, failing.hops, large.hops, hostile.records, slow.hops]) await ingest(collector.url, hops);
  for (const hops of [coffee.records, withdrawn.hops, loop.hops, retried.hops, lost.hops, stuck.hops, oneWay.hops, twoWay.hops, discarded.hops]) {
    await ingest(collector.url, hops);
  }
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
    expect(await lane.textContent()).toBe(`skew ≈ +${(billingSkew.offsetMs / 60_000).toFixed(0)} m`);
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

/** The rendered box of an element, page coordinates. */
const box = async (p: Page, selector: string) => {
  const b = await p.locator(selector).first().boundingBox();
  if (!b) throw new Error(`${selector} is not rendered`);
  return b;
};
const seqOf = (d: ChainDetail, pred: (h: ChainDetail['hops'][number]) => boolean) => d.hops.find(pred)!.seq;

describe('figures a person can quote', () => {
  it('shows each consumer’s wait and handling separately, never one consumer’s wait with everyone’s handling added up', async () => {
    await openChain(withdrawn.correlationId);
    const row = page.locator(`[data-msg-row][data-message-id="${withdrawn.withdrawn}"]`);
    expect(await row.locator('[data-delivery-line="audit audit.q"]').textContent()).toContain('wait 9.0 ms · handling 14 ms');
    expect(await row.locator('[data-delivery-line="notification notification.q"]').textContent()).toContain('wait 6.0 ms · handling 87 ms');
    // 14 + 87: the two ran in parallel, and no figure adds them up.
    expect(await row.textContent()).not.toContain('101');
    // The slowest delivery is the one marked as critical.
    expect(await row.locator('[data-delivery-line="notification notification.q"] .tree-critical').count()).toBe(1);

    // The detail panel lists the same, one delivery each, each a link to its first hop.
    const api = await detail(withdrawn.correlationId);
    await row.click();
    const deliveries = page.getByTestId('deliveries');
    expect(await deliveries.locator('[data-delivery="audit audit.q"]').textContent()).toContain('wait 9.0 ms · handling 14 ms · ack');
    expect(await deliveries.locator('[data-delivery="notification notification.q"]').textContent()).toContain('wait 6.0 ms · handling 87 ms · ack');
    await deliveries.locator('[data-delivery="notification notification.q"] button').first().click();
    await until(() => selectedSeq(page)).toBe(seqOf(api, (h) => h.kind === 'receive' && h.service === 'notification'));
  });

  it('gives the dead-lettered order the barista’s 167 ms wait, and the dead-letter consumer its own 5 ms', async () => {
    await openChain(coffee.correlationId);
    const tree = page.getByTestId('causal-tree');
    expect(await tree.locator('[data-delivery-line="barista coffee.orders"]').textContent()).toContain('wait 167 ms · handling 34 ms');
    expect(await tree.locator('[data-delivery-line="dead-letter-monitor coffee.dead-letters"]').textContent()).toContain('wait 5.0 ms · handling 0.20 ms');
    expect(await tree.textContent()).not.toContain('wait 34 ms');
    expect(await page.getByTestId('hop-detail').getByTestId('deliveries').textContent()).toContain('wait 167 ms · handling 34 ms');
  });

  it('starts the dead-letter queue’s wait bar and arrow at the nack that dead-lettered the copy', async () => {
    const api = await detail(coffee.correlationId);
    const nack = seqOf(api, (h) => h.kind === 'settle' && h.service === 'barista');
    const copy = seqOf(api, (h) => h.kind === 'receive' && h.service === 'dead-letter-monitor');
    await openChain(coffee.correlationId);
    const bar = `[data-bar="wait"][data-to-seq="${copy}"]`;
    expect(await page.locator(bar).getAttribute('data-from-seq')).toBe(String(nack));
    const nackRow = await box(page, `[data-hop-row][data-seq="${nack}"]`);
    const waitBar = await box(page, bar);
    // The bar's top is the nack's row (its middle), not the publish at +0 ms.
    expect(Math.abs(waitBar.y - (nackRow.y + nackRow.height / 2))).toBeLessThan(2);
    expect(await page.locator(`[data-arrow-to-seq="${copy}"]`).getAttribute('data-arrow-from-seq')).toBe(String(nack));
    // The detail says so too.
    await page.locator(`[data-hop-row][data-seq="${copy}"]`).click();
    expect(await page.getByTestId('wait-since').textContent()).toBe(`waited 5.0 ms in coffee.dead-letters since #${nack} settle in barista (dead-lettered there)`);
  });

  it('starts each redelivery’s wait at the settle that requeued it: one arrow out of the publish, no stack of bars', async () => {
    const api = await detail(loop.correlationId);
    await openChain(loop.correlationId);
    expect(await page.locator('[data-arrow-from-seq="0"]').count()).toBe(1);
    const receives = api.hops.filter((h) => h.kind === 'receive');
    const settles = api.hops.filter((h) => h.kind === 'settle');
    expect(receives).toHaveLength(7);
    const tops: number[] = [];
    for (const [k, r] of receives.entries()) {
      const from = k === 0 ? 0 : settles[k - 1].seq;
      const bar = page.locator(`[data-bar="wait"][data-to-seq="${r.seq}"]`);
      expect(await bar.getAttribute('data-from-seq'), `receive #${r.seq}`).toBe(String(from));
      expect(await page.locator(`[data-arrow-to-seq="${r.seq}"]`).getAttribute('data-arrow-from-seq')).toBe(String(from));
      const b = (await bar.boundingBox())!;
      tops.push(b.y, b.y + b.height);
    }
    // The bars follow one another down the lane: none overlaps the next.
    for (let i = 2; i < tops.length; i += 2) expect(tops[i]).toBeGreaterThanOrEqual(tops[i - 1] - 1);
  });
});

describe('open states are drawn as open', () => {
  it('a stuck chain says how long it has been open, runs its unsettled delivery to "now" and calls no handler return a success', async () => {
    const api = await detail(stuck.correlationId);
    expect(api.status).toBe('stuck');
    const receive = seqOf(api, (h) => h.kind === 'receive');
    const processed = seqOf(api, (h) => h.kind === 'process');
    await openChain(stuck.correlationId);
    // Not the 36 ms its hops span: at least the five minutes it has been waiting (more on a slow run).
    expect(await page.getByTestId('chain-duration').textContent()).toMatch(/^took ≥ [5-9] m( \d+ s)?, still open$/);
    const now = page.getByTestId('now-row');
    expect(await now.textContent()).toContain('not settled (printer on receipts, stuck)');
    expect(await page.getByTestId('now-offset').textContent()).toMatch(/^\+[5-9]:\d\d\.\d{3}$/);
    // The open bar runs from the receive down to the now row.
    const bar = await box(page, `[data-bar="open-handling"][data-from-seq="${receive}"][data-to-seq="now"]`);
    const nowRow = await box(page, '[data-testid="now-row"]');
    const receiveRow = await box(page, `[data-hop-row][data-seq="${receive}"]`);
    expect(Math.abs(bar.y - (receiveRow.y + receiveRow.height / 2))).toBeLessThan(2);
    expect(Math.abs(bar.y + bar.height - (nowRow.y + nowRow.height / 2))).toBeLessThan(2);
    expect(await page.locator('[data-gap="open"]').textContent()).toMatch(/since the last hop, still open/);
    // The handler returned, but the message was never settled: no green "handler ok".
    const text = await page.locator(`[data-hop-row][data-seq="${processed}"] .tl-text`).textContent();
    expect(text).toBe('handler returned in 0.20 ms, message never settled');
    expect(await page.locator(`[data-hop-row][data-seq="${processed}"] .tl-text`).getAttribute('class')).toContain('tone-warn');
    await screenshot(page, 'chain-stuck-open');
  });

  it('a lost message waits from its send down to "now", and the chain’s duration is the time since', async () => {
    const api = await detail(lost.correlationId);
    const send = api.hops.find((h) => h.kind === 'send' && h.messageId === lost.messageIds[1])!;
    await openChain(lost.correlationId);
    expect(await page.getByTestId('chain-duration').textContent()).toMatch(/^took ≥ [5-9] m( \d+ s)?, still open$/);
    expect(await page.locator(`[data-bar="open-wait"][data-from-seq="${send.seq}"][data-to-seq="now"]`).count()).toBe(1);
    expect(await page.getByTestId('now-row').textContent()).toContain('not received (sent by billing, lost)');
  });
});

describe('clock skew is shown as the estimate it is', () => {
  it('one direction of traffic: the skew is bounded, not measured, the smallest correction is used and the derived wait is approximate', async () => {
    const api = await detail(oneWay.correlationId);
    const billing = api.skew.find((s) => s.service === 'billing')!;
    // The API carries the interval: bounded below only.
    expect(billing).toMatchObject({ basis: 'bounded', offsetMs: billing.lowerMs });
    expect(billing.upperMs).toBeUndefined();
    await openChain(oneWay.correlationId);
    const lane = page.locator('[data-lane="billing"] .skew');
    expect(await lane.textContent()).toBe('skew ≥ +1.24 s');
    expect(await lane.getAttribute('title')).toContain('bounded, not measured');
    expect(await page.getByTestId('skew-summary').textContent()).toContain('billing ≥ +1.24 s (bounded)');
    expect(await page.locator('[data-msg-row]').first().textContent()).toContain('wait ≈ 0.00 ms');
    const receive = seqOf(api, (h) => h.kind === 'receive');
    await page.locator(`[data-hop-row][data-seq="${receive}"]`).click();
    const when = (await page.getByTestId('hop-detail').textContent()) ?? '';
    expect(when).toContain('bounded, not measured: shifted +1.24 s, the smallest correction that keeps the order causal (the real offset is ≥ +1.24 s');
    expect(when).not.toMatch(/from 1 sample/);
  });

  it('traffic both ways: an estimate with the interval the collector knows', async () => {
    const api = await detail(twoWay.correlationId);
    const pricing = api.skew.find((s) => s.service === 'pricing')!;
    expect(pricing.basis).toBe('measured');
    expect(pricing.lowerMs).toBeLessThanOrEqual(pricing.offsetMs);
    expect(pricing.upperMs).toBeGreaterThanOrEqual(pricing.offsetMs);
    await openChain(twoWay.correlationId);
    const lane = page.locator('[data-lane="pricing"] .skew');
    expect(await lane.textContent()).toBe('skew ≈ −4 m');
    const title = (await lane.getAttribute('title')) ?? '';
    expect(title).toContain('consistent range −');
    expect(title).toContain('in both directions');
    expect(await page.getByTestId('skew-summary').textContent()).toMatch(/pricing ≈ −4 m \(−4 m( \d+ s)? … −\d/);
  });

  it('clocks that agree say so, instead of a ±0 ms "measurement"', async () => {
    await openChain(skewed.correlationId);
    expect(await page.locator('[data-lane="shipping"] .skew').textContent()).toBe('no skew seen');
    await page.locator('[data-hop-row]').last().click();
    expect(await page.getByTestId('hop-detail').textContent()).not.toContain('±0 ms (from');
  });
});

describe('statuses that say what happened', () => {
  it('a reject without requeue and no dead-lettered copy is discarded, not dead-lettered', async () => {
    await openChain(discarded.correlationId);
    expect(await page.locator('.chain-head .badge').first().getAttribute('data-status')).toBe('discarded');
    expect(await page.locator('[data-status="dead-lettered"]').count()).toBe(0);
    expect(await page.getByTestId('first-failure').textContent()).toContain(
      'billing rejected it on queue "billing.q" without requeue; no dead-lettered copy seen within 60 s: RabbitMQ discards such a message unless the queue has a dead-letter exchange',
    );
    expect(await page.locator('[data-msg-row] .chip.tone-bad').count()).toBe(0);
  });

  it('a chain that recovered says what failed before the retry succeeded', async () => {
    const api = await detail(retried.correlationId);
    expect(api.status).toBe('ok');
    await openChain(retried.correlationId);
    const recovery = page.getByTestId('recovery');
    expect(await recovery.textContent()).toContain(
      'billing failed once with SyntaxError: Unexpected token } in JSON at position 112 on billing.order-placed, then succeeded on attempt 2',
    );
    await recovery.locator('button').click();
    await until(() => selectedSeq(page)).toBe(seqOf(api, (h) => h.kind === 'process' && h.outcome === 'error'));
  });
});

describe('the detail panel', () => {
  it('has a copy button on every id, and copies it', async () => {
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, permissions: ['clipboard-read', 'clipboard-write'] });
    try {
      const p = await context.newPage();
      await p.goto(`${collector.url}/#/chains/${encodeURIComponent(skewed.correlationId)}/hops/1`);
      await p.getByTestId('ids').waitFor();
      const hop = (await detail(skewed.correlationId)).hops[1];
      const fields = p.locator('[data-id-field]');
      const ids: Record<string, string | undefined> = {
        'message id': hop.messageId,
        'correlation id': hop.correlationId,
        'causation id': hop.causationId,
        'trace id': hop.traceId,
        'span id': hop.spanId,
        'parent span id': hop.parentSpanId,
      };
      const present = Object.entries(ids).filter(([, v]) => v);
      expect(await fields.count()).toBe(present.length);
      for (const [label, value] of present) {
        expect(await p.locator(`[data-id-field="${label}"] button[data-copy]`).getAttribute('data-copy')).toBe(value);
      }
      await p.locator('[data-id-field="message id"] button[data-copy]').click();
      const readClipboard = () =>
        p.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText());
      await expect.poll(readClipboard).toBe(hop.messageId);
    } finally {
      await context.close();
    }
  });

  it('links the parent message and each delivery to their hops', async () => {
    const api = await detail(withdrawn.correlationId);
    const send = seqOf(api, (h) => h.kind === 'send' && h.messageId === withdrawn.withdrawn);
    await openChain(withdrawn.correlationId, send);
    await page.getByTestId('parent-link').click();
    await until(() => selectedSeq(page)).toBe(seqOf(api, (h) => h.messageId === withdrawn.reset));
    await openChain(withdrawn.correlationId, seqOf(api, (h) => h.messageId === withdrawn.reset));
    await page.getByTestId('child-link').click();
    await until(() => selectedSeq(page)).toBe(send);
  });

  it('reads the AMQP timestamp and x-death times as dates and deliveryMode 2 as persistent', async () => {
    const api = await detail(coffee.correlationId);
    const copy = api.hops.find((h) => h.kind === 'receive' && h.service === 'dead-letter-monitor')!;
    await openChain(coffee.correlationId, copy.seq);
    const local = (ms: number) =>
      page.evaluate((t) => {
        const d = new Date(t);
        const pad = (n: number) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      }, ms);
    const section = (title: string) => page.locator('details.section').filter({ has: page.locator('summary', { hasText: new RegExp(`^${title}`) }) });
    const headers = (await section('Headers').textContent()) ?? '';
    expect(headers).toContain(await local(Math.floor((coffee.records[0].ts + 201) / 1000) * 1000));
    expect(headers).not.toContain('"!"');
    // The publish carries the AMQP timestamp property (seconds).
    const send = api.hops[0];
    await openChain(coffee.correlationId, send.seq);
    await page.locator('summary', { hasText: 'Properties' }).click();
    const properties = (await section('Properties').textContent()) ?? '';
    const seconds = send.properties!.timestamp as number;
    expect(properties).toContain(`timestamp${await local(seconds * 1000)}.000  (${seconds})`);
    expect(properties).toContain('deliveryMode2 (persistent)');
  });
});

describe('small things', () => {
  it('says "1 message", and a hop number the chain does not have is named, not silently replaced', async () => {
    await openChain(coffee.correlationId);
    expect(await page.locator('.chain-head .facts > span', { hasText: 'hops ·' }).textContent()).toBe('7 hops · 1 message');
    expect(await page.locator('.side-head').first().textContent()).toContain('(1 message)');

    await page.goto('about:blank');
    await page.goto(`${collector.url}/#/chains/${encodeURIComponent(coffee.correlationId)}/hops/999`);
    const notice = page.getByTestId('missing-hop');
    await notice.waitFor();
    expect(await notice.textContent()).toBe('This chain has no hop #999 (it has #0–#6); showing its first failure, #2.');
  });
});
