/**
 * `hoptrace migrate --from STORE --to STORE`: copy every record of one store
 * into another (SQLite to PostgreSQL when a team outgrows one collector, or
 * back), keeping each record's arrival time, then bring the destination's
 * summaries up to date. Records already in the destination are skipped by
 * the same dedupe as ingest, so an interrupted migration can be run again.
 */
import { DatabaseSync } from 'node:sqlite';
import { DEFAULT_ENGINE_OPTIONS } from './chain-engine.ts';
import { PgStore } from './pg-store.ts';
import { decodeRecord, unpackId, type StringTable } from './record-codec.ts';
import { isV2Code, kindOfCode, type IngestRecord } from './record-identity.ts';
import { SqliteStore } from './sqlite-store.ts';
import { openStore, type StoreSpec } from './store-open.ts';
import type { Store } from './store.ts';

/** Records copied per destination write at most. */
const BATCH = 5_000;

export interface MigrateProgress {
  records: number;
  total: number;
  duplicates: number;
  elapsedMs: number;
}

export interface MigrateResult extends MigrateProgress {
  chains: number;
}

interface SourceRow {
  id: number;
  receivedAt: number;
  record: IngestRecord;
}

/** A source store read as records in id order, a page at a time. */
interface Source {
  total: number;
  page(afterId: number, limit: number): Promise<SourceRow[]>;
  close(): Promise<void>;
}

async function sqliteSource(path: string): Promise<Source> {
  // Opening it as a store first brings an older file to the newest schema and its summaries up to date.
  await new SqliteStore({ path, engine: DEFAULT_ENGINE_OPTIONS }).close();
  const db = new DatabaseSync(path, { readOnly: true });
  const texts: string[] = [];
  for (const r of db.prepare('SELECT id, text FROM strings').iterate() as Iterable<{ id: number; text: string }>) texts[r.id] = r.text;
  const strings: StringTable = {
    idOf: () => undefined,
    textOf(id) {
      const t = texts[id];
      if (t === undefined) throw new RangeError(`unknown string id ${id} in a stored record`);
      return t;
    },
  };
  const total = (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
  const page = db.prepare('SELECT id, message_id, correlation_id, kind, ts, received_at, body FROM records WHERE id > ? ORDER BY id LIMIT ?');
  return {
    total,
    async page(afterId, limit) {
      const rows = page.all(afterId, limit) as unknown as {
        id: number;
        message_id: string | Uint8Array;
        correlation_id: string | Uint8Array;
        kind: number;
        ts: number;
        received_at: number;
        body: Uint8Array;
      }[];
      return rows.map((r) => {
        const rec = decodeRecord(r.body, strings, { v: isV2Code(r.kind) ? 2 : 1, kind: kindOfCode(r.kind), ts: r.ts, messageId: unpackId(r.message_id) });
        rec.correlationId = unpackId(r.correlation_id);
        return { id: r.id, receivedAt: r.received_at, record: rec as unknown as IngestRecord };
      });
    },
    async close() {
      db.close();
    },
  };
}

async function pgSource(url: string): Promise<Source> {
  const store = await PgStore.open({ url, poolSize: 2 });
  const total = (await store.stats()).hops;
  return {
    total,
    async page(afterId, limit) {
      return (await store.recordsAfter(afterId, limit)).map((r) => ({ id: r.id, receivedAt: r.receivedAt, record: r.record as unknown as IngestRecord }));
    },
    close: () => store.close(),
  };
}

/** Copy every record of `from` into `to`. */
export async function migrateStore(
  from: StoreSpec,
  to: StoreSpec,
  options: { onProgress?: (p: MigrateProgress) => void; progressIntervalMs?: number; onSummaries?: () => void } = {},
): Promise<MigrateResult> {
  if (from.kind === to.kind && (from.kind === 'sqlite' ? from.path === (to as { path: string }).path : from.url === (to as { url: string }).url)) {
    throw new Error('--from and --to name the same store');
  }
  const source = from.kind === 'sqlite' ? await sqliteSource(from.path) : await pgSource(from.url);
  let dest: Store | undefined;
  const started = Date.now();
  const progress: MigrateProgress = { records: 0, total: source.total, duplicates: 0, elapsedMs: 0 };
  const interval = options.progressIntervalMs ?? 1000;
  let reported = started;
  try {
    dest = await openStore(to, { engine: DEFAULT_ENGINE_OPTIONS, durability: 'normal' });
    let after = 0;
    for (;;) {
      const rows = await source.page(after, BATCH * 4);
      if (rows.length === 0) break;
      after = rows[rows.length - 1].id;
      // Writes of BATCH at most, each of records that arrived together (one arrival time per write).
      let i = 0;
      while (i < rows.length) {
        const receivedAt = rows[i].receivedAt;
        let j = i;
        while (j < rows.length && j - i < BATCH && rows[j].receivedAt === receivedAt) j++;
        const written = await dest.insertHops(
          rows.slice(i, j).map((r) => r.record),
          receivedAt,
        );
        progress.records += written.accepted;
        progress.duplicates += written.duplicates;
        i = j;
      }
      progress.elapsedMs = Date.now() - started;
      if (options.onProgress && Date.now() - reported >= interval) {
        reported = Date.now();
        options.onProgress({ ...progress });
      }
    }
    // Summaries of everything copied, before the destination is handed over.
    options.onProgress?.({ ...progress, elapsedMs: Date.now() - started });
    options.onSummaries?.();
    await dest.flushSummaries(Date.now());
    const stats = await dest.stats();
    progress.elapsedMs = Date.now() - started;
    return { ...progress, chains: stats.chains };
  } finally {
    await source.close();
    await dest?.close();
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** `migrate: 120,000 of 1,000,000 records (12.0%), 45,000/s` */
export function formatMigrateProgress(p: MigrateProgress): string {
  const pct = p.total > 0 ? ((100 * p.records) / p.total).toFixed(1) : '100.0';
  const rate = p.elapsedMs > 0 ? Math.round((p.records / p.elapsedMs) * 1000) : 0;
  return `migrate: ${fmt(p.records)} of ${fmt(p.total)} records (${pct}%), ${fmt(rate)}/s`;
}

export function formatMigrateSummary(r: MigrateResult, to: string): string {
  return (
    `migrated ${fmt(r.records)} records (${fmt(r.duplicates)} already there) into ${to} in ${(r.elapsedMs / 1000).toFixed(1)} s; ` +
    `it holds ${fmt(r.chains)} chains`
  );
}
