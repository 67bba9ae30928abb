/**
 * `GET /api/failures` and its group routes against a real collector fed
 * through `POST /v1/hops`: windows, filters, sorting, sparklines, a group's
 * chains, and the answers to bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainList, FailureGroup, FailureGroupList } from '../collector/api-types.ts';
import { deadLetterChain, lostMessageChain, unroutableChain } from './helpers/chain-fixtures.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { waitFor } from './helpers/broker.ts';
import { ingest } from './helpers/ui-browser.ts';

let collector: TestCollector;
const hour = 3_600_000;
const start = Date.now() - 3 * hour;
// Card declines an hour apart (three, in two places in time); one unroutable cancellation, recent; one lost payment, recent.
const declines = [0, 1, 2].map((i) => deadLetterChain({ seed: 700 + i, start: start + (i === 2 ? 1.5 * hour : i * 60_000) }));
const cancel = unroutableChain({ seed: 710, start: Date.now() - 10 * 60_000 });
const lost = lostMessageChain({ seed: 711, start: Date.now() - 20 * 60_000 });

beforeAll(async () => {
  collector = await startTestCollector();
  for (const f of [...declines, cancel, lost]) await ingest(collector.url, f.hops);
  await waitFor(async () => ((await getJson(collector.url, '/api/failures')).body as FailureGroupList).items.length === 3, 'three failure groups');
});

afterAll(async () => {
  await collector?.stop();
});

const failures = async (query = '') => (await getJson(collector.url, `/api/failures${query}`)).body as FailureGroupList;

describe('failure groups over HTTP', () => {
  it('lists each group once with its count, first and last minute, and a sparkline that adds up to the count', async () => {
    const list = await failures();
    const decline = list.items.find((g) => g.status === 'dead-lettered')!;
    expect(decline).toMatchObject({ count: 3, unresolved: 3, service: 'billing', queue: 'billing.order-placed', errorType: 'PaymentDeclinedError', replayable: true });
    expect(decline.firstSeen).toBe(Math.floor((start + 10) / 60_000) * 60_000);
    expect(decline.lastSeen).toBe(Math.floor((start + 1.5 * hour + 10) / 60_000) * 60_000);
    expect(decline.ongoing).toBe(false);
    for (const g of list.items) {
      expect(g.sparkline).toHaveLength(30);
      expect(g.sparkline.reduce((a, b) => a + b, 0)).toBe(g.count);
    }
    expect(list.binMs % 60_000).toBe(0);
    expect(list.sparklineFrom + 30 * list.binMs).toBeGreaterThanOrEqual(list.to);
  });

  it('sorts by most recent or by size, and filters by status, service and time window', async () => {
    const recent = await failures();
    expect(recent.items.map((g) => g.status)).toEqual(['unroutable', 'lost', 'dead-lettered']);
    const largest = await failures('?sort=count');
    expect(largest.items[0].status).toBe('dead-lettered');
    expect((await failures('?status=unroutable,lost')).items.map((g) => g.status).sort()).toEqual(['lost', 'unroutable']);
    // billing both dead-lettered the declines and published the payment that was lost.
    expect((await failures('?service=billing')).items.map((g) => g.status).sort()).toEqual(['dead-lettered', 'lost']);
    expect((await failures('?service=order-api')).items.map((g) => g.status)).toEqual(['unroutable']);
    // The last hour (to the minute) holds the two recent groups; the declines only count inside their window.
    expect((await failures(`?from=${Date.now() - hour}`)).items.map((g) => g.status).sort()).toEqual(['lost', 'unroutable']);
    const early = await failures(`?from=${start - 60_000}&to=${start + hour}`);
    expect(early.items).toEqual([expect.objectContaining({ status: 'dead-lettered', count: 2 })]);
    expect((await failures('?limit=1')).items).toHaveLength(1);
  });

  it('answers one group, and its chains page by page', async () => {
    const decline = (await failures('?status=dead-lettered')).items[0];
    const one = (await getJson(collector.url, `/api/failures/${decline.fingerprint}`)).body as FailureGroup;
    expect(one).toMatchObject({ fingerprint: decline.fingerprint, count: 3 });
    const first = (await getJson(collector.url, `/api/failures/${decline.fingerprint}/chains?limit=2`)).body as ChainList;
    expect(first.items).toHaveLength(2);
    const rest = (await getJson(collector.url, `/api/failures/${decline.fingerprint}/chains?limit=2&cursor=${first.nextCursor}`)).body as ChainList;
    expect([...first.items, ...rest.items].map((c) => c.correlationId).sort()).toEqual(declines.map((d) => d.correlationId).sort());
    expect(rest.nextCursor).toBeNull();
  });

  it('says what is wrong with a bad fingerprint, an unknown group or a bad filter', async () => {
    expect((await getJson(collector.url, '/api/failures/not-a-fingerprint')).status).toBe(400);
    const unknown = await getJson(collector.url, '/api/failures/0123456789abcdef');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('HOPTRACE_ERR_NOT_FOUND');
    expect((await getJson(collector.url, '/api/failures?status=ok')).status).toBe(400);
    expect((await getJson(collector.url, '/api/failures?sort=oldest')).status).toBe(400);
    expect((await getJson(collector.url, '/api/failures?from=10&to=5')).status).toBe(400);
    expect((await getJson(collector.url, '/api/failures?nope=1')).status).toBe(400);
  });
});
