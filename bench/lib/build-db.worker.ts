/**
 * Builds a benchmark store (see store-db.ts) in a process of its own: whole
 * chains at a time through `SqliteStore.insertHops`, with the collector's
 * chain engine as summarizer, so hops and chain summaries are exactly what
 * the collector writes. Whole chains per batch is the cheapest order for the
 * store (each chain is summarized once); the ingest benchmarks measure the
 * realistic interleaved order separately.
 */
import { DatabaseSync } from 'node:sqlite';
import { statSync } from 'node:fs';
import { DEFAULT_ENGINE_OPTIONS } from '../../collector/chain-engine.ts';
import { SqliteStore } from '../../collector/sqlite-store.ts';
import type { HopRecord } from '../../src/contract/hop.ts';
import { workerMain } from './child.ts';
import { chainsUpTo, HopGenerator } from './hop-gen.ts';
import { progressEvery } from './progress.ts';
import type { BuildInput, BuildOutput } from './store-db.ts';

const BATCH = 5_000;
/** Summaries are brought up to date every this many hops, as the collector's timer would: pending work stays bounded. */
const FLUSH_EVERY = 100_000;

async function main(input: BuildInput): Promise<BuildOutput> {
  const started = Date.now();
  const store = new SqliteStore({
    path: input.path,
    engine: DEFAULT_ENGINE_OPTIONS,
    // A cache that can be rebuilt: no need to fsync every batch.
    durability: 'normal',
  });
  const generator = new HopGenerator({ seed: input.seed, startTs: input.startTs, chainGapMs: input.chainGapMs });
  const report = progressEvery(5_000);
  let batch: HopRecord[] = [];
  let written = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await store.insertHops(batch, Date.now());
    const before = written;
    written += batch.length;
    batch = [];
    if (Math.floor(written / FLUSH_EVERY) > Math.floor(before / FLUSH_EVERY)) await store.flushSummaries(Date.now());
    report(() => {
      const s = (Date.now() - started) / 1000;
      const rate = written / s;
      return `store: ${written.toLocaleString('en-US')} / ${input.hops.toLocaleString('en-US')} hops (${Math.round(rate).toLocaleString('en-US')}/s, ~${Math.round((input.hops - written) / rate)} s left)`;
    });
  };
  for (const chain of chainsUpTo(generator, input.hops)) {
    for (const hop of chain.hops) batch.push(hop);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  const stats = await store.stats();
  await store.close();
  // One self-contained file: fold the WAL in.
  const db = new DatabaseSync(input.path);
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  db.close();
  return {
    hops: stats.hops,
    chains: stats.chains,
    seconds: (Date.now() - started) / 1000,
    bytes: statSync(input.path).size,
  };
}

workerMain(main);
