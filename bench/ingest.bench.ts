/**
 * Collector ingest: hop records per second committed, through
 * `POST /v1/hops` in batches of 1, 100 and 1,000 and through
 * `hoptrace import` of a pino log file, into a store holding 0 and
 * 1,000,000 hops; against the ceiling of raw `node:sqlite` inserts of the
 * same rows in the same run, and the store's own insert API without HTTP.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { pgIngestTable } from './ingest-pg.ts';
import type { IngestInput, IngestOutput } from './ingest.worker.ts';
import { runWorker } from './lib/child.ts';
import { startCollectorProcess } from './lib/collector-process.ts';
import { writePinoLog } from './lib/pino-log.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { cachedStore, STORE_CHAIN_GAP_MS, STORE_START } from './lib/store-db.ts';
import { fmtInt, fmtMs, fmtPct, verdict, type Table } from './lib/table.ts';

const WORKER = new URL('./ingest.worker.ts', import.meta.url);
const BIN = fileURLToPath(new URL('../bin/hoptrace.js', import.meta.url));
const TARGET = 50_000;
const CEILING = 'ceiling: raw node:sqlite INSERT, same rows and schema, 1 transaction';

interface Sizes {
  bigStore: number;
  ceiling: number;
  store: number;
  http1Requests: number;
  http100: number;
  http1000: number;
  importHops: number;
}

function sizes(quick: boolean): Sizes {
  // BENCH_INGEST_HOPS=N: N hops per row instead (a shorter run while the machine is shared).
  const n = Number(process.env.BENCH_INGEST_HOPS);
  if (n > 0) return { bigStore: quick ? 20_000 : 1_000_000, ceiling: n, store: n, http1Requests: Math.min(5_000, Math.ceil(n / 20)), http100: n, http1000: n, importHops: n };
  return quick
    ? { bigStore: 20_000, ceiling: 5_000, store: 5_000, http1Requests: 300, http100: 5_000, http1000: 10_000, importHops: 10_000 }
    : { bigStore: 1_000_000, ceiling: 200_000, store: 200_000, http1Requests: 5_000, http100: 100_000, http1000: 200_000, importHops: 200_000 };
}

interface Row {
  path: string;
  storeBefore: number;
  /** For the target: only paths that batch. */
  targeted: boolean;
  hops?: number;
  wallMs?: number;
  collectorCpuMs?: number;
  latency?: { p50: number; p99: number };
  catchUpMs?: number;
  note?: string;
  error?: string;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const size = sizes(ctx.quick);
  // BENCH_INGEST_EMPTY_ONLY=1: the empty-store rows only (no big store to build), e.g. for the PostgreSQL rows.
  const emptyOnly = process.env.BENCH_INGEST_EMPTY_ONLY === '1';
  const big = emptyOnly ? { path: '', hops: 0 } : await cachedStore(ctx.cacheDir, size.bigStore);
  const rows: Row[] = [];
  let seed = 100;
  // Ingested hops continue where the cached store's day ends, as new traffic would.
  const gen = () => ({ seed: seed++, startTs: STORE_START + 86_400_000, chainGapMs: STORE_CHAIN_GAP_MS });

  for (const before of emptyOnly ? [0] : [0, big.hops]) {
    const freshDb = (name: string): string => {
      const path = join(ctx.tmpDir, `${name}.db`);
      for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
      if (before > 0) copyFileSync(big.path, path);
      return path;
    };
    const dropDb = (path: string) => {
      for (const s of ['', '-wal', '-shm', '.log']) rmSync(path + s, { force: true });
    };
    const storeLabel = before === 0 ? '0' : fmtInt(before);

    // Ceilings and store-direct: in-process, no server.
    const direct = [
      { mode: 'ceiling', batch: undefined, hops: size.ceiling, label: CEILING },
      { mode: 'ceiling', batch: 1000, hops: size.ceiling, label: 'raw node:sqlite INSERT, same rows, a transaction per 1,000 (fsync each)' },
      { mode: 'store', batch: 1000, hops: size.store, label: 'SqliteStore.insertHops direct (no HTTP), batches of 1,000' },
    ] as const;
    for (const { mode, batch, hops, label } of direct) {
      const path = freshDb(`ingest-${mode}`);
      progress(`ingest: ${label}, store holding ${storeLabel}`);
      const row: Row = { path: label, storeBefore: before, targeted: false };
      try {
        const out = await runWorker<IngestInput, IngestOutput>(WORKER, { mode, hops, db: path, batch, ...gen() }, { timeoutMs: 900_000 });
        Object.assign(row, { hops: out.hops, wallMs: out.wallMs, catchUpMs: out.catchUpMs });
      } catch (err) {
        row.error = firstLine(err);
      }
      rows.push(row);
      dropDb(path);
    }

    // POST /v1/hops to a collector process.
    const httpCases = [
      { batch: 1, hops: size.http1Requests, concurrency: 8 },
      { batch: 100, hops: size.http100, concurrency: 8 },
      { batch: 1000, hops: size.http1000, concurrency: 4 },
    ];
    for (const c of httpCases) {
      const label = `POST /v1/hops, batches of ${fmtInt(c.batch)}, ${c.concurrency} in flight`;
      progress(`ingest: ${label}, store holding ${storeLabel}`);
      const path = freshDb(`ingest-http-${c.batch}`);
      const row: Row = { path: label, storeBefore: before, targeted: c.batch > 1 };
      try {
        const collector = await startCollectorProcess({ db: path });
        try {
          const cpu0 = collector.cpuMs();
          const out = await runWorker<IngestInput, IngestOutput>(
            WORKER,
            { mode: 'http', hops: c.hops, url: collector.url, batch: c.batch, concurrency: c.concurrency, ...gen() },
            { timeoutMs: 900_000 },
          );
          Object.assign(row, {
            hops: out.hops,
            wallMs: out.wallMs,
            latency: out.latency,
            catchUpMs: out.catchUpMs,
            // Read after the catch-up request: summary rebuilding is part of the cost.
            collectorCpuMs: collector.cpuMs() - cpu0,
          });
        } finally {
          await collector.stop();
        }
      } catch (err) {
        row.error = firstLine(err);
      }
      rows.push(row);
      dropDb(path);
    }

    // hoptrace import of a pino log file.
    {
      const label = 'hoptrace import FILE --db DB (pino log, 1 line in 11 not a hop)';
      progress(`ingest: ${label}, store holding ${storeLabel}`);
      const path = freshDb('ingest-import');
      const logPath = join(ctx.tmpDir, 'services.log');
      const row: Row = { path: label, storeBefore: before, targeted: true };
      try {
        const log = await writePinoLog({ path: logPath, hops: size.importHops, ...gen() });
        const t0 = performance.now();
        const result = await runCli(['import', logPath, '--db', path]);
        row.wallMs = performance.now() - t0;
        row.note = `${(log.bytes / 1024 / 1024).toFixed(0)} MiB file; wall time includes process start`;
        if (result.code !== 0) throw new Error(`hoptrace import exited ${result.code}: ${result.output.slice(-500)}`);
        // Count what landed rather than trust the exit code.
        const db = new DatabaseSync(path, { readOnly: true });
        const stored = (db.prepare('SELECT count(*) AS n FROM hops').get() as { n: number }).n;
        db.close();
        if (stored - before !== size.importHops) throw new Error(`hoptrace import stored ${stored - before} of ${size.importHops} hops`);
        row.hops = stored - before;
      } catch (err) {
        row.error = firstLine(err);
      }
      rmSync(logPath, { force: true });
      rows.push(row);
      dropDb(path);
    }
  }

  // PostgreSQL rows, against this run's SQLite collector row (empty store, batches of 1,000).
  const reference = rows.find((r) => r.storeBefore === 0 && r.path.startsWith('POST /v1/hops, batches of 1,000') && r.hops && r.wallMs);
  const pg = await pgIngestTable(
    ctx,
    gen,
    reference ? { label: reference.path, hopsPerSec: (reference.hops! / reference.wallMs!) * 1000 } : undefined,
  );
  return { tables: [table(rows, size), pg.table], raw: { sizes: size, rows, bigStore: big, postgres: pg.raw } };
}

function runCli(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, output }));
  });
}

function firstLine(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  return message.split('\n').find((l) => l.trim().length > 0)?.trim().slice(0, 200) ?? message;
}

function table(rows: Row[], size: Sizes): Table {
  const rate = (r: Row) => (r.hops !== undefined && r.wallMs ? (r.hops / r.wallMs) * 1000 : NaN);
  const ceilingFor = (before: number) => rate(rows.find((r) => r.storeBefore === before && r.path === CEILING)!);
  return {
    title: 'Collector ingest: hops committed per second',
    notes: [
      `Store holding 0 hops (a fresh file) and ${fmtInt(size.bigStore)} hops (a copy of the cached generated store); each row on its own copy. Hops are generated in arrival order (chains interleaved by time, 1 chain in 1,200 of 1,000 hops), with seeds unlike the store's, so none is a duplicate.`,
      'HTTP rows: a collector in its own process (startCollector as shipped: SQLite durability \`full\`, concurrent requests sharing one commit and fsync), NDJSON bodies serialized before timing, a hop counted when its request got 202. The collector rebuilds chain summaries off the write path; "summaries caught up" is how long after the last 202 a \`GET /api/chains\` (which first brings pending summaries up to date) answered (store-direct row: a final \`flushSummaries()\`), so deferred work is shown, not hidden. Collector CPU: its user+system time per 1,000 hops, from /proc. Ceiling: raw `node:sqlite` INSERTs of the same rows into the store\'s schema with all its indexes, values precomputed, one transaction: nothing of ours (validation, canonical JSON and dedupe hash, chain summaries, HTTP); the second raw row commits every 1,000 rows with `synchronous=FULL`, as the store does: SQLite\'s own cost at the store\'s transaction size. `hoptrace import`: the command as shipped (batches of 1,000, durability \`normal\`), wall time of the whole process including start-up; the hops stored are counted in the file afterwards. Target: ≥ 50,000 hops/s committed, for the batched paths (a batch of 1 is one transaction and one fsync per hop).',
    ],
    columns: ['path', 'store held', 'hops', 'hops/s', 'vs ceiling', 'summaries caught up', 'collector CPU / 1k hops', 'request p50 / p99', 'target', 'met'],
    rows: rows.map((r) => {
      if (r.error) return [r.path, r.storeBefore === 0 ? '0' : fmtInt(r.storeBefore), `not run: ${r.error}`, '', '', '', '', '', '', ''];
      const hps = rate(r);
      return [
        r.path,
        r.storeBefore === 0 ? '0' : fmtInt(r.storeBefore),
        fmtInt(r.hops ?? NaN),
        fmtInt(hps),
        r.path === CEILING ? '100%' : fmtPct(hps / ceilingFor(r.storeBefore)),
        r.catchUpMs === undefined ? '' : `+${fmtMs(r.catchUpMs)}`,
        r.collectorCpuMs !== undefined && r.hops ? fmtMs((r.collectorCpuMs / r.hops) * 1000) : '',
        r.latency ? `${fmtMs(r.latency.p50)} / ${fmtMs(r.latency.p99)}` : '',
        r.targeted ? '≥ 50,000/s' : '–',
        r.targeted ? verdict(hps >= TARGET) : '–',
      ];
    }),
  };
}

export const ingestScenario: Scenario = {
  name: 'ingest',
  description: 'collector ingest: POST /v1/hops (batches of 1, 100, 1,000) and hoptrace import, into 0 and 1M-hop stores',
  run,
};
