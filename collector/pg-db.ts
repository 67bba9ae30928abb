/**
 * The PostgreSQL store's connections: a `pg` pool whose sessions all work in
 * the store's schema, transactions on a pooled client, the advisory-lock
 * keys the collectors coordinate with, and the closed state every job of the
 * store checks.
 *
 * Several collectors share one database. What they coordinate through it:
 * - migrations: one at a time (`LOCK.migrate`, session lock);
 * - partitions: created by whoever needs one first (`LOCK.partitions`);
 * - chain summaries: a flush claims dirty marks `FOR UPDATE SKIP LOCKED` and
 *   takes a per-chain transaction lock, so no two flushes compute one chain;
 *   retention takes `LOCK.flush` exclusively, every flush shares it;
 * - the lost/stuck sweep and retention: `LOCK.sweep`, held for its session by
 *   one collector's coordinator connection (pg-coordinator.ts).
 */
import pg from 'pg';
import { StoreError, ValidationError } from './errors.ts';

/** Base of the first key of every advisory lock hoptrace takes (two-key form): 'hop' << 8. */
export const LOCK_SPACE = 0x686f7000;
/**
 * What a lock guards: the first key is `LOCK_SPACE + purpose`, the second
 * `hashtext(schema)`, so stores in two schemas of one database never share a
 * lock. Per-chain locks use the one-key form (`hashtextextended(schema/id)`),
 * a separate key space.
 */
export const LOCK = { migrate: 1, partitions: 2, flush: 3, sweep: 4 } as const;

/** SQL calling an advisory-lock function on one of {@link LOCK} for a schema: `$n` is the purpose's key, `$n+1` the schema. */
export const lockCall = (fn: string, n: number): string => `${fn}($${n}::int4, hashtext($${n + 1}::text))`;

/** The values of {@link lockCall}'s two parameters. */
export const lockArgs = (purpose: number, schema: string): [number, string] => [LOCK_SPACE + purpose, schema];

/** The schema a store lives in when the URL names none. */
export const DEFAULT_SCHEMA = 'hoptrace';

/** Wrap an error thrown in a write as the store's error (validation and store errors pass as they are). */
export function pgError(err: unknown, what = 'store write'): Error {
  if (err instanceof StoreError || err instanceof ValidationError) return err;
  return new StoreError(`${what} failed: ${(err as Error).message}`, { cause: err });
}

/** int8 and numeric as numbers (ids, counts and times all fit in 2^53), everything else as pg parses it. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

export interface PgTarget {
  /** Connection string without hoptrace's own parameters. */
  connectionString: string;
  /** Schema of the store's tables. */
  schema: string;
  /** `partition_ms`: width of a time partition when the schema is created here. */
  partitionMs?: number;
}

/**
 * Split a store URL: `postgres://user@host:5432/db?schema=name&partition_ms=3600000`
 * (any parameter `pg` understands may follow; `schema` and `partition_ms` are hoptrace's).
 */
export function parsePgUrl(url: string): PgTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreError(`not a PostgreSQL URL: "${url}"`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StoreError(`not a PostgreSQL URL (postgres://…): "${url}"`);
  }
  const schema = parsed.searchParams.get('schema') ?? DEFAULT_SCHEMA;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new StoreError(`schema "${schema}" must be a lowercase SQL identifier (letters, digits, _)`);
  }
  parsed.searchParams.delete('schema');
  const width = parsed.searchParams.get('partition_ms');
  parsed.searchParams.delete('partition_ms');
  if (width !== null && !(/^\d+$/.test(width) && Number(width) >= 60_000)) {
    throw new StoreError(`partition_ms must be a whole number of milliseconds, at least 60000, got "${width}"`);
  }
  return { connectionString: parsed.toString(), schema, ...(width !== null ? { partitionMs: Number(width) } : {}) };
}

/** Connection settings of a session in the store's schema. */
export function clientConfig(target: PgTarget, applicationName: string): pg.ClientConfig {
  return {
    connectionString: target.connectionString,
    types: TYPES,
    application_name: applicationName,
    // Every session works in the store's schema; `pg_temp` last so a staging table never shadows ours.
    options: `-c search_path=${target.schema},pg_temp`,
  };
}

export interface PgDbOptions {
  target: PgTarget;
  /** Connections at most. */
  poolSize: number;
  /** Shows in pg_stat_activity (and tells the collectors apart in pg_locks). */
  applicationName: string;
}

export class PgDb {
  readonly target: PgTarget;
  readonly pool: pg.Pool;
  readonly applicationName: string;
  #closed = false;

  constructor(options: PgDbOptions) {
    this.target = options.target;
    this.applicationName = options.applicationName;
    this.pool = new pg.Pool({ ...clientConfig(options.target, options.applicationName), max: options.poolSize });
    // A client that loses its server connection emits 'error': an idle one through the pool (which drops
    // it), a checked-out one on itself (its query fails too, and that failure is what we report).
    this.pool.on('error', () => {});
    this.pool.on('connect', (client) => client.on('error', () => {}));
  }

  get schema(): string {
    return this.target.schema;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws the 503 StoreError once the store is closed. */
  open(): void {
    if (this.#closed) throw new StoreError('the store is closed', { statusCode: 503 });
  }

  /** One statement on any pooled connection (its own transaction). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], what = 'store read'): Promise<R[]> {
    this.open();
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      throw pgError(err, what);
    }
  }

  /** Run `fn` in one transaction on one pooled client; roll back and wrap the error when it throws. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, what = 'store write'): Promise<T> {
    this.open();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw pgError(err, what);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection itself failed: do not hand it out again
      }
      throw pgError(err, what);
    } finally {
      client.release(broken);
    }
  }

  /** Bytes the store's tables and indexes occupy. */
  async usedBytes(): Promise<number> {
    const rows = await this.query<{ n: number | null }>(
      `SELECT sum(pg_total_relation_size(c.oid))::int8 AS n FROM pg_class c
       WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'm')`,
      [this.schema],
    );
    return rows[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

/** Quote an identifier we built ourselves (schema and partition names). */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
