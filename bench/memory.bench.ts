/**
 * Memory: the collector's resident memory (RSS) after ingesting 10,000,000
 * hops over HTTP into an empty store, measured from outside through
 * /proc/<pid>/status, sampled during the ingest and after a round of
 * queries; the process's RSS right after start is the baseline.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { IngestInput, IngestOutput } from './ingest.worker.ts';
import { runWorker } from './lib/child.ts';
import { getJson, startCollectorProcess } from './lib/collector-process.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { STORE_CHAIN_GAP_MS, STORE_START } from './lib/store-db.ts';
import { fmtBytes, fmtInt, verdict, type Table } from './lib/table.ts';

/** The target: resident memory after ingesting 10M hops. */
const TARGET_RSS = 256 * 1024 * 1024;

const WORKER = new URL('./ingest.worker.ts', import.meta.url);

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const hops = ctx.quick ? 20_000 : 10_000_000;
  const path = join(ctx.tmpDir, 'memory.db');
  const collector = await startCollectorProcess({ db: path });
  const samples: { t: number; rss: number }[] = [];
  let result: IngestOutput | undefined;
  let atStart: { rss: number; peakRss: number };
  let afterIngest: { rss: number; peakRss: number };
  let afterChains: { rss: number; peakRss: number };
  let afterQueries: { rss: number; peakRss: number };
  let stored = NaN;
  try {
    atStart = collector.memory();
    const t0 = Date.now();
    const sampler = setInterval(() => {
      try {
        samples.push({ t: Date.now() - t0, rss: collector.memory().rss });
      } catch {
        // the process is gone; the ingest will fail and say so
      }
    }, 1000);
    try {
      progress(`memory: ingesting ${fmtInt(hops)} hops through POST /v1/hops (batches of 1,000, 4 in flight)`);
      result = await runWorker<IngestInput, IngestOutput>(
        WORKER,
        { mode: 'http', hops, url: collector.url, batch: 1000, concurrency: 4, lazy: true, seed: 500, startTs: STORE_START, chainGapMs: STORE_CHAIN_GAP_MS },
        { timeoutMs: 1_800_000 },
      );
    } finally {
      clearInterval(sampler);
    }
    afterIngest = collector.memory();
    stored = await collector.hopCount();
    // What a person using the UI then asks for.
    progress('memory: a round of queries (chains lists, 50 chains, topology)');
    const list = (await getJson(`${collector.url}/api/chains?limit=500`)) as { items: { correlationId: string; hopCount: number }[] };
    for (const c of list.items.slice(0, 50)) await getJson(`${collector.url}/api/chains/${c.correlationId}`);
    await getJson(`${collector.url}/api/chains?status=dead-lettered`);
    afterChains = collector.memory();
    await getJson(`${collector.url}/api/topology?from=0&to=${Date.now()}`);
    afterQueries = collector.memory();
  } finally {
    await collector.stop();
    for (const s of ['', '-wal', '-shm', '.log']) rmSync(path + s, { force: true });
  }
  const peakSampled = Math.max(...samples.map((s) => s.rss));
  const table: Table = {
    title: `Collector memory after ingesting ${fmtInt(hops)} hops`,
    notes: [
      `A collector in its own process (startCollector on an empty SQLite file, durability \`full\`, SQLite page cache 64 MiB as the store sets it); ${fmtInt(hops)} generated hops POSTed in batches of 1,000 with 4 in flight (${result ? fmtInt((result.hops / result.wallMs) * 1000) : 'n/a'} hops/s, client generating on the fly on the same 2 cores); RSS read from /proc/<pid>/status (VmRSS; peak: VmHWM), sampled every second. The store then held ${fmtInt(stored)} hops.`,
    ],
    columns: ['when', 'RSS', 'peak RSS so far', 'target', 'met'],
    rows: [
      ['after start, empty store', fmtBytes(atStart.rss), fmtBytes(atStart.peakRss), '', ''],
      [`after ingesting ${fmtInt(hops)} hops`, fmtBytes(afterIngest.rss), fmtBytes(afterIngest.peakRss), '≤ 256 MiB', verdict(afterIngest.rss <= TARGET_RSS)],
      ['after chain queries (a list of 500, 50 chains, a filtered list)', fmtBytes(afterChains.rss), fmtBytes(afterChains.peakRss), '', ''],
      ['after GET /api/topology over the whole store', fmtBytes(afterQueries.rss), fmtBytes(afterQueries.peakRss), '', ''],
      ['highest 1-second sample during ingest', fmtBytes(peakSampled), '', '', ''],
    ],
  };
  return { tables: [table], raw: { hops, stored, ingest: result, atStart, afterIngest, afterChains, afterQueries, samples } };
}

export const memoryScenario: Scenario = {
  name: 'memory',
  description: 'collector resident memory after ingesting 10M hops over HTTP',
  run,
};
