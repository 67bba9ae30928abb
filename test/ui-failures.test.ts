/**
 * The Failures page, a group's page and the replay dialog in a real headless
 * Chromium against a real collector; the replay moves real messages on the
 * real RabbitMQ.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { FailureGroupList } from '../collector/api-types.ts';
import { deadLetterChain, redeliveryLoopChain, unroutableChain } from './helpers/chain-fixtures.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { ADMIN, depth, groupOf, openShops, type Shops } from './helpers/replay-shop.ts';
import { uniqueName, waitFor } from './helpers/broker.ts';
import { ensureUiBuilt, ingest, launchBrowser, openPage, screenshot, until } from './helpers/ui-browser.ts';

let browser: Browser;
let shops: Shops;
const collectors: TestCollector[] = [];
const start = Date.now() - 30 * 60_000;

beforeAll(async () => {
  await ensureUiBuilt();
  browser = await launchBrowser();
  shops = await openShops();
});

afterAll(async () => {
  await browser?.close();
  await shops?.close();
  for (const c of collectors) await c.stop();
});

const groupRows = (p: Page) => p.locator('[data-group-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fingerprint')));

describe('the Failures page', () => {
  it('lists groups most recent or largest first with their sparklines, shows new groups live, and leads to a chain’s first failing hop', async () => {
    const collector = await startTestCollector();
    collectors.push(collector);
    // Three chains of one failure (an hour-old card decline), one newer unroutable cancellation.
    const declines = [0, 1, 2].map((i) => deadLetterChain({ seed: 300 + i, start: start + i * 60_000 }));
    const cancel = unroutableChain({ seed: 310, start: start + 10 * 60_000 });
    for (const f of [...declines, cancel]) await ingest(collector.url, f.hops);
    const api = await waitFor(async () => {
      const list = (await getJson(collector.url, '/api/failures')).body as FailureGroupList;
      return list.items.length === 2 ? list : undefined;
    }, 'two failure groups');
    const [recent, older] = api.items;
    expect(recent).toMatchObject({ status: 'unroutable', count: 1 });
    expect(older).toMatchObject({ status: 'dead-lettered', count: 3, errorType: 'PaymentDeclinedError' });

    const { page, dialogs, pageErrors } = await openPage(browser);
    await page.goto(`${collector.url}/#/failures`);
    await page.locator('[data-group-row]').nth(1).waitFor();
    expect(await groupRows(page)).toEqual([recent.fingerprint, older.fingerprint]);
    const olderRow = page.locator(`[data-group-row][data-fingerprint="${older.fingerprint}"]`);
    expect(await olderRow.textContent()).toContain('PaymentDeclinedError: card declined: insufficient funds');
    expect(await olderRow.textContent()).toContain('billing · queue billing.order-placed');
    expect(await olderRow.getByTestId('group-count').textContent()).toContain('3');
    expect(await olderRow.locator('.sparkline-bar').count()).toBeGreaterThan(0);
    // Largest first.
    await page.getByTestId('failures-sort').selectOption('count');
    await until(() => groupRows(page)).toEqual([older.fingerprint, recent.fingerprint]);
    expect(page.url()).toContain('sort=count');

    // A new failure arrives: its group appears without a reload.
    const loop = redeliveryLoopChain({ seed: 320, start: Date.now() - 60_000, attempts: 6, recovers: false });
    await ingest(collector.url, loop.hops);
    await until(() => page.locator('[data-group-row]').count()).toBe(3);
    const fresh = page.locator('[data-group-row].fresh');
    await until(() => fresh.count()).toBe(1);
    const now = ((await getJson(collector.url, '/api/failures')).body as FailureGroupList).items.map((g) => g.fingerprint);
    const added = now.filter((fp) => fp !== recent.fingerprint && fp !== older.fingerprint);
    expect(added).toHaveLength(1);
    expect(await fresh.getAttribute('data-fingerprint')).toBe(added[0]);
    expect(await fresh.getByTestId('ongoing').count()).toBe(1);

    // The group lists its chains; a chain opens on its first failing hop.
    await olderRow.getByTestId('group-link').click();
    await page.getByTestId('failure-group').waitFor();
    expect(await page.getByTestId('group-counts').textContent()).toContain('3 occurrences');
    const chainRows = page.locator('[data-chain-row]');
    await until(() => chainRows.count()).toBe(3);
    expect((await chainRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-correlation-id')))).sort()).toEqual(declines.map((d) => d.correlationId).sort());
    // Replay is off on this collector, and the group says why.
    expect(await page.getByTestId('replay-off').textContent()).toContain('--amqp-url');
    await chainRows.first().getByTestId('chain-link').click();
    await page.getByTestId('chain-view').waitFor();
    const firstFailure = page.getByTestId('first-failure');
    await firstFailure.waitFor();
    const seq = (await firstFailure.locator('button').textContent())!.match(/#(\d+)/)![1];
    await until(() => page.getByTestId('step-position').textContent()).toContain(`#${seq}`);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });

  it('with replay off, the Failures page and a dead-lettered chain say why, and offer no replay', async () => {
    const collector = await startTestCollector();
    collectors.push(collector);
    const dead = deadLetterChain({ seed: 330, start });
    await ingest(collector.url, dead.hops);
    const { page, pageErrors } = await openPage(browser);
    await page.goto(`${collector.url}/#/failures`);
    await page.locator('[data-group-row]').first().waitFor();
    expect(await page.getByTestId('replay-off').textContent()).toContain('Replay is off: start the collector with --amqp-url');
    expect(await page.getByTestId('replay-group').count()).toBe(0);
    await page.goto(`${collector.url}/#/chains/${encodeURIComponent(dead.correlationId)}`);
    await page.getByTestId('chain-view').waitFor();
    expect(await page.getByTestId('replay-off').textContent()).toContain('--amqp-url');
    expect(await page.getByTestId('replay-messages').count()).toBe(0);
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });
});

describe('the replay dialog', () => {
  it('asks for the admin token, shows how many messages will move, replays them on RabbitMQ and lists each outcome', async () => {
    const s = await shops.open();
    const ids = [0, 1, 2].map((i) => `order-${i}-${uniqueName('ui').slice(3)}`);
    for (const id of ids) await s.order(id, 'unicorn frappuccino');
    const group = await groupOf(s, 3);
    await waitFor(async () => (await depth(s, s.dlq)) === 3, 'three dead letters');
    s.menu.add('unicorn frappuccino');

    const { page, dialogs, pageErrors } = await openPage(browser);
    await page.goto(`${s.collector.url}/#/failures`);
    const row = page.locator(`[data-group-row][data-fingerprint="${group.fingerprint}"]`);
    await row.waitFor();
    expect(await page.getByTestId('replay-off').count()).toBe(0);
    await row.getByTestId('replay-group').click();
    const dialog = page.getByTestId('replay-dialog');
    await dialog.waitFor();
    expect(await dialog.getAttribute('data-step')).toBe('token');
    // A wrong token is refused, and asked again.
    await page.getByTestId('replay-token').fill('not-the-token');
    await page.getByTestId('replay-token-submit').click();
    await until(() => dialog.textContent()).toContain('the admin token is wrong');
    await page.getByTestId('replay-token').fill(ADMIN);
    await page.getByTestId('replay-token-submit').click();
    // The dry run: how many, from where, to where; nothing moved yet.
    await until(() => dialog.getAttribute('data-step')).toBe('confirm');
    const count = (await page.getByTestId('replay-count').textContent()) ?? '';
    expect(count).toContain(`3 messages will be taken from ${s.dlq}`);
    expect(count).toContain(`${s.exchange} / order.placed`);
    expect(await dialog.locator('[data-outcome="would-replay"]').count()).toBe(3);
    expect(await depth(s, s.dlq)).toBe(3);
    await screenshot(page, 'replay-dialog-confirm');
    await page.getByTestId('replay-confirm').click();
    await until(() => dialog.getAttribute('data-step')).toBe('done');
    expect(await page.getByTestId('replay-summary').textContent()).toContain('3 replayed');
    expect(await dialog.locator('[data-outcome="replayed"]').count()).toBe(3);
    expect(await depth(s, s.dlq)).toBe(0);
    await page.getByTestId('replay-close').click();
    await until(() => dialog.count()).toBe(0);
    // The group shows nothing left to replay once the replays are in.
    await until(() => row.getByTestId('group-count').textContent()).toContain('0 left');
    await screenshot(page, 'failures');

    // The chains are ok (replayed), and a chain shows its old failure and its replay.
    await page.goto(`${s.collector.url}/#/?status=replayed`);
    await until(() => page.locator('[data-chain-row] [data-replayed="true"]').count()).toBe(3);
    expect(await page.locator('[data-chain-row] [data-replayed="true"]').first().textContent()).toContain('ok (replayed)');
    await page.goto(`${s.collector.url}/#/chains/${encodeURIComponent(ids[0])}`);
    await page.getByTestId('chain-view').waitFor();
    expect(await page.getByTestId('first-failure').getAttribute('data-replayed')).toBe('true');
    const replayLine = page.getByTestId('replay');
    expect(await replayLine.getAttribute('data-outcome')).toBe('replayed');
    expect(await replayLine.textContent()).toContain('asked by ui');
    await until(() => replayLine.textContent()).toContain('now ok');
    expect(await page.locator('.tl-dot.k-replay').count()).toBe(1);
    await screenshot(page, 'chain-replayed');
    expect([...s.served.values()]).toEqual([1, 1, 1]);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });
});
