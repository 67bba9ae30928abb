/**
 * Collector ingest: records per second committed, through `POST /v1/hops`
 * (batches of 1, 100 and 1,000; version-1 hops and version-2 records) and
 * through `hoptrace import` of a pino log file, into an empty store and a
 * store of 10,000,000 hops; against the ceiling of raw `node:sqlite` inserts
 * of the same rows in the same run, and the store's own insert API without
 * HTTP.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
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
const CEILING = 'ceiling: raw node:sqlite INSERT, same rows and schema, 1 transaction';

/** The targets, by path (and store size for the big store). */
const TARGETS = {
  http1000Empty: 100_000,
  http1000Big: 50_000,
  import: 100_000,
  /** Of the one-transaction ceiling, for POST batches of 1,000 into an empty store. */
  ceilingShare: 0.75,
};

interface Sizes {
  bigStore: number;
  /** Records each batched HTTP row sends first, untimed, to warm the collector's JIT. */
  warmup: number;
  ceiling: number;
  store: number;
  http1Requests: number;
  http100: number;
  http1000: number;
  v2Records: number;
  importHops: number;
}

function sizes(quick: boolean): Sizes {
  return quick
    ? { bigStore: 20_000, warmup: 2_000, ceiling: 5_000, store: 5_000, http1Requests: 300, http100: 5_000, http1000: 10_000, v2Records: 10_000, importHops: 10_000 }
    : {
        bigStore: 10_000_000,
        warmup: 50_000,
        ceiling: 200_000,
        store: 200_000,
        http1Requests: 5_000,
        http100: 100_000,
        http1000: 200_000,
        v2Records: 200_000,
        importHops: 200_000,
      };
}

type Check = { target: string; met: (rate: number, row: Row, rows: Row[]) => boolean | undefined };

interface Row {
  path: string;
  storeBefore: number;
  hops?: number;
  /** v2 rows: messages the committed records are about. */
  messages?: number;
  wallMs?: number;
  collectorCpuMs?: number;
  latency?: { p50: number; p99: number };
  catchUpMs?: number;
  check?: Check;
  note?: string;
  error?: string;
}

const rate = (r: Row) => (r.hops !== undefined && r.wallMs ? (r.hops / r.wallMs) * 1000 : NaN);
const messageRate = (r: Row) => (r.messages !== undefined && r.wallMs ? (r.messages / r.wallMs) * 1000 : NaN);
const ceilingOf = (rows: Row[], before: number) => rate(rows.find((r) => r.storeBefore === before && r.path === CEILING)!);

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const size = sizes(ctx.quick);
  const big = await cachedStore(ctx.cacheDir, size.bigStore);
  const rows: Row[] = [];
  let seed = 100;
  // Ingested hops continue where the cached store's data ends, as new traffic would.
  const gen = () => ({ seed: seed++, startTs: STORE_START + (size.bigStore / 1_000_000) * 86_400_000, chainGapMs: STORE_CHAIN_GAP_MS });
  const plain = ctx.shared.plainRoundTripRate;

  for (const before of [0, big.hops]) {
    const empty = before === 0;
    const freshDb = (name: string): string => {
      const path = join(ctx.tmpDir, `${name}.db`);
      for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
      if (!empty) {
        progress(`ingest: copying the ${fmtInt(before)}-hop store`);
        copyFileSync(big.path, path);
      }
      return path;
    };
    const dropDb = (path: string) => {
      for (const s of ['', '-wal', '-shm', '.log']) rmSync(path + s, { force: true });
    };
    const storeLabel = empty ? '0' : fmtInt(before);

    // Ceilings and store-direct: in-process, no server.
    const direct = [
      { mode: 'ceiling', batch: undefined, hops: size.ceiling, label: CEILING },
      { mode: 'ceiling', batch: 1000, hops: size.ceiling, label: 'raw node:sqlite INSERT, same rows, a transaction per 1,000 (fsync each)' },
      ...(empty ? [{ mode: 'store', batch: 1000, hops: size.store, label: 'SqliteStore.insertHops direct (no HTTP), batches of 1,000' } as const] : []),
    ] as const;
    for (const { mode, batch, hops, label } of direct) {
      const path = freshDb(`ingest-${mode}`);
      progress(`ingest: ${label}, store holding ${storeLabel}`);
      const row: Row = { path: label, storeBefore: before };
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
    const httpCases: { batch: number; hops: number; concurrency: number; records: 'v1' | 'v2'; check?: Check }[] = empty
      ? [
          { batch: 1, hops: size.http1Requests, concurrency: 8, records: 'v1' },
          { batch: 100, hops: size.http100, concurrency: 8, records: 'v1' },
          {
            batch: 1000,
            hops: size.http1000,
            concurrency: 4,
            records: 'v1',
            check: {
              target: `≥ ${fmtInt(TARGETS.http1000Empty)}/s and ≥ ${fmtPct(TARGETS.ceilingShare)} of ceiling`,
              met: (r, row, all) => r >= TARGETS.http1000Empty && r / ceilingOf(all, row.storeBefore) >= TARGETS.ceilingShare,
            },
          },
          {
            batch: 1000,
            hops: size.v2Records,
            concurrency: 4,
            records: 'v2',
            check: {
              target: plain ? `≥ ${fmtInt(plain)} messages/s (plain amqplib round trip, this run)` : '≥ plain amqplib round trip (run with roundtrip)',
              met: (_r, row) => (plain ? messageRate(row) >= plain : undefined),
            },
          },
        ]
      : [
          {
            batch: 1000,
            hops: size.http1000,
            concurrency: 4,
            records: 'v1',
            check: { target: `≥ ${fmtInt(TARGETS.http1000Big)}/s`, met: (r) => r >= TARGETS.http1000Big },
          },
        ];
    for (const c of httpCases) {
      const label =
        c.records === 'v2'
          ? `POST /v1/hops, version-2 records (send … settle of a message in 2), batches of ${fmtInt(c.batch)}, ${c.concurrency} in flight`
          : `POST /v1/hops, batches of ${fmtInt(c.batch)}, ${c.concurrency} in flight`;
      progress(`ingest: ${label}, store holding ${storeLabel}`);
      const path = freshDb(`ingest-http-${c.batch}`);
      const row: Row = { path: label, storeBefore: before, check: c.check };
      try {
        const collector = await startCollectorProcess({ db: path });
        try {
          // Warm the collector's JIT first, as a running collector is (other seeds: nothing repeats).
          const warmup = Math.min(size.warmup, c.hops);
          if (warmup > 0 && c.batch > 1) {
            await runWorker<IngestInput, IngestOutput>(
              WORKER,
              { mode: 'http', hops: warmup, url: collector.url, batch: c.batch, concurrency: c.concurrency, records: c.records, ...gen() },
              { timeoutMs: 900_000 },
            );
          }
          const cpu0 = collector.cpuMs();
          const out = await runWorker<IngestInput, IngestOutput>(
            WORKER,
            { mode: 'http', hops: c.hops, url: collector.url, batch: c.batch, concurrency: c.concurrency, records: c.records, ...gen() },
            { timeoutMs: 900_000 },
          );
          Object.assign(row, {
            hops: out.hops,
            messages: out.messages,
            wallMs: out.wallMs,
            latency: out.latency,
            catchUpMs: out.catchUpMs,
            // Read after the catch-up request: summary work is part of the cost.
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
      const row: Row = {
        path: label,
        storeBefore: before,
        ...(empty ? { check: { target: `≥ ${fmtInt(TARGETS.import)}/s`, met: (r: number) => r >= TARGETS.import } } : {}),
      };
      try {
        const log = await writePinoLog({ path: logPath, hops: size.importHops, ...gen() });
        const t0 = performance.now();
        const result = await runCli(['import', logPath, '--db', path]);
        row.wallMs = performance.now() - t0;
        row.note = `${(log.bytes / 1024 / 1024).toFixed(0)} MiB file; wall time includes process start`;
        if (result.code !== 0) throw new Error(`hoptrace import exited ${result.code}: ${result.output.slice(-500)}`);
        // Count what landed rather than trust the exit code.
        const db = new DatabaseSync(path, { readOnly: true });
        const stored = (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
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

  return { tables: [table(rows, size, big)], raw: { sizes: size, rows, bigStore: big, plainRoundTripRate: plain } };
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

function table(rows: Row[], size: Sizes, big: Awaited<ReturnType<typeof cachedStore>>): Table {
  const built = big.build ? `, built in this run in ${Math.round(big.build.seconds)} s` : ' (cached from an earlier run)';
  return {
    title: 'Collector ingest: records committed per second',
    notes: [
      `Store holding 0 hops (a fresh file) and ${fmtInt(size.bigStore)} hops (a copy of the generated store${built}); each row on its own copy. Hops are generated in arrival order (chains interleaved by time, 1 chain in 1,200 of 1,000 hops), with seeds unlike the store's, so none is a duplicate. A version-1 record is one hop; a version-2 record is one side of one message (publish: send and confirm; consume: receive, handler outcome and settle), the same traffic as the library now writes it, so its row also gives the messages whose whole life (send … settle) was committed per second.`,
      `HTTP rows: a collector in its own process (startCollector as shipped: SQLite durability \`full\`, the writer thread committing concurrent requests together with one fsync), warmed up with ${fmtInt(size.warmup)} records of other seeds first (untimed; a running collector's JIT is warm), NDJSON bodies serialized before timing, a record counted when its request got 202.`,
      'The collector keeps chain summaries off the write path; "summaries caught up" is how long after the last 202 a `GET /api/chains` (which first brings pending summaries up to date) answered (store-direct row: a final `flushSummaries()`), so deferred work is shown, not hidden. Collector CPU: its user+system time per 1,000 records (every thread), from /proc. Ceiling: raw `node:sqlite` INSERTs of the same rows into the store\'s schema with all its indexes, values precomputed, one transaction, in one thread: nothing of ours (parsing, validation, encoding, chain summaries, HTTP); the second raw row commits every 1,000 rows with `synchronous=FULL`. `hoptrace import`: the command as shipped (durability `normal`), wall time of the whole process including start-up; the records stored are counted in the file afterwards.',
    ],
    columns: ['path', 'store held', 'records', 'records/s', 'messages/s', 'vs ceiling', 'summaries caught up', 'collector CPU / 1k records', 'request p50 / p99', 'target', 'met'],
    rows: rows.map((r) => {
      const held = r.storeBefore === 0 ? '0' : fmtInt(r.storeBefore);
      if (r.error) return [r.path, held, `not run: ${r.error}`, '', '', '', '', '', '', '', ''];
      const rps = rate(r);
      return [
        r.path,
        held,
        fmtInt(r.hops ?? NaN),
        fmtInt(rps),
        r.messages !== undefined ? fmtInt(messageRate(r)) : '',
        r.path === CEILING ? '100%' : fmtPct(rps / ceilingOf(rows, r.storeBefore)),
        r.catchUpMs === undefined ? '' : `+${fmtMs(r.catchUpMs)}`,
        r.collectorCpuMs !== undefined && r.hops ? fmtMs((r.collectorCpuMs / r.hops) * 1000) : '',
        r.latency ? `${fmtMs(r.latency.p50)} / ${fmtMs(r.latency.p99)}` : '',
        r.check?.target ?? '–',
        r.check ? verdict(r.check.met(rps, r, rows)) : '–',
      ];
    }),
  };
}

export const ingestScenario: Scenario = {
  name: 'ingest',
  description: 'collector ingest: POST /v1/hops (batches of 1, 100, 1,000; v1 hops and v2 records) and hoptrace import, into 0 and 10M-hop stores',
  run,
};
