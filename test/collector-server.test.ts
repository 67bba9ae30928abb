import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainDetail, ChainList, LiveChainEvent, MessageDetail, Topology } from '../collector/api-types.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { getJson, makeHop, messageHops, postHops, startTestCollector, type TestCollector } from './helpers/collector.ts';

const open: TestCollector[] = [];
async function collector(options?: Parameters<typeof startTestCollector>[0]): Promise<TestCollector> {
  const c = await startTestCollector(options);
  open.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.stop()));
});

async function post(url: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(`${url}/v1/hops`, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const ndjson = (records: readonly unknown[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

function expectErrorBody(body: unknown, statusCode: number, code: string) {
  expect(body).toEqual({ statusCode, code, error: expect.any(String), message: expect.any(String) });
}

/** A chain of two messages: order.created (orders → billing) causing invoice.issued (billing → mailer). */
function twoMessageChain(correlationId = randomUUID(), ts = Date.now()) {
  const first = messageHops({ correlationId, messageId: `m1-${correlationId}`, ts });
  const second = messageHops(
    { correlationId, messageId: `m2-${correlationId}`, causationId: `m1-${correlationId}`, traceId: first[0].traceId, ts: ts + 10 },
    { publisher: 'billing', consumer: 'mailer', exchange: 'billing', routingKey: 'invoice.issued', queue: 'mailer.invoices' },
  );
  return { correlationId, hops: [...first, ...second] };
}

describe('collector HTTP API', () => {
  it('ingested hops come back as a chain list, a chain, a message and a topology', async () => {
    const c = await collector();
    const { correlationId, hops } = twoMessageChain();
    const posted = await postHops(c.url, hops);
    expect(posted).toEqual({ status: 202, body: { accepted: 8, duplicates: 0 } });

    const list = (await getJson(c.url, '/api/chains')).body as ChainList;
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ correlationId, hopCount: 8, messageCount: 2 });
    expect(list.items[0].services).toEqual(expect.arrayContaining(['orders', 'billing', 'mailer']));

    const detail = await getJson(c.url, `/api/chains/${encodeURIComponent(correlationId)}`);
    expect(detail.status).toBe(200);
    const chain = detail.body as ChainDetail;
    expect(chain.hops).toHaveLength(8);
    expect(chain.hops.every((h) => typeof h.id === 'number' && typeof h.receivedAt === 'number')).toBe(true);

    const message = await getJson(c.url, `/api/messages/m2-${correlationId}`);
    expect(message.status).toBe(200);
    const md = message.body as MessageDetail;
    expect(md.correlationId).toBe(correlationId);
    expect(md.message.messageId).toBe(`m2-${correlationId}`);
    expect(md.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);

    const topology = (await getJson(c.url, '/api/topology')).body as Topology;
    const edge = (from: string, to: string) => topology.edges.find((e) => e.from === from && e.to === to);
    expect(edge('service:orders', 'exchange:orders')).toMatchObject({ count: 1, errorCount: 0 });
    expect(edge('exchange:orders', 'queue:billing.orders')).toMatchObject({ count: 1 });
    expect(edge('queue:billing.orders', 'service:billing')).toMatchObject({ count: 1, queueWaitP50Ms: 1, queueWaitP95Ms: 1 });
    expect(edge('service:billing', 'exchange:billing')).toMatchObject({ count: 1 });
    expect(edge('queue:mailer.invoices', 'service:mailer')).toMatchObject({ count: 1 });
    expect(topology.nodes.map((n) => n.id)).toEqual(expect.arrayContaining(['service:orders', 'exchange:orders', 'queue:billing.orders']));
  });

  it('topology counts handler errors on the edge into the consuming service', async () => {
    const c = await collector();
    const correlationId = randomUUID();
    const ok = messageHops({ correlationId });
    const bad = messageHops({ correlationId });
    bad[2] = { ...bad[2], outcome: 'error', error: { type: 'TypeError', message: 'boom' } };
    bad[3] = { ...bad[3], outcome: 'reject', requeue: false };
    await postHops(c.url, [...ok, ...bad]);
    const topology = (await getJson(c.url, '/api/topology')).body as Topology;
    const consumed = topology.edges.find((e) => e.to === 'service:billing');
    expect(consumed).toMatchObject({ count: 2, errorCount: 1, errorRate: 0.5 });
  });

  it('topology rates are over the span that had traffic, not the whole window', async () => {
    const c = await collector();
    // 30 messages over two minutes, an hour ago, asked about over the last 24 hours.
    const start = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    const hops = Array.from({ length: 30 }, (_, i) => messageHops({ correlationId: randomUUID(), ts: start + 5_000 + i * 4_000 })).flat();
    await postHops(c.url, hops);
    const topology = (await getJson(c.url, `/api/topology?from=${Date.now() - 86_400_000}`)).body as Topology;
    expect(topology.trafficFrom).toBeGreaterThanOrEqual(start);
    expect(topology.trafficTo! - topology.trafficFrom!).toBeLessThanOrEqual(3 * 60_000);
    const published = topology.edges.find((e) => e.from === 'service:orders')!;
    expect(published.count).toBe(30);
    // 30 in 2–3 minutes: 10 to 15 a minute, not 30 a day.
    expect(published.ratePerSec! * 60).toBeGreaterThanOrEqual(10);
    expect(published.ratePerSec! * 60).toBeLessThanOrEqual(15);
  });

  it('topology draws lost and stuck messages on the edges where they stopped, once the sweep has judged them', async () => {
    const c = await collector({ lostAfterMs: 200, stuckAfterMs: 200, sweepIntervalMs: 50 });
    const ts = Date.now();
    // A refund sent to a queue nobody consumes (default exchange: the routing key is the queue) …
    const refund = makeHop({ kind: 'send', service: 'customer', exchange: '', routingKey: 'refunds', ts });
    // … and a receipt received and never settled.
    const receipt = messageHops({ correlationId: randomUUID(), ts }, { publisher: 'customer', consumer: 'printer', exchange: '', routingKey: 'receipts', queue: 'receipts' }).slice(0, 3);
    await postHops(c.url, [refund, ...receipt]);
    const edge = async (from: string, to: string) =>
      ((await getJson(c.url, '/api/topology')).body as Topology).edges.find((e) => e.from === from && e.to === to);
    await expect.poll(() => edge('exchange:', 'queue:refunds'), { timeout: 10_000 }).toMatchObject({ count: 0, lostCount: 1 });
    await expect.poll(() => edge('queue:receipts', 'service:printer'), { timeout: 10_000 }).toMatchObject({ count: 1, stuckCount: 1 });
    const topology = (await getJson(c.url, '/api/topology')).body as Topology;
    expect(topology.nodes.map((n) => n.id)).toContain('queue:refunds');
    // A window that ends before they were sent has none of them.
    const before = (await getJson(c.url, `/api/topology?from=${ts - 60_000}&to=${ts - 1}`)).body as Topology;
    expect(before.edges.some((e) => e.lostCount || e.stuckCount)).toBe(false);
  });

  it('the chains list filters by a queue any hop of the chain used', async () => {
    const c = await collector();
    const a = randomUUID();
    const b = randomUUID();
    await postHops(c.url, [...messageHops({ correlationId: a }, { queue: 'q.alpha' }), ...messageHops({ correlationId: b }, { queue: 'q.beta' })]);
    const list = (await getJson(c.url, '/api/chains?queue=q.beta')).body as ChainList;
    expect(list.items.map((i) => i.correlationId)).toEqual([b]);
  });

  it('the same hops sent twice are stored once', async () => {
    const c = await collector();
    const { correlationId, hops } = twoMessageChain();
    expect((await postHops(c.url, hops)).body).toEqual({ accepted: 8, duplicates: 0 });
    expect((await postHops(c.url, hops)).body).toEqual({ accepted: 8, duplicates: 8 });
    // The same hop as a pino log line (fields in another order) is the same hop.
    const reordered = Object.fromEntries(Object.entries(hops[0]).reverse());
    expect((await postHops(c.url, [{ level: 30, msg: 'hop', hop: reordered }])).body).toEqual({ accepted: 1, duplicates: 1 });
    const chain = (await getJson(c.url, `/api/chains/${correlationId}`)).body as ChainDetail;
    expect(chain.hops).toHaveLength(8);
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(8);
  });

  it('accepts NDJSON, a JSON array, a single JSON object, pino lines and gzip bodies', async () => {
    const c = await collector();
    const a = makeHop();
    const b = makeHop();
    const d = makeHop();
    const e = makeHop();
    const f = makeHop();
    expect((await post(c.url, ndjson([a]), { 'content-type': 'application/x-ndjson' })).status).toBe(202);
    expect((await post(c.url, JSON.stringify([b]), { 'content-type': 'application/json; charset=utf-8' })).status).toBe(202);
    expect((await post(c.url, JSON.stringify(d), { 'content-type': 'application/json' })).status).toBe(202);
    const pinoLine = { level: 30, time: Date.now(), pid: 1, hostname: 'h', msg: 'hop send', hop: e };
    expect((await post(c.url, ndjson([pinoLine]), { 'content-type': 'application/x-ndjson' })).status).toBe(202);
    const gz = await post(c.url, gzipSync(ndjson([f])), { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
    expect(gz).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
    for (const hop of [a, b, d, e, f]) {
      expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(200);
    }
  });

  it('a request with invalid records stores the valid ones and answers 202 with the index, field and reason of each invalid one', async () => {
    const c = await collector();
    const good = [makeHop(), makeHop(), makeHop()];
    const bad = { ...makeHop(), traceId: 'NOT-HEX' };
    const hostileDeath = {
      msg: 'receive',
      hop: { ...makeHop({ kind: 'receive', queue: 'q' }), death: [{ queue: 'q', reason: 'rejected', count: -1, exchange: '', routingKeys: [] }] },
    };
    const last = makeHop();
    const res = await post(c.url, ndjson([...good, bad, last, hostileDeath]), { 'content-type': 'application/x-ndjson' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      accepted: 4,
      duplicates: 0,
      rejected: 2,
      rejections: [
        { index: 3, field: 'traceId', reason: 'must be 32 lowercase hex characters' },
        { index: 5, field: 'hop.death[0].count', reason: 'must be at least 0' },
      ],
    });
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(4);
    for (const hop of [...good, last]) expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(200);
    expect((await getJson(c.url, `/api/chains/${bad.correlationId}`)).status).toBe(404);

    // All valid: exactly { accepted, duplicates }, as before partial acceptance.
    const plain = await post(c.url, ndjson([makeHop()]), { 'content-type': 'application/x-ndjson' });
    expect(plain).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
    expect(Object.keys(plain.body)).toEqual(['accepted', 'duplicates']);
  });

  it('a request whose every record is invalid is a 400 naming the first one and listing them all, and nothing is stored', async () => {
    const c = await collector();
    const res = await post(c.url, JSON.stringify([{ ...makeHop(), ts: -1 }, 'nope']), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      statusCode: 400,
      code: 'HOPTRACE_ERR_INVALID_HOP',
      error: 'Bad Request',
      message: 'record 0: field "ts" must be at least 0 (and 1 more invalid record); nothing was stored',
      rejected: 2,
      rejections: [
        { index: 0, field: 'ts', reason: 'must be at least 0' },
        { index: 1, field: '(record)', reason: 'must be an object' },
      ],
    });

    const cases: [unknown, string][] = [
      [{ ...makeHop(), kind: 'publish' }, 'record 0: field "kind" must be one of'],
      [{ ...makeHop(), ts: 'yesterday' }, 'record 0: field "ts" must be a finite number'],
      [{ ...makeHop(), ts: 1e300 }, 'record 0: field "ts" must be at most 8640000000000000'],
      [{ ...makeHop(), v: 3 }, 'record 0: field "v" must be one of 1, 2'],
      [{ ...makeHop(), v: 2 }, 'record 0: field "kind" must be one of "publish", "consume"'],
      [{ ...makeHop(), service: '' }, 'record 0: field "service" must be a non-empty string'],
      [{ ...makeHop(), correlationId: undefined }, 'record 0: field "correlationId" must be present'],
      [{ ...makeHop(), redelivered: 'yes' }, 'record 0: field "redelivered" must be true or false'],
      [{ ...makeHop(), headers: { a: 1 } }, 'record 0: field "headers.a" must be a string'],
      [{ ...makeHop(), routingKey: 'x'.repeat(5000) }, 'record 0: field "routingKey" must be at most 1024 characters long'],
      [{ ...makeHop(), error: { type: 'E', message: 'm', stack: 7 } }, 'record 0: field "error.stack" must be a string'],
      [{ ...makeHop(), properties: { priority: 1.5 } }, 'record 0: field "properties.priority" must be an integer'],
      [{ msg: 'hop', hop: { ...makeHop(), spanId: 'abc' } }, 'record 0: field "hop.spanId" must be 16 lowercase hex characters'],
      ['just a string', 'record 0: field "(record)" must be an object'],
    ];
    for (const [record, message] of cases) {
      const r = await post(c.url, ndjson([record]), { 'content-type': 'application/x-ndjson' });
      expect(r.status, message).toBe(400);
      expect(r.body.message).toContain(message);
    }
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(0);
  });

  it('fields the schema does not know are left out of the stored hop, at every level', async () => {
    const c = await collector();
    // 20,000 levels deep: more than JSON.stringify (or any recursive walk) survives.
    const deep = 'DEEP';
    const hop = {
      ...makeHop({ kind: 'receive', queue: 'q' }),
      extra: deep,
      error: { type: 'E', message: 'm', extra: deep },
      properties: { priority: 1, extra: deep },
      death: [{ queue: 'q', reason: 'expired', count: 1, exchange: '', routingKeys: ['k'], extra: deep }],
    };
    const line = JSON.stringify(hop).replaceAll(`"${deep}"`, '{"x":'.repeat(20_000) + '{}' + '}'.repeat(20_000));
    expect(line.length).toBeGreaterThan(4 * 100_000);
    const res = await post(c.url, line, { 'content-type': 'application/x-ndjson' });
    expect(res).toMatchObject({ status: 202, body: { accepted: 1 } });
    const chain = (await getJson(c.url, `/api/chains/${hop.correlationId}`)).body as ChainDetail;
    const stored = chain.hops[0] as unknown as Record<string, unknown>;
    expect(stored.extra).toBeUndefined();
    expect(stored.error).toEqual({ type: 'E', message: 'm' });
    expect(stored.properties).toEqual({ priority: 1 });
    expect(stored.death).toEqual([{ queue: 'q', reason: 'expired', count: 1, exchange: '', routingKeys: ['k'] }]);
  });

  it('a stored hop that today\'s schema refuses (written by an older collector) leaves its chain readable', async () => {
    const c = await collector();
    const { correlationId, hops } = twoMessageChain();
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 3_000; i++) deep = { x: deep };
    // Straight into the store, past ingest's checks, as an older collector let them in.
    const poisoned = [
      { ...hops[0], extra: deep },
      { ...makeHop({ correlationId }), ts: 1e300 },
    ] as unknown as HopRecord[];
    await c.store.insertHops([...hops.slice(1), ...poisoned], Date.now());
    const chain = await getJson(c.url, `/api/chains/${correlationId}`);
    expect(chain.status).toBe(200);
    expect((chain.body as ChainDetail).hops).toHaveLength(hops.length);
    expect((chain.body as ChainDetail).hops.find((h) => h.kind === 'send' && h.messageId === hops[0].messageId)).not.toHaveProperty('extra');
    for (const format of ['jaeger', 'otlp']) {
      expect((await fetch(`${c.url}/api/chains/${correlationId}/export?format=${format}`)).status).toBe(200);
    }
    expect((await getJson(c.url, `/api/messages/${hops[0].messageId}`)).status).toBe(200);
  });

  it('bad JSON is a 400 naming the line', async () => {
    const c = await collector();
    const body = `${JSON.stringify(makeHop())}\n{"v":1,\n`;
    const res = await post(c.url, body, { 'content-type': 'application/x-ndjson' });
    expect(res.status).toBe(400);
    expectErrorBody(res.body, 400, 'HOPTRACE_ERR_INVALID_BODY');
    expect(res.body.message).toMatch(/^line 2: /);
    const arr = await post(c.url, '[\n{"a":1},\n{oops}\n]', { 'content-type': 'application/json' });
    expect(arr.status).toBe(400);
    expect(arr.body.message).toMatch(/^line 3: /);
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(0);
  });

  it('a body over the size limit is a 413, also when only its decompressed size is', async () => {
    const c = await collector({ maxBodyBytes: 64 * 1024 });
    const big = ndjson(Array.from({ length: 400 }, () => makeHop()));
    expect(big.length).toBeGreaterThan(64 * 1024);
    const res = await post(c.url, big, { 'content-type': 'application/x-ndjson' });
    expect(res.status).toBe(413);
    expectErrorBody(res.body, 413, 'HOPTRACE_ERR_PAYLOAD_TOO_LARGE');

    // A gzip bomb: 30 KB on the wire, 32 MB inflated.
    const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024, 0x20), { level: 9 });
    expect(bomb.length).toBeLessThan(64 * 1024);
    const boom = await post(c.url, bomb, { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
    expect(boom.status).toBe(413);
    expectErrorBody(boom.body, 413, 'HOPTRACE_ERR_PAYLOAD_TOO_LARGE');

    // A body without Content-Length (chunked) is cut off at the limit too.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`${c.url}/v1/hops`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 100; i++) req.write(Buffer.alloc(1024, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(0);
  });

  it('with a token, ingest without it or with a wrong one is a 401 and nothing is stored', async () => {
    const c = await collector({ token: 's3cret' });
    const hop = makeHop();
    const none = await postHops(c.url, [hop]);
    expect(none.status).toBe(401);
    expectErrorBody(none.body, 401, 'HOPTRACE_ERR_UNAUTHORIZED');
    expect((await postHops(c.url, [hop], { token: 'wrong' })).status).toBe(401);
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(0);
    expect((await postHops(c.url, [hop], { token: 's3cret' })).status).toBe(202);
    // Reads are behind the same token (test/collector-auth.test.ts goes through every route).
    expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(401);
    const ok = await fetch(`${c.url}/api/chains/${hop.correlationId}`, { headers: { authorization: 'Bearer s3cret' } });
    expect(ok.status).toBe(200);
  });

  it('a content type other than NDJSON or JSON is a 415', async () => {
    const c = await collector();
    const res = await post(c.url, ndjson([makeHop()]), { 'content-type': 'text/csv' });
    expect(res.status).toBe(415);
    expectErrorBody(res.body, 415, 'HOPTRACE_ERR_UNSUPPORTED_MEDIA_TYPE');
    const br = await post(c.url, ndjson([makeHop()]), { 'content-type': 'application/x-ndjson', 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect((await getJson(c.url, '/healthz')).body.hops).toBe(0);
  });

  it('unknown routes and failures answer the one error body, never HTML', async () => {
    const c = await collector();
    for (const [method, path] of [
      ['GET', '/api/nope'],
      ['POST', '/api/chains'],
      ['GET', '/v1/hops'],
      ['DELETE', '/v1/hops'],
      ['GET', '/assets/missing.js'],
    ]) {
      const res = await fetch(c.url + path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expectErrorBody(await res.json(), 404, 'HOPTRACE_ERR_NOT_FOUND');
    }
    // A store that fails: the 500 has the same shape.
    await c.store.close();
    const res = await fetch(`${c.url}/api/chains`);
    expect(res.status).toBe(503);
    expectErrorBody(await res.json(), 503, 'HOPTRACE_ERR_STORE');
    const broken = await fetch(`${c.url}/api/chains/%E0%A4%A`);
    expect(broken.status).toBe(400);
    expect(broken.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('/ explains how to build the UI when it is not built', async () => {
    const c = await collector({ uiDir: '/nonexistent-ui-dir' });
    const res = await fetch(`${c.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('npm run build:ui');
  });

  it('serves the built UI, with index.html for client-side routes and JSON 404s for the API', async () => {
    const uiDir = mkdtempSync(join(tmpdir(), 'hoptrace-ui-'));
    try {
      mkdirSync(join(uiDir, 'assets'));
      writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>hoptrace</title>');
      writeFileSync(join(uiDir, 'assets', 'app.js'), 'console.log(1)');
      const c = await collector({ uiDir });
      for (const path of ['/', '/chains/abc', '/topology']) {
        const res = await fetch(c.url + path);
        expect(res.status, path).toBe(200);
        expect(await res.text()).toContain('<title>hoptrace</title>');
      }
      const js = await fetch(`${c.url}/assets/app.js`);
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      for (const path of ['/assets/missing.js', '/api/nope', '/v1/nope']) {
        const res = await fetch(c.url + path);
        expect(res.status, path).toBe(404);
        expectErrorBody(await res.json(), 404, 'HOPTRACE_ERR_NOT_FOUND');
      }
    } finally {
      rmSync(uiDir, { recursive: true, force: true });
    }
  });

  it('filters the chain list and pages through it newest first with a cursor', async () => {
    const c = await collector();
    const t0 = 1_700_000_000_000;
    const ids: string[] = [];
    const hops = [];
    for (let i = 0; i < 12; i++) {
      const correlationId = `chain-${String(i).padStart(2, '0')}`;
      ids.push(correlationId);
      const route =
        i % 3 === 0
          ? { publisher: 'shipping', exchange: 'shipments', routingKey: 'shipment.created', queue: 'ship.q', consumer: 'tracker' }
          : {};
      hops.push(...messageHops({ correlationId, messageId: `msg-${i}`, ts: t0 + i * 1000 }, route));
    }
    await postHops(c.url, hops);

    const all: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/chains?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = (await getJson(c.url, q)).body as ChainList;
      all.push(...page.items.map((i) => i.correlationId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(all).toEqual([...ids].reverse());

    const names = async (q: string) => ((await getJson(c.url, `/api/chains?${q}`)).body as ChainList).items.map((i) => i.correlationId);
    expect(await names('service=shipping')).toEqual(['chain-09', 'chain-06', 'chain-03', 'chain-00']);
    expect(await names('exchange=shipments')).toEqual(['chain-09', 'chain-06', 'chain-03', 'chain-00']);
    expect(await names('routingKey=shipment.created&limit=2')).toEqual(['chain-09', 'chain-06']);
    expect(await names(`from=${t0 + 5000}&to=${t0 + 7000}`)).toEqual(['chain-07', 'chain-06', 'chain-05']);
    expect(await names('q=chain-1')).toEqual(['chain-11', 'chain-10']);
    expect(await names('q=msg-4')).toEqual(['chain-04']);
    const trace = hops.find((h) => h.correlationId === 'chain-08')!.traceId;
    expect(await names(`q=${trace.slice(0, 12)}`)).toEqual(['chain-08']);
    expect(await names('status=ok,failed')).toHaveLength(12);
    expect(await names('status=failed&status=lost')).toEqual([]);

    for (const bad of ['limit=501', 'status=bogus', 'from=yesterday', 'cursor=zzz', 'colour=red', 'service=a&service=b']) {
      const res = await getJson(c.url, `/api/chains?${bad}`);
      expect(res.status, bad).toBe(400);
      expectErrorBody(res.body, 400, 'HOPTRACE_ERR_INVALID_QUERY');
    }
  });

  it('the chains list filters chains with a redelivery by redelivered=true|false, or as status=redelivered ORed with statuses', async () => {
    const c = await collector();
    const t0 = Date.now() - 60_000;
    const plain = messageHops({ correlationId: 'plain', ts: t0 });
    const redelivered = messageHops({ correlationId: 'redelivered', ts: t0 + 1000 });
    // A second delivery of the same message, flagged by the broker as a redelivery, then acked.
    const again = redelivered.slice(1).map((h) => ({ ...h, ts: h.ts + 50, deliveryTag: 2, ...(h.kind === 'receive' ? { redelivered: true } : {}) }));
    const failed = messageHops({ correlationId: 'failed', ts: t0 + 2000 });
    failed[2] = { ...failed[2], outcome: 'error', error: { type: 'TypeError', message: 'boom' } };
    failed[3] = { ...failed[3], outcome: 'reject', requeue: false };
    expect((await postHops(c.url, [...plain, ...redelivered, ...again, ...failed])).status).toBe(202);

    const names = async (q: string) => {
      const res = await getJson(c.url, `/api/chains?${q}`);
      expect(res.status, q).toBe(200);
      return (res.body as ChainList).items.map((i) => i.correlationId);
    };
    expect(await names('redelivered=true')).toEqual(['redelivered']);
    expect(await names('status=redelivered')).toEqual(['redelivered']);
    expect(await names('redelivered=false')).toEqual(['failed', 'plain']);
    expect(await names('status=failed,redelivered')).toEqual(['failed', 'redelivered']);
    expect(await names('status=failed&status=redelivered')).toEqual(['failed', 'redelivered']);
    expect(await names('status=failed&redelivered=true')).toEqual([]);
    expect(await names('status=ok&redelivered=true&service=billing')).toEqual(['redelivered']);
    expect(await names('status=ok&redelivered=false')).toEqual(['plain']);
    for (const bad of ['redelivered=yes', 'redelivered=true&redelivered=false']) {
      const res = await getJson(c.url, `/api/chains?${bad}`);
      expect(res.status, bad).toBe(400);
      expectErrorBody(res.body, 400, 'HOPTRACE_ERR_INVALID_QUERY');
    }
  });

  it('live clients get a "new" event when a chain is ingested and a "changed" event when it grows', async () => {
    const c = await collector();
    const controller = new AbortController();
    const res = await fetch(`${c.url}/api/live`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    const nextEvent = async (): Promise<LiveChainEvent> => {
      for (;;) {
        const m = /event: chain\ndata: (.*)\n\n/.exec(buffer);
        if (m) {
          buffer = buffer.slice(m.index + m[0].length);
          return JSON.parse(m[1]) as LiveChainEvent;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += value;
      }
    };
    const hops = messageHops({ correlationId: randomUUID() });
    // Wait until the server has registered the client before ingesting.
    for (let i = 0; i < 100 && !/hoptrace_sse_clients 1/.test(await (await fetch(`${c.url}/metrics`)).text()); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await postHops(c.url, hops.slice(0, 2));
    expect(await nextEvent()).toMatchObject({ type: 'new', chain: { correlationId: hops[0].correlationId, hopCount: 2 } });
    await postHops(c.url, hops.slice(2));
    expect(await nextEvent()).toMatchObject({ type: 'changed', chain: { correlationId: hops[0].correlationId, hopCount: 4 } });
    controller.abort();
    await reader.cancel().catch(() => {});
  });

  it('/metrics counts ingested, duplicate and rejected hops, store size and requests', async () => {
    const c = await collector();
    const hops = messageHops({ correlationId: randomUUID() });
    await postHops(c.url, hops, { headers: { 'x-hoptrace-dropped': '7' } });
    await postHops(c.url, hops);
    await postHops(c.url, [{ ...makeHop(), kind: 'nope' }]);
    await postHops(c.url, [makeHop(), { ...makeHop(), ts: -1 }, { ...makeHop(), ts: 'x' }, { hop: { ...makeHop(), headers: { h: 1 } } }]);
    await post(c.url, 'x', { 'content-type': 'text/plain' });
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"()[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('hoptrace_hops_ingested_total')).toBe(9);
    expect(value('hoptrace_records_rejected_total{field="kind"}')).toBe(1);
    expect(value('hoptrace_records_rejected_total{field="ts"}')).toBe(2);
    expect(value('hoptrace_records_rejected_total{field="headers"}')).toBe(1);
    expect(value('hoptrace_hops_duplicate_total')).toBe(4);
    expect(value('hoptrace_ingest_rejected_total{code="HOPTRACE_ERR_INVALID_HOP"}')).toBe(1);
    expect(value('hoptrace_ingest_rejected_total{code="HOPTRACE_ERR_UNSUPPORTED_MEDIA_TYPE"}')).toBe(1);
    expect(value('hoptrace_transport_dropped_total')).toBe(7);
    expect(value('hoptrace_store_hops')).toBe(5);
    expect(value('hoptrace_store_chains')).toBe(2);
    expect(value('hoptrace_store_bytes')).toBeGreaterThan(0);
    expect(value('hoptrace_sse_clients')).toBe(0);
    expect(value('hoptrace_http_requests_total{route="POST /v1/hops",status="202"}')).toBe(3);
  });

  it('transports\' dropped totals count by their growth: a repeated or reordered report counts once', async () => {
    const c = await collector();
    const report = (transport: string, total: string) =>
      postHops(c.url, [], { headers: { 'x-hoptrace-transport': transport, 'x-hoptrace-dropped-total': total } });
    const dropped = async () => Number(/^hoptrace_transport_dropped_total (\d+)$/m.exec(await (await fetch(`${c.url}/metrics`)).text())?.[1]);
    expect((await report('a', '5')).status).toBe(202);
    await report('a', '5'); // a retry after a lost answer
    expect(await dropped()).toBe(5);
    await report('a', '8');
    await report('a', '6'); // an older request that arrived late
    await report('b', '3');
    expect(await dropped()).toBe(11);
    await report('not a valid id!', '100');
    await report('c', '-4');
    await report('c', '1e9');
    expect(await dropped()).toBe(11);
  });

  it('/healthz and /api/config say what the collector is', async () => {
    const c = await collector({ jaegerUrl: 'http://jaeger:16686/', lostAfterMs: 5000 });
    const health = await getJson(c.url, '/healthz');
    expect(health.body).toEqual({ status: 'ok', version: expect.any(String), hops: 0, uptimeSec: expect.any(Number) });
    const config = await getJson(c.url, '/api/config');
    expect(config.body).toEqual({
      version: health.body.version,
      jaegerUrl: 'http://jaeger:16686',
      lostAfterMs: 5000,
      stuckAfterMs: 60_000,
      replay: { enabled: false, reason: expect.stringContaining('--amqp-url'), adminToken: false, ratePerSec: 100 },
    });
  });

  it('exports a chain as a download', async () => {
    const c = await collector();
    const { correlationId, hops } = twoMessageChain();
    await postHops(c.url, hops);
    for (const format of ['jaeger', 'otlp']) {
      const res = await fetch(`${c.url}/api/chains/${correlationId}/export?format=${format}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="?hoptrace-.*-${format}\\.json"?$`));
      expect(await res.json()).toBeTypeOf('object');
    }
    expect((await fetch(`${c.url}/api/chains/${correlationId}/export?format=zipkin`)).status).toBe(400);
    expect((await fetch(`${c.url}/api/chains/unknown/export`)).status).toBe(404);
  });

  it('a restart keeps everything the collector answered 202 for', async () => {
    const c = await collector();
    const { correlationId, hops } = twoMessageChain();
    expect((await postHops(c.url, hops.slice(0, 5))).status).toBe(202);
    expect((await postHops(c.url, hops.slice(5))).status).toBe(202);
    const again = await c.restart();
    open.push(again);
    const chain = (await getJson(again.url, `/api/chains/${correlationId}`)).body as ChainDetail;
    expect(chain.hops).toHaveLength(8);
    expect(((await getJson(again.url, '/api/chains')).body as ChainList).items.map((i) => i.correlationId)).toEqual([correlationId]);
    // Dedupe keys survive the restart too.
    expect((await postHops(again.url, hops)).body).toEqual({ accepted: 8, duplicates: 8 });
  });

  it('close() lets a request in flight finish before the store closes', async () => {
    const c = await collector();
    const hops = Array.from({ length: 2000 }, () => makeHop());
    // A request the closing server refuses at connect is an outcome too, not an unhandled rejection.
    const pending = postHops(c.url, hops).catch((err: Error) => ({ status: 0, body: err.message }));
    await new Promise((r) => setTimeout(r, 5));
    await c.close();
    const res = await pending;
    const again = await c.restart();
    open.push(again);
    const stored = (await getJson(again.url, '/healthz')).body.hops;
    // Either the request made it (all of it) or it never started: never half of it.
    if (res.status === 202) expect(stored).toBe(2000);
    else expect([0, 2000]).toContain(stored);
  });
});
