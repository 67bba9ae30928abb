/**
 * What only the PostgreSQL store does (the assertions both stores share are
 * in collector-store.test.ts): its migrations, retention by partition,
 * several collectors' flushes on one database, names interned by another
 * collector, and the commands that move data into it.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import type { EngineSettings } from '../collector/chain-summary.ts';
import { migratePg, PG_MIGRATIONS, type PgMigration } from '../collector/pg-migrations.ts';
import { PgStore } from '../collector/pg-store.ts';
import { NOTIFY_CHANNEL, type ChainNotice } from '../collector/pg-summaries.ts';
import type { IngestRecord } from '../collector/record-identity.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import type { Store } from '../collector/store.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { makeHop, messageHops } from './helpers/collector.ts';
import { writeOldStore } from './helpers/old-store.ts';
import { freshDatabase, type TestDatabase } from './helpers/postgres.ts';

const BIN = fileURLToPath(new URL('../bin/hoptrace.js', import.meta.url));
const DAY = 86_400_000;
/** No status changes with time alone: summaries compare by what the hops say. */
const SETTINGS: EngineSettings = { lostAfterMs: 1e12, stuckAfterMs: 1e12, redeliveryLoopThreshold: 5 };

let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), 'hoptrace-pg-'));
beforeAll(async () => {
  db = await freshDatabase('pgstore');
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let schemas = 0;
/** A schema of its own for each store, and its URL. */
function newSchema(): { schema: string; url: string } {
  const schema = `p${++schemas}`;
  return { schema, url: db.schemaUrl(schema) };
}

const open = (url: string, options: { poolSize?: number } = {}) => PgStore.open({ url, engine: SETTINGS, poolSize: options.poolSize ?? 3 });

/** Run the real `hoptrace` command. */
function hoptrace(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HOPTRACE_TOKEN: '', HOPTRACE_DB: '', HOPTRACE_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** What a reader sees of chains: summaries, hops without store ids, a filtered list. */
async function view(store: Store, ids: readonly string[]) {
  const out: Record<string, unknown> = {};
  for (const id of ids) {
    out[id] = {
      summary: await store.chainSummary(id),
      hops: (await store.chainHops(id)).map(({ id: _id, ...h }) => h),
    };
  }
  return out;
}

describe('PostgreSQL schema migrations', () => {
  it('creates the schema at the newest version, records each migration, and reopens it', async () => {
    const { schema, url } = newSchema();
    const store = await open(url);
    await store.insertHops(messageHops({ correlationId: 'chain-a' }), Date.now());
    await store.close();
    const versions = await db.sql<{ version: number; description: string; applied_by: string }>(
      `SELECT version, description, applied_by FROM ${schema}.schema_migrations ORDER BY version`,
    );
    expect(versions.map((v) => v.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect(versions[0]).toMatchObject({ description: PG_MIGRATIONS[0].description, applied_by: `hoptrace collector ${process.pid}` });
    const again = await open(url);
    try {
      expect(await again.stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await again.close();
    }
  });

  it('refuses a schema written by a newer hoptrace', async () => {
    const { schema, url } = newSchema();
    await (await open(url)).close();
    await db.sql(`INSERT INTO ${schema}.schema_migrations (version, description, applied_by) VALUES ($1, 'from the future', 'test')`, [
      PG_MIGRATIONS.length + 1,
    ]);
    await expect(open(url)).rejects.toThrow(/newer than this hoptrace understands/);
  });

  it('collectors opening an empty database at once apply each migration once', async () => {
    const { schema, url } = newSchema();
    const stores = await Promise.all([open(url), open(url), open(url)]);
    try {
      const rows = await db.sql<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
      await stores[0].insertHops(messageHops({ correlationId: 'chain-a' }), Date.now());
      expect(await stores[2].stats()).toMatchObject({ hops: 4, chains: 1 });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  for (const version of Array.from({ length: PG_MIGRATIONS.length }, (_, i) => i)) {
    it(`a schema at version ${version} migrates to the newest and the store works on it`, async () => {
      const { schema, url } = newSchema();
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        expect(await migratePg(client, schema, PG_MIGRATIONS.slice(0, version))).toEqual({ from: 0, to: version });
      } finally {
        await client.end();
      }
      const store = await open(url);
      try {
        const hops = messageHops({ correlationId: 'chain-a' }, { consumer: 'ledger' });
        await store.insertHops(hops, Date.now());
        expect((await store.listChains({ limit: 10, service: 'ledger' })).items.map((c) => c.correlationId)).toEqual(['chain-a']);
      } finally {
        await store.close();
      }
    });
  }

  it('a later migration applies once, in order, over the data earlier ones stored; a failing one leaves the schema as it was', async () => {
    // The mechanism with a version past the released ones (only tests add it).
    const next: PgMigration = {
      description: 'test: a note per chain',
      sql: `ALTER TABLE chains ADD COLUMN note text NOT NULL DEFAULT 'migrated'; CREATE TABLE notes (id integer PRIMARY KEY)`,
    };
    const broken: PgMigration = { description: 'test: broken', sql: 'ALTER TABLE chains ADD COLUMN x integer; SELECT * FROM no_such_table' };
    const { schema, url } = newSchema();
    const store = await open(url);
    await store.insertHops(messageHops({ correlationId: 'chain-a' }), Date.now());
    await store.close();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const newest = PG_MIGRATIONS.length;
      expect(await migratePg(client, schema, [...PG_MIGRATIONS, next])).toEqual({ from: newest, to: newest + 1 });
      expect(await migratePg(client, schema, [...PG_MIGRATIONS, next])).toEqual({ from: newest + 1, to: newest + 1 });
      expect(await db.sql(`SELECT correlation_id, note FROM ${schema}.chains`)).toEqual([{ correlation_id: 'chain-a', note: 'migrated' }]);
      await expect(migratePg(client, schema, [...PG_MIGRATIONS, next, broken])).rejects.toThrow(/migration \d+ \(test: broken\) failed/);
      const versions = await db.sql<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      expect(versions.map((v) => v.version)).toEqual([...PG_MIGRATIONS.map((_, i) => i + 1), newest + 1]);
      expect(await db.sql(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'chains' AND column_name = 'x'`, [schema])).toEqual([]);
      // And the released code refuses the schema it does not know.
      await expect(open(url)).rejects.toThrow(/newer than this hoptrace understands/);
    } finally {
      await client.end();
    }
  });
});

describe('PostgreSQL retention by partition', () => {
  const now = Date.UTC(2026, 0, 10, 12, 0, 0);
  const parts = async (schema: string) =>
    (
      await db.sql<{ relname: string }>(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1) ORDER BY 1`,
        [`${schema}.records`],
      )
    ).map((r) => r.relname);

  it('drops the partitions older than the age, deletes chains they held alone, and re-summarizes a chain they held part of', async () => {
    const { schema, url } = newSchema();
    const store = await open(url);
    const ref = await open(newSchema().url);
    try {
      const old = messageHops({ correlationId: 'old', ts: now - 3 * DAY }, { consumer: 'archive' });
      // A chain active across the cutoff: its first message arrived three days ago, its second now.
      const first = messageHops({ correlationId: 'straddle', ts: now - 3 * DAY + 5 }, { consumer: 'audit', exchange: 'old-x' });
      const second = messageHops({ correlationId: 'straddle', ts: now - 1000 }, { consumer: 'billing' });
      const fresh = messageHops({ correlationId: 'fresh', ts: now - 500 });
      await store.insertHops([...old, ...first], now - 3 * DAY);
      await store.flushSummaries(now - 3 * DAY);
      await store.insertHops([...second, ...fresh], now);
      expect((await parts(schema)).length).toBe(2);

      expect(await store.applyRetention({ maxAgeMs: DAY }, now)).toEqual({ deletedChains: 1, deletedHops: 8 });
      expect((await parts(schema)).length).toBe(1);

      // The store now answers as one that only ever received the kept records.
      await ref.insertHops([...second, ...fresh], now);
      expect(await view(store, ['old', 'straddle', 'fresh'])).toEqual(await view(ref, ['old', 'straddle', 'fresh']));
      expect((await store.chainSummary('straddle'))?.hopCount).toBe(4);
      expect(await store.chainSummary('old')).toBeUndefined();
      const ids = async (s: Store, q: Parameters<Store['listChains']>[0]) => (await s.listChains(q)).items.map((c) => c.correlationId);
      for (const q of [{ limit: 10, service: 'audit' }, { limit: 10, exchange: 'old-x' }, { limit: 10, service: 'billing' }, { limit: 10, q: first[0].traceId }]) {
        expect(await ids(store, q), JSON.stringify(q)).toEqual(await ids(ref, q));
      }
      expect(await store.topology(now - 4 * DAY, now + 1000)).toEqual(await ref.topology(now - 4 * DAY, now + 1000));
      expect(await store.stats()).toMatchObject({ hops: 8, chains: 2 });
      // New records still go in, into the partition of their arrival.
      await store.insertHops([makeHop({ correlationId: 'straddle' })], now + 1);
      expect((await store.chainSummary('straddle'))?.hopCount).toBe(5);
    } finally {
      await store.close();
      await ref.close();
    }
  });

  it('by size, drops the oldest partitions first and never the one being written', async () => {
    const { schema, url } = newSchema();
    const store = await open(url);
    try {
      for (const [i, day] of [3, 2, 0].entries()) {
        const hops = Array.from({ length: 20 }, () => makeHop({ correlationId: `day-${day}`, payload: 'x'.repeat(4000) }));
        await store.insertHops(hops, now - day * DAY + i);
      }
      expect((await parts(schema)).length).toBe(3);
      const result = await store.applyRetention({ maxBytes: 1 }, now);
      expect(result).toEqual({ deletedChains: 2, deletedHops: 40 });
      expect((await parts(schema)).length).toBe(1);
      expect(await store.chainHops('day-0')).toHaveLength(20);
      expect(await store.chainHops('day-3')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('partitions as wide as the URL says when it creates the schema, and retention drops them by that width', async () => {
    const { schema, url } = newSchema();
    const HOUR = 3_600_000;
    const store = await PgStore.open({ url: `${url}&partition_ms=${HOUR}`, engine: SETTINGS, poolSize: 3 });
    try {
      expect(await db.sql(`SELECT value FROM ${schema}.meta WHERE key = 'partition_ms'`)).toEqual([{ value: String(HOUR) }]);
      await store.insertHops(messageHops({ correlationId: 'hours-ago' }), now - 3 * HOUR);
      await store.insertHops(messageHops({ correlationId: 'just-now' }), now);
      expect(await store.applyRetention({ maxAgeMs: HOUR }, now)).toEqual({ deletedChains: 1, deletedHops: 4 });
      expect(await store.chainHops('just-now')).toHaveLength(4);
    } finally {
      await store.close();
    }
    await expect(PgStore.open({ url: `${url}&partition_ms=soon` })).rejects.toThrow(/partition_ms must be a whole number/);
  });

  it('a resend just across a partition boundary is still a duplicate', async () => {
    const { url } = newSchema();
    const store = await open(url);
    try {
      const boundary = Math.floor(now / DAY) * DAY;
      const hop = makeHop();
      expect(await store.insertHops([hop], boundary - 1000)).toEqual({ accepted: 1, duplicates: 0 });
      expect(await store.insertHops([{ ...hop }], boundary + 1000)).toEqual({ accepted: 1, duplicates: 1 });
      expect(await store.chainHops(hop.correlationId)).toHaveLength(1);
      expect(await store.stats()).toMatchObject({ hops: 1 });
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL store shared by several collectors', () => {
  it('reads names another collector interned when their records are read', async () => {
    const { url } = newSchema();
    const a = await open(url);
    const b = await open(url);
    try {
      const hops = messageHops({ correlationId: 'chain-n' }, { publisher: 'brand-new-service', exchange: 'brand-new-exchange' });
      await a.insertHops(hops, Date.now());
      expect((await b.chainHops('chain-n')).map((h) => [h.service, h.exchange])).toEqual(hops.map((h) => [h.service, h.exchange]));
      expect((await b.listChains({ limit: 5, service: 'brand-new-service' })).items.map((c) => c.correlationId)).toEqual(['chain-n']);
      // Many new names from both at once: their ids come from one sequence but commit out of order.
      const batches = Array.from({ length: 16 }, (_, i) =>
        Array.from({ length: 40 }, (_, k) => makeHop({ correlationId: `many-${i}`, service: `svc-${i}-${k}`, consumerTag: `ctag-${i}-${k}` })),
      );
      await Promise.all(batches.map((batch, i) => (i % 2 ? a : b).insertHops(batch, Date.now())));
      await Promise.all([a.flushSummaries(Date.now()), b.flushSummaries(Date.now())]);
      for (const [i, batch] of batches.entries()) {
        for (const s of [a, b]) expect((await s.chainHops(`many-${i}`)).map((h) => h.service).sort()).toEqual(batch.map((h) => h.service).sort());
      }
      expect(await a.stats()).toMatchObject({ hops: 4 + 16 * 40, chains: 17 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('dirty marks a dying flush had claimed are flushed by the next one', async () => {
    const { schema, url } = newSchema();
    const store = await open(url);
    const dying = new pg.Client({ connectionString: db.url });
    await dying.connect();
    try {
      const hops = messageHops({ correlationId: 'chain-d' });
      await store.insertHops(hops, Date.now());
      // Another collector's flush, mid-transaction: it holds every mark.
      await dying.query('BEGIN');
      const claimed = await dying.query(`SELECT * FROM ${schema}.dirty_chains FOR UPDATE SKIP LOCKED`);
      expect(claimed.rowCount).toBe(1);
      expect(await store.flushSummaries(Date.now())).toEqual([]);
      expect(await db.sql(`SELECT correlation_id FROM ${schema}.chains`)).toEqual([]);
      // It dies: PostgreSQL rolls its transaction back and frees the marks.
      const pid = (await dying.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      dying.on('error', () => {});
      await db.sql('SELECT pg_terminate_backend($1)', [pid]);
      expect(await store.flushSummaries(Date.now())).toEqual([{ type: 'new', chain: expect.objectContaining({ correlationId: 'chain-d', hopCount: 4 }) }]);
    } finally {
      await dying.end().catch(() => {});
      await store.close();
    }
  });

  it('flushes of two collectors at once summarize every chain exactly once', async () => {
    const { url } = newSchema();
    const a = await open(url, { poolSize: 4 });
    const b = await open(url, { poolSize: 4 });
    const ref = await open(newSchema().url);
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const notices: ChainNotice[] = [];
    listener.on('notification', (m) => {
      const n = JSON.parse(m.payload!) as ChainNotice;
      if (n.d === new URL(url).searchParams.get('schema')) notices.push(n);
    });
    await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
    try {
      const chains = Array.from({ length: 600 }, (_, i) => messageHops({ correlationId: `both-${i}`, ts: 1_700_000_000_000 + i }));
      const all = chains.flat();
      const receivedAt = Date.now();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < all.length; i += 100) writes.push((i / 100) % 2 ? a.insertHops(all.slice(i, i + 100), receivedAt) : b.insertHops(all.slice(i, i + 100), receivedAt));
      await Promise.all(writes);
      const flushes = await Promise.all([a.flushSummaries(receivedAt), b.flushSummaries(receivedAt), a.flushSummaries(receivedAt), b.flushSummaries(receivedAt)]);
      // Each collector announces to its own live clients every chain either computed (what it heard
      // from the other included), so together they name every chain; who computed what is in the notices.
      expect(new Set(flushes.flat().map((c) => c.chain.correlationId)).size).toBe(600);
      await a.flushSummaries(receivedAt);
      await new Promise((r) => setTimeout(r, 200));
      const newIds = notices.flatMap((n) => n.n);
      expect(new Set(newIds).size).toBe(600);
      expect(newIds).toHaveLength(600);
      expect(notices.flatMap((n) => n.c)).toEqual([]);
      // And the aggregates hold each chain once: as one store given everything at once.
      await ref.insertHops(all, receivedAt);
      expect(await a.topology(1_700_000_000_000 - 60_000, 1_700_000_000_000 + 3_600_000)).toEqual(
        await ref.topology(1_700_000_000_000 - 60_000, 1_700_000_000_000 + 3_600_000),
      );
      expect(await b.stats()).toMatchObject({ hops: all.length, chains: 600 });
    } finally {
      await listener.end();
      await Promise.all([a.close(), b.close(), ref.close()]);
    }
  });
});

describe('moving data into PostgreSQL', () => {
  /** v1 hops and v2 records, as a collector stores them. */
  function records(): IngestRecord[] {
    const v1 = [
      ...messageHops({ correlationId: 'chain-a' }, { consumer: 'billing' }),
      ...messageHops({ correlationId: 'chain-b', messageId: 'text-id-b' }, { consumer: 'ledger' }),
    ];
    const v2: IngestRecord = {
      v: 2,
      kind: 'publish',
      ts: 1_700_000_000_000,
      service: 'shop',
      instance: 'shop-1/1',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      messageId: randomUUID(),
      exchange: 'orders',
      routingKey: 'order.placed',
      confirmMs: 1,
    };
    return [...v1, v2];
  }

  it('hoptrace migrate copies a SQLite store into PostgreSQL, saying how far it got, and can be run again', async () => {
    const path = join(dir, 'source.db');
    // The engine's defaults, as the migrating command summarizes with them.
    const source = new SqliteStore({ path, engine: DEFAULT_ENGINE_OPTIONS });
    const recs = records();
    await source.insertHops(recs.slice(0, 5), 1_700_000_100_000);
    await source.insertHops(recs.slice(5), 1_700_000_200_000);
    await source.flushSummaries(Date.now());
    const ids = [...new Set(recs.map((r) => r.correlationId ?? r.messageId))];
    const expected = await view(source, ids);
    const expectedStats = await source.stats();
    await source.close();

    const { url } = newSchema();
    const run = await hoptrace(['migrate', '--from', `sqlite:${path}`, '--to', url]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/migrate: 9 of 9 records \(100\.0%\)/);
    expect(run.stderr).toMatch(/migrated 9 records \(0 already there\) into postgres:\/\/.* it holds 3 chains/);

    const store = await PgStore.open({ url, engine: DEFAULT_ENGINE_OPTIONS });
    try {
      const got = await view(store, ids);
      // Summaries as SQLite had them (checkedAt aside), hops the same with their arrival times.
      expect(got).toEqual(expected);
      expect(await store.stats()).toMatchObject({ hops: expectedStats.hops, chains: expectedStats.chains });
    } finally {
      await store.close();
    }
    const again = await hoptrace(['migrate', '--from', `sqlite:${path}`, '--to', url]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/migrated 9 records \(9 already there\)/);
  });

  it('hoptrace migrate reads a SQLite file of an earlier schema version', async () => {
    const path = join(dir, 'old.db');
    const hops: HopRecord[] = messageHops({ correlationId: 'chain-old' }, { consumer: 'archive' });
    writeOldStore(path, 1, hops);
    const { url } = newSchema();
    const run = await hoptrace(['migrate', '--from', `sqlite:${path}`, '--to', url]);
    expect(run.code, run.stderr).toBe(0);
    const store = await PgStore.open({ url, engine: SETTINGS });
    try {
      expect((await store.listChains({ limit: 5, service: 'archive' })).items.map((c) => c.correlationId)).toEqual(['chain-old']);
      expect(await store.chainHops('chain-old')).toHaveLength(4);
    } finally {
      await store.close();
    }
  });

  it('hoptrace import --store postgres://… loads a pino log into PostgreSQL', async () => {
    const hops = messageHops({ correlationId: randomUUID() });
    const file = join(dir, 'service.log');
    writeFileSync(file, ['starting', ...hops.map((hop) => JSON.stringify({ level: 30, msg: 'hop', hop }))].join('\n') + '\n');
    const { url } = newSchema();
    const run = await hoptrace(['import', '--store', url, file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/imported 4 hops \(0 already stored\)/);
    const store = await PgStore.open({ url, engine: SETTINGS });
    try {
      expect(await store.chainSummary(hops[0].correlationId)).toMatchObject({ hopCount: 4, status: 'ok' });
    } finally {
      await store.close();
    }
  });

  it('a store URL of another scheme is refused with a message that names the schemes', async () => {
    const run = await hoptrace(['import', '--store', 'mysql://db/x', join(dir, 'none.log')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/sqlite:PATH or postgres:\/\//);
  });
});
