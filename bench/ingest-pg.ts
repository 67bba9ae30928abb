/**
 * The PostgreSQL rows of `npm run bench -- ingest`: the raw COPY ceiling,
 * the store's three ways of sending rows (no HTTP), and `POST /v1/hops` to
 * one collector and to two collectors sharing the database, with each
 * collector's and the database server's CPU per 1,000 hops (they share the
 * machine's cores). The SQLite collector row of the same run is the
 * reference for "one collector on PostgreSQL ≥ 50% of SQLite".
 */
import { join } from 'node:path';
import type { PgIngestInput, PgIngestOutput } from './ingest-pg.worker.ts';
import { runWorker } from './lib/child.ts';
import { startCollectorProcess, type CollectorProcess } from './lib/collector-process.ts';
import { benchDatabase, pgSettings, postgresCpuMs } from './lib/pg-bench.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext } from './lib/scenario.ts';
import { fmtInt, fmtMs, fmtPct, verdict, type Table } from './lib/table.ts';

const WORKER = new URL('./ingest-pg.worker.ts', import.meta.url);
const CEILING = 'ceiling: raw COPY into records, same rows, 1 transaction';
const ONE = 'POST /v1/hops, batches of 1,000, 1 collector, 4 in flight';
const TWO = 'POST /v1/hops, batches of 1,000, 2 collectors, 4 in flight each';

export interface PgIngestRow {
  path: string;
  hops?: number;
  wallMs?: number;
  collectorCpuMs?: number;
  postgresCpuMs?: number;
  latency?: { p50: number; p99: number };
  catchUpMs?: number;
  error?: string;
}

/** `gen`: the generator settings of the SQLite rows (other seeds each call). `sqliteRate`: hops/s of the SQLite collector row. */
export async function pgIngestTable(
  ctx: BenchContext,
  gen: () => { seed: number; startTs: number; chainGapMs: number },
  sqliteRate: { label: string; hopsPerSec: number } | undefined,
): Promise<{ table: Table; raw: unknown }> {
  const hops = Number(process.env.BENCH_INGEST_HOPS) || (ctx.quick ? 5_000 : 200_000);
  const db = await benchDatabase('ingest');
  const settings = await pgSettings(db.url);
  const rows: PgIngestRow[] = [];
  let schemas = 0;
  const measure = async (label: string, fn: (url: string) => Promise<{ out: PgIngestOutput; collectorCpuMs?: number }>) => {
    progress(`ingest: PostgreSQL: ${label}`);
    const row: PgIngestRow = { path: label };
    const url = db.schemaUrl(`b${++schemas}`);
    try {
      const pg0 = postgresCpuMs();
      const { out, collectorCpuMs } = await fn(url);
      Object.assign(row, { hops: out.hops, wallMs: out.wallMs, latency: out.latency, catchUpMs: out.catchUpMs, collectorCpuMs });
      row.postgresCpuMs = postgresCpuMs() - pg0;
    } catch (err) {
      row.error = ((err as Error).message ?? String(err)).split('\n')[0].slice(0, 200);
    }
    rows.push(row);
  };
  const worker = (input: Omit<PgIngestInput, 'seed' | 'startTs' | 'chainGapMs'>) =>
    runWorker<PgIngestInput, PgIngestOutput>(WORKER, { ...input, ...gen() }, { timeoutMs: 900_000 });

  try {
    await measure(CEILING, async (url) => ({ out: await worker({ mode: 'copy', hops, url }) }));
    await measure('raw COPY into records, a transaction per 1,000', async (url) => ({ out: await worker({ mode: 'copy', hops, url, batch: 1000 }) }));
    for (const method of ['values', 'unnest', 'copy'] as const) {
      const how = { values: 'multi-row INSERT … VALUES', unnest: 'INSERT … SELECT FROM unnest(arrays)', copy: 'COPY to a staging table + INSERT … SELECT' }[method];
      await measure(`PgStore.insertHops direct (no HTTP), batches of 1,000, 4 in flight: ${how} … ON CONFLICT DO NOTHING`, async (url) => ({
        out: await worker({ mode: 'store', hops, url, batch: 1000, concurrency: 4, method }),
      }));
    }
    for (const [label, n, per] of [
      [ONE, 1, 4],
      ['POST /v1/hops, batches of 1,000, 1 collector, 8 in flight', 1, 8],
      [TWO, 2, 4],
    ] as const) {
      await measure(label, async (url) => {
        const collectors: CollectorProcess[] = [];
        try {
          for (let i = 0; i < n; i++) collectors.push(await startCollectorProcess({ db: url, logFile: join(ctx.tmpDir, `pg-collector-${schemas}-${i}.log`) }));
          const cpu0 = collectors.map((c) => c.cpuMs());
          const out = await worker({ mode: 'http', hops, urls: collectors.map((c) => c.url), batch: 1000, concurrency: per });
          return { out, collectorCpuMs: collectors.reduce((sum, c, i) => sum + c.cpuMs() - cpu0[i], 0) };
        } finally {
          await Promise.all(collectors.map((c) => c.stop()));
        }
      });
    }
  } finally {
    await db.drop();
  }
  return { table: table(rows, hops, settings, sqliteRate), raw: { hops, settings, rows, sqliteRate } };
}

function table(rows: PgIngestRow[], hops: number, settings: string, sqlite: { label: string; hopsPerSec: number } | undefined): Table {
  const rate = (r: PgIngestRow | undefined) => (r?.hops !== undefined && r.wallMs ? (r.hops / r.wallMs) * 1000 : NaN);
  const ceiling = rate(rows.find((r) => r.path === CEILING));
  const one = rate(rows.find((r) => r.path === ONE));
  const two = rate(rows.find((r) => r.path === TWO));
  const perK = (ms: number | undefined, r: PgIngestRow) => (ms !== undefined && r.hops ? fmtMs((ms / r.hops) * 1000) : '');
  return {
    title: 'Collector ingest on PostgreSQL: hops committed per second',
    notes: [
      `${fmtInt(hops)} generated hops per row (the SQLite rows' generator, other seeds), each row into an empty store (a schema of its own in a database made for this run). PostgreSQL on this machine: ${settings}. It shares the 2 cores with the collectors and the load generator: "PostgreSQL CPU" is the CPU time of every postgres process during the row, per 1,000 hops; "collector CPU" the collectors' own (summed over both in the two-collector row).`,
      'Ceiling: raw `COPY` of the same rows into the store\'s `records` table with all its indexes, values precomputed: what PostgreSQL itself takes, with nothing of ours (no dedupe, no dirty marks, no summaries). Store rows: `PgStore.insertHops` with each of the three ways of sending rows, 4 writes in flight; the collector uses the fastest. HTTP rows: collectors in their own processes (`--store postgres://…`), requests dealt round robin; "summaries caught up" as in the SQLite table.',
      sqlite
        ? `Targets: one collector on PostgreSQL ≥ 50% of the SQLite collector in this run ("${sqlite.label}": ${fmtInt(sqlite.hopsPerSec)} hops/s) — here ${fmtPct(one / sqlite.hopsPerSec)}, ${verdict(one / sqlite.hopsPerSec >= 0.5)}; two collectors ≥ 1.6× one — here ${(two / one).toFixed(2)}×, ${verdict(two / one >= 1.6)}.`
        : 'Targets: one collector on PostgreSQL ≥ 50% of the SQLite collector; two ≥ 1.6× one (the SQLite row did not run).',
    ],
    columns: ['path', 'hops', 'hops/s', 'vs COPY ceiling', 'summaries caught up', 'collector CPU / 1k hops', 'PostgreSQL CPU / 1k hops', 'request p50 / p99'],
    rows: rows.map((r) => {
      if (r.error) return [r.path, `not run: ${r.error}`, '', '', '', '', '', ''];
      const hps = rate(r);
      return [
        r.path,
        fmtInt(r.hops ?? NaN),
        fmtInt(hps),
        r.path === CEILING ? '100%' : fmtPct(hps / ceiling),
        r.catchUpMs === undefined ? '' : `+${fmtMs(r.catchUpMs)}`,
        perK(r.collectorCpuMs, r),
        perK(r.postgresCpuMs, r),
        r.latency ? `${fmtMs(r.latency.p50)} / ${fmtMs(r.latency.p99)}` : '',
      ];
    }),
  };
}
