/**
 * The PostgreSQL store's write path: records in, committed rows out, one
 * statement (its own transaction) per `insertHops` call of up to
 * {@link STATEMENT_MAX_RECORDS} records. Each collector commits its own
 * batches; concurrent calls run on separate pooled connections and
 * PostgreSQL's WAL flush covers the commits that arrive together.
 *
 * The statement inserts the rows (`ON CONFLICT DO NOTHING`: a resend is
 * stored once), a dirty mark per chain that got a new record (its summary is
 * brought up to date off the write path, `pg-summaries.ts`), and this
 * connection's record count of the partition. The rows come in one of three
 * ways (`PgInsertMethod`), measured by `npm run bench -- ingest`.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pgError, type PgDb } from './pg-db.ts';
import { pgId } from './pg-ids.ts';
import type { PgPartitions } from './pg-partitions.ts';
import type { PgStrings } from './pg-strings.ts';
import { dedupeKey, KIND_CODE, type IngestRecord } from './record-identity.ts';
import type { InsertResult } from './store.ts';

/**
 * - `values`: a multi-row `INSERT … VALUES (…), (…) … ON CONFLICT DO NOTHING`;
 * - `unnest`: the same insert from one array parameter per column (one statement text for any batch size);
 * - `copy`: `COPY` into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING` from it.
 */
export type PgInsertMethod = 'values' | 'unnest' | 'copy';

/** Records per statement at most (PostgreSQL takes 65,535 parameters; `values` binds 6 per record). */
const STATEMENT_MAX_RECORDS = 5_000;
/**
 * A record is also looked for in the earlier partitions this long back: a
 * resend that crosses a boundary (a retry just after midnight) is still
 * recognized, however narrow the partitions. The unique index covers one
 * partition; away from a boundary there is nothing earlier to look in.
 */
const BOUNDARY_DEDUPE_MS = 3_600_000;

interface Row {
  messageId: Buffer;
  correlationId: Buffer;
  dkey: number;
  kind: number;
  ts: number;
  body: Buffer;
}

const NO_PARTITION = '23514';
const DEADLOCK = '40P01';

export class PgCommit {
  readonly #db: PgDb;
  readonly #strings: PgStrings;
  readonly #partitions: PgPartitions;
  readonly method: PgInsertMethod;
  /** Connections that have the staging table (`copy`). */
  readonly #staged = new WeakSet<pg.ClientBase>();

  constructor(db: PgDb, strings: PgStrings, partitions: PgPartitions, method: PgInsertMethod) {
    this.#db = db;
    this.#strings = strings;
    this.#partitions = partitions;
    this.method = method;
  }

  async insert(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult> {
    this.#db.open();
    if (records.length === 0) return { accepted: 0, duplicates: 0 };
    const bodies = await this.#strings.encodeAll(records);
    const rows: Row[] = records.map((r, i) => ({
      messageId: pgId(r.messageId),
      correlationId: pgId(r.correlationId ?? r.messageId),
      dkey: dedupeKey(r),
      kind: KIND_CODE[r.kind],
      ts: r.ts,
      body: bodies[i],
    }));
    const part = this.#partitions.partOf(receivedAt);
    for (let attempt = 0; ; attempt++) {
      await this.#partitions.ensure(part);
      try {
        const inserted = await this.#write(rows, part, receivedAt);
        return { accepted: records.length, duplicates: records.length - inserted };
      } catch (err) {
        const code = (err as { cause?: { code?: string } }).cause?.code;
        if (attempt >= 2 || (code !== NO_PARTITION && code !== DEADLOCK)) throw err;
        // Retention elsewhere dropped a partition this collector still knew: create it again.
        if (code === NO_PARTITION) this.#partitions.forget([part]);
        // A deadlock: two writes holding some of the same records (a resend racing its original) in
        // other orders. PostgreSQL rolled this one back; write it again (records keep arrival order).
      }
    }
  }

  /** The rows in one transaction; how many were new. */
  async #write(rows: readonly Row[], part: number, receivedAt: number): Promise<number> {
    // The first earlier partition a resend's first copy may be in (null: none, the usual case).
    const first = this.#partitions.partOf(receivedAt - BOUNDARY_DEDUPE_MS);
    const earlier = first < part ? first : null;
    if (this.method === 'copy') {
      return this.#db.transaction(async (c) => {
        await this.#copyToStage(c, rows);
        return this.#insertFrom(c, 'pg_temp.hoptrace_stage s', [], part, receivedAt, earlier);
      });
    }
    if (rows.length <= STATEMENT_MAX_RECORDS) {
      // One statement: its own transaction, one round trip.
      const client = await this.#connect();
      let failed = false;
      try {
        return await this.#insertChunk(client, rows, part, receivedAt, earlier);
      } catch (err) {
        failed = true;
        throw pgError(err);
      } finally {
        // After an error the connection may be mid-failure: let the pool replace it.
        client.release(failed);
      }
    }
    return this.#db.transaction(async (c) => {
      let n = 0;
      for (let i = 0; i < rows.length; i += STATEMENT_MAX_RECORDS) {
        n += await this.#insertChunk(c, rows.slice(i, i + STATEMENT_MAX_RECORDS), part, receivedAt, earlier);
      }
      return n;
    });
  }

  async #connect(): Promise<pg.PoolClient> {
    this.#db.open();
    try {
      return await this.#db.pool.connect();
    } catch (err) {
      throw pgError(err);
    }
  }

  async #insertChunk(c: pg.ClientBase, rows: readonly Row[], part: number, receivedAt: number, earlier: number | null): Promise<number> {
    if (this.method === 'unnest') {
      const source =
        '(SELECT * FROM unnest($4::bytea[], $5::bytea[], $6::int8[], $7::int2[], $8::float8[], $9::bytea[]) WITH ORDINALITY AS u (message_id, correlation_id, dkey, kind, ts, body, o) ORDER BY o) AS s';
      return this.#insertFrom(
        c,
        source,
        [rows.map((r) => r.messageId), rows.map((r) => r.correlationId), rows.map((r) => r.dkey), rows.map((r) => r.kind), rows.map((r) => r.ts), rows.map((r) => r.body)],
        part,
        receivedAt,
        earlier,
      );
    }
    const values: unknown[] = [];
    const tuples: string[] = [];
    let p = 4;
    for (const r of rows) {
      tuples.push(`($${p}::bytea, $${p + 1}::bytea, $${p + 2}::int8, $${p + 3}::int2, $${p + 4}::float8, $${p + 5}::bytea)`);
      p += 6;
      values.push(r.messageId, r.correlationId, r.dkey, r.kind, r.ts, r.body);
    }
    return this.#insertFrom(c, `(VALUES ${tuples.join(', ')}) AS s (message_id, correlation_id, dkey, kind, ts, body)`, values, part, receivedAt, earlier);
  }

  /** Insert from a row source (`s`); `$1` part, `$2` received_at, `$3` the first earlier part to look in; its own values from `$4`. */
  async #insertFrom(c: pg.ClientBase, source: string, values: unknown[], part: number, receivedAt: number, earlier: number | null): Promise<number> {
    // $3 is null away from a boundary: the planner folds the test away.
    const notEarlier =
      ' WHERE $3::int IS NULL OR NOT EXISTS (SELECT 1 FROM records r WHERE r.part >= $3 AND r.part < $1 AND r.message_id = s.message_id AND r.dkey = s.dkey)';
    const sql = `WITH ins AS (
        INSERT INTO records (part, message_id, correlation_id, dkey, kind, ts, received_at, body)
        SELECT $1::int, s.message_id, s.correlation_id, s.dkey, s.kind, s.ts, $2::float8, s.body FROM ${source}${notEarlier}
        ON CONFLICT (message_id, dkey, part) DO NOTHING
        RETURNING correlation_id
      ), dirty AS (
        INSERT INTO dirty_chains (correlation_id) SELECT DISTINCT correlation_id FROM ins ON CONFLICT DO NOTHING
      ), counted AS (
        INSERT INTO record_counts (part, backend, n) SELECT $1, pg_backend_pid(), count(*) FROM ins HAVING count(*) > 0
        ON CONFLICT (part, backend) DO UPDATE SET n = record_counts.n + excluded.n
      )
      SELECT count(*)::int AS n FROM ins`;
    const { rows } = await c.query<{ n: number }>(sql, [part, receivedAt, earlier, ...values]);
    return rows[0].n;
  }

  /** COPY the rows into this connection's staging table (emptied at every commit). */
  async #copyToStage(c: pg.ClientBase, rows: readonly Row[]): Promise<void> {
    if (!this.#staged.has(c)) {
      await c.query(
        `CREATE TEMP TABLE IF NOT EXISTS hoptrace_stage (message_id bytea, correlation_id bytea, dkey int8, kind int2, ts float8, body bytea)
         ON COMMIT DELETE ROWS`,
      );
      this.#staged.add(c);
    }
    let text = '';
    for (const r of rows) {
      text += `\\\\x${r.messageId.toString('hex')}\t\\\\x${r.correlationId.toString('hex')}\t${r.dkey}\t${r.kind}\t${r.ts}\t\\\\x${r.body.toString('hex')}\n`;
    }
    await pipeline(Readable.from([Buffer.from(text)]), c.query(copyFrom('COPY pg_temp.hoptrace_stage FROM STDIN')));
  }
}
