/**
 * Queries at scale: latency over HTTP of the chains list with filters, of
 * one 1,000-hop chain and of the topology, from a collector whose store
 * holds 10,000,000 generated hops; and what the store spends per hop on disk.
 */
import { copyFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { unpackId } from '../collector/record-codec.ts';
import { getJson, startCollectorProcess } from './lib/collector-process.ts';
import { HopGenerator, hopsInTimeOrder } from './lib/hop-gen.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { latencyPercentiles } from './lib/stats.ts';
import { cachedStore, STORE_START } from './lib/store-db.ts';
import { fmtBytes, fmtInt, fmtMs, verdict, type Table } from './lib/table.ts';

interface Sizes {
  bigStore: number;
  /** Requests per query kind (after warm-up). */
  samples: number;
  /** For the slow ones (topology over the whole store, unmatched filters). */
  slowSamples: number;
}

function sizes(quick: boolean): Sizes {
  return quick ? { bigStore: 20_000, samples: 20, slowSamples: 5 } : { bigStore: 10_000_000, samples: 300, slowSamples: 10 };
}

interface QueryCase {
  name: string;
  /** Paths to request, rotated through. */
  paths: string[];
  samples: number;
  target?: number;
  /** What the answer held, for the table (items, hops). */
  describe: (body: unknown) => string;
}

interface QueryResult {
  name: string;
  n: number;
  p50: number;
  p99: number;
  max: number;
  answer: string;
  target?: number;
  error?: string;
}

interface StoreFacts {
  hops: number;
  chains: number;
  fileBytes: number;
  usedBytes: number;
  jsonBytes: number;
  /** Bytes per object (table or index), from SQLite's dbstat. */
  objects: { name: string; bytes: number }[];
  longChains: string[];
  smallChains: string[];
  messageIds: string[];
  traceIds: string[];
  minTs: number;
  maxTs: number;
}

/** Ids to query and the store's size, read straight from the file before the collector opens it. */
function storeFacts(path: string): StoreFacts {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const one = <T>(sql: string) => db.prepare(sql).get() as T;
    const col = (sql: string) => (db.prepare(sql).all() as Record<string, string>[]).map((r) => Object.values(r)[0]);
    const { page_count } = one<{ page_count: number }>('PRAGMA page_count');
    const { freelist_count } = one<{ freelist_count: number }>('PRAGMA freelist_count');
    const { page_size } = one<{ page_size: number }>('PRAGMA page_size');
    let objects: { name: string; bytes: number }[] = [];
    try {
      objects = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as typeof objects;
    } catch {
      // dbstat is not compiled into every SQLite; the totals below still hold
    }
    const chains = one<{ n: number }>('SELECT count(*) AS n FROM chains').n;
    // Spread the picks over the whole store (rowid steps), not the first rows only.
    const hops = one<{ n: number }>('SELECT count(*) AS n FROM records').n;
    const { maxId } = one<{ maxId: number }>('SELECT max(id) AS maxId FROM records');
    // Ids spread over the whole store: rows at even steps of the row id, not the first rows only.
    const spread = (n: number, sql: string) =>
      Array.from({ length: n }, (_, i) => db.prepare(sql).get(Math.floor(((i + 0.5) * maxId) / n)) as Record<string, unknown> | undefined).filter(
        (r): r is Record<string, unknown> => r !== undefined,
      );
    return {
      hops,
      chains,
      fileBytes: statSync(path).size,
      usedBytes: (page_count - freelist_count) * page_size,
      jsonBytes: averageJsonBytes(),
      objects,
      longChains: col('SELECT correlation_id FROM chains WHERE hop_count >= 1000 ORDER BY start_ts LIMIT 20'),
      smallChains: col('SELECT correlation_id FROM chains WHERE hop_count BETWEEN 3 AND 12 AND start_ts > 0 ORDER BY correlation_id LIMIT 50'),
      messageIds: spread(50, 'SELECT message_id FROM records WHERE id >= ? AND kind = 3 LIMIT 1').map((r) => unpackId(r.message_id as string | Uint8Array)),
      traceIds: spread(50, 'SELECT t.trace_id FROM chains c JOIN chain_traces t ON t.chain_id = c.id WHERE c.flushed_id >= ? LIMIT 1').map((r) =>
        Buffer.from(r.trace_id as Uint8Array).toString('hex'),
      ),
      minTs: one<{ t: number }>('SELECT min(ts) AS t FROM records').t,
      maxTs: one<{ t: number }>('SELECT max(ts) AS t FROM records').t,
    };
  } finally {
    db.close();
  }
}

/** What one generated hop weighs as JSON (the form a service logs it in), averaged over 10,000. */
function averageJsonBytes(): number {
  const generator = new HopGenerator({ seed: 99, startTs: STORE_START, chainGapMs: 650 });
  let bytes = 0;
  let n = 0;
  for (const hop of hopsInTimeOrder(generator, 10_000)) {
    bytes += Buffer.byteLength(JSON.stringify(hop));
    n++;
  }
  return bytes / n;
}

const items = (body: unknown) => `${(body as { items: unknown[] }).items.length} chains`;

function cases(f: StoreFacts, size: Sizes): QueryCase[] {
  const list = (qs: string) => `/api/chains${qs ? `?${qs}` : ''}`;
  const hour = 3_600_000;
  return [
    { name: 'chains list, newest 50, no filter', paths: [list('')], samples: size.samples, describe: items },
    { name: 'chains list, status=dead-lettered', paths: [list('status=dead-lettered')], samples: size.samples, target: 10, describe: items },
    { name: 'chains list, status=failed,lost,stuck', paths: [list('status=failed,lost,stuck')], samples: size.samples, target: 10, describe: items },
    { name: 'chains list, service=billing', paths: [list('service=billing')], samples: size.samples, target: 10, describe: items },
    { name: 'chains list, status=dead-lettered & service=ledger', paths: [list('status=dead-lettered&service=ledger')], samples: size.samples, target: 10, describe: items },
    { name: 'chains list, q=<correlation id>', paths: f.smallChains.map((id) => list(`q=${id}`)), samples: size.samples, target: 10, describe: items },
    { name: 'chains list, q=<message id>', paths: f.messageIds.map((id) => list(`q=${id}`)), samples: size.samples, target: 10, describe: items },
    { name: 'chains list, q=<trace id>', paths: f.traceIds.map((id) => list(`q=${id}`)), samples: size.samples, target: 10, describe: items },
    { name: 'chains list, service=search, 1 h window', paths: [list(`service=search&from=${Math.round(f.maxTs - 4 * hour)}&to=${Math.round(f.maxTs - 3 * hour)}`)], samples: size.samples, target: 10, describe: items },
    { name: 'chains list, status=redelivery-loop (matches none: full scan)', paths: [list('status=redelivery-loop')], samples: size.slowSamples, describe: items },
    { name: 'one 1,000-hop chain (GET /api/chains/:id)', paths: f.longChains.map((id) => `/api/chains/${id}`), samples: size.samples, target: 20, describe: (b) => `${(b as { hops: unknown[] }).hops.length} hops` },
    { name: 'one small chain (3–12 hops)', paths: f.smallChains.map((id) => `/api/chains/${id}`), samples: size.samples, describe: (b) => `${(b as { hops: unknown[] }).hops.length} hops` },
    { name: 'topology, 1 h window', paths: [`/api/topology?from=${Math.round(f.maxTs - hour)}&to=${Math.round(f.maxTs)}`], samples: size.slowSamples, describe: (b) => `${(b as { edges: unknown[] }).edges.length} edges` },
    { name: 'topology, whole store (~24 h)', paths: [`/api/topology?from=${Math.floor(f.minTs)}&to=${Math.ceil(f.maxTs)}`], samples: size.slowSamples, describe: (b) => `${(b as { edges: unknown[] }).edges.length} edges` },
  ];
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const size = sizes(ctx.quick);
  const big = await cachedStore(ctx.cacheDir, size.bigStore);
  // A copy: the collector's sweep may write to the file it serves.
  const path = join(ctx.tmpDir, 'queries.db');
  copyFileSync(big.path, path);
  const facts = storeFacts(path);
  if (facts.longChains.length === 0) throw new Error('the store holds no 1,000-hop chain');
  const results: QueryResult[] = [];
  const collector = await startCollectorProcess({ db: path });
  try {
    for (const c of cases(facts, size)) {
      progress(`queries: ${c.name} (${c.samples} requests)`);
      try {
        // Warm-up: a few requests, so the first one's cold cache and JIT are not in the percentiles.
        let answer = '';
        for (let i = 0; i < Math.min(5, c.samples); i++) answer = c.describe(await getJson(collector.url + c.paths[i % c.paths.length]));
        const samples: number[] = [];
        for (let i = 0; i < c.samples; i++) {
          const t0 = performance.now();
          await getJson(collector.url + c.paths[i % c.paths.length]);
          samples.push(performance.now() - t0);
        }
        const p = latencyPercentiles(samples);
        results.push({ name: c.name, n: p.n, p50: p.p50, p99: p.p99, max: p.max, answer, target: c.target });
      } catch (err) {
        results.push({ name: c.name, n: 0, p50: NaN, p99: NaN, max: NaN, answer: '', target: c.target, error: (err as Error).message.slice(0, 200) });
      }
    }
  } finally {
    await collector.stop();
    for (const s of ['', '-wal', '-shm', '.log']) rmSync(path + s, { force: true });
  }
  return { tables: tables(results, facts, size), raw: { sizes: size, results, facts: { ...facts, longChains: facts.longChains.length } } };
}

function tables(results: QueryResult[], f: StoreFacts, size: Sizes): Table[] {
  const latency: Table = {
    title: `Queries over HTTP from a ${fmtInt(f.hops)}-hop store`,
    notes: [
      `${fmtInt(f.hops)} generated hops in ${fmtInt(f.chains)} chains over a day (most of 3–12 hops, ${f.longChains.length}+ of 1,000 hops), loaded through the store's own insert API. A collector in its own process on a copy of the file; one request at a time over keep-alive HTTP, latency measured at the client, after 5 warm-up requests; requests rotate over different ids where the query takes one. ${size.samples} requests per query (${size.slowSamples} for the slow ones), so p99 is roughly the ${size.samples >= 100 ? '3rd-slowest' : 'slowest'} request (for the slow ones, the slowest).`,
    ],
    columns: ['query', 'answer', 'requests', 'p50', 'p99', 'max', 'target (p99)', 'met'],
    rows: results.map((r) =>
      r.error
        ? [r.name, `failed: ${r.error}`, '', '', '', '', r.target ? `< ${r.target} ms` : '–', r.target ? '✗' : '–']
        : [
            r.name,
            r.answer,
            String(r.n),
            fmtMs(r.p50),
            fmtMs(r.p99),
            fmtMs(r.max),
            r.target ? `< ${r.target} ms` : '–',
            r.target ? verdict(r.p99 < r.target) : '–',
          ],
    ),
  };
  const objects = f.objects.filter((o) => o.bytes > 64 * 1024);
  const rest = f.objects.filter((o) => o.bytes <= 64 * 1024).reduce((sum, o) => sum + o.bytes, 0);
  const bytes: Table = {
    title: 'Store size per hop',
    notes: [
      `SQLite file of the ${fmtInt(f.hops)}-hop store after a WAL checkpoint; per table and index from SQLite's dbstat. A generated hop averages ${fmtInt(f.jsonBytes)} bytes as JSON (it carries headers and properties, as the library records them); the store keeps each as a row of packed ids and a compact binary body (collector/record-codec.ts). Target: ≤ 400 bytes per hop for the whole file.`,
    ],
    columns: ['what', 'bytes', 'per hop', 'target', 'met'],
    rows: [
      ['whole file', fmtBytes(f.fileBytes), fmtBytes(f.fileBytes / f.hops), '≤ 400 B', verdict(f.fileBytes / f.hops <= 400)],
      ...objects.map((o) => [`  ${o.name}`, fmtBytes(o.bytes), fmtBytes(o.bytes / f.hops), '', '']),
      ...(rest > 0 ? [['  everything else', fmtBytes(rest), fmtBytes(rest / f.hops), '', '']] : []),
    ],
  };
  return [latency, bytes];
}

export const queriesScenario: Scenario = {
  name: 'queries',
  description: 'p50/p99 latency of chains list (filters), a 1,000-hop chain and topology from a 10M-hop store; bytes per hop',
  run,
};
