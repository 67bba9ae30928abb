/**
 * PostgreSQL for the benchmarks: a database of their own per run (created
 * and dropped here, on the server of `HOPTRACE_BENCH_PG`, default the local
 * one), and the server's CPU time read from /proc (every `postgres` process:
 * the backends serving our collectors, plus the WAL writer, checkpointer and
 * the rest), since on this machine the database shares the cores with the
 * collectors.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

export const BENCH_PG_ADMIN = process.env.HOPTRACE_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  /** A store URL in a schema of its own. */
  schemaUrl(schema: string): string;
  drop(): Promise<void>;
}

export async function benchDatabase(label: string): Promise<BenchDatabase> {
  const name = `hoptrace_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: BENCH_PG_ADMIN });
  try {
    await admin.connect();
  } catch (cause) {
    throw new Error(`PostgreSQL is not reachable at ${BENCH_PG_ADMIN} (set HOPTRACE_BENCH_PG): ${(cause as Error).message}`, { cause });
  }
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(BENCH_PG_ADMIN);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    url,
    schemaUrl(schema) {
      const s = new URL(url);
      s.searchParams.set('schema', schema);
      return s.toString();
    },
    async drop() {
      const c = new pg.Client({ connectionString: BENCH_PG_ADMIN });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * CPU time (user + system, ms) of every process named `postgres` on this
 * machine, with that of the backends already ended: the postmaster reaps
 * them, so their time is in its children's counters (cutime, cstime).
 */
export function postgresCpuMs(): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (stat.slice(open + 1, close) !== 'postgres') continue;
    const fields = stat.slice(close + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return (ticks * 1000) / 100;
}

/** The server's version and the settings that decide commit cost. */
export async function pgSettings(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size')`,
    );
    return rows.map((r) => `${r.name}=${r.setting}${r.unit ? ` ${r.unit}` : ''}`).join(', ');
  } finally {
    await c.end();
  }
}
