import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { createSummarizer } from '../collector/ingest.ts';
import { MIGRATIONS } from '../collector/migrations.ts';
import { canonicalJson, SqliteStore } from '../collector/sqlite-store.ts';
import type { ChainSummarizer } from '../collector/store.ts';
import type { LiveChainEvent } from '../collector/api-types.ts';
import { waitFor } from './helpers/broker.ts';
import { getJson, makeHop, messageHops, postHops, startTestCollector } from './helpers/collector.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoptrace-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dbPath = () => join(dir, `${randomUUID()}.db`);
const summarize = createSummarizer(DEFAULT_ENGINE_OPTIONS);

describe('SQLite store', () => {
  it('creates a WAL database at the newest schema version and reopens it', async () => {
    const path = dbPath();
    const store = new SqliteStore({ path, summarize });
    await store.insertHops([makeHop()], Date.now());
    await store.close();
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: MIGRATIONS.length });
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
    const again = new SqliteStore({ path, summarize });
    expect(await again.stats()).toMatchObject({ hops: 1, chains: 1 });
    await again.close();
  });

  it('refuses a database written by a newer hoptrace', async () => {
    const path = dbPath();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => new SqliteStore({ path, summarize })).toThrow(/newer than this hoptrace understands/);
  });

  it('writes all of a batch or nothing when anything in it fails', async () => {
    let calls = 0;
    const failing: ChainSummarizer = (id, hops, times) => {
      if (++calls === 2) throw new Error('engine blew up');
      return summarize(id, hops, times);
    };
    const store = new SqliteStore({ path: dbPath(), summarize: failing });
    try {
      const hops = [makeHop(), makeHop(), makeHop()];
      await expect(store.insertHops(hops, Date.now())).rejects.toMatchObject({ code: 'HOPTRACE_ERR_STORE' });
      expect(await store.stats()).toMatchObject({ hops: 0, chains: 0 });
      for (const h of hops) expect(await store.chainHops(h.correlationId)).toEqual([]);
      // The next write works.
      expect(await store.insertHops(hops, Date.now())).toMatchObject({ accepted: 3, duplicates: 0 });
      expect(await store.stats()).toMatchObject({ hops: 3, chains: 3 });
    } finally {
      await store.close();
    }
  });

  it('the dedupe key ignores field order but not field values', () => {
    const hop = makeHop();
    const reordered = Object.fromEntries(Object.entries(hop).reverse());
    expect(canonicalJson(reordered)).toBe(canonicalJson(hop));
    expect(canonicalJson({ ...hop, ts: hop.ts + 1 })).not.toBe(canonicalJson(hop));
  });

  it('the sweep turns a message never received into a lost chain once the limit has passed', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize: createSummarizer({ ...DEFAULT_ENGINE_OPTIONS, lostAfterMs: 1000 }) });
    try {
      const now = Date.now();
      const send = makeHop({ ts: now });
      const first = await store.insertHops([send], now);
      expect(first.changes).toEqual([{ type: 'new', chain: expect.objectContaining({ status: 'in-flight' }) }]);
      // Before the limit: nothing changes.
      expect(await store.refreshUnsettled(now + 500, 100)).toEqual([]);
      const later = await store.refreshUnsettled(now + 1500, 100);
      expect(later).toEqual([{ type: 'changed', chain: expect.objectContaining({ correlationId: send.correlationId, status: 'lost' }) }]);
      expect((await store.chainSummary(send.correlationId))?.status).toBe('lost');
      // Settled now: the sweep leaves it alone.
      expect(await store.refreshUnsettled(now + 5000, 100)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('retention by age deletes chains idle longer than maxAgeMs, hops and all', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize });
    try {
      const now = Date.now();
      const old = messageHops({ correlationId: randomUUID() });
      const fresh = messageHops({ correlationId: randomUUID() });
      await store.insertHops(old, now - 10_000);
      await store.insertHops(fresh, now);
      expect(await store.applyRetention({ maxAgeMs: 5_000 }, now)).toEqual({ deletedChains: 1, deletedHops: 4 });
      expect(await store.chainHops(old[0].correlationId)).toEqual([]);
      expect(await store.chainHops(fresh[0].correlationId)).toHaveLength(4);
      expect(await store.stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await store.close();
    }
  });

  it('retention by size deletes the least recently updated chains until the store fits', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize });
    try {
      const base = Date.now() - 1_000_000;
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        const correlationId = `c-${String(i).padStart(2, '0')}`;
        ids.push(correlationId);
        const hops = Array.from({ length: 25 }, () => makeHop({ correlationId, payload: 'x'.repeat(2000) }));
        await store.insertHops(hops, base + i);
      }
      const before = await store.stats();
      const limit = Math.floor(before.bytes / 2);
      const result = await store.applyRetention({ maxBytes: limit }, Date.now());
      expect(result.deletedChains).toBeGreaterThan(0);
      const after = await store.stats();
      expect(after.bytes).toBeLessThanOrEqual(limit);
      // Oldest first: the survivors are the most recently updated chains.
      const survivors = ids.filter((_, i) => i >= 40 - after.chains);
      for (const id of survivors) expect(await store.chainHops(id)).toHaveLength(25);
      expect(await store.chainHops('c-00')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('with deferred summaries a write marks its chain and the flush summarizes it once, announcing it as new', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize, summaries: 'deferred' });
    try {
      const now = Date.now();
      const [send, ...rest] = messageHops({ correlationId: randomUUID(), ts: now });
      expect(await store.insertHops([send], now)).toEqual({ accepted: 1, duplicates: 0, changes: [] });
      expect(await store.insertHops(rest, now + 5)).toEqual({ accepted: 3, duplicates: 0, changes: [] });
      const changes = await store.flushSummaries(now + 10);
      // Two writes, one rebuild: one event, with every hop in it and the last ingest as updatedAt.
      expect(changes).toEqual([
        { type: 'new', chain: expect.objectContaining({ correlationId: send.correlationId, hopCount: 4, updatedAt: now + 5 }) },
      ]);
      expect(await store.flushSummaries(now + 20)).toEqual([]);
      expect(await store.stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await store.close();
    }
  });

  it('with deferred summaries a read sees every committed hop, and the flush still announces what that read rebuilt', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize, summaries: 'deferred' });
    try {
      const hop = makeHop();
      await store.insertHops([hop], Date.now());
      const list = await store.listChains({ limit: 10 });
      expect(list.items.map((c) => c.correlationId)).toEqual([hop.correlationId]);
      expect((await store.chainSummary(hop.correlationId))?.hopCount).toBe(1);
      expect(await store.flushSummaries(Date.now())).toEqual([
        { type: 'new', chain: expect.objectContaining({ correlationId: hop.correlationId }) },
      ]);
    } finally {
      await store.close();
    }
  });

  it('a crash after the commit and before the summary loses nothing: the reopened store rebuilds the summary', async () => {
    const path = dbPath();
    const crashed = join(dir, `${randomUUID()}.db`);
    const store = new SqliteStore({ path, summarize, summaries: 'deferred' });
    const hops = messageHops({ correlationId: randomUUID() });
    await store.insertHops(hops, Date.now());
    // The files as a power cut would leave them: committed WAL frames, no summary written yet.
    copyFileSync(path, crashed);
    copyFileSync(`${path}-wal`, `${crashed}-wal`);
    await store.close();
    const raw = new DatabaseSync(crashed);
    expect(raw.prepare('SELECT count(*) AS n FROM chains').get()).toEqual({ n: 0 });
    expect(raw.prepare('SELECT correlation_id FROM dirty_chains').all()).toEqual([{ correlation_id: hops[0].correlationId }]);
    raw.close();
    const reopened = new SqliteStore({ path: crashed, summarize });
    try {
      expect(await reopened.chainSummary(hops[0].correlationId)).toMatchObject({ hopCount: 4, status: 'ok' });
      expect(await reopened.stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await reopened.close();
    }
  });

  it('concurrent writes share a commit, each resolving after it, and a failing one is rolled back alone', async () => {
    const failing: ChainSummarizer = (id, hops, times) => {
      if (id === 'bad-chain') throw new Error('engine blew up');
      return summarize(id, hops, times);
    };
    const path = dbPath();
    const store = new SqliteStore({ path, summarize: failing });
    const reader = new DatabaseSync(path);
    const stored = (id: string) => (reader.prepare('SELECT count(*) AS n FROM hops WHERE correlation_id = ?').get(id) as { n: number }).n;
    try {
      const a = messageHops({ correlationId: 'chain-a' });
      const bad = messageHops({ correlationId: 'bad-chain' });
      const c = messageHops({ correlationId: 'chain-c' });
      // Another connection sees each write's hops by the time its promise settles: it was committed.
      const settled = await Promise.allSettled(
        [a, bad, c].map((hops) => store.insertHops(hops, Date.now()).then((r) => ({ ...r, visible: stored(hops[0].correlationId) }))),
      );
      expect(settled[0]).toMatchObject({ status: 'fulfilled', value: { accepted: 4, duplicates: 0, visible: 4 } });
      expect(settled[1]).toMatchObject({ status: 'rejected', reason: { code: 'HOPTRACE_ERR_STORE' } });
      expect(settled[2]).toMatchObject({ status: 'fulfilled', value: { accepted: 4, duplicates: 0, visible: 4 } });
      expect(stored('bad-chain')).toBe(0);
      expect(await store.stats()).toMatchObject({ hops: 8, chains: 2 });
      // The same hop in two concurrent writes is stored once.
      const hop = makeHop();
      const twice = await Promise.all([store.insertHops([hop], Date.now()), store.insertHops([hop], Date.now())]);
      expect(twice.map((r) => r.duplicates)).toEqual([0, 1]);
    } finally {
      reader.close();
      await store.close();
    }
  });

  it('a database written at schema version 1 migrates, and every list filter finds its chains', async () => {
    // The hops and summaries of a current store, copied into a file at schema version 1.
    const current = dbPath();
    const store = new SqliteStore({ path: current, summarize });
    const a = messageHops({ correlationId: 'chain-a' }, { publisher: 'orders', consumer: 'billing', exchange: 'shop', routingKey: 'order.paid' });
    const b = messageHops({ correlationId: 'chain-b' }, { publisher: 'orders', consumer: 'ledger', exchange: 'audit', routingKey: 'entry.new' });
    await store.insertHops([...a, ...b], Date.now());
    await store.close();
    const old = dbPath();
    const db = new DatabaseSync(old);
    db.exec(MIGRATIONS[0] as string);
    db.exec('PRAGMA user_version = 1');
    db.exec(`ATTACH '${current}' AS cur`);
    db.exec(`INSERT INTO hops SELECT id, dedupe_key, correlation_id, message_id, trace_id, service, kind, ts, received_at, exchange, routing_key, queue, json FROM cur.hops;
             INSERT INTO chains SELECT * FROM cur.chains;`);
    db.exec('DETACH cur');
    db.close();
    const migrated = new SqliteStore({ path: old, summarize });
    try {
      const ids = async (q: Omit<Parameters<SqliteStore['listChains']>[0], 'limit'>) =>
        (await migrated.listChains({ limit: 10, ...q })).items.map((c) => c.correlationId);
      expect(await ids({ service: 'billing' })).toEqual(['chain-a']);
      expect(await ids({ service: 'orders' })).toHaveLength(2);
      expect(await ids({ exchange: 'audit' })).toEqual(['chain-b']);
      expect(await ids({ routingKey: 'order.paid' })).toEqual(['chain-a']);
      expect(await ids({ status: ['ok'], service: 'ledger', exchange: 'audit' })).toEqual(['chain-b']);
      expect(await ids({ status: ['failed'] })).toEqual([]);
    } finally {
      await migrated.close();
    }
  });

  it('a database at schema version 4 migrates and the redelivered filter finds the chains it already held', async () => {
    const current = dbPath();
    const store = new SqliteStore({ path: current, summarize });
    const plain = messageHops({ correlationId: 'chain-plain' });
    const twice = messageHops({ correlationId: 'chain-twice' });
    const again = twice.slice(1).map((h) => ({ ...h, ts: h.ts + 50, deliveryTag: 2, ...(h.kind === 'receive' ? { redelivered: true } : {}) }));
    await store.insertHops([...plain, ...twice, ...again], Date.now());
    await store.close();
    // The same file as version 4 wrote it: no redelivered tags.
    const db = new DatabaseSync(current);
    db.exec("DELETE FROM chain_tags WHERE tag LIKE 'f:%'; PRAGMA user_version = 4;");
    db.close();
    const migrated = new SqliteStore({ path: current, summarize });
    try {
      const ids = async (q: Omit<Parameters<SqliteStore['listChains']>[0], 'limit'>) =>
        (await migrated.listChains({ limit: 10, ...q })).items.map((c) => c.correlationId);
      expect(await ids({ redelivered: true })).toEqual(['chain-twice']);
      expect(await ids({ redelivered: false })).toEqual(['chain-plain']);
      expect(await ids({ status: ['redelivered'] })).toEqual(['chain-twice']);
    } finally {
      await migrated.close();
    }
  });

  it('a database at schema version 5 migrates and the queue filter finds the chains it already held', async () => {
    const current = dbPath();
    const store = new SqliteStore({ path: current, summarize });
    await store.insertHops([...messageHops({ correlationId: 'chain-a' }, { queue: 'a.q' }), ...messageHops({ correlationId: 'chain-b' }, { queue: 'b.q' })], Date.now());
    await store.close();
    const db = new DatabaseSync(current);
    db.exec("DELETE FROM chain_tags WHERE tag LIKE 'q:%'; PRAGMA user_version = 5;");
    db.close();
    const migrated = new SqliteStore({ path: current, summarize });
    try {
      expect((await migrated.listChains({ limit: 10, queue: 'b.q' })).items.map((c) => c.correlationId)).toEqual(['chain-b']);
    } finally {
      await migrated.close();
    }
  });

  it('two list filters together page newest first without repeating or skipping a chain', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize, summaries: 'deferred' });
    try {
      const base = 1_700_000_000_000;
      const hops = Array.from({ length: 30 }, (_, i) =>
        messageHops({ correlationId: `c-${String(i).padStart(2, '0')}`, ts: base + i * 1000 }, { consumer: i % 3 === 0 ? 'ledger' : 'billing' }),
      ).flat();
      await store.insertHops(hops, Date.now());
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listChains({ status: ['ok'], service: 'ledger', limit: 4, cursor });
        seen.push(...page.items.map((c) => c.correlationId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 === 0).reverse().map((i) => `c-${String(i).padStart(2, '0')}`);
      expect(seen).toEqual(expected);
    } finally {
      await store.close();
    }
  });

  it('stores 50,000 hops in batches of 1,000 and reports the rate', async () => {
    const store = new SqliteStore({ path: dbPath(), summarize });
    try {
      // 4 hops per chain, a chain's hops split across two batches, as a live system sends them.
      const batches: ReturnType<typeof messageHops>[] = [];
      const all = Array.from({ length: 12_500 }, (_, i) => messageHops({ correlationId: `perf-${i}`, ts: 1_700_000_000_000 + i }));
      const flat = all.flatMap((hops) => hops);
      for (let i = 0; i < flat.length; i += 1000) batches.push(flat.slice(i, i + 1000));
      const t0 = performance.now();
      for (const batch of batches) await store.insertHops(batch, Date.now());
      const seconds = (performance.now() - t0) / 1000;
      console.log(`store: ${flat.length} hops in ${seconds.toFixed(2)} s = ${Math.round(flat.length / seconds)} hops/s committed`);
      expect(await store.stats()).toMatchObject({ hops: 50_000, chains: 12_500 });
    } finally {
      await store.close();
    }
  });
});

describe('collector background jobs', () => {
  it('live clients hear when the sweep turns a chain lost', async () => {
    const c = await startTestCollector({ lostAfterMs: 200, sweepIntervalMs: 50 });
    const controller = new AbortController();
    try {
      const res = await fetch(`${c.url}/api/live`, { signal: controller.signal });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      await waitFor(async () => /hoptrace_sse_clients 1/.test(await (await fetch(`${c.url}/metrics`)).text()), 'the live client');
      const send = makeHop();
      await postHops(c.url, [send]);
      const events: LiveChainEvent[] = [];
      while (!events.some((e) => e.type === 'changed' && e.chain.status === 'lost')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        for (let m = /event: chain\ndata: (.*)\n\n/.exec(text); m; m = /event: chain\ndata: (.*)\n\n/.exec(text)) {
          events.push(JSON.parse(m[1]) as LiveChainEvent);
          text = text.slice(m.index + m[0].length);
        }
      }
      expect(events[0]).toMatchObject({ type: 'new', chain: { correlationId: send.correlationId, status: 'in-flight' } });
      expect(events.at(-1)).toMatchObject({ type: 'changed', chain: { correlationId: send.correlationId, status: 'lost' } });
      expect((await getJson(c.url, `/api/chains?status=lost`)).body.items).toHaveLength(1);
    } finally {
      controller.abort();
      await c.stop();
    }
  });

  it('background retention removes idle chains', async () => {
    const c = await startTestCollector({ retention: { maxAgeMs: 1, intervalMs: 50 } });
    try {
      const hop = makeHop();
      await postHops(c.url, [hop]);
      await waitFor(async () => (await getJson(c.url, '/healthz')).body.hops === 0, 'retention to delete the chain');
      expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(404);
    } finally {
      await c.stop();
    }
  });
});
