/**
 * Time partitions of the PostgreSQL store: `part = floor(received_at /
 * partition_ms)`, one partition of `records`, `topology_buckets` and
 * `topology_waits` per part, created by the first collector that writes into
 * it and dropped by retention. The width is fixed when the schema is created
 * (meta `partition_ms`), so every collector cuts time the same way.
 */
import type pg from 'pg';
import { ident, LOCK, lockArgs, lockCall, type PgDb } from './pg-db.ts';
import { PARTITIONED_TABLES } from './pg-migrations.ts';

/** One day: seven partitions hold the default 7-day retention, plus the one being written. */
export const DEFAULT_PARTITION_MS = 86_400_000;

export const partitionName = (table: string, part: number): string => `${table}_p${part}`;

export class PgPartitions {
  readonly #db: PgDb;
  readonly widthMs: number;
  /** Parts known to exist (created here or seen in the catalog). */
  readonly #known = new Set<number>();
  readonly #creating = new Map<number, Promise<void>>();

  private constructor(db: PgDb, widthMs: number) {
    this.#db = db;
    this.widthMs = widthMs;
  }

  /** The schema's partition width: the stored one, or `widthMs` stored now when the schema is new. */
  static async open(db: PgDb, widthMs: number): Promise<PgPartitions> {
    await db.query("INSERT INTO meta (key, value) VALUES ('partition_ms', $1) ON CONFLICT (key) DO NOTHING", [String(widthMs)]);
    const rows = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'partition_ms'");
    const parts = new PgPartitions(db, Number(rows[0].value));
    for (const p of await parts.list()) parts.#known.add(p);
    return parts;
  }

  partOf(receivedAt: number): number {
    return Math.floor(receivedAt / this.widthMs);
  }

  /** Start of the partition after `part` (epoch ms): every record in `part` arrived before it. */
  endOf(part: number): number {
    return (part + 1) * this.widthMs;
  }

  /** Every part that has a partition now, oldest first. */
  async list(): Promise<number[]> {
    const rows = await this.#db.query<{ relname: string }>(
      `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = to_regclass($1)`,
      [`${ident(this.#db.schema)}.records`],
    );
    return rows.map((r) => Number(r.relname.slice('records_p'.length))).sort((a, b) => a - b);
  }

  /** Make sure the partition of `part` exists (another collector may be creating it right now). */
  ensure(part: number): Promise<void> {
    if (this.#known.has(part)) return Promise.resolve();
    let pending = this.#creating.get(part);
    if (!pending) {
      pending = this.#create(part).finally(() => this.#creating.delete(part));
      this.#creating.set(part, pending);
    }
    return pending;
  }

  async #create(part: number): Promise<void> {
    await this.#db.transaction(async (c) => {
      // One creator at a time across collectors; the others then find it.
      await c.query(`SELECT ${lockCall('pg_advisory_xact_lock', 1)}`, lockArgs(LOCK.partitions, this.#db.schema));
      for (const table of PARTITIONED_TABLES) {
        await c.query(`CREATE TABLE IF NOT EXISTS ${ident(partitionName(table, part))} PARTITION OF ${ident(table)} FOR VALUES IN (${part})`);
      }
    }, 'creating a partition');
    this.#known.add(part);
  }

  /** Drop the partitions of `parts`, inside the caller's transaction. */
  async drop(client: pg.ClientBase, parts: readonly number[]): Promise<void> {
    for (const part of parts) {
      for (const table of PARTITIONED_TABLES) await client.query(`DROP TABLE IF EXISTS ${ident(partitionName(table, part))}`);
    }
  }

  /** After a drop committed (here or, seen on a failed insert, elsewhere). */
  forget(parts: readonly number[]): void {
    for (const p of parts) this.#known.delete(p);
  }

  /** Bytes of each part's partitions. */
  async sizes(): Promise<Map<number, number>> {
    const rows = await this.#db.query<{ part: number; n: number }>(
      `SELECT substring(c.relname from '_p([0-9]+)$')::int AS part, sum(pg_total_relation_size(c.oid))::int8 AS n
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent IN (${PARTITIONED_TABLES.map((_, k) => `to_regclass($${k + 1})`).join(', ')})
       GROUP BY 1`,
      PARTITIONED_TABLES.map((t) => `${ident(this.#db.schema)}.${ident(t)}`),
    );
    return new Map(rows.map((r) => [r.part, r.n]));
  }
}
