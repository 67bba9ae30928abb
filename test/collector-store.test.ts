import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { MIGRATIONS } from '../collector/migrations.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import type { LiveChainEvent, StoredHop } from '../collector/api-types.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { waitFor } from './helpers/broker.ts';
import { getJson, makeHop, messageHops, postHops, startTestCollector } from './helpers/collector.ts';
import { writeOldStore } from './helpers/old-store.ts';
import { storeKinds } from './helpers/store-kinds.ts';
import { deadLetterChain } from './helpers/chain-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoptrace-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dbPath = () => join(dir, `${randomUUID()}.db`);
const DAY = 86_400_000;

/** A real SQLite trigger that makes any insert of a record of this chain fail, as a full disk or a constraint would. */
function poison(path: string, correlationId: string): void {
  const db = new DatabaseSync(path);
  db.exec(`CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.correlation_id = '${correlationId}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
  db.close();
}

for (const kind of storeKinds()) {
  describe(`${kind.name} store`, () => {
    beforeAll(() => kind.setup());
    afterAll(() => kind.teardown());

    it('writes all of a batch or nothing when anything in it fails', async () => {
      const { store } = await kind.create({ poison: 'bad-chain' });
      try {
        const hops = [makeHop(), makeHop({ correlationId: 'bad-chain' }), makeHop()];
        await expect(store.insertHops(hops, Date.now())).rejects.toMatchObject({ code: 'HOPTRACE_ERR_STORE' });
        expect(await store.stats()).toMatchObject({ hops: 0, chains: 0 });
        for (const h of hops) expect(await store.chainHops(h.correlationId)).toEqual([]);
        // The next write works.
        const good = [hops[0], hops[2]];
        expect(await store.insertHops(good, Date.now())).toMatchObject({ accepted: 2, duplicates: 0 });
        expect(await store.stats()).toMatchObject({ hops: 2, chains: 2 });
      } finally {
        await store.close();
      }
    });

    it('failure groups: two dead-lettered chains of one cause are one group, counted per minute and described, and found by the group', async () => {
      const { store } = await kind.create();
      try {
        const a = deadLetterChain({ seed: 71 });
        const b = deadLetterChain({ seed: 72 });
        const records = (hops: readonly StoredHop[]) => hops.map(({ id: _id, receivedAt: _r, ...h }) => h as HopRecord);
        await store.insertHops([...records(a.hops), ...records(b.hops)], Date.now());
        const counts = await store.failureCounts({ from: 0, to: Number.MAX_SAFE_INTEGER, binStart: 0, binMs: Number.MAX_SAFE_INTEGER });
        expect(counts).toEqual([expect.objectContaining({ bin: 0, count: 2, unresolved: 2 })]);
        const [group] = await store.failureGroups([counts[0].fingerprint, 'no-such-group']);
        expect(group).toMatchObject({ status: 'dead-lettered', service: 'billing', queue: 'billing.order-placed', errorType: 'PaymentDeclinedError' });
        const found = (await store.listChains({ limit: 10, failure: counts[0].fingerprint })).items.map((c) => c.correlationId);
        expect(found.sort()).toEqual([a.correlationId, b.correlationId].sort());
        expect(await store.failureCounts({ from: 0, to: Number.MAX_SAFE_INTEGER, binStart: 0, binMs: 60_000, fingerprint: 'no-such-group' })).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('a resent record is stored once whatever its field order or form; one differing in what makes it an event is kept', async () => {
      const { store } = await kind.create();
      try {
        const hop = makeHop({ kind: 'settle', outcome: 'ack', queue: 'q1', deliveryTag: 3 });
        const reordered = Object.fromEntries(Object.entries(hop).reverse()) as unknown as HopRecord;
        expect(await store.insertHops([hop], Date.now())).toEqual({ accepted: 1, duplicates: 0 });
        expect(await store.insertHops([reordered, { ...hop }], Date.now())).toEqual({ accepted: 2, duplicates: 2 });
        const near: HopRecord[] = [
          { ...hop, ts: hop.ts + 1 },
          { ...hop, spanId: 'aaaaaaaaaaaaaaaa' },
          { ...hop, instance: 'other-host/2' },
          { ...hop, queue: 'q2' },
          { ...hop, deliveryTag: 4 },
          { ...hop, outcome: 'nack', requeue: true },
          { ...hop, kind: 'process', outcome: 'ack' },
        ];
        expect(await store.insertHops(near, Date.now())).toEqual({ accepted: near.length, duplicates: 0 });
        expect(await store.chainHops(hop.correlationId)).toHaveLength(1 + near.length);
      } finally {
        await store.close();
      }
    });

    it('the sweep turns a message never received into a lost chain once the limit has passed', async () => {
      const { store } = await kind.create({ engine: { ...DEFAULT_ENGINE_OPTIONS, lostAfterMs: 1000 } });
      try {
        const now = Date.now();
        const send = makeHop({ ts: now });
        await store.insertHops([send], now);
        expect(await store.flushSummaries(now)).toEqual([{ type: 'new', chain: expect.objectContaining({ status: 'in-flight' }) }]);
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
      const { store } = await kind.create();
      try {
        // Days apart: PostgreSQL drops whole partitions of a day of arrivals.
        const now = Date.now();
        const old = messageHops({ correlationId: randomUUID() });
        const fresh = messageHops({ correlationId: randomUUID() });
        await store.insertHops(old, now - 3 * DAY);
        await store.insertHops(fresh, now);
        expect(await store.applyRetention({ maxAgeMs: DAY }, now)).toEqual({ deletedChains: 1, deletedHops: 4 });
        expect(await store.chainHops(old[0].correlationId)).toEqual([]);
        expect(await store.chainHops(fresh[0].correlationId)).toHaveLength(4);
        expect(await store.stats()).toMatchObject({ hops: 4, chains: 1 });
      } finally {
        await store.close();
      }
    });

    it('the flush summarizes a chain once however many writes touched it, announcing it as new', async () => {
      const { store } = await kind.create();
      try {
        const now = Date.now();
        const [send, ...rest] = messageHops({ correlationId: randomUUID(), ts: now });
        expect(await store.insertHops([send], now)).toEqual({ accepted: 1, duplicates: 0 });
        expect(await store.insertHops(rest, now + 5)).toEqual({ accepted: 3, duplicates: 0 });
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

    it('a read sees every committed hop, and the flush still announces what that read summarized', async () => {
      const { store } = await kind.create();
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

    it('concurrent writes each resolve after their commit, and a failing one is rolled back alone', async () => {
      const t = await kind.create({ poison: 'bad-chain' });
      const store = t.store;
      try {
        const a = messageHops({ correlationId: 'chain-a' });
        const bad = messageHops({ correlationId: 'bad-chain' });
        const c = messageHops({ correlationId: 'chain-c' });
        // Another connection sees each write's records by the time its promise settles: it was committed.
        const settled = await Promise.allSettled(
          [a, bad, c].map((hops) => store.insertHops(hops, Date.now()).then(async (r) => ({ ...r, visible: await t.committedRecords(hops[0].correlationId) }))),
        );
        expect(settled[0]).toMatchObject({ status: 'fulfilled', value: { accepted: 4, duplicates: 0, visible: 4 } });
        expect(settled[1]).toMatchObject({ status: 'rejected', reason: { code: 'HOPTRACE_ERR_STORE' } });
        expect(settled[2]).toMatchObject({ status: 'fulfilled', value: { accepted: 4, duplicates: 0, visible: 4 } });
        expect(await t.committedRecords('bad-chain')).toBe(0);
        expect(await store.stats()).toMatchObject({ hops: 8, chains: 2 });
        // The same hop in two concurrent writes is stored once.
        const hop = makeHop();
        const twice = await Promise.all([store.insertHops([hop], Date.now()), store.insertHops([hop], Date.now())]);
        expect(twice.map((r) => r.duplicates).sort()).toEqual([0, 1]);
      } finally {
        await store.close();
      }
    });

    it('q finds chains by correlation, message and trace id, exact and by prefix', async () => {
      const { store } = await kind.create();
      try {
        const uuidChain = messageHops({ correlationId: randomUUID() });
        const textChain = messageHops({ correlationId: 'order-42', messageId: 'msg-order-42' });
        await store.insertHops([...uuidChain, ...textChain], Date.now());
        const find = async (q: string) => (await store.listChains({ limit: 10, q })).items.map((c) => c.correlationId);
        const u = uuidChain[0];
        expect(await find(u.correlationId)).toEqual([u.correlationId]);
        expect(await find(u.correlationId.slice(0, 13))).toEqual([u.correlationId]);
        expect(await find(u.messageId)).toEqual([u.correlationId]);
        expect(await find(u.messageId.slice(0, 11))).toEqual([u.correlationId]);
        expect(await find(u.traceId)).toEqual([u.correlationId]);
        expect(await find(u.traceId.slice(0, 7))).toEqual([u.correlationId]);
        expect(await find('order-4')).toEqual(['order-42']);
        expect(await find(textChain[0].messageId)).toEqual(['order-42']);
        expect(await find('nothing-like-it')).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('two list filters together page newest first without repeating or skipping a chain', async () => {
      const { store } = await kind.create();
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
      const { store } = await kind.create();
      try {
        // 4 hops per chain, a chain's hops split across two batches, as a live system sends them.
        const batches: ReturnType<typeof messageHops>[] = [];
        const all = Array.from({ length: 12_500 }, (_, i) => messageHops({ correlationId: `perf-${i}`, ts: 1_700_000_000_000 + i }));
        const flat = all.flatMap((hops) => hops);
        for (let i = 0; i < flat.length; i += 1000) batches.push(flat.slice(i, i + 1000));
        const t0 = performance.now();
        for (const batch of batches) await store.insertHops(batch, Date.now());
        const seconds = (performance.now() - t0) / 1000;
        console.log(`${kind.name} store: ${flat.length} hops in ${seconds.toFixed(2)} s = ${Math.round(flat.length / seconds)} hops/s committed`);
        expect(await store.stats()).toMatchObject({ hops: 50_000, chains: 12_500 });
      } finally {
        await store.close();
      }
    }, 120_000);
  });
}

describe('SQLite store', () => {
  it('creates a WAL database at the newest schema version and reopens it', async () => {
    const path = dbPath();
    const store = new SqliteStore({ path });
    await store.insertHops([makeHop()], Date.now());
    await store.close();
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: MIGRATIONS.length });
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
    const again = new SqliteStore({ path });
    expect(await again.stats()).toMatchObject({ hops: 1, chains: 1 });
    await again.close();
  });
  it('refuses a database written by a newer hoptrace', async () => {
    const path = dbPath();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => new SqliteStore({ path })).toThrow(/newer than this hoptrace understands/);
  });
  it('retention by size deletes the least recently updated chains until the store fits', async () => {
    const store = new SqliteStore({ path: dbPath() });
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
  it('a crash after the commit and before the summary loses nothing: the reopened store summarizes the chain', async () => {
    const path = dbPath();
    const crashed = join(dir, `${randomUUID()}.db`);
    const store = new SqliteStore({ path });
    const hops = messageHops({ correlationId: randomUUID() });
    await store.insertHops(hops, Date.now());
    // The files as a power cut would leave them: committed WAL frames, no summary written yet.
    copyFileSync(path, crashed);
    copyFileSync(`${path}-wal`, `${crashed}-wal`);
    await store.close();
    const raw = new DatabaseSync(crashed);
    expect(raw.prepare('SELECT count(*) AS n FROM chains').get()).toEqual({ n: 0 });
    expect(raw.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: 4 });
    raw.close();
    const reopened = new SqliteStore({ path: crashed });
    try {
      expect(await reopened.chainSummary(hops[0].correlationId)).toMatchObject({ hopCount: 4, status: 'ok' });
      expect(await reopened.stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await reopened.close();
    }
  });
  for (const version of Array.from({ length: MIGRATIONS.length - 1 }, (_, i) => i + 1)) {
    it(`a database at schema version ${version} migrates: its chains, hops, list filters and id search all answer`, async () => {
      const a = messageHops({ correlationId: 'chain-a' }, { publisher: 'orders', consumer: 'billing', exchange: 'shop', routingKey: 'order.paid' });
      const b = messageHops({ correlationId: 'chain-b' }, { publisher: 'orders', consumer: 'ledger', exchange: 'audit', routingKey: 'entry.new' });
      const again = b.slice(1).map((h) => ({ ...h, ts: h.ts + 50, deliveryTag: 2, ...(h.kind === 'receive' ? { redelivered: true } : {}) }));
      const old = dbPath();
      writeOldStore(old, version, [...a, ...b, ...again]);
      const migrated = new SqliteStore({ path: old });
      try {
        const ids = async (q: Omit<Parameters<SqliteStore['listChains']>[0], 'limit'>) =>
          (await migrated.listChains({ limit: 10, ...q })).items.map((c) => c.correlationId);
        expect(await ids({ service: 'billing' })).toEqual(['chain-a']);
        expect((await ids({ service: 'orders' })).sort()).toEqual(['chain-a', 'chain-b']);
        expect(await ids({ exchange: 'audit' })).toEqual(['chain-b']);
        expect(await ids({ routingKey: 'order.paid' })).toEqual(['chain-a']);
        expect(await ids({ status: ['ok'], service: 'ledger', exchange: 'audit' })).toEqual(['chain-b']);
        expect(await ids({ status: ['failed'] })).toEqual([]);
        expect(await ids({ redelivered: true })).toEqual(['chain-b']);
        expect(await ids({ q: a[0].messageId })).toEqual(['chain-a']);
        expect(await ids({ q: b[0].traceId })).toEqual(['chain-b']);
        expect(await migrated.chainHops('chain-a')).toEqual(a.map((h) => expect.objectContaining({ kind: h.kind, ts: h.ts, messageId: h.messageId })));
        expect(await migrated.stats()).toMatchObject({ hops: a.length + b.length + again.length, chains: 2 });
        // New records join migrated chains.
        await migrated.insertHops([makeHop({ correlationId: 'chain-a', kind: 'send', service: 'audit' })], Date.now());
        expect((await migrated.chainSummary('chain-a'))?.hopCount).toBe(a.length + 1);
      } finally {
        await migrated.close();
      }
    });
  }

  it('a database at schema version 6 migrates: its dead-lettered chains are counted in failure groups and found by their group', async () => {
    const f = deadLetterChain({ seed: 77 });
    const old = dbPath();
    writeOldStore(old, 6, f.hops.map(({ id: _id, receivedAt: _r, ...h }) => h as HopRecord));
    const migrated = new SqliteStore({ path: old });
    try {
      const counts = await migrated.failureCounts({ from: 0, to: Number.MAX_SAFE_INTEGER, binStart: 0, binMs: Number.MAX_SAFE_INTEGER });
      expect(counts).toEqual([expect.objectContaining({ count: 1, unresolved: 1 })]);
      const [group] = await migrated.failureGroups([counts[0].fingerprint]);
      expect(group).toMatchObject({ status: 'dead-lettered', service: 'billing', queue: 'billing.order-placed', errorType: 'PaymentDeclinedError' });
      expect((await migrated.listChains({ limit: 10, failure: counts[0].fingerprint })).items.map((c) => c.correlationId)).toEqual([f.correlationId]);
    } finally {
      await migrated.close();
    }
  });

  it('a database at schema version 5 migrates and the queue filter finds the chains it already held', async () => {
    const old = dbPath();
    writeOldStore(old, 5, [...messageHops({ correlationId: 'chain-a' }, { queue: 'a.q' }), ...messageHops({ correlationId: 'chain-b' }, { queue: 'b.q' })]);
    const migrated = new SqliteStore({ path: old });
    try {
      expect((await migrated.listChains({ limit: 10, queue: 'b.q' })).items.map((c) => c.correlationId)).toEqual(['chain-b']);
    } finally {
      await migrated.close();
    }
  });

});

describe('collector background jobs', () => {
  for (const kind of storeKinds()) {
    beforeAll(() => kind.setup());
    afterAll(() => kind.teardown());

    it(`live clients hear when the sweep turns a chain lost (${kind.name})`, async () => {
      // The limit is far above the summary flush interval (200 ms): the chain is announced in flight first,
      // even on a loaded machine.
      const { store } = await kind.create({ engine: { ...DEFAULT_ENGINE_OPTIONS, lostAfterMs: 4000 } });
      const c = await startTestCollector({ store, lostAfterMs: 4000, sweepIntervalMs: 50 });
      const controller = new AbortController();
      try {
        const res = await fetch(`${c.url}/api/live`, { signal: controller.signal });
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        await waitFor(async () => /hoptrace_sse_clients 1/.test(await (await fetch(`${c.url}/metrics`)).text()), 'the live client');
        const send = makeHop();
        await postHops(c.url, [send]);
        const events: LiveChainEvent[] = [];
        while (!events.some((e) => e.chain.status === 'lost')) {
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
  }

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
