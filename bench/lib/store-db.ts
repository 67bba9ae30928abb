/**
 * The big store the query, ingest and memory benchmarks start from: N
 * generated hops (lib/hop-gen.ts) loaded through the store's own insert API,
 * so the chains table holds what the collector itself would have written.
 *
 * Built once and cached under bench/.cache/ (`*.db` is gitignored). The file
 * name carries a hash of everything that shapes its content (schema, store,
 * chain engine, generator), so a change in any of them builds a fresh one.
 * Building 10,000,000 hops takes minutes; progress goes to stderr.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runWorker } from './child.ts';
import { progress } from './progress.ts';

/** Seed of the cached store's hops. Benchmarks that add hops to it use other seeds. */
export const STORE_SEED = 1;
/** Data time of the cached store: a fixed day, so its content does not depend on when it was built. */
export const STORE_START = Date.UTC(2026, 0, 5, 0, 0, 0);
/** Average gap between chain starts: 1,000,000 hops (~116,000 chains) span about a day. */
export const STORE_CHAIN_GAP_MS = 650;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Files whose content decides what the cached database holds. */
function contentHash(hops: number): string {
  const hash = createHash('sha256').update(`hops=${hops};seed=${STORE_SEED};start=${STORE_START};gap=${STORE_CHAIN_GAP_MS}`);
  const files = [
    'bench/lib/hop-gen.ts',
    'bench/lib/build-db.worker.ts',
    'collector/migrations.ts',
    'collector/ingest.ts',
    'collector/hop-v2.ts',
    ...readdirSync(join(ROOT, 'collector'))
      .filter((f) => (f.startsWith('chain-') || f.startsWith('sqlite-') || f.startsWith('record-') || f.startsWith('topology-')) && f.endsWith('.ts'))
      .map((f) => `collector/${f}`),
  ].sort();
  for (const f of files) {
    const path = join(ROOT, f);
    hash.update(f).update(existsSync(path) ? readFileSync(path) : 'missing');
  }
  return hash.digest('hex').slice(0, 12);
}

export interface BuildInput {
  path: string;
  hops: number;
  seed: number;
  startTs: number;
  chainGapMs: number;
}

export interface BuildOutput {
  hops: number;
  chains: number;
  seconds: number;
  bytes: number;
}

export interface CachedStore {
  path: string;
  hops: number;
  /** True when this call built it (false: found in the cache). */
  built: boolean;
  build?: BuildOutput;
}

/** The cached store of `hops` hops, built first when missing or stale. */
export async function cachedStore(cacheDir: string, hops: number): Promise<CachedStore> {
  const label = hops >= 1_000_000 ? `${hops / 1_000_000}m` : `${Math.round(hops / 1000)}k`;
  const name = `hops-${label}-${contentHash(hops)}.db`;
  const path = join(cacheDir, name);
  if (existsSync(path)) {
    progress(`store: using cached ${name}`);
    return { path, hops, built: false };
  }
  // Stale builds of the same size: the schema or the generator changed since.
  for (const f of readdirSync(cacheDir)) {
    if (f.startsWith(`hops-${label}-`) && f !== name) rmSync(join(cacheDir, f), { force: true });
  }
  progress(`store: building ${name} (${hops.toLocaleString('en-US')} hops through SqliteStore.insertHops; cached for later runs)`);
  // Ends in .db so an interrupted build (and its -wal/-shm) stays covered by .gitignore's *.db patterns.
  const tmp = path.replace(/\.db$/, '.building.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(tmp + suffix, { force: true });
  const build = await runWorker<BuildInput, BuildOutput>(
    new URL('./build-db.worker.ts', import.meta.url),
    { path: tmp, hops, seed: STORE_SEED, startTs: STORE_START, chainGapMs: STORE_CHAIN_GAP_MS },
    { timeoutMs: 3_600_000 },
  );
  renameSync(tmp, path);
  for (const suffix of ['-wal', '-shm']) rmSync(tmp + suffix, { force: true });
  progress(`store: built ${name}: ${build.hops} hops, ${build.chains} chains in ${build.seconds.toFixed(0)} s`);
  return { path, hops, built: true, build };
}
