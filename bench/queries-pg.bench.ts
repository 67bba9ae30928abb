/**
 * Queries on PostgreSQL against SQLite, on the same data in the same run:
 * the cached generated store (lib/store-db.ts) is copied into a PostgreSQL
 * database with `hoptrace migrate`'s own code (each record through
 * `PgStore.insertHops`, summaries by the store's flush: the store as a
 * collector would have written it; the build time is reported), then the
 * same requests go to a collector on each, one request at a time.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { unpackId } from '../collector/record-codec.ts';
import { migrateStore } from '../collector/store-migrate.ts';
import { getJson, startCollectorProcess, type CollectorProcess } from './lib/collector-process.ts';
import { benchDatabase } from './lib/pg-bench.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { latencyPercentiles } from './lib/stats.ts';
import { cachedStore, STORE_START } from './lib/store-db.ts';
import { fmtBytes, fmtInt, fmtMs, verdict, type Table } from './lib/table.ts';

interface Facts {
  hops: number;
  longChains: string[];
  smallChains: string[];
  messageIds: string[];
  traceIds: string[];
  maxTs: number;
}

function facts(path: string): Facts {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const col = (sql: string) => (db.prepare(sql).all() as Record<string, unknown>[]).map((r) => Object.values(r)[0]);
    const n = (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
    const step = Math.max(1, Math.floor(n / 60));
    return {
      hops: n,
      longChains: col('SELECT correlation_id FROM chains WHERE hop_count >= 1000 ORDER BY start_ts LIMIT 20') as string[],
      smallChains: col('SELECT correlation_id FROM chains WHERE hop_count BETWEEN 3 AND 12 ORDER BY correlation_id LIMIT 50') as string[],
      messageIds: (col(`SELECT message_id FROM records WHERE id % ${step} = 0 LIMIT 50`) as (string | Uint8Array)[]).map(unpackId),
      traceIds: (col('SELECT trace_id FROM chain_traces ORDER BY chain_id LIMIT 50') as Uint8Array[]).map((b) => Buffer.from(b).toString('hex')),
      maxTs: (db.prepare('SELECT max(ts) AS t FROM records').get() as { t: number }).t,
    };
  } finally {
    db.close();
  }
}

interface Case {
  name: string;
  paths: string[];
  /** The issue's comparison: PostgreSQL p99 within 2× of SQLite's. */
  compared: boolean;
}

function cases(f: Facts): Case[] {
  const list = (qs: string) => `/api/chains${qs ? `?${qs}` : ''}`;
  const hour = 3_600_000;
  return [
    { name: 'chains list, newest 50, no filter', paths: [list('')], compared: true },
    { name: 'chains list, status=dead-lettered', paths: [list('status=dead-lettered')], compared: true },
    { name: 'chains list, service=billing', paths: [list('service=billing')], compared: true },
    { name: 'chains list, status=dead-lettered & service=ledger', paths: [list('status=dead-lettered&service=ledger')], compared: true },
    { name: 'chains list, q=<correlation id>', paths: f.smallChains.map((id) => list(`q=${id}`)), compared: true },
    { name: 'chains list, q=<message id>', paths: f.messageIds.map((id) => list(`q=${id}`)), compared: true },
    { name: 'chains list, q=<trace id>', paths: f.traceIds.map((id) => list(`q=${id}`)), compared: true },
    { name: 'one 1,000-hop chain (GET /api/chains/:id)', paths: f.longChains.map((id) => `/api/chains/${id}`), compared: true },
    { name: 'one small chain (3–12 hops)', paths: f.smallChains.map((id) => `/api/chains/${id}`), compared: true },
    { name: 'topology, 1 h window', paths: [`/api/topology?from=${Math.round(f.maxTs - hour)}&to=${Math.round(f.maxTs)}`], compared: false },
  ];
}

async function measure(collector: CollectorProcess, paths: string[], samples: number): Promise<{ p50: number; p99: number; n: number }> {
  for (let i = 0; i < Math.min(5, samples); i++) await getJson(collector.url + paths[i % paths.length]);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await getJson(collector.url + paths[i % paths.length]);
    times.push(performance.now() - t0);
  }
  return latencyPercentiles(times);
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const hops = ctx.quick ? 20_000 : Number(process.env.BENCH_PG_QUERIES_HOPS ?? 1_000_000);
  const samples = ctx.quick ? 20 : 200;
  const big = await cachedStore(ctx.cacheDir, hops);
  const path = join(ctx.tmpDir, 'queries-pg.db');
  copyFileSync(big.path, path);
  const f = facts(path);
  // BENCH_PG_QUERIES_URL: a store built earlier from the same cached store (e.g. by `hoptrace migrate`): used as it is.
  const reuse = process.env.BENCH_PG_QUERIES_URL;
  const db = reuse ? undefined : await benchDatabase('queries');
  const url = reuse ?? db!.schemaUrl('hoptrace');
  const results: { name: string; sqlite?: { p50: number; p99: number }; pg?: { p50: number; p99: number }; compared: boolean; error?: string }[] = [];
  let build: { seconds: number; records: number; chains: number; bytes: number; perTable: { name: string; bytes: number }[] } | undefined;
  try {
    const t0 = performance.now();
    let copied = { records: f.hops, chains: NaN };
    if (!reuse) {
      progress(`queries-pg: copying the ${fmtInt(f.hops)}-record store into PostgreSQL through PgStore.insertHops`);
      copied = await migrateStore({ kind: 'sqlite', path }, { kind: 'postgres', url }, {
        onProgress: (p) => progress(`queries-pg: ${fmtInt(p.records)} / ${fmtInt(p.total)} records copied`),
        progressIntervalMs: 10_000,
      });
    }
    const seconds = reuse ? NaN : (performance.now() - t0) / 1000;
    const target = new URL(url);
    const schema = target.searchParams.get('schema') ?? 'hoptrace';
    target.searchParams.delete('schema');
    const client = new pg.Client({ connectionString: target.toString() });
    await client.connect();
    try {
      await client.query('VACUUM ANALYZE');
      const { rows } = await client.query<{ name: string; bytes: string }>(
        `SELECT regexp_replace(c.relname, '_p[0-9]+', '_p*') AS name, sum(pg_total_relation_size(c.oid))::int8 AS bytes
         FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' GROUP BY 1 ORDER BY 2 DESC`,
        [schema],
      );
      const perTable = rows.map((r) => ({ name: r.name, bytes: Number(r.bytes) }));
      build = { seconds, records: copied.records, chains: copied.chains, bytes: perTable.reduce((s, t) => s + t.bytes, 0), perTable };
    } finally {
      await client.end();
    }
    const sqlite = await startCollectorProcess({ db: path });
    const postgres = await startCollectorProcess({ db: url, logFile: join(ctx.tmpDir, 'queries-pg.log') });
    try {
      for (const c of cases(f)) {
        if (c.paths.length === 0) continue;
        progress(`queries-pg: ${c.name}`);
        try {
          results.push({ name: c.name, compared: c.compared, sqlite: await measure(sqlite, c.paths, samples), pg: await measure(postgres, c.paths, samples) });
        } catch (err) {
          results.push({ name: c.name, compared: c.compared, error: (err as Error).message.slice(0, 200) });
        }
      }
    } finally {
      await Promise.all([sqlite.stop(), postgres.stop()]);
    }
  } finally {
    await db?.drop();
    for (const s of ['', '-wal', '-shm', '.log']) rmSync(path + s, { force: true });
  }
  const table: Table = {
    title: `Queries over HTTP from a ${fmtInt(f.hops)}-record store: PostgreSQL against SQLite`,
    notes: [
      `The cached generated store (${fmtInt(f.hops)} records over a day from ${new Date(STORE_START).toISOString().slice(0, 10)}), and the same records copied into PostgreSQL by \`hoptrace migrate\`'s code: ${!build ? 'not built' : Number.isNaN(build.seconds) ? `a store built earlier (BENCH_PG_QUERIES_URL), then VACUUM ANALYZE` : `${fmtInt(build.records)} records, ${fmtInt(build.chains)} chains in ${build.seconds.toFixed(0)} s (every record through PgStore.insertHops, summaries by the store's flush), then VACUUM ANALYZE`}. A collector on each, in its own process; one request at a time, ${samples} per query after 5 warm-up requests, rotating over ids. Target: PostgreSQL p99 within 2× of SQLite's.`,
    ],
    columns: ['query', 'SQLite p50 / p99', 'PostgreSQL p50 / p99', 'p99 ratio', 'within 2×'],
    rows: results.map((r) =>
      r.error || !r.sqlite || !r.pg
        ? [r.name, `failed: ${r.error}`, '', '', '']
        : [
            r.name,
            `${fmtMs(r.sqlite.p50)} / ${fmtMs(r.sqlite.p99)}`,
            `${fmtMs(r.pg.p50)} / ${fmtMs(r.pg.p99)}`,
            `${(r.pg.p99 / r.sqlite.p99).toFixed(2)}×`,
            r.compared ? verdict(r.pg.p99 <= 2 * r.sqlite.p99) : '–',
          ],
    ),
  };
  const tables = [table];
  if (build) {
    tables.push({
      title: 'PostgreSQL store size per record',
      notes: [`Tables and their indexes after VACUUM ANALYZE (partitions summed per table), ${fmtInt(build.records)} records.`],
      columns: ['what', 'bytes', 'per record'],
      rows: [
        ['all tables and indexes', fmtBytes(build.bytes), fmtBytes(build.bytes / build.records)],
        ...build.perTable.filter((t) => t.bytes > 64 * 1024).map((t) => [`  ${t.name}`, fmtBytes(t.bytes), fmtBytes(t.bytes / build!.records)]),
      ],
    });
  }
  return { tables, raw: { hops, samples, build, results } };
}

export const queriesPgScenario: Scenario = {
  name: 'queries-pg',
  description: 'chain and list query p50/p99 from the same 1M-record store on PostgreSQL and on SQLite; PostgreSQL bytes per record and build time',
  run,
};
